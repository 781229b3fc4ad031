"""The key constants and the catalogue name the same keys, spelled by one rule."""

from __future__ import annotations

import hpcannotate.model.keynames as keynames
from hpcannotate.model.catalogue import catalogue


def _constants() -> dict[str, str]:
    return {name: value for name, value in vars(keynames).items()
            if name.isupper() and name not in ("SUPERCONTAINERS", "OCI")}


def test_every_catalogue_key_has_its_constant():
    missing = [f'{keynames.constant_name(k)} = "{k}"' for k in (s.key for s in catalogue())
               if getattr(keynames, keynames.constant_name(k), None) != k]
    assert not missing, "add to keynames.py:\n" + "\n".join(missing)


def test_every_constant_is_a_catalogue_key_named_by_the_rule():
    known = {s.key for s in catalogue()}
    for name, value in _constants().items():
        assert value in known, f"{name} = {value!r} is not in keys.yaml"
        assert keynames.constant_name(value) == name
