"""Validation returns every problem, with the key and the reason."""

from __future__ import annotations

from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P

CPU = {"hardware.cpu.optimized.version": "zen3", "hardware.cpu.optimized.mode": "microarchitecture"}


def problems(data: dict) -> dict[str, str]:
    return {p.key: p.message for p in Annotations.from_mapping(data).validate()}


def test_compliant_minimal_image():
    assert Annotations.from_mapping(CPU).is_compliant()


def test_missing_mandatory_keys_are_named():
    found = problems({"mpi.implementation": "openmpi"})
    assert found[P + "hardware.cpu.optimized.mode"] == "mandatory key is missing"
    assert found[P + "hardware.cpu.optimized.version"] == "mandatory key is missing"


def test_mode_must_agree_with_target():
    for target, mode in [("x86_64", "architecture"), ("aarch64", "architecture"), ("x86_64_v3", "genericMicro"),
                         ("armv8.2a", "genericMicro"), ("zen3", "microarchitecture"),
                         ("neoverse_v2", "microarchitecture")]:
        assert problems({"hardware.cpu.optimized.version": target, "hardware.cpu.optimized.mode": mode}) == {}
    found = problems({"hardware.cpu.optimized.version": "x86_64_v3", "hardware.cpu.optimized.mode": "architecture"})
    assert "which is 'genericMicro'" in found[P + "hardware.cpu.optimized.mode"]


def test_every_problem_is_reported_not_only_the_first():
    found = problems({
        "hardware.cpu.optimized.version": "zen9",
        "hardware.cpu.optimized.mode": "fast",
        "mpi.implementation": "lam",
        "glibc.version": "new",
        "org.supercontainers.gpu.cuda": "12",
    })
    assert len(found) == 5
    assert "did you mean" in found[P + "hardware.cpu.optimized.version"]
    assert "unknown key" in found[P + "gpu.cuda"]


def test_unknown_key_in_our_namespace_suggests_the_right_one():
    found = problems({**CPU, "mpi.implmentation": "openmpi"})
    assert "did you mean org.supercontainers.mpi.implementation" in found["mpi.implmentation"]


def test_foreign_keys_pass_through():
    assert problems({**CPU, "com.example.build": "42", "io.buildah.version": "1.28"}) == {}


def test_mpi_none_rules():
    found = problems({**CPU, "mpi.implementation": "none", "mpi.version": "4.1", "mpi.portability.mode": "mpi_replace"})
    assert "'none'" in found[P + "mpi.version"]
    assert "no MPI to replace" in found[P + "mpi.portability.mode"]


def test_mpich_replace_needs_mpich_abi():
    found = problems({**CPU, "mpi.implementation": "openmpi", "mpi.portability.mode": "mpich_replace"})
    assert "MPICH-ABI" in found[P + "mpi.portability.mode"]
    assert problems({**CPU, "mpi.implementation": "intelmpi", "mpi.portability.mode": "mpich_replace"}) == {}


def test_replace_mode_needs_its_framework():
    found = problems({**CPU, "communication.framework": "ucx", "mpi.portability.mode": "libfabric_inject"})
    assert "does not include libfabric" in found[P + "mpi.portability.mode"]


def test_conditional_alias_conflict():
    found = problems({**CPU, "mpi.provider": "mpich", "openmpi.version": "4.1.5"})
    assert "implies org.supercontainers.mpi.implementation=openmpi" in found[P + "mpi.version"]
    assert problems({**CPU, "mpi.provider": "mpich", "mpich.version": "3.4"}) == {}


def test_metahub_collection_annotations_validate():
    """The annotations of the seed's MetaHub collection example, as written there."""
    seed = {
        "org.supercontainers.mpi.provider": "mpich",
        "org.supercontainers.mpich.abi.version": "12.0",
        "org.supercontainers.mpi.portability.optimized": "stock",
        "org.supercontainers.mpi.portability.mode": "mpich_replace",
        "org.supercontainers.mpich.version": "3.4",
        "org.supercontainers.hardware.cpu.optimized.architecture": "x86_64_v4",
        "org.supercontainers.hardware.cpu.optimized.mode": "genericMicro",
    }
    assert problems(seed) == {}
