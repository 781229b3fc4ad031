"""Interconnect facts: RDMA devices (InfiniBand, RoCE, Omni-Path), Slingshot CXI, libfabric, UCX.

An RDMA device's kind comes from each port's ``link_layer`` (InfiniBand, or
Ethernet for RoCE); ``hfi1_*`` devices are Omni-Path. Slingshot NICs appear
under ``/sys/class/cxi``. The libfabric providers and version come from
``fi_info``; on HPE Cray systems libfabric also lives in
``/opt/cray/libfabric/<version>`` even when no module put fi_info on PATH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hpcannotate.host import commands as cmd
from hpcannotate.host.hostview import HostView
from hpcannotate.model.versions import version_key

IB_CLASS = "/sys/class/infiniband"
CXI_CLASS = "/sys/class/cxi"
CRAY_LIBFABRIC = "/opt/cray/libfabric"


@dataclass
class RdmaPort:
    port: int
    link_layer: str | None = None
    state: str | None = None
    rate: str | None = None


@dataclass
class RdmaDevice:
    name: str
    kind: str  # infiniband | roce | omnipath | <link layer>
    hca_type: str | None = None
    ports: list[RdmaPort] = field(default_factory=list)


@dataclass
class Libfabric:
    version: str | None = None
    api: str | None = None
    providers: list[str] = field(default_factory=list)
    source: str = "fi_info"


@dataclass
class Ucx:
    version: str | None = None
    source: str = "ucx_info -v"


FAST_KINDS = ("infiniband", "roce", "omnipath", "slingshot")


@dataclass
class InterconnectInfo:
    """The devices and libraries found, and what follows from them.

    ``kinds``, ``fast`` and ``frameworks`` are derived from the devices and libraries whenever an
    ``InterconnectInfo`` is made, a loaded fingerprint included: a stored or hand-written value can
    add to them (a network the files do not show) but never hide what the devices say.
    """

    rdma: list[RdmaDevice] = field(default_factory=list)
    cxi: list[str] = field(default_factory=list)
    libfabric: Libfabric | None = None
    ucx: Ucx | None = None
    kinds: list[str] = field(default_factory=list)  # infiniband, roce, omnipath, slingshot
    fast: bool = False  # a high-speed network an MPI should use instead of TCP
    frameworks: list[str] = field(default_factory=list)  # communication.framework items on offer

    def __post_init__(self) -> None:
        kinds = kinds_of(self.rdma, self.cxi)
        self.kinds = kinds + [k for k in self.kinds if k not in kinds]
        self.fast = bool(self.fast) or any(k in FAST_KINDS for k in self.kinds)
        frameworks = frameworks_of(self.rdma, self.libfabric, self.ucx)
        self.frameworks = frameworks + [f for f in self.frameworks if f not in frameworks]


def kinds_of(rdma: list[RdmaDevice], cxi: list[str]) -> list[str]:
    """Network kinds in the order found: each RDMA device's kind, then slingshot for CXI NICs."""
    kinds: list[str] = []
    for device in rdma:
        if device.kind not in kinds:
            kinds.append(device.kind)
    if cxi:
        kinds.append("slingshot")
    return kinds


def frameworks_of(rdma: list[RdmaDevice], libfabric: Libfabric | None, ucx: Ucx | None) -> list[str]:
    """``communication.framework`` items the host offers (ucx, libfabric, verbs, psm2)."""
    found = []
    if ucx:
        found.append("ucx")
    if libfabric:
        found.append("libfabric")
    if any(d.kind in ("infiniband", "roce") for d in rdma):
        found.append("verbs")
    if any(d.kind == "omnipath" for d in rdma):
        found.append("psm2")
    return found


def _state(text: str | None) -> str | None:
    # "4: ACTIVE" -> "ACTIVE"
    return text.split(":", 1)[-1].strip() if text else None


def _kind(name: str, link_layers: list[str]) -> str:
    if name.startswith("hfi1"):
        return "omnipath"
    layers = {layer.lower() for layer in link_layers if layer}
    if "infiniband" in layers:
        return "infiniband"
    if "ethernet" in layers:
        return "roce"
    return sorted(layers)[0] if layers else "rdma"


def rdma_devices(host: HostView) -> list[RdmaDevice]:
    devices = []
    for name in host.listdir(IB_CLASS):
        ports = []
        for port in host.listdir(f"{IB_CLASS}/{name}/ports"):
            if not port.isdigit():
                continue
            base = f"{IB_CLASS}/{name}/ports/{port}"
            ports.append(RdmaPort(int(port), host.read_line(f"{base}/link_layer"),
                                  _state(host.read_line(f"{base}/state")), host.read_line(f"{base}/rate")))
        ports.sort(key=lambda p: p.port)
        kind = _kind(name, [p.link_layer or "" for p in ports])
        devices.append(RdmaDevice(name, kind, host.read_line(f"{IB_CLASS}/{name}/hca_type") or None, ports))
    return devices


def parse_fi_providers(output: str) -> list[str]:
    """Provider names from ``fi_info -l`` (a ``name:`` line, then an indented ``version:``)."""
    providers = []
    for line in output.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_;.-]+):\s*", line)
        if match and match.group(1) not in providers:
            providers.append(match.group(1))
    return providers


def parse_fi_version(output: str) -> tuple[str | None, str | None]:
    """(libfabric version, API version) from ``fi_info --version``."""
    version = re.search(r"^libfabric:\s*(\S+)", output, re.MULTILINE)
    api = re.search(r"^libfabric api:\s*(\S+)", output, re.MULTILINE)
    return (version.group(1) if version else None, api.group(1) if api else None)


def parse_ucx_version(output: str) -> str | None:
    """The UCX version from ``ucx_info -v`` (``# Library version: 1.15.0``, older ``# UCT version=1.9.0``)."""
    match = re.search(r"Library version:\s*(\S+)", output) or re.search(r"UC[TPS] version=(\S+)", output)
    return match.group(1) if match else None


def _version_dirs(host: HostView, base: str) -> list[str]:
    return sorted((d for d in host.listdir(base) if re.fullmatch(r"\d+(\.\d+)+", d)),
                  key=version_key)


def libfabric(host: HostView) -> Libfabric | None:
    rc, out = host.run(cmd.FI_INFO_PROVIDERS)
    providers = parse_fi_providers(out) if rc == 0 else []
    version = api = None
    if rc != cmd.NOT_FOUND:
        rc_v, out_v = host.run(cmd.FI_INFO_VERSION)
        if rc_v == 0:
            version, api = parse_fi_version(out_v)
    if rc != cmd.NOT_FOUND and (providers or version):
        return Libfabric(version, api, providers, "fi_info")
    installed = _version_dirs(host, CRAY_LIBFABRIC)
    if installed:
        return Libfabric(installed[-1], None, [], f"{CRAY_LIBFABRIC}/{installed[-1]}")
    return None


def ucx(host: HostView) -> Ucx | None:
    rc, out = host.run(cmd.UCX_INFO)
    if rc != 0:
        return None
    return Ucx(parse_ucx_version(out))


def detect(host: HostView) -> InterconnectInfo:
    rdma = rdma_devices(host)
    cxi = [d for d in host.listdir(CXI_CLASS) if d.startswith("cxi")]
    return InterconnectInfo(rdma, cxi, libfabric(host), ucx(host))  # kinds, fast, frameworks follow
