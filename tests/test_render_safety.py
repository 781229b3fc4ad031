"""Review fixes of ``render``: what -o may replace, the Spack context, comments, ENV, docs, base inheritance."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from hpcannotate.build.builders import buildah as baseannotations
from hpcannotate.build.builders.buildah import from_buildah
from hpcannotate.dockerfile.render import MARKER, _env_lines, render_variant
from hpcannotate.dockerfile.text import comment
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.baseannotations import from_values
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.recipes.recipedir import EnvSpec, load_recipe_dir
from hpcannotate.resources import render as render_template

HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GOOD = "name: x\ndefault: a\nbase: busybox\nvariants:\n  a: {format: dockerfile, recipe: hello.Dockerfile}\n"


def instructions(text: str) -> list[str]:
    parser = DockerfileParser(fileobj=io.BytesIO())
    parser.content = text
    return [i["instruction"] for i in parser.structure if i["instruction"] != "COMMENT"]


def write_config(tmp_path: Path, text: str) -> Path:
    recipe = tmp_path / "recipe"
    recipe.mkdir(exist_ok=True)
    shutil.copy(HELLO / "hello.Dockerfile", recipe / "hello.Dockerfile")
    (recipe / "hpcannotate.yaml").write_text(text)
    return recipe


# ---- 1: -o replaces only what render wrote, and only when the new context is complete

def test_output_dir_with_other_content_is_refused_and_kept(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    with pytest.raises(InputError, match="not written by hpcannotate render"):
        render_variant(load_recipe_dir(HELLO), None, "x86_64", out)
    assert (out / "precious.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary directory left behind


def test_render_dash_o_dot_keeps_the_working_directory(tmp_path, run_cli):
    (tmp_path / "precious.txt").write_text("keep")
    r = run_cli("render", HELLO, "--target", "x86_64", "-o", ".", cwd=tmp_path)
    assert r.returncode == 2
    assert "not written by hpcannotate render" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


@pytest.mark.parametrize("sub", ["", "below"])
def test_output_that_is_a_file_is_a_clear_error(tmp_path, run_cli, sub):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / sub if sub else tmp_path / "file"
    r = run_cli("render", HELLO, "--target", "x86_64", "-o", target)
    assert r.returncode == 2
    assert "is not a directory" in r.stderr or "not a directory" in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "file").read_text() == "x"


def test_a_marked_or_empty_directory_is_replaced(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    render_variant(load_recipe_dir(HELLO), None, "x86_64", empty)
    assert (empty / MARKER).is_file() and (empty / "Dockerfile").is_file()
    (empty / "stale.txt").write_text("from an earlier render")
    render_variant(load_recipe_dir(HELLO), None, "x86_64_v3", empty)
    assert not (empty / "stale.txt").exists()
    assert "CPU target x86_64_v3" in (empty / "Dockerfile").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_failed_render_leaves_the_previous_context_whole(tmp_path):
    recipe = write_config(tmp_path, GOOD)
    out = tmp_path / "ctx"
    render_variant(load_recipe_dir(recipe), None, "x86_64", out)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (recipe / "hpcannotate.yaml").write_text(GOOD + "annotations: {mpi.implementation: lam}\n")
    with pytest.raises(InputError, match=r"mpi\.implementation"):
        render_variant(load_recipe_dir(recipe), None, "x86_64", out)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "recipe"]


# ---- 2: the Spack context holds the recipe as spack.yaml, its lock, and nothing else

def test_spack_context_holds_only_the_recipe_and_its_lock(tmp_path):
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    mine = (RECIPES / "gromacs" / "spack.yaml").read_text()
    (recipe / "gromacs-env.yaml").write_text(mine)
    (recipe / "gromacs-env.lock").write_text('{"_meta": {"lockfile-version": 5}}\n')
    (recipe / "spack.yaml").write_text("spack:\n  specs: [zlib]\n")  # another environment
    (recipe / "spack.lock").write_text("{}\n")
    (recipe / "other.yml").write_text("x: 1\n")
    (recipe / "hpcannotate.yaml").write_text(
        "name: g\ndefault: s\nvariants:\n  s: {format: spack, recipe: gromacs-env.yaml, targets: [x86_64_v3]}\n")
    context = render_variant(load_recipe_dir(recipe), None, "x86_64_v3", tmp_path / "ctx")
    env = context.directory / "spack-env"
    assert sorted(p.name for p in env.iterdir()) == ["spack.lock", "spack.yaml"]
    assert (env / "spack.yaml").read_text() == mine
    assert "lockfile-version" in (env / "spack.lock").read_text()


def test_spack_context_carries_relative_includes(tmp_path):
    recipe = tmp_path / "recipe"
    (recipe / "conf").mkdir(parents=True)
    (recipe / "conf" / "packages.yaml").write_text("packages:\n  all:\n    require: ['target=x86_64_v3']\n")
    (recipe / "env.yaml").write_text("spack:\n  include: [conf/packages.yaml]\n  specs: [zlib]\n")
    (recipe / "hpcannotate.yaml").write_text(
        "name: z\ndefault: s\nvariants:\n  s: {format: spack, recipe: env.yaml, targets: [x86_64_v3]}\n")
    context = render_variant(load_recipe_dir(recipe), None, "x86_64_v3", tmp_path / "ctx")
    env = context.directory / "spack-env"
    assert (env / "conf" / "packages.yaml").is_file()
    assert sorted(p.name for p in env.iterdir()) == ["conf", "spack.yaml"]


# ---- 3: names in comments cannot start a new instruction

@pytest.mark.parametrize("where", ["variant", "default", "name"])
def test_names_with_line_breaks_are_refused(tmp_path, where):
    bad = "v\nRUN echo INJECTED"
    text = {
        "variant": GOOD.replace("default: a", "default: v").replace("  a:", f"  {json.dumps(bad)}:"),
        "default": GOOD.replace("default: a", f"default: {json.dumps(bad)}"),
        "name": GOOD.replace("name: x", 'name: "x\\n"'),
    }[where]
    with pytest.raises(InputError) as info:
        load_recipe_dir(write_config(tmp_path, text))
    assert "hpcannotate.yaml" in str(info.value)
    assert ("variants" in str(info.value) or "default" in str(info.value) or "name" in str(info.value))


def test_a_variant_name_with_a_line_break_is_refused_through_the_cli(tmp_path, run_cli):
    recipe = write_config(tmp_path, GOOD.replace("  a:", '  "v\\nRUN echo INJECTED":'))
    r = run_cli("render", recipe, "--variant", "v\nRUN echo INJECTED", "-o", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_comment_filter_keeps_line_breaks_out_of_dockerfile_and_profile():
    nasty = "v\nRUN echo INJECTED\r\x85\u2028x"
    dockerfile = render_template(
        "Dockerfile.j2", recipe=nasty, variant=nasty, target=nasty, body="FROM scratch", usage=False,
        env_lines=[], label_lines=[], cmd='["/bin/sh", "-l"]')
    assert "RUN" not in instructions(dockerfile)
    assert dockerfile.splitlines()[0].startswith("# Generated") and "v\\x0aRUN echo INJECTED" in dockerfile
    profile = render_template("profile.sh.j2", name=nasty, variant=nasty, target=nasty, path=[],
                              ld_library_path=[], vars=[], usage=False)
    assert not any(line.startswith("RUN") for line in profile.splitlines())
    assert comment("a\u2028b") == "a\\u2028b" and comment("plain ü #") == "plain ü #"


def test_a_target_with_a_line_break_is_refused(tmp_path):
    with pytest.raises(InputError, match="not an archspec CPU target"):
        render_variant(load_recipe_dir(HELLO), None, "x86_64\nRUN echo INJECTED", tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()


# ---- 6: directories the recipe's final stage already has in ENV PATH are not added again

def test_hpccm_env_path_is_not_doubled(tmp_path):
    context = render_variant(load_recipe_dir(RECIPES / "gromacs"), "hpccm", "zen3", tmp_path / "ctx")
    ours = context.dockerfile.read_text().split("# ---- hpcannotate:", 1)[1]
    assert "/usr/local/gromacs/bin" not in ours
    text = context.dockerfile.read_text()
    assert text.count("/usr/local/gromacs/bin:") == text.count("ENV PATH=/usr/local/gromacs/bin:$PATH")
    # the profile still puts them back after /etc/profile resets PATH in a login shell
    assert "/usr/local/gromacs/bin" in (context.directory / "hpcannotate" / "profile.sh").read_text()


def test_env_lines_skip_present_directories_only():
    env = EnvSpec(path=("/a/bin", "/b/bin"), ld_library_path=("/a/lib",))
    lines = _env_lines(env, {"PATH": ("/a/bin",)})
    # plain ${VAR}, no ${VAR:+...} (Charliecloud's ch-image refuses it); an unset LD_LIBRARY_PATH gets no ":"
    assert lines == ['PATH="/b/bin:${PATH}"', 'LD_LIBRARY_PATH="/a/lib"']
    assert _env_lines(env, {}, {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib"})[1] == \
        'LD_LIBRARY_PATH="/a/lib:${LD_LIBRARY_PATH}"'
    assert _env_lines(EnvSpec(path=('/o"p$t/bin',)))[0] == 'PATH="/o\\"p\\$t/bin:${PATH}"'
    assert _env_lines(env, {"PATH": ("/a/bin", "/b/bin"), "LD_LIBRARY_PATH": ("/a/lib",)}) == []


# ---- 7: the recipe document is set once, with the adapter's provenance

def test_spack_recipe_doc_keeps_the_adapter_provenance(tmp_path):
    context = render_variant(load_recipe_dir(RECIPES / "gromacs"), "spack", "x86_64_v3", tmp_path / "ctx")
    entry = context.annotations.entry(P + "docs.build.spack.env")
    assert entry.provenance.note != "declared in hpcannotate.yaml"
    assert entry.overridden == ()
    saved = json.loads((context.directory / "annotations.json").read_text())["provenance"]
    assert not saved[P + "docs.build.spack.env"].get("overridden")


def test_hpccm_recipe_doc_is_still_embedded(tmp_path):
    context = render_variant(load_recipe_dir(RECIPES / "gromacs"), "hpccm", "zen3", tmp_path / "ctx")
    value = context.annotations[P + "docs.build.hpccm.recipe"]
    assert base64.b64decode(value) == (RECIPES / "gromacs" / "gromacs.py").read_bytes()
    assert context.annotations.entry(P + "docs.build.hpccm.recipe").provenance.note != "declared in hpcannotate.yaml"


# ---- 8: a base image passes on its user land, not its application

def test_base_inheritance_keeps_user_land_and_drops_application_keys():
    app_image = {
        P + "os.name": "debian", P + "glibc.version": "2.36", P + "shell.implementation": "bash",
        P + "mpi.implementation": "openmpi", P + "python.version": "3.11", P + "compiler.version": "12.2.0",
        P + "hardware.gpu.nvidia.cuda.version": "12.4",
        P + "app.name": "gromacs", P + "app.version": "2023.3", P + "docs.quickstart.base64": "aGk=",
        P + "docs.build.spack.env": "aGk=", P + "build.recipe.format": "spack",
        P + "hardware.cpu.optimized.version": "zen3", P + "platform.features": "cpu:zen3",
        P + "not.in.the.catalogue": "x", "org.opencontainers.image.title": "gromacs",
    }
    inherited = from_values("app:1", app_image, None, "test")
    assert inherited is not None
    keys = {e.key for e in inherited.entries()}
    assert keys == {P + k for k in ("os.name", "glibc.version", "shell.implementation", "mpi.implementation",
                                    "python.version", "compiler.version", "hardware.gpu.nvidia.cuda.version")}


# ---- 9: the small ones

@pytest.mark.parametrize("name", ["Ä", "A-B", "1A", "A B"])
def test_env_var_names_are_portable_identifiers(tmp_path, name):
    recipe = write_config(tmp_path, GOOD + f"env: {{vars: {{{json.dumps(name)}: x}}}}\n")
    with pytest.raises(InputError, match="is not a variable name"):
        render_variant(load_recipe_dir(recipe), None, "x86_64", tmp_path / "ctx")


def test_builders_do_not_import_render():
    code = "import sys, hpcannotate.build.builders; print('hpcannotate.dockerfile.render' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_from_buildah_timeout_and_bad_json_name_the_image(monkeypatch):
    def timeout(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 60)

    monkeypatch.setattr(baseannotations.subprocess, "run", timeout)
    with pytest.raises(HpcAnnotateError, match="base image debian:bookworm"):
        from_buildah("debian:bookworm", ["buildah"])

    def garbage(*args, **kwargs):
        return subprocess.CompletedProcess(args[0], 0, "not json", "")

    monkeypatch.setattr(baseannotations.subprocess, "run", garbage)
    with pytest.raises(HpcAnnotateError, match=r"base image busybox: .*no JSON"):
        from_buildah("busybox", ["buildah"])


def test_a_context_from_before_the_marker_is_replaced_but_not_a_lookalike(tmp_path):
    out = tmp_path / "ctx"
    render_variant(load_recipe_dir(HELLO), None, "x86_64", out)
    (out / MARKER).unlink()  # as an older hpcannotate wrote it
    render_variant(load_recipe_dir(HELLO), None, "x86_64_v3", out)
    assert (out / MARKER).is_file()
    (out / MARKER).unlink()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not written by hpcannotate render"):
        render_variant(load_recipe_dir(HELLO), None, "x86_64", out)
    assert (out / "notes.txt").read_text() == "mine"
