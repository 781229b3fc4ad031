"""Typed facts: adapters record every value as a fact with its provenance, and one function
(``facts.to_annotations``) turns facts into annotations; the image cross-check compares facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcannotate.image.probe.crosscheck import cross_check
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.keynames import (
    APP_NAME,
    HARDWARE_CPU_OPTIMIZED_MODE,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    MPI_IMPLEMENTATION,
    MPI_VERSION,
)
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.recipes import facts
from hpcannotate.recipes.base import Inference, InferOptions, apply_target
from hpcannotate.recipes.facts import App, CpuTarget, Mpi, Other, Sourced, to_annotations
from hpcannotate.recipes.infer import infer

DATA = Path(__file__).parent / "data"
HERE = Provenance(Layer.RECIPE, "recipe.py", 12, "openmpi(version='4.1.6')", "a note")


def test_every_typed_key_is_a_catalogue_key_and_held_by_one_fact():
    from hpcannotate.model.catalogue import catalogue

    keys = [key for cls in facts.TYPED for key in cls.KEYS.values()]
    assert len(keys) == len(set(keys)) == len(facts.FIELD_OF)
    assert all(key in catalogue().specs for key in keys)


def test_to_annotations_keeps_values_provenance_and_order():
    made = to_annotations([Mpi(implementation=Sourced("mpich", HERE)),
                           Mpi(implementation=Sourced("openmpi", HERE), version=Sourced("4.1.6", HERE)),
                           App(name=Sourced("gromacs", HERE, "app.name")),
                           Other(key="com.example.x", value=Sourced("1", HERE))])
    assert {e.key for e in made.entries()} == {MPI_IMPLEMENTATION, MPI_VERSION, APP_NAME, "com.example.x"}
    assert made.get(MPI_IMPLEMENTATION) == "openmpi"  # in order: a later fact's value wins
    assert made.entry(MPI_VERSION).provenance == HERE
    # a producer's short spelling is kept, as annotations set with it record it
    assert made.entry(APP_NAME).spelled == "app.name"
    by_set = Annotations()
    by_set.set(MPI_IMPLEMENTATION, "openmpi", HERE)
    by_set.set(MPI_VERSION, "4.1.6", HERE)
    by_set.set("app.name", "gromacs", HERE)
    by_set.set("com.example.x", "1", HERE)
    assert made.to_json() == by_set.to_json()


def test_from_annotations_gives_the_typed_view_back():
    annotations = to_annotations([Mpi(implementation=Sourced("mpich", HERE)), CpuTarget(target=Sourced("zen3", HERE)),
                                  Mpi(version=Sourced("4.1.2", HERE))])
    found = facts.by_kind(annotations)
    assert found[Mpi] == Mpi(implementation=Sourced("mpich", HERE), version=Sourced("4.1.2", HERE))
    assert found[CpuTarget].target.value == "zen3" and found[CpuTarget].mode is None
    assert to_annotations(facts.from_annotations(annotations)).to_json() == annotations.to_json()


def test_inference_set_records_a_typed_fact_and_refuses_bad_values():
    inference = Inference("hpccm", Path("recipe.py"))
    assert inference.set("mpi.implementation", "openmpi", line=3, fragment="openmpi()")
    assert not inference.set("mpi.version", "", line=4)  # refused: empty
    assert inference.facts == [Mpi(implementation=Sourced(
        "openmpi", Provenance(Layer.RECIPE, "recipe.py", 3, "openmpi()"), "mpi.implementation"))]
    assert MPI_VERSION in inference.missing
    assert inference.warnings == ["mpi.version: not set, the recipe's value is empty"]
    apply_target(inference, "zen3")
    target = inference.fact(CpuTarget)
    assert target.target.value == "zen3" and target.target.provenance.note == "from --target"
    assert target.mode.value == inference.annotations.get(HARDWARE_CPU_OPTIMIZED_MODE)
    assert target.mode.provenance.note == "derived from target zen3"


@pytest.mark.parametrize("recipe", [DATA / "hpccm" / "nested.py", DATA / "hpccm" / "multistage.py",
                                    DATA / "spack" / "gromacs-cuda" / "spack.yaml",
                                    DATA / "easybuild" / "flat" / "Tool-1.0.eb"], ids=lambda p: p.name)
def test_an_adapter_s_annotations_are_exactly_its_facts(recipe):
    inference = infer(recipe, InferOptions(target="zen3"))
    assert inference.facts
    assert to_annotations(inference.facts).to_json() == inference.annotations.to_json()
    target = inference.fact(CpuTarget)
    assert target.target.value == inference.annotations.get(HARDWARE_CPU_OPTIMIZED_VERSION)


def test_the_cross_check_compares_facts_with_their_sources():
    recipe = to_annotations([Mpi(implementation=Sourced("mpich", HERE), version=Sourced("4.1", HERE))])
    image_here = Provenance(Layer.PROBE, "/usr/lib/libmpi.so.12")
    same = to_annotations([Mpi(version=Sourced("4.1.2", image_here))])
    assert cross_check(recipe, same) == []
    other = to_annotations([Mpi(version=Sourced("3.4.1", image_here))])
    (conflict,) = cross_check(recipe, other)
    assert (conflict.key, conflict.recipe, conflict.image) == (MPI_VERSION, "4.1", "3.4.1")
    assert conflict.recipe_source == HERE.describe() and conflict.image_source == image_here.describe()


def test_every_typed_fact_crosses_a_process_boundary_unchanged():
    """A worker sends its facts as JSON (to_wire); the parent rebuilds them (from_wire) with its own file."""
    import json

    sent = Provenance(Layer.RECIPE, None, 7, "a fragment", None)
    base = Provenance(Layer.RECIPE, "/r/Tool-1.0.eb")
    for cls in facts.TYPED:
        fact = cls(**{name: Sourced(f"{name}-1", sent) for name in cls.KEYS})
        back = facts.from_wire(json.loads(json.dumps(facts.to_wire(fact))), base)
        assert back == cls(**{name: Sourced(f"{name}-1", Provenance(Layer.RECIPE, "/r/Tool-1.0.eb", 7, "a fragment"))
                              for name in cls.KEYS})
    with pytest.raises(facts.WireError, match="unknown fact kind 'Other'"):
        facts.from_wire({"kind": "Other", "values": {"value": {}}}, base)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=12)
_NEAR_VALUE = st.fixed_dictionaries({"value": _JSON, "line": _JSON, "fragment": _JSON, "note": _JSON})
_NEAR_FACT = st.fixed_dictionaries({
    "kind": st.sampled_from([*facts.WIRE_KINDS, "Other", "Bogus"]) | _JSON,
    "values": st.dictionaries(st.sampled_from(["version", "implementation", "name", "framework", "x"]),
                              _NEAR_VALUE | _JSON, max_size=3) | _JSON})


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON, _NEAR_FACT))
def test_a_forged_fact_on_the_wire_is_a_wire_error_or_a_well_formed_fact(data):
    """Whatever a worker's reply holds, from_wire gives a fact of text values with a line number or None, or
    raises WireError: never another exception the caller would have to know about."""
    base = Provenance(Layer.RECIPE, "/r/Forger-1.0.eb")
    try:
        fact = facts.from_wire(data, base)
    except facts.WireError:
        return
    assert type(fact) in facts.TYPED
    for _, sourced in fact.items():
        assert isinstance(sourced.value, str) and sourced.provenance.file == "/r/Forger-1.0.eb"
        assert sourced.provenance.line is None or type(sourced.provenance.line) is int
