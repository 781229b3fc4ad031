"""The docker buildx backend: BuildKit, local or remote (``--builder``) for scale-out builds.

buildx writes manifest and index annotations itself (``--annotation
manifest:k=v``), pushes directly or writes an OCI layout tarball. Local base
images (made with ``hpcannotate base``) reach BuildKit as named build contexts.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..errors import HpcAnnotateError
from ..render import RenderedContext
from .base import Builder, BuildResult, run_logged
from .buildah import LAYOUT_ONLY


class BuildxBuilder(Builder):
    name = "buildx"

    def available(self) -> bool:
        if shutil.which("docker") is None:
            return False
        probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
        return probe.returncode == 0

    def build_argv(self, context: RenderedContext, image: str, platform: str, output: str | None = None) -> list[str]:
        """``output`` is ``type=registry`` (push ``image``) or ``type=oci,dest=FILE.tar``."""
        argv = ["docker", "buildx", "build"]
        if self.options.builder:
            argv += ["--builder", self.options.builder]
        argv += ["--platform", platform, "-f", str(context.dockerfile), "-t", image, "--provenance=false"]
        for key, value in context.oci_annotations().items():
            if key not in LAYOUT_ONLY:
                argv += ["--annotation", f"manifest:{key}={value}"]
        for key, value in context.argv_labels().items():
            argv += ["--label", f"{key}={value}"]
        for name, location in self.options.build_contexts.items():
            argv += ["--build-context", f"{name}={location}"]
        argv += ["--output", output or "type=registry"]
        return [*argv, str(context.directory)]

    def build(self, context: RenderedContext, image: str, platform: str, log: Path) -> BuildResult:
        """Build straight into an OCI layout tarball; ``export`` then places it."""
        tarball = log.with_suffix(".oci.tar")
        argv = self.build_argv(context, image, platform, f"type=oci,dest={tarball}")
        run_logged(argv, log, f"docker buildx build of {image}", self.options.stream_log)
        return BuildResult(str(tarball), None, log)

    def export(self, image: str, destination: str, log: Path) -> str:
        """Copy the OCI tarball buildx wrote into a layout, or push it with the registry client."""
        from ..oci.layout import OciLayout

        with tempfile.TemporaryDirectory(prefix="hpcannotate-") as tmp:
            with tarfile.open(image) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # Python < 3.10.12: the tarball is buildx's own output
                    tar.extractall(tmp)  # noqa: S202
            source = OciLayout.open(tmp)
            desc = next(iter(source.descriptors()), None)
            if desc is None:
                raise HpcAnnotateError(f"{image}: buildx wrote an empty OCI layout")
            from ..oci.copy import copy_image

            return copy_image(source, desc, destination, self.options)
