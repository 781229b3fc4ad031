"""What a Dockerfile or HPCCM recipe COPYs from its own directory reaches the build context, and only that."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hpcannotate.dockerfile.render import render_variant
from hpcannotate.errors import InputError
from hpcannotate.recipes.recipedir import load_recipe_dir

FILES = Path(__file__).parent / "data" / "recipedirs" / "files"


def recipe_with(tmp_path: Path, fragment: str) -> Path:
    directory = tmp_path / "recipe"
    shutil.copytree(FILES, directory)
    (directory / "files.Dockerfile").write_text(fragment)
    (directory / "unrelated.bin").write_bytes(b"\0" * 1024)
    return directory


def render(directory: Path, tmp_path: Path) -> Path:
    recipe_dir = load_recipe_dir(directory)
    return render_variant(recipe_dir, None, recipe_dir.variant().targets[0], tmp_path / "ctx").directory


def test_only_what_copy_names_goes_into_the_context(tmp_path):
    directory = recipe_with(tmp_path, "COPY share/greeting.txt /opt/\nCOPY --from=busybox /bin/sh /x\n"
                                      "ADD https://example.org/a.tar.gz /opt/\nCOPY [\"share\", \"/opt/share\"]\n")
    context = render(directory, tmp_path)
    assert (context / "share" / "greeting.txt").read_text() == "Greetings from the recipe directory\n"
    assert not (context / "unrelated.bin").exists()  # not named: not copied
    assert not (context / "bin").exists()  # --from copies from another image


def test_copy_dot_takes_the_directory_but_not_over_hpcannotate_files(tmp_path):
    directory = recipe_with(tmp_path, "COPY . /opt/hello/recipe/\n")
    (directory / "Dockerfile").write_text("FROM scratch\n")
    context = render(directory, tmp_path)
    assert (context / "unrelated.bin").exists()
    assert "hpcannotate" in (context / "Dockerfile").read_text()  # the rendered one, not the recipe's
    assert (context / "notes.txt").exists()


@pytest.mark.parametrize(("fragment", "message"), [
    ("COPY ../outside.txt /opt/\n", "is outside the recipe directory"),
    ("COPY missing.txt /opt/\n", "COPY missing.txt: no such file in"),
    ("COPY hpcannotate /opt/\n", "would replace hpcannotate's own hpcannotate in the build context"),
])
def test_bad_sources_are_one_line_errors(tmp_path, fragment, message):
    (tmp_path / "outside.txt").write_text("secret\n")
    directory = recipe_with(tmp_path, fragment)
    (directory / "hpcannotate").mkdir()
    with pytest.raises(InputError, match=message):
        render(directory, tmp_path)
    assert not (tmp_path / "ctx").exists()


def test_hpccm_copy_of_a_local_file(tmp_path):
    directory = tmp_path / "hpccm-recipe"
    directory.mkdir()
    (directory / "data.txt").write_text("input deck\n")
    (directory / "r.py").write_text("Stage0 += baseimage(image='ubuntu:22.04')\n"
                                    "Stage0 += copy(src='data.txt', dest='/opt/data.txt')\n")
    (directory / "hpcannotate.yaml").write_text("name: t\ndefault: h\ntargets: [x86_64]\n"
                                                "variants:\n  h:\n    format: hpccm\n    recipe: r.py\n")
    context = render(directory, tmp_path)
    assert "COPY data.txt /opt/data.txt" in (context / "Dockerfile").read_text()
    assert (context / "data.txt").read_text() == "input deck\n"


@pytest.mark.parametrize(("said", "shells", "expected"), [
    (None, "bash,dash,sh", "/bin/bash"),
    (None, "sh,ash", "/bin/sh"),  # busybox
    (None, None, "/bin/bash"),  # nothing known about the base
    ("/bin/zsh", "sh,ash", "/bin/zsh"),  # the recipe directory's own choice wins
])
def test_the_login_shell_follows_the_base_unless_the_recipe_says(said, shells, expected):
    from dataclasses import replace

    from hpcannotate.dockerfile.render import login_shell
    from hpcannotate.model.annotations import Annotations

    variant = replace(load_recipe_dir(FILES).variant(), shell=said)
    annotations = Annotations.from_mapping({"shell.implementation": shells} if shells else {})
    assert login_shell(variant, annotations) == expected
