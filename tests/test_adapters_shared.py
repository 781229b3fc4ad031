"""What every adapter shares: the MPI facts, validate-or-miss in Inference.set, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.recipes.base import Inference, InferOptions
from hpcannotate.recipes.packages import bundled_mpi_reason, is_release_version, mpi_abi_version

P = "org.supercontainers."


@pytest.mark.parametrize(
    ("implementation", "version", "abi"),
    [
        ("openmpi", "4.1.5", "40.0"),
        ("openmpi", "4", "40.0"),  # a lower bound: every 4.x release
        ("openmpi", "2.1.6", None),
        ("intelmpi", "2019.6-088", "12.0"),
        ("mpich", "4.1.2", "12.0"),
        ("openmpi", "git.0123abc=main", None),  # the digits of a hash are no version
        ("openmpi", "0123abcdef=main", None),
        ("openmpi", "develop", None),
        ("mpich", "main", None),
        ("openmpi", "", None),
    ],
)
def test_mpi_abi_version_only_from_release_versions(implementation, version, abi):
    assert mpi_abi_version(implementation, version) == abi


def test_release_versions_and_bundles():
    assert is_release_version("4.1.5") and is_release_version("5.0.0rc12") and is_release_version("2.3.7-1")
    assert not is_release_version("git.0123abc=main") and not is_release_version("develop")
    assert not is_release_version("0123456789abcdef0123456789abcdef01234567")
    assert "HPC-X 2.17.1" in bundled_mpi_reason("hpcx-mpi", "2.17.1")
    assert bundled_mpi_reason("openmpi", "4.1.5") is None


def test_set_leaves_out_a_value_the_catalogue_rejects_and_says_why():
    inference = Inference("spack", Path("spack.yaml"))
    assert inference.set("mpi.version", "git.0123abc=main", fragment="openmpi@git.0123abc=main") is False
    assert P + "mpi.version" not in inference.annotations
    assert "git.0123abc=main" in inference.missing[P + "mpi.version"]
    assert any(w.startswith("mpi.version: not set") for w in inference.warnings)
    assert inference.set("mpi.version", "4.1.5") is True
    assert inference.annotations[P + "mpi.version"] == "4.1.5" and P + "mpi.version" not in inference.missing


def test_set_without_check_keeps_what_the_image_will_carry():
    inference = Inference("spack", Path("spack.yaml"))
    inference.set("mpi.version", "not a version", check=False)  # a recipe's own label: validation reports it
    assert inference.annotations[P + "mpi.version"] == "not a version"


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_infer_options_refuse_a_timeout_that_is_not_a_positive_number(timeout):
    with pytest.raises(InputError, match=r"--timeout .*: must be a positive number of seconds"):
        InferOptions(timeout=timeout)
