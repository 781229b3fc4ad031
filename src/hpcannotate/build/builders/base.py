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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from hpcannotate.errors import HpcAnnotateError

if TYPE_CHECKING:
    from hpcannotate.dockerfile.render import RenderedContext
    from hpcannotate.model.annotations import Annotations

OptionsT = TypeVar("OptionsT", bound="BuildOptions")


@dataclass
class BuildOptions:
    """What every backend takes: registry access, the log, alias labels, and the local image store.

    The store (``root``/``runroot``/``storage_driver``, buildah's containers-storage) is common, not
    buildah's alone: buildah builds from it, buildx exports the local bases it finds there, ``hpcannotate
    base`` loads into it and the probe reads ``containers-storage:`` images from it.
    Each backend's own settings live in its subclass (``BuildahOptions``, ``BuildxOptions``);
    ``Builder.options_type.adopt`` turns any options into the backend's own.
    """

    root: Path | None = None  # buildah --root (private image store)
    runroot: Path | None = None  # buildah --runroot
    storage_driver: str | None = None  # buildah --storage-driver (vfs where overlay is not possible)
    authfile: Path | None = None  # registry credentials file for the builder (containers auth.json format)
    tls_verify: bool = True
    plain_http: bool | None = None  # for the registry hpcannotate itself talks to (push, probe, base annotations)
    stream_log: bool = False
    aliases: bool = False  # also write the seeds' spellings of the keys (--aliases)

    @classmethod
    def adopt(cls: type[OptionsT], options: BuildOptions | None) -> OptionsT:
        """``options`` as this backend's own: the same object when it already is, else a copy of the fields
        this class shares with it (another backend's own fields are left behind: ``select_builder`` calls
        ``refuse`` first for the ones that must not be)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls) if hasattr(options, f.name)})

    @classmethod
    def refuse(cls, options: BuildOptions) -> None:
        """Raise InputError for a setting of another backend that this one cannot honour."""

    def store_args(self) -> list[str]:
        """``buildah`` with the global flags that select this store."""
        args = ["buildah"]
        if self.root:
            args += ["--root", str(self.root)]
        if self.runroot:
            args += ["--runroot", str(self.runroot)]
        if self.storage_driver:
            args += ["--storage-driver", self.storage_driver]
        return args


@dataclass
class BuildResult:
    reference: str  # where the image is now: ``oci:PATH:TAG`` or a registry reference
    log: Path


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
    """One build tool. ``build.py`` speaks only this interface: what a backend does differently
    (where bases come from, how they are made, what it reads of them) is a method here."""

    name: str
    options_type: type[BuildOptions] = BuildOptions

    def __init__(self, options: BuildOptions | None = None):
        self.options = self.options_type.adopt(options)

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

    def base_annotations(self, ref: str, *, allow_make: bool, make: bool, work: Path) -> Annotations | None:
        """The annotations of the base ``ref`` as this backend will build on it (layer ``base image``);
        None when the base is not local (the builder pulls it) or has none of ours.

        ``make``: make a base hpcannotate can make (debian, busybox) when it is missing and ``allow_make``
        permits; with ``make=False`` (a dry run) nothing is made. A backend that reads no local base
        (the default) builds without base keys."""
        return None

    def base_env(self, ref: str) -> dict[str, str] | None:
        """The base's environment (config ``Env``) as this backend's store holds it; None: not known here."""
        return None

    def plan_bases(self, refs: list[str], *, allow_make: bool, make: bool, work: Path) -> None:
        """Before the commands are fixed: take every stage's base ``refs`` (not only the final one) that
        the command must name (buildx: as named build contexts). By default the command names none."""
        return None

    def ensure_base(self, ref: str, *, allow_make: bool) -> None:
        """Just before a build: make a missing base the builder would otherwise fail to find.
        By default the builder pulls its bases itself."""
        return None
