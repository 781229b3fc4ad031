"""Everything a recipe directory names stays inside it: docs, recipes, Spack includes and lock files,
COPY sources and hpcannotate.yaml itself. An untrusted recipe directory must not be able to publish
another file of the user's (~/.docker/config.json) in an image's annotations or Dockerfile.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from pathlib import Path

import pytest

from hpcannotate.dockerfile.render import render_variant
from hpcannotate.errors import InputError
from hpcannotate.recipes.recipedir import load_recipe_dir

HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"


@pytest.fixture
def secret(tmp_path) -> tuple[Path, str]:
    """A file outside the recipe directory, and the token in it that must never reach the output."""
    token = f"TOKEN{uuid.uuid4().hex}"
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text(f"RUN echo {token}\n")  # a Dockerfile fragment, a markdown file, whatever it is named as
    return path, token


def recipe_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "hello"
    shutil.copytree(HELLO, directory)
    return directory


def set_key(directory: Path, old: str, new: str) -> None:
    config = directory / "hpcannotate.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


def render(directory: Path, tmp_path: Path) -> Path:
    loaded = load_recipe_dir(directory)
    return render_variant(loaded, None, "x86_64", tmp_path / "ctx").directory


def everything_written(tmp_path: Path) -> str:
    """All text under the render output, base64 annotations decoded."""
    out = []
    for path in (tmp_path / "ctx").rglob("*") if (tmp_path / "ctx").exists() else []:
        if path.is_file():
            text = path.read_text(errors="replace")
            out.append(text)
            for word in text.replace('"', " ").split():
                try:
                    out.append(base64.b64decode(word, validate=True).decode(errors="replace"))
                except ValueError:
                    continue
    return "\n".join(out)


def escape(directory: Path, secret: Path, how: str) -> str:
    """A name for ``secret`` (or a broken file) written as the recipe directory would, per ``how``."""
    if how == "dotdot":
        return os.path.relpath(secret, directory)
    if how == "absolute":
        return str(secret)
    if how == "symlink-out":
        (directory / "link.txt").symlink_to(secret)
        return "link.txt"
    if how == "symlinked-dir-out":
        (directory / "sub").symlink_to(secret.parent, target_is_directory=True)
        return f"sub/{secret.name}"
    if how == "loop":
        (directory / "loop.txt").symlink_to("loop.txt")
        return "loop.txt"
    if how == "fifo":
        os.mkfifo(directory / "pipe.txt")
        return "pipe.txt"
    raise AssertionError(how)


ESCAPES = {
    "dotdot": "climbs out of the recipe directory",
    "absolute": "is an absolute path",
    "symlink-out": "is a symlink to",
    "symlinked-dir-out": "is a symlink to",
    "loop": "is a symlink loop",
    "fifo": "is a special file",
}


@pytest.mark.parametrize("how", ESCAPES)
@pytest.mark.parametrize("key", ["docs", "recipe"])
def test_docs_and_recipe_cannot_name_a_file_outside(tmp_path, secret, key, how):
    directory = recipe_dir(tmp_path)
    name = escape(directory, secret[0], how)
    if key == "docs":
        set_key(directory, "quickstart: quickstart.md", f"quickstart: {name!r}")
        where = "docs.quickstart"
    else:
        set_key(directory, "recipe: hello.Dockerfile", f"recipe: {name!r}")
        where = "variants.busybox.recipe"
    with pytest.raises(InputError) as err:
        render(directory, tmp_path)
    message = str(err.value)
    assert message.startswith(f"{directory / 'hpcannotate.yaml'}: {where}: {name} "), message
    assert ESCAPES[how] in message and "\n" not in message
    assert secret[1] not in message
    assert not (tmp_path / "ctx").exists()


def test_a_symlink_that_stays_inside_is_fine_and_the_render_carries_it(tmp_path):
    directory = recipe_dir(tmp_path)
    (directory / "docs").mkdir()
    (directory / "docs" / "start.md").symlink_to("../quickstart.md")
    set_key(directory, "quickstart: quickstart.md", "quickstart: docs/start.md")
    render(directory, tmp_path)
    assert (HELLO / "quickstart.md").read_text().strip() in everything_written(tmp_path)


def test_the_escape_tests_would_see_a_leak(tmp_path, secret):
    """The same render with the secret copied in: the token does reach the output, so the tests above
    would see it if the check let it through."""
    directory = recipe_dir(tmp_path)
    shutil.copy(secret[0], directory / "inside.md")
    set_key(directory, "quickstart: quickstart.md", "quickstart: inside.md")
    render(directory, tmp_path)
    assert secret[1] in everything_written(tmp_path)


def test_hpcannotate_yaml_itself_cannot_be_a_symlink_out(tmp_path):
    elsewhere = recipe_dir(tmp_path / "elsewhere")
    directory = tmp_path / "untrusted"
    directory.mkdir()
    (directory / "hpcannotate.yaml").symlink_to(elsewhere / "hpcannotate.yaml")
    with pytest.raises(InputError, match=r"hpcannotate\.yaml is a symlink to .*outside the recipe directory"):
        load_recipe_dir(directory)


SPACK = """\
name: sp
default: spack
variants:
  spack:
    format: spack
    recipe: spack.yaml
