"""The shape every builder backend has: argv for a build and for an export, and running them.

Backends build exactly the argument lists they return, so the tests can check
the command a backend would run (buildx cannot be installed here) and run it
for real where the tool exists.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import HpcAnnotateError

if TYPE_CHECKING:
    from ..render import RenderedContext


@dataclass
class BuildOptions:
    root: Path | None = None  # buildah --root (private image store)
    runroot: Path | None = None  # buildah --runroot
    storage_driver: str | None = None  # buildah --storage-driver (vfs where overlay is not possible)
    builder: str | None = None  # buildx --builder (remote BuildKit)
    authfile: Path | None = None  # registry credentials file for the builder (containers auth.json format)
    tls_verify: bool = True
    plain_http: bool | None = None  # for the registry hpcannotate itself talks to (push, probe, base annotations)
    stream_log: bool = False
    build_contexts: dict[str, str] = field(default_factory=dict)  # buildx named contexts (local base images)
    base_layouts: dict[str, str] = field(default_factory=dict)  # FROM reference -> oci:PATH[:TAG] (buildx --base)
    aliases: bool = False  # also write the seeds' spellings of the keys (--aliases)


@dataclass
class BuildResult:
    reference: str  # where the image is now: ``oci:PATH:TAG`` or a registry reference
    log: Path


def platform_for(target_family: str) -> str:
    """The OCI platform of an archspec family."""
    from ..registry.platform import oci_arch

    return f"linux/{oci_arch(target_family)}"


LOGGED_ARG_MAX = 200


def loggable(argv: list[str]) -> str:
    """The command as a shell would read it, long arguments (base64 docs in --label) shortened."""
    return shlex.join(a if len(a) <= LOGGED_ARG_MAX else f"{a[:LOGGED_ARG_MAX - 40]}...[{len(a)} characters]"
                      for a in argv)


def run_logged(argv: list[str], log: Path, what: str, stream: bool = False, env: dict | None = None) -> None:
    """Run a builder command, its output in ``log`` (and on stderr with ``stream``); one-line error on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        fh.write(("$ " + loggable(argv) + "\n").encode())
        fh.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if stream:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()
        code = proc.wait()
    if code != 0:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["no output"]
        raise HpcAnnotateError(f"{what} failed (exit {code}): {tail[0].strip()} (full log: {log})")


class Builder(ABC):
    name: str

    def __init__(self, options: BuildOptions):
        self.options = options

    @abstractmethod
    def available(self) -> bool:
        """Whether the tool is installed and usable here."""

    def unavailable_reason(self) -> str | None:
        """What is missing, in words a user can act on (None when ``available()``)."""
        return None if self.available() else f"{self.name} is not installed"

    @abstractmethod
    def build_argv(self, context: RenderedContext, destination: str, platform: str) -> list[str]:
        """The exact command that builds ``context`` into ``destination`` (``oci:PATH:TAG`` or a registry ref)."""

    @abstractmethod
    def build(self, context: RenderedContext, destination: str, platform: str, log: Path) -> BuildResult:
        """Build straight into ``destination``: no second copy of the layers (see bench/build_overhead.py)."""
