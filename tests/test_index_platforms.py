"""The index clients pull: the most generic image first, amd64 levels as variants, one entry per platform.

What each client does with such an index is tested with the real clients in test_clients.py;
these tests pin the arrangement itself (fast, no tools).
"""

from __future__ import annotations

import json

import pytest

from hpcannotate.oci.index import (
    COMPLETE_KEY,
    TARGET_KEY,
    amd64_variant,
    build_index,
    every_entry,
    first_not_baseline,
    x86_64_level,
)
from hpcannotate.oci.media import canonical_json, sha256_digest
from hpcannotate.oci.store import Manifest


def _manifest(name: str) -> Manifest:
    raw = canonical_json({"schemaVersion": 2, "name": name})
    return Manifest(raw, "application/vnd.oci.image.manifest.v1+json", sha256_digest(raw))


def _entries(*targets: str, platform: str = "linux/amd64"):
    return [(_manifest(t), platform if "aarch64" not in t and "neoverse" not in t else "linux/arm64",
             {TARGET_KEY: t}) for t in targets]


@pytest.mark.parametrize(("target", "level", "variant"), [
    ("x86_64", 1, None), ("core2", 1, None), ("x86_64_v2", 2, "v2"), ("nehalem", 2, "v2"),
    ("x86_64_v3", 3, "v3"), ("haswell", 3, "v3"), ("zen3", 3, "v3"),
    ("x86_64_v4", 4, "v4"), ("zen4", 4, "v4"), ("sapphirerapids", 4, "v4"), ("skylake_avx512", 4, "v4"),
    ("aarch64", None, None), ("neoverse_v2", None, None),
])
def test_levels_come_from_archspec_features(target, level, variant):
    assert x86_64_level(target) == level
    assert amd64_variant(target) == variant


def _targets(descriptors):
    return [d["annotations"][TARGET_KEY] for d in descriptors]


def test_the_most_generic_first_and_levels_as_variants():
    built = build_index(_entries("x86_64_v3", "x86_64", "x86_64_v2"), {})
    index = json.loads(built.raw)
    assert _targets(index["manifests"]) == ["x86_64", "x86_64_v2", "x86_64_v3"]
    assert [d["platform"].get("variant") for d in index["manifests"]] == [None, "v2", "v3"]
    assert built.complete is None and COMPLETE_KEY not in index.get("annotations", {})
    assert first_not_baseline(built) == []


def test_targets_sharing_a_level_leave_one_entry_and_a_complete_index():
    built = build_index(_entries("zen4", "x86_64_v3", "sapphirerapids", "x86_64", "x86_64_v4", "zen3",
                                 "neoverse_v2", "aarch64"), {"org.opencontainers.image.title": "app"})
    pulled = json.loads(built.raw)
    assert _targets(pulled["manifests"]) == ["x86_64", "x86_64_v3", "x86_64_v4", "aarch64"]
    keys = [(d["platform"]["architecture"], d["platform"].get("variant")) for d in pulled["manifests"]]
    assert len(set(keys)) == len(keys)  # no two entries share os/arch/variant
    complete = json.loads(built.complete)
    assert pulled["annotations"][COMPLETE_KEY] == sha256_digest(built.complete)
    assert _targets(complete["manifests"]) == ["x86_64", "x86_64_v3", "zen3", "x86_64_v4", "zen4",
                                               "sapphirerapids", "aarch64", "neoverse_v2"]  # fewer features first
    assert complete["annotations"] == {"org.opencontainers.image.title": "app"}
    assert set(built.left_out) == {"zen3", "sapphirerapids", "zen4", "neoverse_v2"}
    assert every_entry(pulled, {sha256_digest(built.complete): complete}.__getitem__) == complete["manifests"]


def test_a_named_cpu_alone_at_its_level_is_pulled():
    built = build_index(_entries("x86_64", "zen4"), {})
    assert [d["platform"].get("variant") for d in json.loads(built.raw)["manifests"]] == [None, "v4"]
    assert built.complete is None


def test_a_first_entry_not_every_host_runs_is_warned_about():
    (warning,) = first_not_baseline(build_index(_entries("zen4", "x86_64_v3"), {}))
    assert "x86_64_v3" in warning and "add the target x86_64" in warning


def test_an_explicit_variant_is_kept():
    built = build_index([(_manifest("a"), "linux/arm64/v8", {TARGET_KEY: "aarch64"})], {})
    assert json.loads(built.raw)["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux",
                                                                 "variant": "v8"}


def test_a_metahub_cpu_feature_gives_the_level_when_no_target_is_annotated():
    features = "org.supercontainers.platform.features"
    built = build_index([(_manifest("a"), "linux/amd64", {features: "cpu:zen3,isa:avx2"}),
                         (_manifest("b"), "linux/amd64", {features: "cpu:x86_64_v4"}),
                         (_manifest("c"), "linux/amd64", {})], {})
    assert [d["platform"].get("variant") for d in json.loads(built.raw)["manifests"]] == [None, "v3", "v4"]
