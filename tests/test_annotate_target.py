"""``annotate --target T``: the target and the mode archspec derives from it, set together."""

from __future__ import annotations

import pytest

from hpcannotate.cli.registry_cmds import target_assignments
from hpcannotate.errors import InputError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P


def test_target_sets_version_and_mode():
    assert target_assignments("zen3", {}) == {P + "hardware.cpu.optimized.version": "zen3",
                                              P + "hardware.cpu.optimized.mode": "microarchitecture"}
    assert target_assignments("x86_64_v3", {})[P + "hardware.cpu.optimized.mode"] == "genericMicro"


def test_a_set_that_contradicts_the_target_is_refused():
    with pytest.raises(InputError, match="contradicts --target zen3"):
        target_assignments("zen3", {"hardware.cpu.optimized.mode": "architecture"})


def test_an_unknown_target_is_one_line_with_a_hint(run_cli):
    r = run_cli("annotate", "oci:/nonexistent:1", "--target", "zen-3", "--dry-run")
    assert r.returncode == 2
    assert "--target zen-3: not an archspec CPU target (did you mean 'zen3'?)" in r.stderr
