"""Dataclasses <-> plain JSON values, strictly, so a saved fingerprint loads back as it was.

Loading names the exact place of a problem (``fingerprint.json: gpu.nvidia.devices[0].name:
expected text``) because a fingerprint file may be written or edited by hand
for a host the tool never ran on.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, Union

from hpcannotate.errors import InputError

T = TypeVar("T")


def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


_KIND = {str: "text", int: "an integer", bool: "true or false", float: "a number"}


def _convert(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        return _convert(options[0], data, where)
    if origin is list:
        if not isinstance(data, list):
            raise InputError(f"{where}: expected a list")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a mapping")
        _, value_type = typing.get_args(tp)
        return {str(k): _convert(value_type, v, f"{where}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        return from_plain(tp, data, where)
    if tp is bool:
        if not isinstance(data, bool):
            raise InputError(f"{where}: expected true or false")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise InputError(f"{where}: expected an integer")
        return data
    if tp is str:
        if not isinstance(data, str):
            raise InputError(f"{where}: expected text, got {type(data).__name__}")
        return data
    return data


def from_plain(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a JSON mapping; unknown keys and missing required keys are errors."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (expected: {', '.join(fields)})")
    kwargs = {}
    for name, spec in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise InputError(f"{where}.{name}: missing")
    return cls(**kwargs)
