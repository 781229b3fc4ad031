"""The CLI through the real console script, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue

from .test_catalogue import ALIASES, SPEC_KEYS


def test_keys_table_lists_every_spec_key_with_aliases(run_cli):
    r = run_cli("keys")
    assert r.returncode == 0, r.stderr
    for short, _, _ in SPEC_KEYS:
        assert P + short in r.stdout
    for alias in ALIASES:
        assert P + alias in r.stdout


def test_keys_json(run_cli):
    r = run_cli("keys", "--json")
    data = json.loads(r.stdout)
    assert len(data) == len(catalogue())
    first = data[0]
    assert {"key", "group", "mandatory", "aliases", "description"} <= set(first)
    by_key = {d["key"]: d for d in data}
    assert P + "mpi.provider" in by_key[P + "mpi.implementation"]["aliases"]


def test_keys_group_filter(run_cli):
    data = json.loads(run_cli("keys", "--group", "mpi", "--json").stdout)
    assert data and all(d["group"] == "mpi" for d in data)
    r = run_cli("keys", "--group", "nope")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1


def test_schema_command_prints_the_schema(run_cli):
    data = json.loads(run_cli("schema").stdout)
    assert data["$schema"].endswith("2020-12/schema")
    assert P + "hardware.cpu.optimized.mode" in data["required"]


def test_validate_compliant_file(run_cli, tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("hardware.cpu.optimized.architecture: x86_64_v3\nhardware.cpu.optimized.mode: genericMicro\n"
                 "mpi.provider: openmpi\nmpi.abi.version: 40.0\n")
    r = run_cli("validate", f)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HPC Container Compliant" in r.stdout
    data = json.loads(run_cli("validate", f, "--json").stdout)
    assert data["compliant"] is True and data["errors"] == []
    assert data["annotations"][P + "mpi.implementation"] == "openmpi"
    assert data["annotations"][P + "mpi.abi.version"] == "40.0"  # text, not the float 40.0 -> "40.0" by luck


def test_validate_explains_each_wrong_value(run_cli, tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({P + "hardware.cpu.optimized.version": "zen-3",
                             P + "hardware.cpu.optimized.mode": "microarchitecture",
                             P + "hardware.gpu.nvidia.architecture": "ampere",
                             P + "communication.framework": "libfabrics"}))
    r = run_cli("validate", f)
    assert r.returncode == 1
    assert "did you mean 'zen3'" in r.stdout
    assert "hardware.gpu.nvidia.architecture" in r.stdout
    data = json.loads(run_cli("validate", f, "--json").stdout)
    assert data["compliant"] is False
    assert {e["key"] for e in data["errors"]} == {P + "hardware.cpu.optimized.version",
                                                  P + "hardware.gpu.nvidia.architecture"}
    assert data["annotations"][P + "communication.framework"] == "libfabric"


def test_yaml_values_stay_text(run_cli, tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("hardware.cpu.optimized.version: x86_64\nhardware.cpu.optimized.mode: architecture\n"
                 "hardware.gpu.nvidia.cuda.version: 12.10\nglibc.version: 2.40\n")
    data = json.loads(run_cli("validate", f, "--json").stdout)
    assert data["annotations"][P + "hardware.gpu.nvidia.cuda.version"] == "12.10"
    assert data["annotations"][P + "glibc.version"] == "2.40"


def test_validate_missing_file_is_one_line_exit_2(run_cli, tmp_path):
    r = run_cli("validate", tmp_path / "nope.yaml")
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "nope.yaml" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors_are_one_line(run_cli):
    for args in (["validate"], ["no-such-command"], ["keys", "--bogus"]):
        r = run_cli(*args)
        assert r.returncode == 2, args
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_debug_shows_the_traceback(run_cli, tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("a: [\n")
    assert "Traceback" not in run_cli("validate", f).stderr
    assert "Traceback" in run_cli("--debug", "validate", f).stderr


def test_help_imports_no_heavy_module():
    """`hpcannotate --help` stays fast because the CLI imports archspec, yaml, jsonschema lazily."""
    code = (
        "import sys, hpcannotate.cli as c\n"
        "heavy = [m for m in ('archspec', 'yaml', 'jsonschema', 'jinja2', 'requests', 'hpccm', 'easybuild')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_docs_reference_page_is_up_to_date(run_cli):
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "keys.md"
    assert page.read_text(encoding="utf-8") == run_cli("keys", "--markdown").stdout, "run `make docs`"
