"""The names ``hpcannotate`` exports lazily resolve, wherever the modules that define them live."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hpcannotate


@pytest.mark.parametrize("name", hpcannotate.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(hpcannotate, name) is not None


def test_the_readme_library_example_runs_in_a_fresh_interpreter():
    code = """
from hpcannotate import Annotations, Layer, Provenance
base = Annotations.from_mapping({"glibc.version": "2.31"}, Provenance(Layer.BASE_IMAGE, "debian:bullseye"))
recipe = Annotations.from_mapping(
    {"mpi.provider": "openmpi", "hardware.cpu.optimized.version": "zen3",
     "hardware.cpu.optimized.mode": "microarchitecture"},
    Provenance(Layer.RECIPE, "spack.yaml", line=12),
)
merged = base.merge(recipe)
print(merged["mpi.implementation"], merged.entry("mpi.implementation").provenance.describe())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "openmpi recipe spack.yaml:12"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hpcannotate.nothing  # noqa: B018
