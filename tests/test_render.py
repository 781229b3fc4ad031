"""Rendering: recipe directories, the Dockerfile's structure and escaping, the profile."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcannotate.dockerfile.render import render_variant
from hpcannotate.dockerfile.text import label_pair, quote, representable, unquote
from hpcannotate.errors import InputError
from hpcannotate.recipes.recipedir import load_recipe_dir
from hpcannotate.resources import render as render_template

HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"
WORD = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[dict]:
    parser = DockerfileParser(fileobj=io.BytesIO())  # in memory: no Dockerfile written to the cwd
    parser.content = text
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def label_words(value: str) -> list[str]:
    """The double-quoted words of a LABEL's raw value, unquoted as BuildKit reads them."""
    words = [m.group(0) for m in WORD.finditer(value)]
    assert "=".join(words) == value, value  # nothing outside the two quoted words
    return [unquote(w) for w in words]


def render_labels(labels: dict[str, str]) -> str:
    return render_template(
        "Dockerfile.j2", recipe="r", variant="v", target="x86_64", body="FROM scratch", usage=False,
        env_lines=[], label_lines=[label_pair(k, v) for k, v in labels.items()], cmd='["/bin/sh", "-l"]',
    )


EXPECTED_INSTRUCTIONS = ["FROM", "COPY", "COPY", "LABEL", "LABEL", "ENTRYPOINT", "CMD"]
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60).filter(representable)
nasty = st.sampled_from(['"', "\\", "$", "${HOME}", "#", "\\\"", "'", "=", " ", "\t", "ü", "\\$", "`x`", "\\\\\\"])


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(values, st.lists(nasty, max_size=8).map("".join)), values)
def test_label_values_never_change_the_structure_and_come_back_exactly(value, other):
    text = render_labels({"org.example.first": value, "org.example.second": other})
    structure = parse(text)
    assert [i["instruction"] for i in structure] == EXPECTED_INSTRUCTIONS
    labels = [i for i in structure if i["instruction"] == "LABEL"]
    assert label_words(labels[0]["value"]) == ["org.example.first", value]
    assert label_words(labels[1]["value"]) == ["org.example.second", other]


def test_line_breaks_are_not_representable():
    for value in ("a\nb", "a\rb", "a\u2028b", "a\x00b"):
        assert not representable(value)
        with pytest.raises(ValueError):
            quote(value)


def test_values_with_line_breaks_go_to_the_builder_not_the_dockerfile(tmp_path):
    recipe = tmp_path / "app"
    shutil.copytree(HELLO, recipe)
    config = recipe / "hpcannotate.yaml"
    config.write_text(config.read_text().replace(
        'description: "A \\"hello\\" app', 'description: "line one\\nline two; A \\"hello\\" app'))
    context = render_variant(load_recipe_dir(recipe), None, "x86_64", tmp_path / "ctx")
    description = context.oci_annotations()["org.opencontainers.image.description"]
    assert "\n" in description
    assert "org.opencontainers.image.description" in context.argv_labels()
    assert "line one" not in context.dockerfile.read_text()
    assert next(i["instruction"] for i in parse(context.dockerfile.read_text())) == "FROM"


def test_rendered_hello_context(tmp_path):
    context = render_variant(load_recipe_dir(HELLO), None, "x86_64_v3", tmp_path / "ctx")
    text = context.dockerfile.read_text()
    structure = parse(text)
    assert structure[0]["instruction"] == "FROM" and structure[0]["value"] == "busybox"
    assert structure[-2]["value"] == '["/usr/local/bin/hpcannotate-entrypoint"]'
    assert structure[-1]["value"] == '["/bin/sh", "-l"]'
    envs = [i["value"] for i in structure if i["instruction"] == "ENV"]
    assert envs[0] == 'PATH="/opt/hello/bin:${PATH}"'
    assert "${" + "PATH:+" not in text  # ch-image refuses modifiers (Charliecloud issue #774)
    assert any(i["instruction"] == "RUN" and "/etc/profile" in i["value"] for i in structure)
    assert (tmp_path / "ctx" / "hpcannotate" / "entrypoint.sh").stat().st_mode & 0o111
    assert (tmp_path / "ctx" / "annotations.json").is_file()
    annotations = context.oci_annotations()
    assert annotations["org.supercontainers.hardware.cpu.optimized.mode"] == "genericMicro"
    assert annotations["org.supercontainers.docs.quickstart.base64"]


def write_config(tmp_path: Path, text: str) -> Path:
    shutil.copy(HELLO / "hello.Dockerfile", tmp_path / "hello.Dockerfile")
    (tmp_path / "hpcannotate.yaml").write_text(text)
    return tmp_path


