"""Charliecloud's own builder and runtime on what hpcannotate renders (issue 12, parts 3 and 4).

``ch-image build`` refuses ``${VAR:+...}`` modifiers (Charliecloud issue #774), and ``ch-run``
passes the host's environment, not the image's ENV: only a login shell that reads /etc/profile
finds the application. busybox has no /etc/profile, so the build must give it one.

The base comes from hpcannotate's own busybox layout, unpacked by umoci and imported with
``ch-image import`` (no network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hpcannotate.dockerfile.render import render_variant
from hpcannotate.recipes.recipedir import load_recipe_dir

from .fixtures.images import require_tool

HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"


def charliecloud(tool: str) -> list[str]:
    """argv prefix for ch-image / ch-run: ch-image runs on Debian's python3 (it needs python3-lark)."""
    path = require_tool(tool, "charliecloud")
    if tool == "ch-image" and Path("/usr/bin/python3").exists():
        return ["/usr/bin/python3", path]
    return [path]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "USER": os.environ.get("USER") or "root"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env, **kwargs)


@pytest.fixture(scope="module")
def ch_hello(busybox_base, tmp_path_factory) -> Path:
    """The hello recipe rendered, built by ``ch-image build`` FROM the busybox base; its image directory."""
    require_tool("umoci", "umoci")
    top = tmp_path_factory.mktemp("charliecloud")
    storage = top / "storage"
    unpacked = run(["umoci", "unpack", "--rootless", "--image", f"{busybox_base}:latest", str(top / "bundle")])
    assert unpacked.returncode == 0, unpacked.stderr
    imported = run([*charliecloud("ch-image"), "-s", str(storage), "import", str(top / "bundle" / "rootfs"),
                    "busybox"])
    assert imported.returncode == 0, imported.stderr
    context = render_variant(load_recipe_dir(HELLO), None, "x86_64", top / "context")
    built = run([*charliecloud("ch-image"), "-s", str(storage), "build", "--no-cache", "-t", "hello",
                 "-f", str(context.dockerfile), str(context.directory)])
    assert built.returncode == 0, built.stdout + built.stderr  # no "modifiers ... not yet supported (issue #774)"
    shutil.rmtree(top / "bundle", ignore_errors=True)
    return storage / "img" / "hello"


def test_ch_image_builds_the_rendered_dockerfile_and_env_sets_path(ch_hello):
    plain = run([*charliecloud("ch-run"), "--set-env", str(ch_hello), "--", "/bin/sh", "-c", 'echo "$PATH"'])
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip().startswith("/opt/hello/bin:/")  # the base's PATH follows, no empty entry
    assert not plain.stdout.strip().endswith(":")


def test_ch_run_login_shell_finds_the_app_on_busybox(ch_hello):
    login = run([*charliecloud("ch-run"), str(ch_hello), "--", "/bin/sh", "-lc", "hello Ada"])
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == 'Hello, "world" $USER, Ada'
    # without a login shell ch-run keeps the host's PATH: no app (what the profile is for)
    plain = run([*charliecloud("ch-run"), str(ch_hello), "--", "/bin/sh", "-c", "hello Ada"])
    assert plain.returncode != 0
