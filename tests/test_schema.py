"""The JSON Schema is valid 2020-12 and agrees with the validator."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.schema import annotation_schema
from hpcannotate.model.values import check_value

SCHEMA = annotation_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
CPU = {P + "hardware.cpu.optimized.version": "zen3", P + "hardware.cpu.optimized.mode": "microarchitecture"}


def test_schema_is_valid_against_the_meta_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_all_examples_validate_together():
    doc = {spec.key: spec.example for spec in catalogue()}
    doc.update(CPU)
    assert list(VALIDATOR.iter_errors(doc)) == []
    assert Annotations.from_mapping(doc).validate() == []


def test_required_and_unknown_keys():
    errors = [e.message for e in VALIDATOR.iter_errors({P + "gpu.cuda": "12"})]
    assert any("hardware.cpu.optimized.mode" in m for m in errors)
    assert any("gpu.cuda" in m for m in errors)
    assert list(VALIDATOR.iter_errors({**CPU, "com.example.anything": "x"})) == []


def test_aliases_are_accepted_as_deprecated_properties():
    doc = {P + "hardware.cpu.optimized.architecture": "zen3", P + "hardware.cpu.optimized.mode": "microarchitecture"}
    # the alias is a known property, but the schema still requires the canonical key
    errors = [e.message for e in VALIDATOR.iter_errors(doc)]
    assert errors == [f"'{P}hardware.cpu.optimized.version' is a required property"]
    assert SCHEMA["properties"][P + "mpi.provider"]["deprecated"] is True


@pytest.mark.parametrize(
    ("mode", "target", "ok"),
    [("architecture", "x86_64", True), ("architecture", "zen3", False), ("genericMicro", "x86_64_v3", True),
     ("genericMicro", "zen3", False), ("microarchitecture", "zen3", True), ("microarchitecture", "aarch64", False)],
)
def test_mode_target_rule_in_schema(mode, target, ok):
    doc = {P + "hardware.cpu.optimized.version": target, P + "hardware.cpu.optimized.mode": mode}
    assert VALIDATOR.is_valid(doc) is ok
    assert Annotations.from_mapping(doc).is_compliant() is ok


SAMPLES = {
    spec.key: st.one_of(
        st.just(spec.example),
        st.sampled_from(list(spec.allowed_values()) or [spec.example]),
        st.text(alphabet="abcxyz0123456789._-,/:+=sm", min_size=1, max_size=12),
    )
    for spec in catalogue()
    # format checkers differ at the edges; UTF-8 inside base64 is beyond a JSON Schema
    if spec.kind not in ("datetime", "url", "text", "base64")
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)).flatmap(lambda k: st.tuples(st.just(k), SAMPLES[k])))
def test_schema_and_validator_agree_on_single_values(pair):
    key, value = pair
    by_schema = VALIDATOR.is_valid({**CPU, key: value}) if key not in CPU else None
    by_validator = check_value(catalogue()[key], value) is None
    if by_schema is not None:
        assert by_schema == by_validator, (key, value)
