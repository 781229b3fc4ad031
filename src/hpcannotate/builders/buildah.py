"""The buildah backend: ``buildah bud --format oci --isolation chroot``, daemonless.

The OCI format is not optional: with ``--format docker`` buildah silently drops
manifest annotations. ``--isolation chroot`` runs RUN steps without a
container runtime, which works in unprivileged CI containers too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import HpcAnnotateError
from .base import Builder, BuildResult, run_logged

if TYPE_CHECKING:
    from ..render import RenderedContext

# Annotations that only make sense on an OCI layout's index entry, not on the image manifest.
LAYOUT_ONLY = ("org.opencontainers.image.ref.name",)


def metadata_args(context: RenderedContext) -> list[str]:
    """``--annotation k=v`` for every manifest annotation, ``--label k=v`` for the labels the
    Dockerfile could not carry: one argument each, never pasted into text."""
    args = []
    for key, value in context.oci_annotations().items():
        if key not in LAYOUT_ONLY:
            args += ["--annotation", f"{key}={value}"]
    for key, value in context.argv_labels().items():
        args += ["--label", f"{key}={value}"]
    return args


class BuildahBuilder(Builder):
    name = "buildah"

    def available(self) -> bool:
        return shutil.which("buildah") is not None

    def global_args(self) -> list[str]:
        args = ["buildah"]
        if self.options.root:
            args += ["--root", str(self.options.root)]
        if self.options.runroot:
            args += ["--runroot", str(self.options.runroot)]
        if self.options.storage_driver:
            args += ["--storage-driver", self.options.storage_driver]
        return args

    def build_argv(self, context: RenderedContext, destination: str, platform: str) -> list[str]:
        """``buildah bud`` committing straight to the destination (``-t oci:PATH:TAG`` or ``-t docker://REF``).

        Committing to the destination writes the compressed layers once; committing to the
        local store first and pushing afterwards would copy the image twice.
        """
        argv = [*self.global_args(), "bud", "--format", "oci", "--isolation", "chroot", "--pull=false",
                "--platform", platform, "-f", str(context.dockerfile)]
        if destination.startswith("oci:"):
            argv += [*self.base_pull_args(context), "-t", destination]
        else:
            argv += [*self.registry_args(destination), "-t", "docker://" + destination]
        return [*argv, *metadata_args(context), str(context.directory)]

    def base_pull_args(self, context: RenderedContext) -> list[str]:
        """For a layout destination, how buildah reaches the registries of the bases it pulls: plain HTTP
        for a loopback one (as with --push, where ``registry_args`` covers the destination and bases alike)."""
        from ..build import base_images
        from ..registry.reference import is_loopback, parse_reference

        args = []
        bases = base_images(context.dockerfile.read_text())
        if (not self.options.tls_verify or self.options.plain_http
                or any(_on_loopback(b, parse_reference, is_loopback) for b in bases)):
            args.append("--tls-verify=false")
        if self.options.authfile:
            args += ["--authfile", str(self.options.authfile)]
        return args

    def registry_args(self, destination: str) -> list[str]:
        from ..registry.reference import is_loopback, parse_reference

        args = []
        # plain HTTP for loopback registries, as crane and hpcannotate's own client do
        if (not self.options.tls_verify or self.options.plain_http
                or is_loopback(parse_reference(destination).registry)):
            args.append("--tls-verify=false")
        if self.options.authfile:
            args += ["--authfile", str(self.options.authfile)]
        return args

    def build(self, context: RenderedContext, destination: str, platform: str, log: Path) -> BuildResult:
        run_logged(self.build_argv(context, destination, platform), log, f"buildah bud into {destination}",
                   self.options.stream_log)
        return BuildResult(destination, log)

    def image_exists(self, image: str) -> bool:
        import subprocess

        argv = [*self.global_args(), "inspect", "--type", "image", image]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def _on_loopback(image: str, parse_reference, is_loopback) -> bool:
    """True for a base on a loopback registry (127.0.0.1:5000/app); a name without a registry is not."""
    if "/" not in image:
        return False
    try:
        return is_loopback(parse_reference(image).registry)
    except (ValueError, HpcAnnotateError):  # a reference the builder will report itself
        return False
