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
from typing import TYPE_CHECKING

from ..errors import HpcAnnotateError
from .base import Builder, BuildResult, run_logged
from .buildah import LAYOUT_ONLY

if TYPE_CHECKING:
    from ..render import RenderedContext


class BuildxBuilder(Builder):
    name = "buildx"

    def available(self) -> bool:
        if shutil.which("docker") is None:
            return False
        probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
        return probe.returncode == 0

    def build_argv(self, context: RenderedContext, destination: str, platform: str) -> list[str]:
        """Registry destinations are pushed by buildx itself; layouts are written as an OCI tarball first."""
        argv = ["docker", "buildx", "build"]
        if self.options.builder:
            argv += ["--builder", self.options.builder]
        argv += ["--platform", platform, "-f", str(context.dockerfile), "--provenance=false"]
        for key, value in context.oci_annotations().items():
            if key not in LAYOUT_ONLY:
                argv += ["--annotation", f"manifest:{key}={value}"]
        for key, value in context.argv_labels().items():
            argv += ["--label", f"{key}={value}"]
        for name, location in self.options.build_contexts.items():
            argv += ["--build-context", f"{name}={location}"]
        if destination.startswith("oci:"):
            argv += ["--output", f"type=oci,dest={self.tarball(context)}"]
        else:
            argv += ["-t", destination, "--output", "type=registry"]
        return [*argv, str(context.directory)]

    @staticmethod
    def tarball(context: RenderedContext) -> Path:
        return context.directory.parent / "image.oci.tar"

    def build(self, context: RenderedContext, destination: str, platform: str, log: Path) -> BuildResult:
        run_logged(self.build_argv(context, destination, platform), log, f"docker buildx build into {destination}",
                   self.options.stream_log)
        if destination.startswith("oci:"):
            self._unpack(self.tarball(context), destination)
        return BuildResult(destination, log)

    @staticmethod
    def _unpack(tarball: Path, destination: str) -> None:
        """Copy the image of buildx's OCI tarball into the destination layout under its tag."""
        from ..oci.layout import OciLayout

        path, _, tag = destination.removeprefix("oci:").rpartition(":")
        with tempfile.TemporaryDirectory(prefix="hpcannotate-") as tmp:
            with tarfile.open(tarball) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # Python < 3.10.12: the tarball is buildx's own output
                    tar.extractall(tmp)  # noqa: S202
            source = OciLayout.open(tmp)
            desc = next(iter(source.descriptors()), None)
            if desc is None:
                raise HpcAnnotateError(f"{tarball}: buildx wrote an empty OCI layout")
            target = OciLayout.create(path)
            for blob in (Path(tmp) / "blobs" / "sha256").iterdir():
                if not target.has_blob("sha256:" + blob.name):
                    shutil.copyfile(blob, target.blob_path("sha256:" + blob.name))
            target.set_ref({k: v for k, v in desc.items() if k != "annotations"}, tag)