"""


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink-out", "loop"])
def test_a_spack_include_cannot_name_a_file_outside(tmp_path, secret, how):
    directory = tmp_path / "sp"
    directory.mkdir()
    (directory / "hpcannotate.yaml").write_text(SPACK)
    name = escape(directory, secret[0], how)
    (directory / "spack.yaml").write_text(f"spack:\n  include: [{name!r}]\n  specs: [zlib]\n")
    with pytest.raises(InputError) as err:
        render(directory, tmp_path)
    assert f"spack.yaml: include: {name}: {name} " in str(err.value), err.value
    assert ESCAPES[how] in str(err.value)
    assert not (tmp_path / "ctx").exists()


def test_a_spack_lock_file_cannot_be_a_symlink_out(tmp_path, secret):
    directory = tmp_path / "sp"
    directory.mkdir()
    (directory / "hpcannotate.yaml").write_text(SPACK)
    (directory / "spack.yaml").write_text("spack:\n  specs: [zlib]\n")
    (directory / "spack.lock").symlink_to(secret[0])
    with pytest.raises(InputError, match=r"spack\.yaml: its lock file: spack\.lock is a symlink to"):
        render(directory, tmp_path)
    assert not (tmp_path / "ctx").exists()


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: os.mkfifo(d / "pipe"), "COPY pipe: pipe is a special file"),
    (lambda d: (d / "pipe").symlink_to("pipe"), "COPY pipe: pipe is a symlink loop"),
    (lambda d: ((d / "pipe").mkdir(), os.mkfifo(d / "pipe" / "inner")), r"COPY pipe: .*inner is a special file"),
])
def test_copy_of_a_fifo_or_a_loop_is_one_line(tmp_path, make, message):
    directory = recipe_dir(tmp_path)
    make(directory)
    (directory / "hello.Dockerfile").write_text("COPY pipe /opt/pipe\n")
    with pytest.raises(InputError, match=message):
        render(directory, tmp_path)
    assert not (tmp_path / "ctx").exists()


def test_the_cli_says_it_in_one_line_and_publishes_nothing(tmp_path, secret, run_cli):
    directory = recipe_dir(tmp_path)
    (directory / "innocent.md").symlink_to(secret[0])
    set_key(directory, "quickstart: quickstart.md", "quickstart: innocent.md")
    for argv in (["render", directory, "-o", tmp_path / "ctx"], ["build", directory, "--dry-run"],
                 ["infer", directory]):
        r = run_cli(*argv)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.strip().splitlines() == [
            f"hpcannotate: error: {directory / 'hpcannotate.yaml'}: docs.quickstart: innocent.md is a symlink to "
            f"{secret[0]}, outside the recipe directory {directory}; copy the file in instead"]
        assert secret[1] not in r.stdout + r.stderr
    assert not (tmp_path / "ctx").exists()


@pytest.mark.parametrize("shell", ["/bin/sh\nRUN echo injected", "/bin/sh\n", "/bin/sh -c", "/bin/\x00sh"])
def test_shell_is_one_absolute_word(tmp_path, shell):
    directory = recipe_dir(tmp_path)
    set_key(directory, "shell: /bin/sh", f"shell: {shell!r}".replace("'", '"').replace("\n", "\\n")
            .replace("\x00", "\\0"))
    with pytest.raises(InputError, match=r"hpcannotate\.yaml: shell: "):
        load_recipe_dir(directory)


def test_a_robot_path_that_does_not_exist_is_refused(tmp_path, run_cli):
    r = run_cli("infer", "--format", "easybuild", "--robot-path", tmp_path / "nonexistent",
                "GROMACS-2023.3-foss-2023a.eb")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--robot-path" in lines[0] and "nonexistent" in lines[0], r.stderr
