"""Host software: the MPI a job would use, and the container runtimes installed.

``mpirun --version`` names the MPI on PATH (Open MPI, Intel MPI, or an MPICH
Hydra); ``mpichversion`` tells MPICH from MVAPICH2; ``ompi_info --version``
finds Open MPI without mpirun. Cray MPICH is found where HPE installs it,
``/opt/cray/pe/mpich/<version>`` (``default`` when the site set one), and on
the live host from ``$CRAY_MPICH_VERSION`` when a module loaded it. The ABI
version is only given where it is certain (``domain.mpi_abi_version``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate.host import commands as cmd
from hpcannotate.host.hostview import HostView
from hpcannotate.model.versions import version_key

CRAY_MPICH = "/opt/cray/pe/mpich"
VERSION = re.compile(r"\d+(?:\.\d+)+")


@dataclass
class MpiInstall:
    implementation: str
    version: str | None
    abi_version: str | None = None
    source: str = ""


@dataclass
class RuntimeInstall:
    name: str
    version: str | None
    banner: str = ""  # first line the runtime printed, e.g. "singularity-ce version 3.11.4"


@dataclass
class SoftwareInfo:
    mpi: list[MpiInstall] = field(default_factory=list)  # the first is the one on PATH
    container_runtimes: list[RuntimeInstall] = field(default_factory=list)

    @property
    def primary_mpi(self) -> MpiInstall | None:
        return self.mpi[0] if self.mpi else None


def parse_mpirun(output: str) -> tuple[str, str | None] | None:
    """(implementation, version) from ``mpirun --version``; Hydra (MPICH family) reports ``mpich``."""
    match = re.search(r"\((?:Open MPI|OpenRTE)\)\s+(\S+)", output)
    if match:
        return "openmpi", match.group(1)
    match = re.search(r"Intel\(R\) MPI Library[^\n]*?Version\s+(\S+)", output)
    if match:
        return "intelmpi", match.group(1)
    if "HYDRA build details" in output:
        match = re.search(r"^\s*Version:\s*(\S+)", output, re.MULTILINE)
        return "mpich", match.group(1) if match else None
    return None


def parse_mpichversion(output: str) -> tuple[str, str | None] | None:
    """(implementation, version) from ``mpichversion``: ``MVAPICH2 Version: 2.3.7`` or ``MPICH Version: 4.1.2``."""
    for label, implementation in (("MVAPICH2", "mvapich2"), ("MVAPICH", "mvapich2"), ("MPICH", "mpich")):
        match = re.search(rf"^{label} Version:\s*(\S+)", output, re.MULTILINE)
        if match:
            return implementation, match.group(1)
    return None


def parse_ompi_info(output: str) -> str | None:
    match = re.search(r"Open MPI v?(\d\S*)", output)
    return match.group(1) if match else None


def _cray_mpich(host: HostView) -> str | None:
    if host.live and os.environ.get("CRAY_MPICH_VERSION"):
        return os.environ["CRAY_MPICH_VERSION"]
    link = host.readlink(f"{CRAY_MPICH}/default")
    if link:
        target = Path(link).name
        if VERSION.fullmatch(target):
            return target
    versions = [d for d in host.listdir(CRAY_MPICH) if VERSION.fullmatch(d)]
    if not versions:
        return None
    return max(versions, key=version_key)


def mpi(host: HostView) -> list[MpiInstall]:
    from hpcannotate.model.domain import mpi_abi_version

    found: list[MpiInstall] = []

    def add(implementation: str, version: str | None, source: str) -> None:
        for known in found:
            if known.implementation == implementation:
                known.version = known.version or version
                known.abi_version = known.abi_version or mpi_abi_version(implementation, known.version)
                return
        found.append(MpiInstall(implementation, version, mpi_abi_version(implementation, version), source))

    rc, out = host.run(cmd.MPIRUN)
    on_path = parse_mpirun(out) if rc != cmd.NOT_FOUND else None
    rc_m, out_m = host.run(cmd.MPICHVERSION)
    mpich = parse_mpichversion(out_m) if rc_m == 0 else None
    if on_path and on_path[0] == "mpich" and mpich:
        on_path = mpich  # Hydra's version is MPICH's; mpichversion knows MVAPICH2 from MPICH
    if on_path:
        add(on_path[0], on_path[1], "mpirun --version")
    if mpich:
        add(mpich[0], mpich[1], "mpichversion")
    rc_o, out_o = host.run(cmd.OMPI_INFO)
    if rc_o == 0 and parse_ompi_info(out_o):
        add("openmpi", parse_ompi_info(out_o), "ompi_info --version")
    cray = _cray_mpich(host)
    if cray:
        add("cray-mpich", cray, CRAY_MPICH)
    return found


def runtimes(host: HostView) -> list[RuntimeInstall]:
    found = []
    for name, argv in cmd.RUNTIMES.items():
        rc, out = host.run(argv)
        if rc == cmd.NOT_FOUND:
            continue
        banner = next((line.strip() for line in out.splitlines() if line.strip()), "")
        match = VERSION.search(banner)
        found.append(RuntimeInstall(name, match.group(0) if match else None, banner))
    return found


def detect(host: HostView) -> SoftwareInfo:
    return SoftwareInfo(mpi(host), runtimes(host))
