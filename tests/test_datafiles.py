"""The compiled JSON twins of data/*.yaml (datafiles.py): current, equal to the YAML, and never trusted stale."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from hpcannotate.model import datafiles

DATA = Path(str(resources.files("hpcannotate"))) / "data"
PURE = {"safe": yaml.SafeLoader, "base": yaml.BaseLoader}  # the pure-Python loaders, as the YAML always was read


def test_every_data_file_has_a_loader_and_a_current_compiled_twin():
    assert set(datafiles.LOADERS) == {p.name for p in DATA.glob("*.yaml")}
    assert datafiles.stale(DATA) == [], "data/*.yaml changed: run `make data` (python -m hpcannotate.model.datafiles)"


def test_compiled_twins_hold_what_the_pure_python_loader_reads():
    for name, how in datafiles.LOADERS.items():
        source = (DATA / name).read_bytes()
        expected = yaml.load(source, Loader=PURE[how])
        compiled = json.loads((DATA / datafiles.compiled_name(name)).read_text(encoding="utf-8"))
        assert compiled["data"] == expected, name
        assert datafiles.load(name) == expected, name


def test_a_stale_or_missing_twin_is_ignored_and_the_yaml_read(tmp_path, monkeypatch):
    data = tmp_path / "hpcannotate" / "data"
    shutil.copytree(DATA, data)
    (data / "shells.yaml").write_text("shells: [bash, fish]\n")  # edited, twin not rewritten
    (data / datafiles.compiled_name("cuda.yaml")).unlink()
    monkeypatch.setattr(datafiles, "_data_dir", lambda: data)
    datafiles.load.cache_clear()
    try:
        assert datafiles.stale(data) == ["cuda.yaml", "shells.yaml"]
        assert datafiles.load("shells.yaml") == {"shells": ["bash", "fish"]}
        assert datafiles.load("cuda.yaml") == yaml.load((DATA / "cuda.yaml").read_bytes(), Loader=yaml.BaseLoader)
        assert [p.name for p in datafiles.write_all(data)] == ["cuda.json", "shells.json"]
        assert datafiles.stale(data) == []
    finally:
        datafiles.load.cache_clear()


def test_loading_the_catalogue_imports_no_yaml():
    code = ("import sys; from hpcannotate.model.catalogue import catalogue; assert len(catalogue()) > 30; "
            "print('yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
