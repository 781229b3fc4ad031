"""The bad-input corpus: every file gives exit 2 and one line naming it, never a traceback.

tests/bad-input/<command>/ holds inputs for one command; later commands add
their own directories and an entry in COMMANDS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "bad-input"

# directory -> the command line, with {} where the file goes
COMMANDS: dict[str, list[str]] = {
    "validate": ["validate", "{}"],
}


def corpus_files() -> list:
    return [
        pytest.param(argv, path, id=f"{directory}/{path.name}")
        for directory, argv in sorted(COMMANDS.items())
        for path in sorted((CORPUS / directory).iterdir())
    ]


def test_corpus_is_large_enough():
    assert len(corpus_files()) >= 20


@pytest.mark.parametrize(("argv", "path"), corpus_files())
def test_bad_input_gives_one_line_and_exit_2(run_cli, argv, path):
    r = run_cli(*[str(path) if a == "{}" else a for a in argv])
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("hpcannotate: error:"), lines[0]
    assert path.name in lines[0]
    assert "Traceback" not in r.stderr
    assert "internal error" not in r.stderr
