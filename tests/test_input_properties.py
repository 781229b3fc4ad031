"""Properties of the hostile-input guards, over generated inputs (hypothesis).

Keys: any text is either a usable key (one word, no line break, no control character) or one
InputError. Nesting: a document is refused exactly when it is deeper than MAX_DEPTH, with one
InputError, whatever the format. Files: what the bounded reader returns is the file, byte for byte,
up to the limit, and one InputError past it. Host names: ``is_loopback`` never raises and never
trusts a name it could not resolve to loopback.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcannotate.dockerfile.text import LINE_BREAKS
from hpcannotate.errors import InputError
from hpcannotate.files import read_bytes
from hpcannotate.model.inputs import (
    MAX_DEPTH,
    check_key,
    load_annotation_mapping,
    parse_assignments,
    parse_json,
    parse_yaml,
)
from hpcannotate.registry import reference
from hpcannotate.registry.reference import is_loopback


def usable(key: str) -> bool:
    return not any(c in LINE_BREAKS or c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in key)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_key_is_usable_or_one_input_error(key):
    if usable(key):
        assert check_key(key, "f.yaml") == key
    else:
        with pytest.raises(InputError, match=r"^f\.yaml: key .* an annotation key is one word$"):
            check_key(key, "f.yaml")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=20).filter(str.strip), st.text(max_size=20), min_size=1,
                       max_size=5))
def test_annotation_files_and_set_arguments_take_only_usable_keys(mapping):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.json"
        path.write_text(json.dumps(mapping), encoding="utf-8")
        bad = [k for k in mapping if not usable(k.strip())]
        if bad:
            with pytest.raises(InputError):
                load_annotation_mapping(path)
        else:
            assert load_annotation_mapping(path) == mapping
    pairs = [f"{k}={v}" for k, v in mapping.items() if "=" not in k]
    if any(not usable(p.partition("=")[0].strip()) for p in pairs):
        with pytest.raises(InputError, match=r"^--set: key "):
            parse_assignments(pairs, "--set")


def nested(depth: int, shape: list[bool]) -> object:
    """``depth`` containers inside each other (lists or mappings, as ``shape`` says), a text at the bottom."""
    value: object = "x"
    for level in range(depth):
        value = {"k": value} if shape[level % len(shape)] else [value]
    return value


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=3 * MAX_DEPTH), st.lists(st.booleans(), min_size=1, max_size=4))
def test_a_document_is_refused_exactly_when_too_deep(depth, shape):
    text = json.dumps(nested(depth, shape))
    for parse in (parse_json, parse_yaml):  # JSON is YAML: the same text through both readers
        if depth > MAX_DEPTH:
            with pytest.raises(InputError, match=r"^doc: .*nested too deeply"):
                parse(text, "doc")
        else:
            assert parse(text, "doc") == nested(depth, shape)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=12), st.integers(min_value=2, max_value=9))
def test_yaml_aliases_are_refused_exactly_when_they_expand_past_the_limit(levels, width):
    lines = ["a0: &a0 [" + ",".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    expanded = sum(width ** (i + 1) + sum(width ** j for j in range(i + 1)) for i in range(levels))
    if expanded > 1_000_000 * 0.9:  # close to the limit the count is approximate; far from it, exact
        if expanded > 1_200_000:
            with pytest.raises(InputError, match=r"once YAML aliases are expanded"):
                parse_yaml("\n".join(lines), "doc")
    else:
        assert len(parse_yaml("\n".join(lines), "doc")) == levels


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=300))
def test_the_reader_returns_the_file_or_refuses_it_past_the_limit(data, limit):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        path.write_bytes(data)
        if len(data) > limit:
            with pytest.raises(InputError, match=r"too large"):
                read_bytes(path, "f", limit)
        else:
            assert read_bytes(path, "f", limit) == data


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_is_loopback_never_raises_and_needs_an_address_or_a_loopback_resolution(host):
    reference._resolves_to_loopback.cache_clear()
    calls = []
    real = reference.socket.getaddrinfo

    def public(name, *args, **kwargs):
        calls.append(name)
        return [(2, 1, 6, "", ("192.0.2.1", 0))]

    reference.socket.getaddrinfo = public
    try:
        result = is_loopback(host)
    finally:
        reference.socket.getaddrinfo = real
        reference._resolves_to_loopback.cache_clear()
    assert isinstance(result, bool)
    if result:  # only a literal loopback address, since every name "resolved" to a public one
        assert not calls


def test_a_localhost_name_is_trusted_only_when_it_resolves_to_loopback(monkeypatch):
    answers = {"reg.localhost": "192.0.2.7", "good.localhost": "127.0.0.1", "localhost": "::1"}
    monkeypatch.setattr(reference.socket, "getaddrinfo",
                        lambda name, *a, **k: [(10 if ":" in answers[name] else 2, 1, 6, "", (answers[name], 0))])
    reference._resolves_to_loopback.cache_clear()
    try:
        assert not is_loopback("reg.localhost:5000")
        assert is_loopback("good.localhost:5000")
        assert is_loopback("localhost")
    finally:
        reference._resolves_to_loopback.cache_clear()
