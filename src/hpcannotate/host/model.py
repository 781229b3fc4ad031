"""``Fingerprint``: everything the host side knows about a machine, and its JSON form.

``to_json()`` is what ``hpcannotate fingerprint --json`` prints and what
``match --fingerprint FILE`` reads back with ``from_json()``/``load()``; the
``annotations`` member is the host in the image vocabulary (see vocabulary.py).

Derived values are never taken from a file: ``annotations`` is always made from the
sections, and so are ``interconnect.kinds/fast/frameworks``, ``os.kernel_version`` and
``os.user_namespaces.enabled`` where the facts they follow from are given (see those classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcannotate.errors import InputError
from hpcannotate.host.cpu import CpuInfo
from hpcannotate.host.gpu import GpuInfo
from hpcannotate.host.interconnect import InterconnectInfo
from hpcannotate.host.serial import from_plain, to_plain
from hpcannotate.host.software import SoftwareInfo
from hpcannotate.host.system import OsInfo

SECTIONS = ("cpu", "gpu", "interconnect", "os", "software", "annotations", "source")


@dataclass
class Fingerprint:
    cpu: CpuInfo
    gpu: GpuInfo | None = None
    interconnect: InterconnectInfo = field(default_factory=InterconnectInfo)
    os: OsInfo = field(default_factory=OsInfo)
    software: SoftwareInfo = field(default_factory=SoftwareInfo)
    annotations: dict[str, str] = field(default_factory=dict)  # derived from the sections, always
    source: str = "live"  # "live", or the sysroot directory it was read from

    def __post_init__(self) -> None:
        from hpcannotate.host.vocabulary import host_annotations

        self.annotations = host_annotations(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu": to_plain(self.cpu),
            "gpu": to_plain(self.gpu) if self.gpu else None,
            "interconnect": to_plain(self.interconnect),
            "os": to_plain(self.os),
            "software": to_plain(self.software),
            "annotations": dict(self.annotations),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "fingerprint") -> Fingerprint:
        """Load a saved fingerprint; a hand-written one may give just ``cpu: {target: zen2}``.

        Stored annotations are checked for form only: they are derived from the sections again,
        so a file whose sections were edited cannot contradict them.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected a mapping with cpu, gpu, interconnect, os, software")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise InputError(f"{where}: unknown section {unknown[0]!r} (expected: {', '.join(SECTIONS)})")
        if "cpu" not in data:
            raise InputError(f"{where}: cpu: missing (at least cpu.target is needed)")
        cpu = _cpu(data["cpu"], f"{where}: cpu")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise InputError(f"{where}: annotations: expected a mapping of keys to text values")
        source = data.get("source", "given")
        return cls(
            cpu=cpu,
            gpu=from_plain(GpuInfo, data["gpu"], f"{where}: gpu") if data.get("gpu") is not None else None,
            interconnect=_section(InterconnectInfo, data, "interconnect", where),
            os=_section(OsInfo, data, "os", where),
            software=_section(SoftwareInfo, data, "software", where),
            source=source if isinstance(source, str) else "given",
        )

    @classmethod
    def load(cls, path: str | Path) -> Fingerprint:
        """A fingerprint saved with ``hpcannotate fingerprint --json > FILE`` (JSON or YAML)."""
        from hpcannotate.model.inputs import load_structured

        return cls.from_json(load_structured(path, "fingerprint"), str(path))

    def as_annotations(self):
        """The host's annotations as an ``Annotations`` set (canonical keys, validated like an image's)."""
        from hpcannotate.model.annotations import Annotations

        return Annotations.from_mapping(self.annotations, source="host fingerprint")


def _section(cls, data: Mapping[str, Any], name: str, where: str):
    value = data.get(name)
    if value is None:
        return cls()
    return from_plain(cls, value, f"{where}: {name}")


def _cpu(value: Any, where: str) -> CpuInfo:
    from hpcannotate.host.cpu import from_target

    if not isinstance(value, Mapping) or not isinstance(value.get("target"), str):
        raise InputError(f"{where}.target: missing (an archspec target name such as zen2)")
    if set(value) == {"target"}:
        return from_target(value["target"], f"{where}.target")
    cpu = from_plain(CpuInfo, dict(value), where)
    from_target(cpu.target, f"{where}.target")  # must be a known target
    return cpu
