"""The recipe-format registry: one place lists the formats; detection, inference, rendering, the CLI's
``--format`` choices and the recipe-directory schema all read it.

The toy format below is the issue's "done when": a format defined in this file and registered is
detected, inferred, rendered, accepted in hpcannotate.yaml and offered by ``--format``, with no other
edit to hpcannotate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcannotate.cli import cli
from hpcannotate.cli.infer_cmd import infer_cmd
from hpcannotate.cli.init_cmd import init_cmd
from hpcannotate.dockerfile.render import render_variant
from hpcannotate.errors import InputError
from hpcannotate.model.keynames import APP_NAME, APP_VERSION, BUILD_RECIPE_FORMAT, HARDWARE_CPU_OPTIMIZED_VERSION
from hpcannotate.recipes import formats
from hpcannotate.recipes.adapters import detect_format
from hpcannotate.recipes.base import Inference, InferOptions, apply_target
from hpcannotate.recipes.infer import infer
from hpcannotate.recipes.plugin import RecipeFormat
from hpcannotate.recipes.recipedir import EnvSpec, _schema, _schema_file, load_recipe_dir

DATA = Path(__file__).parent / "data"

# Samples of the built-in formats. A format added later (a folder and one line in FORMATS) brings its own
# tests: nothing here lists every format, so adding one leaves these tests as they are.
SAMPLES = {
    "dockerfile": [DATA / "recipedirs" / "hello" / "hello.Dockerfile",
                   DATA / "recipedirs" / "hostfit" / "fit.Dockerfile"],
    "hpccm": [DATA / "hpccm" / "nested.py", DATA / "hpccm" / "multistage.py"],
    "spack": [DATA / "spack" / "gromacs-cuda" / "spack.yaml", DATA / "spack" / "binding" / "spack.yaml"],
    "easybuild": [DATA / "easybuild" / "flat" / "Tool-1.0.eb"],
}


BUILT_IN = ["dockerfile", "hpccm", "spack", "easybuild"]


def test_the_registry_holds_the_built_in_formats_first_in_a_fixed_order():
    assert formats.names()[:len(BUILT_IN)] == BUILT_IN
    assert [name for name in formats.inferable() if name in BUILT_IN] == ["hpccm", "spack", "easybuild"]
    assert "dockerfile" not in formats.inferable()  # its values are declared in hpcannotate.yaml


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_format_detects_its_own_samples_and_no_other_does(name):
    """Every registered format is asked, so a format added later that claims a built-in's recipes fails here."""
    assert set(SAMPLES) == set(BUILT_IN)
    for path in SAMPLES[name]:
        assert path.is_file(), path
        claimed = [other for other in formats.names() if formats.get(other).detect(path)]
        assert claimed == [name], path
        assert formats.detect(path, formats.names()) == name


def test_the_cli_choices_are_the_registry():
    infer_choice = next(p for p in infer_cmd.params if p.name == "fmt").type
    init_choice = next(p for p in init_cmd.params if p.name == "fmt").type
    assert list(infer_choice.choices) == formats.inferable()
    assert list(init_choice.choices) == formats.names()


def test_the_schema_enum_is_the_registry():
    variant = _schema()["$defs"]["variant"]["properties"]
    assert variant["format"]["enum"] == formats.names()
    # the file itself lists none: there is no second list to keep in step
    assert _schema_file()["$defs"]["variant"]["properties"]["format"]["enum"] == []


def test_every_doc_key_and_default_base_is_usable():
    from hpcannotate.model.catalogue import catalogue

    for fmt in formats.FORMATS.values():
        if fmt.doc_key:
            assert catalogue().canonical(fmt.doc_key) in catalogue().specs, fmt.name
        for base in (fmt.default_base, fmt.default_build_base):
            if base:
                assert formats.check_reference(base, fmt.name) == base


def test_an_unknown_format_is_one_clear_error():
    with pytest.raises(InputError, match=r"unknown recipe format 'nope' \(one of: dockerfile, hpccm, spack, easybuild"):
        formats.get("nope")


# ---- a format defined here, registered, and nothing else edited ---------------------------------

TOY_LINE = re.compile(r"^(\w+)\s*=\s*(\S+)\s*$")


