"""``build`` plans first: every target rendered and checked before any build, and ``--dry-run`` shows that plan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest

from hpcannotate import build as build_module
from hpcannotate.build import build, plan
from hpcannotate.builders.base import Builder, loggable, run_logged
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
    from hpcannotate.build import registry_destination
    from hpcannotate.builders import BuildOptions

    plain = registry_destination("registry.example.org:5000/hpc/app:1", BuildOptions(plain_http=True))
    assert plain.store.client.base_url("registry.example.org:5000") == "http://registry.example.org:5000"
    default = registry_destination("registry.example.org:5000/hpc/app:1", BuildOptions())
    assert default.store.client.base_url("registry.example.org:5000") == "https://registry.example.org:5000"
