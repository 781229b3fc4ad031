"""One rule for keys a user writes (validate, annotate --set/--from): a key outside the catalogue's
namespaces is another tool's and passes with a notice; a key inside them that the catalogue does not
know is an error with a suggestion."""

from __future__ import annotations

import json

import pytest

from hpcannotate.errors import InputError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue
from hpcannotate.retrofit.annotate import make_change

MANDATORY = "hardware.cpu.optimized.version: x86_64\nhardware.cpu.optimized.mode: architecture\n"


def test_suggestions_for_a_key_begun_ended_or_misspelt():
    assert catalogue().suggest("mpi.abi") == P + "mpi.abi.version"
    assert catalogue().suggest("cuda.version") == P + "hardware.gpu.nvidia.cuda.version"
    assert catalogue().suggest("mpi.implmentation") == P + "mpi.implementation"
    assert catalogue().suggest("maintainer") is None


def test_validate_passes_foreign_keys_with_a_notice_and_rejects_unknown_ones(run_cli, tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text(MANDATORY + 'cuda.version: "12.1"\nfoo: bar\n')
    r = run_cli("validate", f)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "notice: cuda.version: not a catalogue key" in r.stderr
    assert f"did you mean {P}hardware.gpu.nvidia.cuda.version?" in r.stderr
    assert "notice: foo: not a catalogue key" in r.stderr
    data = json.loads(run_cli("validate", f, "--json").stdout)
    assert len(data["notices"]) == 2 and data["compliant"] is True
    f.write_text(MANDATORY + 'mpi.abi: "12.0"\n')
    r = run_cli("validate", f)
    assert r.returncode == 1
    assert f"did you mean {P}mpi.abi.version?" in r.stdout


def test_annotate_set_follows_the_same_rule():
    change, warnings = make_change({"foo": "bar", "mpi.implementation": "mpich"})
    assert change.set["foo"] == "bar"
    assert any(w.startswith("foo: not a catalogue key") for w in warnings)
    with pytest.raises(InputError, match=r"did you mean org\.supercontainers\.mpi\.abi\.version"):
        make_change({"mpi.abi": "12.0"})
