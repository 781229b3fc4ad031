"""Shared fixtures: the real console script, run as a user would run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def console_script() -> str:
    """The installed ``hpcannotate`` next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("hpcannotate")
    if beside.exists():
        return str(beside)
    found = shutil.which("hpcannotate")
    if not found:
        pytest.fail("the hpcannotate console script is not installed (run `make setup`)")
    return found


@pytest.fixture
def run_cli():
    """Run ``hpcannotate ARGS`` through the real console script."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120) -> Result:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        proc = subprocess.run(
            [console_script(), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=full_env,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