GOOD = "name: x\ndefault: a\nbase: busybox\nvariants:\n  a: {format: dockerfile, recipe: hello.Dockerfile}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "colour: blue\n", "(top level): unknown key 'colour'"),
        (GOOD.replace("default: a", "default: b"), "default: no variant 'b'"),
        (GOOD + "targets: zen3\n", "targets: expected array"),
        (GOOD + "targets: [zen-3]\n", "did you mean 'zen3'"),
        (GOOD.replace("recipe: hello.Dockerfile", "recipe: missing.Dockerfile"), "missing.Dockerfile does not exist"),
        (GOOD.replace("format: dockerfile", "format: make"), "variants.a.format"),
        (GOOD.replace("{format", "{userargs: {a: b}, format"), "only hpccm variants take userargs"),
        (GOOD + "docs: {quickstart: nope.md}\n", "docs.quickstart: nope.md does not exist"),
        (GOOD.replace("name: x", "name: Bad Name"), "name:"),
    ],
)
def test_recipe_dir_errors_name_the_file_and_key(tmp_path, text, message):
    with pytest.raises(InputError) as info:
        # a missing recipe is an error once its variant is used (.variant()), not when the file is read
        load_recipe_dir(write_config(tmp_path, text)).variant()
    assert message in str(info.value)
    assert "hpcannotate.yaml" in str(info.value)


def test_fragment_with_from_is_refused(tmp_path):
    write_config(tmp_path, GOOD)
    (tmp_path / "hello.Dockerfile").write_text("FROM debian\nRUN true\n")
    with pytest.raises(InputError, match="fragment without FROM"):
        render_variant(load_recipe_dir(tmp_path), None, "x86_64", tmp_path / "ctx")


def test_invalid_declared_annotation_is_refused(tmp_path):
    write_config(tmp_path, GOOD + "annotations: {mpi.implementation: lam}\n")
    with pytest.raises(InputError, match=r"mpi\.implementation: .lam. is not one of"):
        render_variant(load_recipe_dir(tmp_path), None, "x86_64", tmp_path / "ctx")


RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ALL_VARIANTS = [
    (app, name, target)
    for app in ("gromacs", "pytorch")
    for name, variant in load_recipe_dir(RECIPES / app).variants.items()
    for target in variant.targets
]


@pytest.mark.parametrize(("app", "variant", "target"), ALL_VARIANTS, ids=["/".join(v) for v in ALL_VARIANTS])
def test_every_example_variant_renders_to_a_valid_dockerfile(tmp_path, app, variant, target):
    """The source-build variants cannot download sources here: render them and check the result parses."""
    context = render_variant(load_recipe_dir(RECIPES / app), variant, target, tmp_path / "ctx")
    structure = parse(context.dockerfile.read_text())
    instructions = [i["instruction"] for i in structure]
    assert instructions[0] == "FROM"
    assert instructions[-2:] == ["ENTRYPOINT", "CMD"]
    assert "LABEL" in instructions
    annotations = context.oci_annotations()
    assert annotations["org.supercontainers.hardware.cpu.optimized.version"] == target
    assert context.annotations.validate() == []
    labels = {}
    ours = context.dockerfile.read_text().split("# ---- hpcannotate:", 1)[1]  # the recipe's own labels come before
    for item in parse(ours):
        if item["instruction"] == "LABEL":
            key, value = label_words(item["value"])
            labels[key] = value
    for key, value in labels.items():
        assert annotations[key] == value, key
    for item in structure:  # an exec-form RUN gets no shell and no PATH set up by a SHELL wrapper
        if item["instruction"] == "RUN" and item["value"].startswith("["):
            program = json.loads(item["value"])[0]
            assert program.startswith("/"), f"exec-form RUN of {program!r} relies on PATH"


def test_one_variant_needs_no_default(tmp_path):
    recipe_dir = load_recipe_dir(write_config(tmp_path, GOOD.replace("default: a\n", "")))
    assert recipe_dir.default == "a"
    two = GOOD.replace("default: a\n", "") + "  b: {format: dockerfile, recipe: hello.Dockerfile}\n"
    with pytest.raises(InputError, match="default: missing; with 2 variants"):
        load_recipe_dir(write_config(tmp_path, two))


def test_the_target_s_provenance_names_its_real_source(tmp_path):
    directory = write_config(tmp_path, GOOD + "targets: [x86_64_v2, x86_64_v3]\n")
    context = render_variant(load_recipe_dir(directory), None, "x86_64_v2", tmp_path / "ctx")
    prov = context.annotations.entry("org.supercontainers.hardware.cpu.optimized.version").provenance
    assert prov.note == "from targets in hpcannotate.yaml" and prov.file.endswith("hpcannotate.yaml")
    given = render_variant(load_recipe_dir(directory), None, "x86_64_v3", tmp_path / "ctx2", target_source="--target")
    prov = given.annotations.entry("org.supercontainers.hardware.cpu.optimized.version").provenance
    assert prov.note == "from --target"
    (tmp_path / "plain").mkdir()
    plain = write_config(tmp_path / "plain", GOOD)
    default = render_variant(load_recipe_dir(plain), None, "x86_64", tmp_path / "ctx3")
    prov = default.annotations.entry("org.supercontainers.hardware.cpu.optimized.version").provenance
    assert "hpcannotate's default target" in prov.note


def test_render_explain_announces_what_the_build_adds(run_cli, tmp_path):
    r = run_cli("render", HELLO, "--explain", "-o", tmp_path / "ctx")
    assert r.returncode == 0, r.stderr
    after = r.stdout.split("(not in the rendered context)")[1]
    assert "org.supercontainers.libc.implementation" in after and "added by the probe" in after
    assert "org.opencontainers.image.base.digest" in after
    assert "from targets in hpcannotate.yaml" in r.stdout or "from variants." in r.stdout
