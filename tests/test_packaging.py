"""The built wheel carries the data file and the templates, and works from an installed copy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_templates_and_catalogue(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, REPO],
                   check=True, capture_output=True)
    target = tmp_path / "site"
    wheel = next(wheels.glob("hpcannotate-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, wheel],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import hpcannotate; print(hpcannotate.__file__)"],
                           env=env, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert str(target) in where
    page = subprocess.run([sys.executable, "-m", "hpcannotate", "keys", "--markdown"],
                          env=env, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert page == (REPO / "docs" / "keys.md").read_text(encoding="utf-8")
