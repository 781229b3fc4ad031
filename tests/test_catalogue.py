"""The key catalogue: every SPEC.md §1 key, every alias spelling, internal consistency."""

from __future__ import annotations

import pytest

from hpcannotate.model.catalogue import GROUPS, SUPERCONTAINERS_PREFIX, catalogue
from hpcannotate.model.values import check_value

P = SUPERCONTAINERS_PREFIX

# (short key, group, mandatory) exactly as SPEC.md §1 lists them.
SPEC_KEYS = [
    ("hardware.cpu.optimized.mode", "hardware", True),
    ("hardware.cpu.optimized.version", "hardware", True),
    ("hardware.gpu.nvidia.driver.version", "hardware", False),
    ("hardware.gpu.nvidia.cuda.version", "hardware", False),
    ("hardware.gpu.nvidia.architecture", "hardware", False),
    ("mpi.implementation", "mpi", False),
    ("mpi.version", "mpi", False),
    ("mpi.abi.version", "mpi", False),
    ("mpi.portability.optimization", "mpi", False),
    ("mpi.portability.mode", "mpi", False),
    ("communication.framework", "interconnect", False),
    ("libfabric.abi.version", "interconnect", False),
    ("pmi.version", "mpi", False),
    ("libc.implementation", "system", False),
    ("glibc.version", "system", False),
    ("python.version", "system", False),
    ("shell.implementation", "system", False),
    ("tools.includes", "system", False),
    ("path.extra", "system", False),
    ("kernel.version", "system", False),
    ("host.kernel.version.min", "host", False),
    ("host.kernel.modules.expectation", "host", False),
    ("docs.quickstart.link", "docs", False),
    ("docs.quickstart.base64", "docs", False),
    ("docs.benchmark.link", "docs", False),
    ("docs.benchmark.base64", "docs", False),
    ("docs.build.dockerfile", "docs", False),
    ("docs.build.spack.env", "docs", False),
    ("docs.build.quickstart.link", "docs", False),
    ("docs.build.quickstart.base64", "docs", False),
]

# Every older spelling from the seeds, the 2022 HPC3 ANNOTATIONS.md and compspec.
ALIASES = {
    "mpi.provider": "mpi.implementation",
    "libc.provider": "libc.implementation",
    "mpi.portability.optimized": "mpi.portability.optimization",
    "hardware.cpu.optimized.architecture": "hardware.cpu.optimized.version",
    "hardware.gpu.cuda.version": "hardware.gpu.nvidia.cuda.version",
    "hardware.gpu.architecture": "hardware.gpu.nvidia.architecture",
    "hardware.gpu.driver.version": "hardware.gpu.nvidia.driver.version",
    "openmpi.version": "mpi.version",
    "mpich.version": "mpi.version",
    "mpich.abi.version": "mpi.abi.version",
}


@pytest.mark.parametrize(("short", "group", "mandatory"), SPEC_KEYS)
def test_every_spec_key_is_catalogued(short, group, mandatory):
    spec = catalogue()[P + short]
    assert spec.group == group
    assert spec.mandatory is mandatory
    assert spec.description and spec.example


def test_only_the_cpu_keys_are_mandatory():
    assert {s.short for s in catalogue().mandatory()} == {
        "hardware.cpu.optimized.mode",
        "hardware.cpu.optimized.version",
    }


@pytest.mark.parametrize(("alias", "canonical"), sorted(ALIASES.items()))
def test_alias_spellings_resolve(alias, canonical):
    assert catalogue().canonical(P + alias) == P + canonical
    assert catalogue().canonical(alias) == P + canonical


def test_short_forms_resolve_and_unknown_keys_pass_through():
    assert catalogue().canonical("mpi.implementation") == P + "mpi.implementation"
    assert catalogue().canonical("com.example.build-id") == "com.example.build-id"
    # a typo in our namespace stays in our namespace, so validation can flag it
    assert catalogue().canonical("mpi.implmentation") == P + "mpi.implmentation"


def test_every_example_is_valid_for_its_key():
    for spec in catalogue():
        assert check_value(spec, spec.example) is None, spec.key


def test_groups_and_kinds_are_known():
    for spec in catalogue():
        assert spec.group in GROUPS
    assert {s.group for s in catalogue()} == set(GROUPS)


def test_extensions_and_oci_keys_exist():
    keys = {s.key for s in catalogue()}
    for key in ("app.name", "app.version", "nccl.version", "docs.build.easyconfig", "os.name", "os.version"):
        assert P + key in keys
        assert catalogue()[P + key].extension
    assert "org.opencontainers.image.title" in keys
    assert catalogue()["org.opencontainers.image.title"].group == "oci"


def test_libfabrics_value_alias():
    spec = catalogue()[P + "communication.framework"]
    assert spec.items.value_aliases["libfabrics"] == "libfabric"
