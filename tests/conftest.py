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
        # progress lines are tested on their own (test_init.py); here stderr is errors and warnings only
        full_env = {**os.environ, "NO_COLOR": "1", "HPCANNOTATE_QUIET": "1", **(env or {})}
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
from .fixtures.buildkit import BuildKit, start_buildkit, stop_buildkit  # noqa: E402
from .fixtures.images import BuildahStore, load_base, new_store  # noqa: E402
from .fixtures.realtools import pytest_runtest_makereport  # noqa: E402,F401 - a skipped real_tools test fails CI
from .fixtures.registry import Registry, serving  # noqa: E402


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
    with serving(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    """A real registry with htpasswd basic auth (user `alice`)."""
    with serving(tmp_path_factory.mktemp("registry-auth"), "alice", "correct horse battery") as reg:
        yield reg


@pytest.fixture(scope="session")
def buildkit(tmp_path_factory, registry) -> BuildKit:
    """buildkitd (root, runc, private root and socket, docker.io -> the test registry) and a remote buildx
    builder on it in a private DOCKER_CONFIG (see tests/fixtures/buildkit.py)."""
    kit, proc = start_buildkit(tmp_path_factory.mktemp("buildkit"), registry.host)
    yield kit
    stop_buildkit(kit, proc)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real one-node Slurm (munged, slurmctld, slurmd) on 127.0.0.1; partitions cpu and gpu."""
    from .fixtures.slurm import start_slurm, stop_slurm

    cluster = start_slurm(tmp_path_factory.mktemp("slurm"))
    yield cluster
    stop_slurm(cluster)


__all__ = ["BuildKit", "Registry"]


def pytest_configure(config):
    """The client x operation matrix of tests/test_clients.py (HPCANNOTATE_CLIENT_MATRIX=FILE writes it): a
    plugin of its own, since its report hook shares a name with the real-tools one imported above."""
    from .fixtures import matrix

    config.pluginmanager.register(matrix, "hpcannotate-client-matrix")
