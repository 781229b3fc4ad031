"""The shipped data files (``data/*.yaml``), read in milliseconds through a compiled JSON form.

People edit the YAML: it is the source. Parsing ``keys.yaml`` with pure-Python PyYAML took about
60 ms (plus 20 ms to import yaml) at the start of every command that touches annotations;
libyaml's C loader takes 6 ms but is missing from PyYAML builds without libyaml. So each file has
a compiled twin, ``data/compiled/NAME.json`` (``python -m hpcannotate.model.datafiles`` or ``make data``
writes them), holding the parsed content and the SHA-256 of the YAML bytes it came from;
``json.loads`` reads it in well under a millisecond. Every load hashes the YAML (microseconds) and
compares: a compiled file that is missing or older than its YAML is ignored and the YAML parsed
(with the C loader when PyYAML has it), so an edit to ``keys.yaml`` is never silently ignored.
tests/test_datafiles.py fails until the compiled files are written again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

# Every data file and how it is parsed: "safe" (yaml.safe_load: ints, booleans) or "base"
# (yaml.BaseLoader: every scalar a string, so the version 12.10 stays "12.10", never the float 12.1).
LOADERS: dict[str, str] = {
    "keys.yaml": "safe",
    "recipedir.schema.yaml": "safe",
    "architectures.yaml": "base",
    "cpu.yaml": "base",
    "cuda.yaml": "base",
    "match-policy.yaml": "base",
    "nvidia-gpus.yaml": "base",
    "shells.yaml": "base",
}


def _data_dir() -> Path:
    # the package is always unpacked (resources.templates_dir assumes the same); a path costs no import
    return Path(__file__).resolve().parents[1] / "data"  # model/ -> the package


def compiled_name(name: str) -> str:
    """Where the compiled twin of ``data/NAME.yaml`` lives, relative to ``data/``."""
    return f"compiled/{name.removesuffix('.yaml')}.json"


def parse_yaml(name: str, text: bytes | str) -> Any:
    """The YAML parsed as ``LOADERS`` says (libyaml's C loader when this PyYAML has it; same result)."""
    import yaml

    if LOADERS[name] == "safe":
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    else:
        loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - safe or base loaders only: plain str/int/bool/list/dict


def compiled_text(name: str, source: bytes) -> str:
    """The JSON text the compiled twin of ``name`` holds for the YAML bytes ``source``."""
    data = parse_yaml(name, source)
    if json.loads(json.dumps(data)) != data:  # e.g. a date or an integer mapping key: JSON would change it
        raise ValueError(f"hpcannotate/data/{name}: holds values JSON cannot carry unchanged")
    digest = hashlib.sha256(source).hexdigest()
    return json.dumps({"source": name, "sha256": digest, "data": data}, indent=1, ensure_ascii=False) + "\n"


@functools.cache
def load(name: str) -> Any:
    """The parsed content of ``data/NAME`` (a name in ``LOADERS``): the compiled twin when it is current."""
    directory = _data_dir()
    source = directory.joinpath(name).read_bytes()
    try:
        compiled = json.loads(directory.joinpath(compiled_name(name)).read_bytes())
    except (OSError, ValueError):
        compiled = None
    if isinstance(compiled, dict) and compiled.get("sha256") == hashlib.sha256(source).hexdigest():
        return compiled["data"]
    return parse_yaml(name, source)


def stale(directory: Path) -> list[str]:
    """The data files under ``directory`` whose compiled twin is missing or differs from a fresh compile."""
    found = []
    for name in LOADERS:
        target = directory / compiled_name(name)
        want = compiled_text(name, (directory / name).read_bytes())
        if not target.is_file() or target.read_text(encoding="utf-8") != want:
            found.append(name)
    return found


def write_all(directory: Path) -> list[Path]:
    """Write every compiled twin under ``directory`` (the package's ``data/``); returns the files changed."""
    changed = []
    (directory / "compiled").mkdir(exist_ok=True)
    for name in LOADERS:
        target = directory / compiled_name(name)
        want = compiled_text(name, (directory / name).read_bytes())
        if not target.is_file() or target.read_text(encoding="utf-8") != want:
            target.write_text(want, encoding="utf-8")
            changed.append(target)
    return changed


def main() -> int:
    """``python -m hpcannotate.model.datafiles``: compile the data files of this source tree."""
    directory = Path(__file__).resolve().parents[1] / "data"  # model/ -> the package
    for path in write_all(directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