class ToyFormat(RecipeFormat):
    """``*.toy``: lines ``app = NAME`` and ``version = X``; built as one RUN over busybox."""

    name = "toy"
    files = "*.toy"
    default_base = "busybox"

    def detect(self, path: Path) -> bool:
        return path.suffix == ".toy" and path.is_file()

    def infer(self, path: Path, options: InferOptions) -> Inference:
        inference = Inference(self.name, path)
        inference.set(BUILD_RECIPE_FORMAT, self.name)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = TOY_LINE.match(line)
            if match and match[1] in ("app", "version"):
                key = APP_NAME if match[1] == "app" else APP_VERSION
                inference.set(key, match[2], line=number, fragment=line.strip())
        apply_target(inference, options.target)
        return inference

    def render(self, variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
        app = dict(TOY_LINE.match(line).groups() for line in variant.recipe.read_text().splitlines()
                   if TOY_LINE.match(line))["app"]
        base = formats.check_reference(variant.base or self.default_base, "base")
        return f"FROM {base}\nRUN mkdir -p /opt/{app}/bin\n", EnvSpec(path=(f"/opt/{app}/bin",))


@pytest.fixture
def toy():
    fmt = formats.register(ToyFormat())
    yield fmt
    formats.unregister("toy")
    assert "toy" not in formats.names()


def toy_dir(tmp_path: Path) -> Path:
    (tmp_path / "hello.toy").write_text("app = hello\nversion = 1.2\n")
    (tmp_path / "hpcannotate.yaml").write_text("name: hello\ntargets: [x86_64_v3]\n"
                                                "variants:\n  toy: {format: toy, recipe: hello.toy}\n")
    return tmp_path


def test_a_registered_toy_format_is_detected_and_inferred(toy, tmp_path):
    recipe = toy_dir(tmp_path) / "hello.toy"
    assert detect_format(recipe) == "toy" and formats.detect(recipe) == "toy"
    inference = infer(recipe, InferOptions(target="zen3"))
    assert inference.format == "toy"
    assert inference.annotations.get(BUILD_RECIPE_FORMAT) == "toy" and not inference.warnings
    assert inference.annotations.get(APP_NAME) == "hello"
    assert inference.annotations.entry(APP_VERSION).provenance.describe() == f"recipe {recipe}:2 (version = 1.2)"
    assert inference.annotations.get(HARDWARE_CPU_OPTIMIZED_VERSION) == "zen3"
    # a recipe directory naming the toy variant: the schema takes it, infer reads it with the yaml's target
    directory = infer(tmp_path)
    assert directory.annotations.get(HARDWARE_CPU_OPTIMIZED_VERSION) == "x86_64_v3"


def test_a_registered_toy_format_is_rendered(toy, tmp_path):
    context = render_variant(load_recipe_dir(toy_dir(tmp_path)), None, "x86_64_v3", tmp_path / "ctx")
    text = context.dockerfile.read_text()
    assert "FROM busybox\nRUN mkdir -p /opt/hello/bin\n" in text
    assert 'ENV PATH="/opt/hello/bin:${PATH}"' in text
    assert context.annotations.get(APP_NAME) == "hello"
    assert context.annotations.get(BUILD_RECIPE_FORMAT) == "toy"  # any registered name is a valid value
    saved = json.loads((tmp_path / "ctx" / "annotations.json").read_text())
    assert saved["annotations"][APP_VERSION] == "1.2"


def test_a_registered_toy_format_is_a_cli_choice(toy, tmp_path):
    recipe = toy_dir(tmp_path) / "hello.toy"
    result = CliRunner().invoke(cli, ["infer", str(recipe), "--format", "toy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["annotations"][APP_NAME] == "hello"
    assert "toy" in CliRunner().invoke(cli, ["init", "--help"]).output


def test_without_registration_the_toy_format_is_refused_everywhere(tmp_path):
    toy_dir(tmp_path)
    assert formats.detect(tmp_path / "hello.toy") is None
    with pytest.raises(InputError, match=r"variants\.toy\.format: 'toy' is not one of"):
        load_recipe_dir(tmp_path)
    result = CliRunner().invoke(cli, ["infer", str(tmp_path / "hello.toy"), "--format", "toy"])
    assert result.exit_code == 2 and "'toy' is not one of" in result.output
