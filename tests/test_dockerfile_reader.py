"""The one Dockerfile reader (``containerfile``): every FROM question answered from ARG defaults,
``--build-arg`` values and stage names, as BuildKit and buildah resolve them."""

from __future__ import annotations

import pytest

from hpcannotate.dockerfile.reader import base_images, final_base, parse

ARG_STAGE = "ARG BASE=debian:bookworm\nFROM $BASE AS b\nFROM b\n"


def test_arg_default_and_stage_name_resolve_to_the_image():
    assert final_base(ARG_STAGE) == "debian:bookworm"
    assert base_images(ARG_STAGE) == ["debian:bookworm"]
    assert parse(ARG_STAGE).final_base() == "debian:bookworm"


def test_a_build_arg_replaces_the_default():
    assert final_base(ARG_STAGE, build_args={"BASE": "ubuntu:24.04"}) == "ubuntu:24.04"
    assert base_images("ARG BASE\nFROM ${BASE}\n", build_args={"BASE": "busybox"}) == ["busybox"]


def test_an_undeclared_build_arg_is_not_a_variable():
    # BuildKit substitutes only ARGs declared before FROM: $BASE stays unresolved, and says so
    assert final_base("FROM $BASE\n", build_args={"BASE": "busybox"}) == "$BASE"


def test_an_unset_arg_stays_visible_not_guessed():
    assert final_base("ARG BASE\nFROM $BASE\n") == "$BASE"


def test_scratch_and_stage_names_are_not_external_images():
    text = ("FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nRUN true\nFROM scratch AS empty\n"
            "FROM build AS again\nFROM alpine:3.20\nCOPY --from=again /x /x\n")
    assert base_images(text) == ["golang:1.22", "alpine:3.20"]
    assert final_base(text) == "alpine:3.20"
    assert final_base("FROM scratch\nCOPY x /x\n") is None
    assert final_base("FROM busybox AS a\nFROM scratch AS b\nFROM b\n") is None


def test_a_stage_is_followed_through_several_names_case_insensitively():
    text = "FROM rockylinux:9 AS One\nFROM one AS two\nFROM TWO\n"
    assert final_base(text) == "rockylinux:9"
    assert base_images(text) == ["rockylinux:9"]


def test_a_later_stage_name_does_not_hide_an_earlier_image():
    # `FROM b` before any stage b is the image b (BuildKit only looks back)
    assert base_images("FROM b\nFROM busybox AS b\n") == ["b", "busybox"]


def test_arg_in_a_stage_takes_the_build_arg():
    parsed = parse("ARG V=1\nFROM busybox\nARG V\nARG W=2\n", build_args={"V": "9", "W": "8"})
    assert parsed.variables(parsed.final) == {"V": "9", "W": "8"}


def test_no_from_is_bad_input():
    from hpcannotate.errors import InputError

    with pytest.raises(InputError, match="no FROM"):
        final_base("# nothing here\n")
