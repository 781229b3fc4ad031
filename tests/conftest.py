"""Shared fixtures: the real console script, run as a user would run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def console_script() -> str:
    """The installed ``hpcannotate`` next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("hpcannotate")
    if beside.exists():
        return str(beside)
    found = shutil.which("hpcannotate")
    if not found:
        pytest.fail("the hpcannotate console script is not installed (run `make setup`)")
    return found


@pytest.fixture
def run_cli():
    """Run ``hpcannotate ARGS`` through the real console script."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120) -> Result:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        proc = subprocess.run(
            [console_script(), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=full_env,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


# ---- real services and images (see tests/fixtures/) ----------------------------
from .fixtures.images import BuildahStore, load_base, new_store  # noqa: E402
from .fixtures.registry import Registry, start_registry, stop  # noqa: E402


@pytest.fixture(scope="session")
def buildah_store(tmp_path_factory) -> BuildahStore:
    """A private buildah store (--root/--runroot, vfs) shared by the session's builds."""
    return new_store(tmp_path_factory.mktemp("buildah"))


@pytest.fixture(scope="session")
def busybox_base(buildah_store) -> Path:
    """busybox (Debian's busybox-static, FROM scratch) in the session store; returns its OCI layout."""
    return load_base(buildah_store, "busybox")


@pytest.fixture(scope="session")
def debian_base(buildah_store) -> Path:
    """debian:bookworm from debootstrap --variant=minbase (cached in .cache/), in the session store."""
    return load_base(buildah_store, "debian:bookworm")


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A real registry without auth on 127.0.0.1 and a free port."""
    reg, proc = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    stop(proc)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    """A real registry with htpasswd basic auth (user `alice`)."""
    reg, proc = start_registry(tmp_path_factory.mktemp("registry-auth"), "alice", "correct horse battery")
    yield reg
    stop(proc)


__all__ = ["Registry"]


# the client x operation matrix of tests/test_clients.py (HPCANNOTATE_CLIENT_MATRIX=FILE writes it)
from .fixtures.matrix import pytest_runtest_makereport, pytest_sessionfinish  # noqa: E402, F401
