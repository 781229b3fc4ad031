"""The docker buildx backend: BuildKit, local or remote (``--builder``) for scale-out builds.

buildx writes manifest annotations itself (``--annotation manifest:k=v``), pushes directly or
writes an OCI layout tarball. Only a BuildKit builder can: buildx's default ``docker`` driver
writes Docker v2 manifests, which have no annotations, and cannot export OCI, so it is refused
rather than reported as a success. Local base images (``hpcannotate base``, a buildah store, an
OCI layout) reach BuildKit as named build contexts (``--build-context NAME=oci-layout://...``,
see ``buildx_bases``), so a build never pulls what the machine already has.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.build.builders.base import Builder, BuildOptions, BuildResult, run_logged
from hpcannotate.build.builders.buildah import LAYOUT_ONLY
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.keynames import OCI_BASE_DIGEST

if TYPE_CHECKING:
    from hpcannotate.dockerfile.render import RenderedContext
    from hpcannotate.model.annotations import Annotations

INSPECT_TIMEOUT = 60.0
HOW_TO_CREATE = ("create a BuildKit builder: `docker buildx create --name bk --driver docker-container`, or "
                 "`--driver remote unix:///run/buildkit/buildkitd.sock` (or tcp://HOST:PORT) for a running buildkitd; "
                 "then pass --builder bk")


BASE_DIGEST = OCI_BASE_DIGEST


@dataclass
class BuildxOptions(BuildOptions):
    """buildx's own settings over the common ones (whose store is where local bases are looked up)."""

    builder: str | None = None  # buildx --builder (remote BuildKit)
    build_contexts: dict[str, str] = field(default_factory=dict)  # named contexts (local base images)
    base_layouts: dict[str, str] = field(default_factory=dict)  # FROM reference -> oci:PATH[:TAG] (--base)


class BuildxBuilder(Builder):
    name = "buildx"
    options_type = BuildxOptions
    options: BuildxOptions

    def __init__(self, options: BuildOptions | None = None):
        super().__init__(options)
        # FROM reference -> manifest digest of the local base handed over as a named context:
        # written as org.opencontainers.image.base.digest, as buildah writes it for its bases
        self.base_digests: dict[str, str] = {}
        self._bases: dict[str, Annotations | None] = {}  # once per base: a store export copies the image

    def base_annotations(self, ref: str, *, allow_make: bool, make: bool, work: Path) -> Annotations | None:
        """The base handed to BuildKit as a named context (``buildx_bases``), read from its OCI layout."""
        if ref not in self._bases:
            from hpcannotate.build.builders.buildx_bases import register

            self._bases[ref] = register(ref, self, allow_make=allow_make, make=make, work=work)
        return self._bases[ref]

    def ensure_base(self, ref: str, *, allow_make: bool) -> None:
        """Nothing: ``plan_bases`` already handed every local base to BuildKit; it pulls the others."""

    def plan_bases(self, refs: list[str], *, allow_make: bool, make: bool, work: Path) -> None:
        """Every stage's base, not only the final one, goes in as a named context."""
        for ref in refs:
            self.base_annotations(ref, allow_make=allow_make, make=make, work=work)

    def available(self) -> bool:
        return self.unavailable_reason() is None

    def unavailable_reason(self) -> str | None:
        """What is missing for a buildx build here (None: nothing): the CLI, the plugin, a usable builder."""
        return _check_builder(self.options.builder, os.environ.get("DOCKER_CONFIG", ""))

    def build_argv(self, context: RenderedContext, destination: str, platform: str) -> list[str]:
        """Registry destinations are pushed by buildx itself; layouts are written as an OCI tarball first."""
        argv = ["docker", "buildx", "build"]
        if self.options.builder:
            argv += ["--builder", self.options.builder]
        argv += ["--platform", platform, "-f", str(context.dockerfile), "--provenance=false"]
        annotations = {k: v for k, v in context.oci_annotations().items() if k not in LAYOUT_ONLY}
        from hpcannotate.dockerfile.reader import final_base  # on use: the builders import no parser at start-up

        base_digest = self.base_digests.get(final_base(context.dockerfile.read_text()) or "")
        if base_digest and BASE_DIGEST not in annotations:
            annotations[BASE_DIGEST] = base_digest
        for key, value in annotations.items():
            argv += ["--annotation", f"manifest:{key}={value}"]
        for key, value in context.argv_labels().items():
            argv += ["--label", f"{key}={value}"]
        for name, location in self.options.build_contexts.items():
            argv += ["--build-context", f"{name}={location}"]
        if destination.startswith("oci:"):
            argv += ["--output", f"type=oci,dest={self.tarball(context)}"]
        elif self._insecure(destination):
            # plain HTTP for loopback registries (and --tls-verify=false), as buildah and crane do
            argv += ["-t", destination, "--output", "type=registry,registry.insecure=true"]
        else:
            argv += ["-t", destination, "--output", "type=registry"]
        return [*argv, str(context.directory)]

    def _insecure(self, destination: str) -> bool:
        """Plain HTTP (``registry.insecure``) for loopback registries and ``--tls-verify=false``."""
        from hpcannotate.registry.reference import is_loopback, parse_reference

        return (not self.options.tls_verify or bool(self.options.plain_http)
                or is_loopback(parse_reference(destination).registry))

    @staticmethod
    def tarball(context: RenderedContext) -> Path:
        return context.directory.parent / "image.oci.tar"

    def build(self, context: RenderedContext, destination: str, platform: str, log: Path) -> BuildResult:
        self.refuse_docker_driver()
        with self._docker_config() as env:
            run_logged(self.build_argv(context, destination, platform), log,
                       f"docker buildx build into {destination}", self.options.stream_log, env=env)
        if destination.startswith("oci:"):
            tarball = self.tarball(context)
            try:
                _unpack(tarball, destination)
            finally:
                tarball.unlink(missing_ok=True)
        return BuildResult(destination, log)

    def refuse_docker_driver(self) -> None:
        """The ``docker`` driver would give a Docker v2 image without annotations: never a mislabelled success."""
        driver = builder_driver(self.options.builder, os.environ.get("DOCKER_CONFIG", ""))
        if driver == "docker":
            which = f"builder {self.options.builder}" if self.options.builder else "the default buildx builder"
            raise InputError(f"{which} uses the docker driver, which writes Docker v2 manifests without "
                             f"annotations and cannot export OCI; {HOW_TO_CREATE}")

    def _docker_config(self):
        """``--authfile`` as buildx's credentials: a private DOCKER_CONFIG whose config.json is that file
        (the same ``auths`` format), with the user's builders and plugins linked in."""
        return _AuthConfig(self.options.authfile)


