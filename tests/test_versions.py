"""The one version comparer (``versions``), with the edge cases each of the copies it replaced handled:
``versions.version_key`` (match, fingerprint), ``domain._version_tuple`` (MPI ABI thresholds) and
``probe.crosscheck.versions_agree`` (recipe against image)."""

from __future__ import annotations

import pytest

from hpcannotate.model.domain import is_release_version, mpi_abi_version
from hpcannotate.model.versions import release_key, version_at_least, version_key, versions_agree


@pytest.mark.parametrize(("text", "key"), [
    ("5.10", (5, 10)), ("5.10.0", (5, 10)), ("v4.1.5rc1", (4, 1, 5)), ("5.14.0-284.11.1.el9_2", (5, 14)),
    ("Open MPI 4.1.6", (4, 1, 6)), ("", ()), (None, ()), ("develop", ()), ("0", ()),
])
def test_version_key_reads_the_first_numbers_without_trailing_zeros(text, key):
    assert version_key(text) == key


def test_version_key_orders_numerically_and_pads_with_zeros():
    assert version_key("550.54") < version_key("550.54.14")
    assert version_key("5.9") < version_key("5.10")
    assert version_key("12.4.1", 2) == (12, 4)
    assert version_at_least("5.10", "5.10.0") and version_at_least("5.10.0", "5.10")
    assert not version_at_least("2.17", "2.28")
    assert not version_at_least(None, "1")  # nothing known is older than every version


@pytest.mark.parametrize(("text", "key"), [
    ("4.1.5", (4, 1, 5)), ("5.0.0rc12", (5,)), ("2019.6-088", (2019, 6)), ("2.3.7-1", (2, 3, 7)),
    ("1.2.3.4", (1, 2, 3)), (" 3.1 ", (3, 1)),
    ("git.0123abc=main", None), ("0123456789abcdef0123456789abcdef01234567", None), ("develop", None), ("", None),
])
def test_release_key_only_for_release_versions(text, key):
    assert release_key(text, 3) == key
    assert is_release_version(text.strip()) == (key is not None)


@pytest.mark.parametrize(("implementation", "version", "abi"), [
    ("mpich", "3.1", "12.0"), ("mpich", "3.0.4", None), ("mpich", "4.1.2", "12.0"), ("mvapich2", "2.0", "12.0"),
    ("mvapich2", "1.9", None), ("intelmpi", "2019.6-088", "12.0"), ("intelmpi", "4.1", None),
    ("cray-mpich", "7.0", "12.0"), ("cray-mpich", "8.1.27", "12.0"), ("openmpi", "3.0.0", "40.0"),
    ("openmpi", "3", "40.0"), ("openmpi", "2.1.1", None), ("openmpi", "5.0.0rc12", "40.0"),
    ("openmpi", "git.0123abc=main", None), ("openmpi", None, None), ("openmpi", "0", None), ("unknown", "9", None),
])
def test_mpi_abi_thresholds(implementation, version, abi):
    assert mpi_abi_version(implementation, version) == abi


@pytest.mark.parametrize(("claimed", "found", "agree"), [
    ("4.1", "4.1.4", True), ("4.1.4", "4.1", True), ("4.1.5", "4.1.4", False), ("4.1.0", "4.1.4", False),
    ("5.0.0rc12", "5.0.0", True), ("4.1a", "4.1b", False), ("", "4.1", False), ("4", "4.0.1", True),
    ("3.1", "13.1", False),
])
def test_versions_agree_when_the_less_precise_is_a_prefix(claimed, found, agree):
    assert versions_agree(claimed, found) is agree
