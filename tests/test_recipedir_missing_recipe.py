"""A variant whose recipe is missing is an error only where that variant is used.

``pip install hpcannotate`` without the ``easyconfigs`` extra has no easybuild-easyconfigs: the
gromacs easybuild variant names a bare easyconfig of that package, and that must not break the
other variants (the default debian one above all).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.recipes.easybuild import evaluate as easybuild_eval
from hpcannotate.recipes.recipedir import load_recipe_dir
from hpcannotate.recipes.recipefiles import EASYCONFIGS_EXTRA

ROOT = Path(__file__).parent.parent
GROMACS = ROOT / "recipes" / "gromacs"
HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"


@pytest.fixture
def no_easyconfigs(monkeypatch):
    """As after a plain ``pip install hpcannotate``: no easybuild-easyconfigs trees."""
    monkeypatch.setattr(easybuild_eval, "installed_easyconfigs", lambda: [])


def test_gromacs_loads_without_the_easyconfigs_extra(no_easyconfigs, tmp_path):
    from hpcannotate.dockerfile.render import render_variant

    recipe_dir = load_recipe_dir(GROMACS)
    assert set(recipe_dir.variants) == {"debian", "hpccm", "hpccm-cuda", "spack", "easybuild"}
    debian = recipe_dir.variant()
    assert debian.name == "debian" and debian.recipe == GROMACS / "debian.Dockerfile"
    context = render_variant(recipe_dir, None, "x86_64_v2", tmp_path / "ctx")
    assert context.annotations.get("org.supercontainers.app.version") == "2022.5"
    assert recipe_dir.variant("spack").recipe == GROMACS / "spack.yaml"


def test_the_easybuild_variant_says_where_its_easyconfig_comes_from(no_easyconfigs):
    recipe_dir = load_recipe_dir(GROMACS)
    with pytest.raises(InputError) as caught:
        recipe_dir.variant("easybuild")
    message = str(caught.value)
    assert message.startswith(f"{GROMACS / 'hpcannotate.yaml'}: variants.easybuild.recipe: "
                              "GROMACS-2023.3-foss-2023a.eb ")
    assert "easybuild-easyconfigs package" in message
    assert "pip install 'hpcannotate[easyconfigs]'" in message
    # callers reading the recipe of the variant directly (infer, probe claims, check) get the same error
    with pytest.raises(InputError, match="easybuild-easyconfigs package"):
        recipe_dir.variants["easybuild"].recipe  # noqa: B018


def test_the_extra_named_in_the_message_exists():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
        import tomli as tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    name = EASYCONFIGS_EXTRA.split("[")[1].split("]")[0]
    assert any(req.startswith("easybuild-easyconfigs") for req in extras[name])


def test_a_missing_recipe_only_fails_the_commands_using_its_variant(tmp_path, run_cli):
    recipe = tmp_path / "hello"
    shutil.copytree(HELLO, recipe)
    config = recipe / "hpcannotate.yaml"
    config.write_text(config.read_text() + "  eb:\n    format: easybuild\n    recipe: NoSuchApp-1.0-foss-2023a.eb\n"
                      "  gone:\n    format: dockerfile\n    recipe: gone.Dockerfile\n")
    recipe_dir = load_recipe_dir(recipe)  # loads: nothing uses the two broken variants yet
    assert recipe_dir.variant().recipe == recipe / "hello.Dockerfile"

    r = run_cli("render", recipe, "--target", "x86_64", "-o", tmp_path / "ctx")
    assert r.returncode == 0, r.stderr
    r = run_cli("build", recipe, "--dry-run", "--json", "--workdir", tmp_path / "w", "--target", "x86_64")
    assert r.returncode == 0, r.stderr

    for argv, variant, reason in [
        (["render", recipe, "--variant", "eb", "-o", tmp_path / "eb"], "eb", "easybuild-easyconfigs package"),
        (["build", recipe, "--variant", "eb", "--dry-run", "--workdir", tmp_path / "w"], "eb",
         "easybuild-easyconfigs package"),
        (["infer", recipe, "--variant", "eb"], "eb", "easybuild-easyconfigs package"),
        (["render", recipe, "--variant", "gone", "-o", tmp_path / "gone"], "gone", "gone.Dockerfile does not exist"),
    ]:
        r = run_cli(*argv)
        assert r.returncode == 2, (argv, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert lines[0].startswith(f"hpcannotate: error: {config}: variants.{variant}.recipe: "), lines[0]
        assert reason in lines[0], lines[0]
    assert not (tmp_path / "eb").exists() and not (tmp_path / "gone").exists()