class _AuthConfig:
    def __init__(self, authfile: Path | None):
        self.authfile = authfile
        self.tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> dict[str, str] | None:
        if self.authfile is None:
            return None
        self.tmp = tempfile.TemporaryDirectory(prefix="hpcannotate-buildx-")
        config_dir = Path(self.tmp.name)
        try:
            shutil.copyfile(self.authfile, config_dir / "config.json")
        except OSError as exc:
            self.tmp.cleanup()
            raise InputError(f"--authfile {self.authfile}: cannot read ({exc.strerror})") from None
        (config_dir / "config.json").chmod(0o600)
        home = Path(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"))
        for shared in ("buildx", "cli-plugins", "contexts"):
            if (home / shared).exists():
                (config_dir / shared).symlink_to((home / shared).resolve())
        return {**os.environ, "DOCKER_CONFIG": str(config_dir)}

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


def _inspect(builder: str | None) -> subprocess.CompletedProcess:
    argv = ["docker", "buildx", "inspect", "--bootstrap", *([builder] if builder else [])]
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=INSPECT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 1, "", f"no answer within {INSPECT_TIMEOUT:g} s")


@functools.lru_cache(maxsize=16)
def _inspected(builder: str | None, docker_config: str) -> tuple[int, str, str]:
    """``docker buildx inspect --bootstrap`` once per builder and DOCKER_CONFIG (it reaches the daemon)."""
    if shutil.which("docker") is None:
        return 127, "", "docker"
    proc = _inspect(builder)
    return proc.returncode, proc.stdout, proc.stderr


def builder_driver(builder: str | None, docker_config: str) -> str | None:
    code, out, _ = _inspected(builder, docker_config)
    if code != 0:
        return None
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Driver":
            return value.strip()
    return None


@functools.lru_cache(maxsize=16)
def _check_builder(builder: str | None, docker_config: str) -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (apt-get install docker.io, or docker-ce-cli)"
    version = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        return "the docker buildx plugin is not installed (bash .ci/install-go-tools.sh, or docker-buildx-plugin)"
    code, out, err = _inspected(builder, docker_config)
    which = f"builder {builder}" if builder else "the default buildx builder"
    # `inspect --bootstrap` exits 0 even when the builder cannot be reached: it prints "Error:" lines
    errors = [line.partition(":")[2].strip() for line in out.splitlines() if line.startswith("Error:")]
    if code != 0 or errors:
        lines = errors or (err.strip() or out.strip()).splitlines() or ["no output"]
        return f"{which} is not usable ({lines[-1].strip()}); {HOW_TO_CREATE}"
    driver = builder_driver(builder, docker_config)
    if driver == "docker":
        return (f"{which} uses the docker driver (Docker v2 manifests without annotations, no OCI export); "
                f"{HOW_TO_CREATE}")
    states = [line.partition(":")[2].strip() for line in out.splitlines() if line.strip().startswith("Status:")]
    if not driver or "running" not in states:
        return f"{which} has no running BuildKit node ({', '.join(states) or 'no node'}); {HOW_TO_CREATE}"
    return None


def _unpack(tarball: Path, destination: str) -> None:
    """Move the image of buildx's OCI tarball into the destination layout under its tag."""
    from hpcannotate.oci.layout import OciLayout

    path, _, tag = destination.removeprefix("oci:").rpartition(":")
    with tempfile.TemporaryDirectory(prefix="hpcannotate-", dir=tarball.parent) as tmp:
        with tarfile.open(tarball) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.10.12: the tarball is buildx's own output
                tar.extractall(tmp)  # noqa: S202
        source = OciLayout.open(tmp)
        descs = list(source.descriptors())
        if not descs:
            raise HpcAnnotateError(f"{tarball}: buildx wrote an empty OCI layout")
        if len(descs) > 1:
            raise HpcAnnotateError(f"{tarball}: buildx wrote {len(descs)} images where one was expected")
        target = OciLayout.create(path)
        blobs = Path(tmp) / "blobs" / "sha256"
        for blob in blobs.iterdir():
            dest = target.blob_path("sha256:" + blob.name)
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)  # a new layout has no blobs/sha256 yet
                _move_blob(blob, dest)
        desc = descs[0]
        target.set_ref({k: v for k, v in desc.items() if k != "annotations"}, tag)


def _move_blob(blob: Path, dest: Path) -> None:
    """A rename where it can be; across file systems a copy renamed into place (never a half blob)."""
    try:
        os.replace(blob, dest)
    except OSError:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(blob, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
