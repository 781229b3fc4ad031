"""GPU facts: NVIDIA driver, the newest CUDA it runs, each GPU's compute capability; AMD gfx targets.

NVIDIA, in order of trust: ``nvidia-smi --query-gpu=name,driver_version,compute_cap``
(drivers before R510 refuse compute_cap, so the query is repeated without it
and the capability comes from the product name), the ``CUDA Version`` in the
``nvidia-smi`` banner, and without nvidia-smi ``/proc/driver/nvidia/version``
plus ``/proc/driver/nvidia/gpus/*/information``. When the banner is missing
the CUDA version comes from NVIDIA's driver table (``data/cuda.yaml``). R610 and
newer drivers spell the banner ``KMD Version:`` and ``CUDA UMD Version:``. When the query
prints nothing (a driver that refuses ``--query-gpu``), the banner's own GPU rows still say
which GPUs there are. Product names -> compute capability: ``data/nvidia-gpus.yaml``.

AMD: ``/sys/class/kfd/kfd/topology/nodes/*/properties`` carries
``gfx_target_version`` (90010 -> gfx90a); CPU nodes have 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hpcannotate.host import commands as cmd
from hpcannotate.host.hostview import HostView
from hpcannotate.model.versions import version_key


@dataclass
class NvidiaDevice:
    index: int
    name: str
    compute_capability: str | None = None
    architecture: str | None = None  # sm_90 for capability 9.0

    def __post_init__(self) -> None:
        if self.architecture is None and self.compute_capability:
            from hpcannotate.model.domain import cuda_arch_to_sm

            sms = cuda_arch_to_sm(self.compute_capability)
            self.architecture = sms[0] if sms else None


@dataclass
class NvidiaGpus:
    driver_version: str | None = None
    cuda_version: str | None = None  # the newest CUDA the driver runs
    cuda_version_source: str | None = None
    devices: list[NvidiaDevice] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)  # distinct sm_NN, oldest first
    source: str = ""

    def __post_init__(self) -> None:
        if not self.architectures:
            found = {d.architecture for d in self.devices if d.architecture}
            self.architectures = sorted(found, key=lambda s: int(re.sub(r"\D", "", s) or 0))


@dataclass
class AmdDevice:
    node: int
    gfx_target: str


@dataclass
class AmdGpus:
    devices: list[AmdDevice] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)  # distinct gfx targets
    source: str = "/sys/class/kfd/kfd/topology/nodes"

    def __post_init__(self) -> None:
        if not self.architectures:
            self.architectures = sorted({d.gfx_target for d in self.devices})


@dataclass
class GpuInfo:
    nvidia: NvidiaGpus | None = None
    amd: AmdGpus | None = None


def cuda_for_driver(driver: str) -> str | None:
    """The newest CUDA version a Linux driver runs (470.82.01 -> 11.4), from ``data/cuda.yaml``."""
    from hpcannotate.model.knowledge import cuda_min_drivers

    key = version_key(driver)
    for cuda, minimum in cuda_min_drivers():
        if key >= version_key(minimum):
            return cuda
    return None


def capability_for_product(name: str) -> str | None:
    """Compute capability from an NVIDIA product name ("NVIDIA A100-SXM4-40GB" -> 8.0)."""
    from hpcannotate.model.knowledge import gpu_capabilities

    for product, capability in gpu_capabilities():
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(product)}(?![A-Za-z0-9])", name, re.IGNORECASE):
            return capability
    return None


def _query_rows(output: str) -> list[list[str]]:
    rows = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 2 and re.fullmatch(r"\d+(\.\d+)+", cells[1]):
            rows.append(cells)
    return rows


def parse_banner(output: str) -> tuple[str | None, str | None]:
    """(driver version, CUDA version) from the ``nvidia-smi`` banner (R610+: ``KMD``/``CUDA UMD Version``)."""
    driver = re.search(r"(?:Driver|KMD) Version:\s*([\d.]+)", output)
    cuda = re.search(r"CUDA (?:UMD )?Version:\s*([\d.]+)", output)
    return (driver.group(1) if driver else None, cuda.group(1) if cuda else None)


# A GPU row of the banner's table: "|   0  NVIDIA B200      On  |   00000000:63:00.0 Off |"
_BANNER_GPU = re.compile(r"^\|\s+(\d+)\s+(.+?)\s+(?:On|Off)\s*\|\s*[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d",
                         re.MULTILINE)


def banner_gpus(output: str) -> list[tuple[int, str]]:
    """(index, name) of each GPU row of the ``nvidia-smi`` banner; long names end in ``...`` there."""
    return [(int(m.group(1)), m.group(2).strip()) for m in _BANNER_GPU.finditer(output)]


def _from_nvidia_smi(host: HostView) -> NvidiaGpus | None:
    rc, out = host.run(cmd.NVIDIA_SMI_QUERY)
    rows = _query_rows(out) if rc == 0 else []
    with_cc = bool(rows)
    if not rows and rc != cmd.NOT_FOUND:
        rc2, out2 = host.run(cmd.NVIDIA_SMI_QUERY_NO_CC)
        rows = _query_rows(out2) if rc2 == 0 else []
    # A capture may hold the banner alone (what most people paste): it still names driver, CUDA and GPUs.
    banner_rc, banner_out = host.run(cmd.NVIDIA_SMI)
    if rc == cmd.NOT_FOUND and banner_rc == cmd.NOT_FOUND:
        return None
    banner_driver, cuda = parse_banner(banner_out)
    devices = []
    if rows:
        source = "nvidia-smi --query-gpu"
        for index, cells in enumerate(rows):
            capability = cells[2] if with_cc and len(cells) > 2 and re.fullmatch(r"\d+\.\d+", cells[2]) else None
            devices.append(NvidiaDevice(index, cells[0], capability or capability_for_product(cells[0])))
        driver = rows[0][1]
    else:  # the query said nothing; the banner's table still lists the GPUs
        source = "nvidia-smi"
        devices = [NvidiaDevice(index, name, capability_for_product(name)) for index, name in banner_gpus(banner_out)]
        driver = banner_driver
        if not devices and not driver:
            return None  # nvidia-smi present but no driver talking to it
    gpus = NvidiaGpus(driver or banner_driver, cuda, "nvidia-smi" if cuda else None, devices, source=source)
    return _fill_cuda(gpus)


def _from_proc(host: HostView) -> NvidiaGpus | None:
    text = host.read("/proc/driver/nvidia/version")
    if text is None:
        return None
    match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    driver = match.group(1) if match else None
    devices = []
    for index, bus in enumerate(host.listdir("/proc/driver/nvidia/gpus")):
        info = host.read(f"/proc/driver/nvidia/gpus/{bus}/information") or ""
        model = re.search(r"^Model:\s*(.+)$", info, re.MULTILINE)
        name = model.group(1).strip() if model else bus
        devices.append(NvidiaDevice(index, name, capability_for_product(name)))
    return _fill_cuda(NvidiaGpus(driver, None, None, devices, source="/proc/driver/nvidia"))


def _fill_cuda(gpus: NvidiaGpus) -> NvidiaGpus:
    if gpus.cuda_version is None and gpus.driver_version:
        gpus.cuda_version = cuda_for_driver(gpus.driver_version)
        gpus.cuda_version_source = "driver table" if gpus.cuda_version else None
    return gpus


def gfx_name(target_version: int) -> str:
    """kfd's gfx_target_version (major*10000 + minor*100 + stepping) as a gfx name: 90010 -> gfx90a."""
    major, minor, stepping = target_version // 10000, (target_version // 100) % 100, target_version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def _amd(host: HostView) -> AmdGpus | None:
    base = "/sys/class/kfd/kfd/topology/nodes"
    devices = []
    for node in host.listdir(base):
        props = host.read(f"{base}/{node}/properties") or ""
        match = re.search(r"^gfx_target_version\s+(\d+)", props, re.MULTILINE)
        if match and int(match.group(1)) and node.isdigit():
            devices.append(AmdDevice(int(node), gfx_name(int(match.group(1)))))
    devices.sort(key=lambda d: d.node)
    return AmdGpus(devices) if devices else None


def detect(host: HostView) -> GpuInfo | None:
    """The host's GPUs, or None when it has none that a driver exposes."""
    nvidia = _from_nvidia_smi(host) or _from_proc(host)
    amd = _amd(host)
    if nvidia is None and amd is None:
        return None
    return GpuInfo(nvidia, amd)
