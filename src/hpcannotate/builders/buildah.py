"""The buildah backend: ``buildah bud --format oci --isolation chroot``, daemonless.

The OCI format is not optional: with ``--format docker`` buildah silently drops
manifest annotations. ``--isolation chroot`` runs RUN steps without a
container runtime, which works in unprivileged CI containers too.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..render import RenderedContext
from .base import Builder, BuildResult, run_logged

# Annotations that only make sense on an OCI layout's index entry, not on the image manifest.
LAYOUT_ONLY = ("org.opencontainers.image.ref.name",)


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

    def build_argv(self, context: RenderedContext, image: str, platform: str) -> list[str]:
        argv = [*self.global_args(), "bud", "--format", "oci", "--isolation", "chroot", "--pull=false",
                "--platform", platform, "-f", str(context.dockerfile), "-t", image]
        for key, value in context.oci_annotations().items():
            if key not in LAYOUT_ONLY:
                argv += ["--annotation", f"{key}={value}"]
        for key, value in context.argv_labels().items():
            argv += ["--label", f"{key}={value}"]
        return [*argv, str(context.directory)]

    def build(self, context: RenderedContext, image: str, platform: str, log: Path) -> BuildResult:
        run_logged(self.build_argv(context, image, platform), log, f"buildah bud of {image}", self.options.stream_log)
        return BuildResult(image, None, log)

    def export_argv(self, image: str, destination: str, digestfile: Path) -> list[str]:
        argv = [*self.global_args(), "push", "--format", "oci", "--digestfile", str(digestfile)]
        if not destination.startswith("oci:"):
            from ..registry.reference import is_loopback, parse_reference

            # plain HTTP for loopback registries, as crane and hpcannotate's own client do
            if not self.options.tls_verify or is_loopback(parse_reference(destination).registry):
                argv.append("--tls-verify=false")
            if self.options.authfile:
                argv += ["--authfile", str(self.options.authfile)]
            destination = "docker://" + destination
        return [*argv, image, destination]

    def export(self, image: str, destination: str, log: Path) -> str:
        with tempfile.TemporaryDirectory(prefix="hpcannotate-") as tmp:
            digestfile = Path(tmp) / "digest"
            run_logged(self.export_argv(image, destination, digestfile), log, f"buildah push to {destination}",
                       self.options.stream_log)
            return digestfile.read_text().strip()

    def image_exists(self, image: str) -> bool:
        import subprocess

        argv = [*self.global_args(), "inspect", "--type", "image", image]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0
