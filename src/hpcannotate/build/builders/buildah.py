"""The buildah backend: ``buildah bud --format oci --isolation chroot``, daemonless.

The OCI format is not optional: with ``--format docker`` buildah silently drops
manifest annotations. ``--isolation chroot`` runs RUN steps without a
container runtime, which works in unprivileged CI containers too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.build.builders.base import Builder, BuildOptions, BuildResult, run_logged
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.keynames import OCI_REF_NAME

if TYPE_CHECKING:
    from hpcannotate.dockerfile.render import RenderedContext
    from hpcannotate.model.annotations import Annotations

# Annotations that only make sense on an OCI layout's index entry, not on the image manifest.
LAYOUT_ONLY = (OCI_REF_NAME,)


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


@dataclass
class BuildahOptions(BuildOptions):
    """buildah takes the common options only: its store is ``BuildOptions``' (shared with the probe and
    buildx's local bases), and its own flags are fixed (``--format oci``: the docker format drops
    annotations; ``--isolation chroot``: no container runtime needed)."""

    @classmethod
    def refuse(cls, options: BuildOptions) -> None:
        if getattr(options, "base_layouts", None):
            raise InputError("--base is for --backend buildx (named build contexts); for buildah, "
                             "`buildah pull oci:PATH:TAG` and `buildah tag` the image as the FROM name")


class BuildahBuilder(Builder):
    name = "buildah"
    options_type = BuildahOptions

    def available(self) -> bool:
        return shutil.which("buildah") is not None

    def global_args(self) -> list[str]:
        """``buildah`` and the flags that select the store."""
        return self.options.store_args()

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
        from hpcannotate.dockerfile.reader import base_images
        from hpcannotate.registry.reference import is_loopback, parse_reference

        args = []
        bases = base_images(context.dockerfile.read_text())
        if (not self.options.tls_verify or self.options.plain_http
                or any(_on_loopback(b, parse_reference, is_loopback) for b in bases)):
            args.append("--tls-verify=false")
        if self.options.authfile:
            args += ["--authfile", str(self.options.authfile)]
        return args

    def registry_args(self, destination: str) -> list[str]:
        from hpcannotate.registry.reference import is_loopback, parse_reference

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
        argv = [*self.global_args(), "inspect", "--type", "image", image]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def plan_bases(self, refs: list[str], *, allow_make: bool, make: bool, work: Path) -> None:
        """Nothing: buildah finds its bases in its store by name; ``ensure_base`` puts them there."""

    def ensure_base(self, ref: str, *, allow_make: bool) -> None:
        """Make a missing base that hpcannotate can make (debian, busybox) when the store lacks it."""
        from hpcannotate import console
        from hpcannotate.build.baseimage import load_into_buildah, make_base, parse_base, store_name

        try:
            parse_base(ref)
        except InputError:
            return  # not one we can make: the builder pulls it
        if self.image_exists(store_name(ref)):
            return
        if not allow_make:
            raise HpcAnnotateError(f"base image {ref} is not in the builder's store and --no-make-base was given; "
                                   f"make it with `hpcannotate base {ref}` or pull it")
        console.progress(f"base {ref}: not in the store, making it locally")
        load_into_buildah(make_base(ref), ref, self.global_args())

    def base_annotations(self, ref: str, *, allow_make: bool, make: bool, work: Path) -> Annotations | None:
        """Read from buildah's store, where the build takes the base from (made there first when allowed)."""
        if not self.available():
            return None
        if make:
            self.ensure_base(ref, allow_make=allow_make)
        return from_buildah(ref, self.global_args())

    def base_env(self, ref: str) -> dict[str, str] | None:
        if not self.available():
            return None
        return env_from_buildah(ref, self.global_args())


def _on_loopback(image: str, parse_reference, is_loopback) -> bool:
    """True for a base on a loopback registry (127.0.0.1:5000/app); a name without a registry is not."""
    if "/" not in image:
        return False
    try:
        return is_loopback(parse_reference(image).registry)
    except (ValueError, HpcAnnotateError):  # a reference the builder will report itself
        return False


def buildah_inspect(ref: str, global_args: list[str]) -> dict | None:
    """``buildah inspect --type image`` of ``ref`` as the store holds it; None when it is not there."""
    try:
        proc = subprocess.run([*global_args, "inspect", "--type", "image", ref], capture_output=True, text=True,
                              check=False, timeout=60)
    except subprocess.TimeoutExpired:
        raise HpcAnnotateError(f"base image {ref}: `buildah inspect` did not answer in 60 s") from None
    except OSError as exc:
        raise HpcAnnotateError(f"base image {ref}: cannot run buildah inspect: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise HpcAnnotateError(f"base image {ref}: buildah inspect printed no JSON ({exc})") from None
    if not isinstance(data, dict):
        raise HpcAnnotateError(f"base image {ref}: buildah inspect printed {type(data).__name__}, not an object")
    return data


def _config(data: dict) -> dict:
    config = (data.get("OCIv1") or {}).get("config") or {}
    return config if isinstance(config, dict) else {}


def from_buildah(ref: str, global_args: list[str]) -> Annotations | None:
    """The base as the buildah store holds it (what the build will use); None when it is not there."""
    from hpcannotate.model.baseannotations import from_values  # on use: the builders import no catalogue

    data = buildah_inspect(ref, global_args)
    if data is None:
        return None
    labels = _config(data).get("Labels")
    annotations = data.get("ImageAnnotations")
    return from_values(ref, annotations if isinstance(annotations, dict) else None,
                       labels if isinstance(labels, dict) else None, "read from the buildah store")


def env_from_buildah(ref: str, global_args: list[str]) -> dict[str, str] | None:
    """The base's environment (config ``Env``) as the buildah store holds it; None when it is not there."""
    data = buildah_inspect(ref, global_args)
    if data is None:
        return None
    env = _config(data).get("Env") or []
    pairs = (str(item).partition("=") for item in env if isinstance(item, str))
    return {name: value for name, _, value in pairs if name}
