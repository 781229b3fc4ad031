"""The Annotations model: alias normalisation, layered merge, provenance, output forms."""

from __future__ import annotations

import pytest

from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.provenance import Layer, Provenance

TARGET = P + "hardware.cpu.optimized.version"
MODE = P + "hardware.cpu.optimized.mode"


def layer(data: dict, which: Layer, file: str) -> Annotations:
    return Annotations.from_mapping(data, Provenance(which, file))


def test_aliases_are_read_and_canonical_keys_written():
    a = Annotations.from_mapping({"org.supercontainers.mpi.provider": "mpich", "libc.provider": "glibc"})
    assert dict(a) == {P + "mpi.implementation": "mpich", P + "libc.implementation": "glibc"}
    assert a.entry(P + "mpi.implementation").spelled == "org.supercontainers.mpi.provider"
    assert a["mpi.provider"] == "mpich"  # lookups accept any spelling too
    assert "libc.provider" in a


def test_values_are_text_and_value_aliases_normalised():
    a = Annotations.from_mapping({"mpi.abi.version": 12.0, "communication.framework": "libfabrics", "x.flag": True})
    assert a["mpi.abi.version"] == "12.0"
    assert a["communication.framework"] == "libfabric"
    assert a["x.flag"] == "true"


def test_merge_precedence_base_recipe_probe_user():
    base = layer({TARGET: "x86_64", "glibc.version": "2.31", "python.version": "3.9"}, Layer.BASE_IMAGE, "base")
    recipe = layer({TARGET: "zen3", "mpi.implementation": "openmpi"}, Layer.RECIPE, "spack.yaml")
    probe = layer({"glibc.version": "2.36", "mpi.implementation": "mpich"}, Layer.PROBE, "image")
    user = layer({TARGET: "zen2"}, Layer.USER, "cli")

    merged = base.merge(recipe).merge(probe).merge(user)
    assert merged[TARGET] == "zen2"
    assert merged["glibc.version"] == "2.36"
    assert merged["mpi.implementation"] == "mpich"
    assert merged["python.version"] == "3.9"
    losers = [(e.value, e.provenance.layer) for e in merged.entry(TARGET).overridden]
    assert losers == [("zen3", Layer.RECIPE), ("x86_64", Layer.BASE_IMAGE)]


def test_merge_order_does_not_beat_precedence():
    """A lower layer merged later does not override a higher one; it is kept as a loser."""
    probe = layer({"glibc.version": "2.36"}, Layer.PROBE, "image")
    base = layer({"glibc.version": "2.31"}, Layer.BASE_IMAGE, "base")
    merged = probe.merge(base)
    assert merged["glibc.version"] == "2.36"
    assert [e.value for e in merged.entry("glibc.version").overridden] == ["2.31"]


def test_merge_does_not_modify_its_inputs():
    a = layer({"mpi.version": "4.1.5"}, Layer.RECIPE, "a")
    b = layer({"mpi.version": "5.0.0"}, Layer.USER, "b")
    a.merge(b)
    assert a["mpi.version"] == "4.1.5"
    assert a.entry("mpi.version").overridden == ()


def test_two_spellings_with_different_values_are_a_problem():
    a = Annotations.from_mapping({"mpi.provider": "mpich", "mpi.implementation": "openmpi"})
    messages = [str(p) for p in a.validate()]
    assert any("given twice with different values" in m for m in messages)


def test_two_spellings_with_the_same_value_are_fine():
    a = Annotations.from_mapping({"mpi.provider": "mpich", "mpi.implementation": "mpich"})
    assert not [p for p in a.validate() if "twice" in p.message]


def test_to_labels_to_oci_and_aliases_for_older_consumers():
    a = Annotations.from_mapping(
        {
            TARGET: "zen3",
            MODE: "microarchitecture",
            "mpi.implementation": "openmpi",
            "mpi.version": "4.1.5",
            "org.opencontainers.image.ref.name": "zen3",
        }
    )
    assert "org.opencontainers.image.ref.name" in a.to_oci()
    assert "org.opencontainers.image.ref.name" not in a.to_labels()
    with_aliases = a.to_oci(include_aliases=True)
    assert with_aliases[P + "mpi.provider"] == "openmpi"
    assert with_aliases[P + "openmpi.version"] == "4.1.5"
    assert P + "mpich.version" not in with_aliases  # conditional alias: only for MPICH images
    assert with_aliases[P + "hardware.cpu.optimized.architecture"] == "zen3"
    assert P + "mpi.provider" not in a.to_oci()


def test_json_round_trip_keeps_provenance_and_losers():
    recipe = layer({TARGET: "zen3"}, Layer.RECIPE, "spack.yaml")
    user = Annotations.from_mapping({TARGET: "zen2"}, Provenance(Layer.USER, "cli", 3, "--set", "curator"))
    merged = recipe.merge(user)
    data = merged.to_json()
    assert data["annotations"][TARGET] == "zen2"
    assert data["provenance"][TARGET]["layer"] == "user"
    assert data["provenance"][TARGET]["overridden"][0]["value"] == "zen3"
    back = Annotations.from_json(data)
    assert dict(back) == dict(merged)
    assert back.entry(TARGET).provenance == merged.entry(TARGET).provenance
    assert back.entry(TARGET).overridden[0].value == "zen3"


def test_remove_and_managed():
    a = Annotations.from_mapping({"mpi.provider": "mpich", "com.example.x": "1"})
    assert set(a.managed()) == {P + "mpi.implementation"}
    assert a.remove("mpi.provider").value == "mpich"
    assert P + "mpi.implementation" not in a


def test_non_text_values_are_refused():
    with pytest.raises(TypeError, match="a list is not an annotation value"):
        Annotations.from_mapping({"tools.includes": ["jq"]}, source="f.yaml")


def test_layer_parse():
    assert Layer.parse("image probe") is Layer.PROBE
    assert Layer.parse("base-image") is Layer.BASE_IMAGE
    assert Layer.parse("curator") is Layer.USER
    with pytest.raises(ValueError):
        Layer.parse("nope")
