"""``build`` plans first: every target rendered and checked before any build, and ``--dry-run`` shows that plan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest

from hpcannotate.build import pipeline as build_module
from hpcannotate.build.builders.base import Builder, loggable, run_logged
from hpcannotate.build.pipeline import build, plan
from hpcannotate.errors import InputError

HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"


class FakeBuilder(Builder):
    name = "fake"
    built: ClassVar[list[str]] = []

    def available(self) -> bool:
        return True

    def build_argv(self, context, destination, platform):
        return ["fake-build", "--platform", platform, "-t", destination, str(context.directory)]

    def build(self, context, destination, platform, log):
        FakeBuilder.built.append(destination)
        raise AssertionError("nothing may be built in these tests")


@pytest.fixture
def fake_builder(monkeypatch):
    FakeBuilder.built = []
    monkeypatch.setattr(build_module, "select_builder", lambda backend, options: FakeBuilder(options))
    return FakeBuilder


def test_a_bad_later_target_fails_before_the_first_build(tmp_path, fake_builder):
    recipe = tmp_path / "recipe"
    shutil.copytree(HELLO, recipe)
    config = recipe / "hpcannotate.yaml"
    # the second target contradicts a value the recipe pins: found while rendering, before any build
    config.write_text(config.read_text().replace(
        "annotations:\n", "annotations:\n  hardware.cpu.optimized.version: x86_64\n", 1))
    with pytest.raises(InputError, match="cannot be built for x86_64_v3"):
        build(recipe, workdir=tmp_path / "work")
    assert fake_builder.built == []
    assert not (tmp_path / "work" / "hello" / "oci").exists()  # the destination is not even created


def test_dry_run_plan_is_the_build_plan(tmp_path, fake_builder):
    the_plan = plan(HELLO, push="registry.example.org/hpc/hello:1.0", workdir=tmp_path / "w", dry_run=True)
    assert [t.reference for t in the_plan.targets] == [
        "registry.example.org/hpc/hello:1.0-x86_64", "registry.example.org/hpc/hello:1.0-x86_64_v3"]
    assert the_plan.targets[0].argv[:5] == ["fake-build", "--platform", "linux/amd64", "-t",
                                            "registry.example.org/hpc/hello:1.0-x86_64"]
    assert the_plan.destination.index_ref() == "registry.example.org/hpc/hello:1.0"
    out = plan(HELLO, output=f"oci:{tmp_path / 'lay'}", workdir=tmp_path / "w", dry_run=True)
    assert out.targets[1].reference == f"oci:{tmp_path / 'lay'}:1.0-x86_64_v3"
    assert not (tmp_path / "lay").exists()  # a plan creates no layout
    with pytest.raises(InputError, match="exclusive"):
        plan(HELLO, push="r.example/x:1", output="oci:x", dry_run=True)


def test_cli_dry_run_honours_push_and_backend(tmp_path, run_cli):
    r = run_cli("build", HELLO, "--backend", "buildah", "--dry-run", "--json", "--workdir", tmp_path,
                "--push", "registry.example.org/hpc/hello:1.0", "--target", "x86_64")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["backend"] == "buildah"
    (target,) = data["targets"]
    assert target["reference"] == "registry.example.org/hpc/hello:1.0-x86_64"
    assert "docker://registry.example.org/hpc/hello:1.0-x86_64" in target["argv"]
    assert not any(a.startswith("oci:") for a in target["argv"])
    r = run_cli("build", HELLO, "--backend", "buildah", "--dry-run", "--json", "--workdir", tmp_path,
                "--output", f"oci:{tmp_path / 'elsewhere'}", "--target", "x86_64")
    assert json.loads(r.stdout)["targets"][0]["reference"] == f"oci:{tmp_path / 'elsewhere'}:1.0-x86_64"


def test_cli_dry_run_buildx_is_buildx(tmp_path, run_cli):
    r = run_cli("build", HELLO, "--backend", "buildx", "--dry-run", "--workdir", tmp_path, "--target", "x86_64")
    assert r.returncode == 0, r.stderr
    assert "docker buildx build" in r.stdout or "buildx build" in r.stdout


def test_run_logged_writes_a_shell_command_with_long_arguments_shortened(tmp_path):
    doc = "A" * 5000
    log = tmp_path / "build.log"
    run_logged(["true", "--label", f"k={doc}", "it's"], log, "true")
    first = log.read_text().splitlines()[0]
    assert first.startswith("$ true --label ") and "[5002 characters]" in first and "'it'\"'\"'s'" in first
    assert len(first) < 400
    assert loggable(["a b"]) == "'a b'"


def test_unknown_target_is_refused_before_rendering(tmp_path, fake_builder):
    with pytest.raises(InputError, match="not an archspec CPU target"):
        plan(HELLO, targets=["x86_64", "zen-3"], workdir=tmp_path, dry_run=True)
    assert not (tmp_path / "hello").exists()



def test_plain_http_reaches_the_client_of_a_push_destination():
    """--plain-http must reach the registry client build uses for the index (not only the builder)."""
    from hpcannotate.build.builders import BuildOptions
    from hpcannotate.build.pipeline import registry_destination

    plain = registry_destination("registry.example.org:5000/hpc/app:1", BuildOptions(plain_http=True))
    assert plain.store.client.base_url("registry.example.org:5000") == "http://registry.example.org:5000"
    default = registry_destination("registry.example.org:5000/hpc/app:1", BuildOptions())
    assert default.store.client.base_url("registry.example.org:5000") == "https://registry.example.org:5000"


GROMACS = Path(__file__).parent.parent / "recipes" / "gromacs"


def _versionless_hello(tmp_path: Path, app_version: str | None) -> Path:
    """hello without a top-level ``version:``; its variant states ``app.version`` instead (as gromacs does)."""
    recipe = tmp_path / "recipe"
    shutil.copytree(HELLO, recipe)
    config = recipe / "hpcannotate.yaml"
    text = config.read_text().replace('version: "1.0"\n', "", 1)
    if app_version is not None:
        text = text.replace("annotations:\n", f'annotations:\n  app.version: "{app_version}"\n', 1)
    config.write_text(text)
    return recipe


def test_the_tag_is_the_version_the_images_state(tmp_path, fake_builder):
    recipe = _versionless_hello(tmp_path, "2.5")
    the_plan = plan(recipe, workdir=tmp_path / "w", dry_run=True)
    assert the_plan.destination.index_ref() == f"oci:{tmp_path / 'w' / 'hello' / 'oci'}:2.5"
    assert [t.reference.rsplit(":", 1)[1] for t in the_plan.targets] == ["2.5-x86_64", "2.5-x86_64_v3"]
    assert the_plan.targets[0].argv[-2].endswith(":2.5-x86_64")
    # a pushed REF: its own tag wins; without one, the version
    pushed = plan(recipe, push="registry.example.org/hpc/hello:stable", workdir=tmp_path / "w", dry_run=True)
    assert pushed.destination.index_ref() == "registry.example.org/hpc/hello:stable"
    assert pushed.targets[1].reference == "registry.example.org/hpc/hello:stable-x86_64_v3"
    untagged = plan(recipe, push="registry.example.org:5000/hpc/hello", workdir=tmp_path / "w", dry_run=True)
    assert untagged.destination.index_ref() == "registry.example.org:5000/hpc/hello:2.5"
    # no version anywhere: latest, as before
    none = plan(_versionless_hello(tmp_path / "none", None), workdir=tmp_path / "w", dry_run=True)
    assert none.destination.index_tag == "latest" and none.warnings == []


def test_a_top_level_version_still_names_the_tag(tmp_path, fake_builder):
    recipe = tmp_path / "recipe"
    shutil.copytree(HELLO, recipe)
    config = recipe / "hpcannotate.yaml"
    config.write_text(config.read_text().replace("annotations:\n", 'annotations:\n  app.version: "9.9"\n', 1))
    assert plan(recipe, workdir=tmp_path / "w", dry_run=True).destination.index_tag == "1.0"


def test_targets_that_disagree_on_the_version_are_tagged_latest():
    from types import SimpleNamespace

    from hpcannotate.build.pipeline import image_version

    key = "org.supercontainers.app.version"

    def ctx(target, version):
        return SimpleNamespace(target=target, annotations={key: version} if version else {})

    assert image_version([ctx("zen3", "2023.3"), ctx("zen4", "2023.3")]) == ("2023.3", None)
    assert image_version([ctx("zen3", None)]) == (None, None)
    version, why = image_version([ctx("zen3", "2023.3"), ctx("zen4", "2024.1")])
    assert version is None and "zen3: 2023.3, zen4: 2024.1" in why and "latest" in why
    version, why = image_version([ctx("zen3", "1.0+cuda12")])
    assert version is None and "not an image tag" in why


def test_gromacs_debian_is_tagged_with_its_version(tmp_path, fake_builder):
    """recipes/gromacs has no top-level version: the debian variant declares app.version 2022.5."""
    the_plan = plan(GROMACS, workdir=tmp_path, dry_run=True)
    assert the_plan.destination.index_ref() == f"oci:{tmp_path / 'gromacs' / 'oci'}:2022.5"
    assert [t.reference for t in the_plan.targets] == [f"oci:{tmp_path / 'gromacs' / 'oci'}:2022.5-x86_64_v2"]


def test_a_prebuilt_variant_is_not_built_for_another_target(tmp_path, fake_builder, run_cli):
    """Debian's packages are compiled for x86_64_v2: labelling them x86_64_v3 would be a wrong annotation."""
    with pytest.raises(InputError, match=r"pins CPU target x86_64_v2 \(format dockerfile: it installs prebuilt "
                                         r"binaries.*cannot be built for x86_64_v3"):
        plan(GROMACS, targets=["x86_64_v3"], workdir=tmp_path, dry_run=True)
    assert not (tmp_path / "gromacs").exists()
    r = run_cli("build", GROMACS, "--target", "x86_64_v3", "--dry-run", "--workdir", tmp_path)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"hpcannotate: error: {GROMACS / 'hpcannotate.yaml'}: variant debian: ")
    assert "prebuilt binaries" in line and "cannot be built for x86_64_v3" in line
    # its own targets still build, and a recipe that compiles for the target is not held to its list
    assert [t.target for t in plan(HELLO, targets=["x86_64_v3"], workdir=tmp_path, dry_run=True).targets] == [
        "x86_64_v3"]
    from hpcannotate.dockerfile.render import pinned_targets
    from hpcannotate.recipes.recipedir import load_recipe_dir

    gromacs = load_recipe_dir(GROMACS)
    assert pinned_targets(gromacs.variants["debian"])[0] == ("x86_64_v2",)
    assert pinned_targets(gromacs.variants["hpccm"]) is None and pinned_targets(gromacs.variants["spack"]) is None


def test_cli_dry_run_says_its_commands_are_shortened(tmp_path, run_cli):
    r = run_cli("build", HELLO, "--backend", "buildah", "--dry-run", "--workdir", tmp_path, "--target", "x86_64")
    assert r.returncode == 0, r.stderr
    assert "…" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == ("long values shortened with '…' and line breaks shown as \\n, so "
                                                 "these lines cannot be run as they are; --json prints the complete "
                                                 "argv")
    full = run_cli("build", HELLO, "--backend", "buildah", "--dry-run", "--json", "--workdir", tmp_path,
                   "--target", "x86_64")
    argv = json.loads(full.stdout)["targets"][0]["argv"]
    assert not any("…" in a for a in argv) and any(len(a) > 120 for a in argv)
    help_text = " ".join(run_cli("build", "--help").stdout.split())
    assert "long values shortened (--json: the complete argv)" in help_text
    assert "exact" not in help_text
