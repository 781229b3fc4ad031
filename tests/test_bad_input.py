"""The bad-input corpus: every file gives exit 2 and one line naming it, never a traceback.

tests/bad-input/<command>/ holds inputs for one command, and the adapters keep
their bad recipes beside their good ones (tests/data/<format>/); COMMANDS says
which command each directory is for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).parent

# (directory under tests/, file pattern, command line with {} where the file goes)
COMMANDS: list[tuple[str, str, list[str]]] = [
    ("bad-input/validate", "*", ["validate", "{}"]),
    ("bad-input/render", "*.yaml", ["render", "{}", "-o", "/nonexistent/never-written"]),
    ("bad-input/annotate", "*", ["annotate", "oci:/nonexistent/never-read:tag", "--from", "{}"]),
    ("bad-input/collection", "*.yaml", ["collection", "apply", "{}", "--dry-run"]),
    ("bad-input/check", "*", ["check", "{}"]),
    ("bad-input/match", "*", ["match", "--fingerprint", "{}", "oci:/nonexistent/layout"]),
    ("bad-input/match", "*", ["edf", "--fingerprint", "{}", "oci:/nonexistent/layout"]),
    ("data/hpccm", "bad_*.py", ["infer", "--format", "hpccm", "--timeout", "3", "{}"]),
    ("data/spack/bad", "*", ["infer", "--format", "spack", "{}"]),
    ("data/easybuild/bad", "*.eb", ["infer", "--format", "easybuild", "--timeout", "3", "{}"]),
]


def corpus_files() -> list:
    return [
        pytest.param(argv, path, id=f"{directory}/{path.name}")
        for directory, pattern, argv in COMMANDS
        for path in sorted((TESTS / directory).glob(pattern))
    ]


def test_corpus_is_large_enough():
    assert len(corpus_files()) >= 50


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
