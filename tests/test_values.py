"""One check per value kind: what passes, what fails and why."""

from __future__ import annotations

import base64

import pytest

from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.values import check_value, normalise_value


def check(short: str, value: str):
    key = P + short if not short.startswith("org.") else short
    spec = catalogue()[key]
    return check_value(spec, normalise_value(spec, value))


GOOD = [
    ("hardware.cpu.optimized.mode", "genericMicro"),
    ("hardware.cpu.optimized.mode", "GENERICMICRO"),  # enum spelling is normalised
    ("hardware.cpu.optimized.version", "zen3"),
    ("hardware.cpu.optimized.version", "x86_64_v4"),
    ("hardware.cpu.optimized.version", "neoverse_v2"),
    ("hardware.gpu.nvidia.driver.version", "535.104.05"),
    ("hardware.gpu.nvidia.architecture", "sm_80,sm_90a,compute_90"),
    ("mpi.implementation", "intel_mpi"),
    ("mpi.version", "4.1.5"),
    ("mpi.version", "2021.9.0"),
    ("mpi.portability.optimization", "cray-xc-cn110"),
    ("pmi.version", "pmix-4"),
    ("pmi.version", "2"),
    ("communication.framework", "libfabrics"),
    ("communication.framework", "ucx,libfabric"),
    ("shell.implementation", "bash,sh"),
    ("tools.includes", "jq,wget,awscli"),
    ("path.extra", "/usr/local/bin:/opt/site/bin"),
    ("docs.quickstart.link", "https://example.org/gromacs#quickstart"),
    ("docs.quickstart.base64", base64.b64encode(b"# Quickstart\n`gmx mdrun`\n").decode()),
    ("org.opencontainers.image.created", "2026-11-23T12:00:00Z"),
    ("org.opencontainers.image.base.digest", "sha256:" + "a" * 64),
    ("org.opencontainers.image.description", 'quotes " and $dollar and \\ and\nnewline'),
]

BAD = [
    ("hardware.cpu.optimized.mode", "fast", "not one of"),
    ("hardware.cpu.optimized.version", "zen-3", "did you mean 'zen3'"),
    ("hardware.cpu.optimized.version", "pentium9000", "not an archspec CPU target"),
    ("hardware.gpu.nvidia.driver.version", "latest", "not a version"),
    ("hardware.gpu.nvidia.architecture", "ampere", "does not match"),
    ("hardware.gpu.nvidia.architecture", "sm_80,,sm_90", "empty item"),
    ("hardware.gpu.nvidia.architecture", "sm_80,sm_80", "listed twice"),
    ("mpi.implementation", "lam", "not one of"),
    ("pmi.version", "pmi-9", "does not match"),
    ("communication.framework", "infiniband", "not one of"),
    ("shell.implementation", "powershell", "not one of"),
    ("path.extra", "usr/local/bin", "not an absolute path"),
    ("docs.quickstart.link", "ftp://example.org/x", "not an http(s) URL"),
    ("docs.quickstart.link", "not a url", "not an http(s) URL"),
    ("docs.quickstart.base64", "####", "not valid base64"),
    ("docs.quickstart.base64", "SGVsbG8", "not valid base64"),
    ("docs.quickstart.base64", base64.b64encode(b"\xff\xfe").decode(), "UTF-8"),
    ("org.opencontainers.image.created", "yesterday", "RFC 3339"),
    ("org.opencontainers.image.base.digest", "sha256:abc", "not a digest"),
    ("mpi.version", "", "is empty"),
    ("org.opencontainers.image.title", "a\0b", "NUL"),
]


@pytest.mark.parametrize(("key", "value"), GOOD)
def test_valid_values(key, value):
    assert check(key, value) is None


@pytest.mark.parametrize(("key", "value", "reason"), BAD)
def test_invalid_values_say_why(key, value, reason):
    problem = check(key, value)
    assert problem is not None
    assert reason in problem


def test_value_aliases_are_normalised():
    spec = catalogue()[P + "communication.framework"]
    assert normalise_value(spec, "libfabrics, ucx") == "libfabric,ucx"
    assert normalise_value(catalogue()[P + "mpi.implementation"], "Intel-MPI") == "intelmpi"
