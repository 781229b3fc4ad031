"""MPI, UCX, libfabric, CUDA and NCCL in an image: which libraries are there, and what releases files state.

The rules are documented in ``userland.py`` (one list for every key the probe
reads). Library file names of MPI, UCX and libfabric carry libtool interface
numbers, never used as releases; releases come from ``packages.py``.
"""

from __future__ import annotations

import json
import re

from hpcannotate.image.probe import packages
from hpcannotate.image.probe.model import Finding, Index, Userland, abs_path, in_image
from hpcannotate.image.probe.tree import ImageTree, join, parent_of
from hpcannotate.model import keynames as k
from hpcannotate.recipes.facts import Cuda, Fabric, Mpi, Nccl

PACKAGE_RELEASE = "the installed package's release"  # the rule that read a version from a package database


def stated_versions(tree: ImageTree, index: Index) -> list[packages.Stated]:
    """Every version a package database or pkg-config file in the image states."""
    stated: list[packages.Stated] = []
    status = tree.read_text("var/lib/dpkg/status")
    if status:
        stated += packages.parse_dpkg(status, "/var/lib/dpkg/status")
    for name in tree.list_dir("var/lib/dpkg/status.d"):
        text = tree.read_text(join("var/lib/dpkg/status.d", name))
        if text:
            stated += packages.parse_dpkg(text, f"/var/lib/dpkg/status.d/{name}")
    apk = tree.read_text("lib/apk/db/installed")
    if apk:
        stated += packages.parse_apk(apk, "/lib/apk/db/installed")
    for path in index.matching(r"(" + "|".join(map(re.escape, packages.PKGCONFIG_COMPONENTS)) + r")\.pc"):
        if parent_of(path).rpartition("/")[2] != "pkgconfig":
            continue
        text = tree.read_text(path)
        entry = packages.parse_pkgconfig(text, abs_path(path)) if text else None
        if entry:
            stated.append(entry)
    return stated


def _version_for(component: str, stated: list[packages.Stated], near: list[str]) -> packages.Stated | str:
    """The one release stated for a component (a .pc beside the library wins); or why there is none."""
    candidates = [s for s in stated if s.component == component]
    if not candidates:
        return f"no package database entry or pkg-config file states the {component} release"
    beside = [s for s in candidates if any(s.file.startswith(abs_path(d) + "/pkgconfig/") for d in near)]
    if len({s.version for s in beside}) == 1:
        return beside[0]
    if len({s.version for s in candidates}) == 1:
        return candidates[0]
    listing = ", ".join(sorted({f"{s.version} ({s.file})" for s in candidates}))
    return f"several {component} releases are stated: {listing}"


def _near(tree: ImageTree, directory: str, commands: tuple[str, ...]) -> str | None:
    """A command in the bin directory of the installation that holds ``directory``."""
    for up in ("..", "../.."):
        for command in commands:
            candidate = f"{directory}/{up}/bin/{command}"
            if tree.is_file(candidate):
                return abs_path(tree.resolve(candidate) or candidate)
    return None


def _mpi_family(tree: ImageTree, real: str, major: int) -> tuple[str, str]:
    """(implementation, why) of the MPI library at ``real`` with soname major ``major``."""
    directory = parent_of(real)
    siblings = tree.list_dir(directory)
    low = "/" + real.lower()
    if any(n.startswith("libopen-pal.so") for n in siblings):
        return "openmpi", f"libmpi.so.{major} beside libopen-pal"
    if major == 40:
        return "openmpi", "libmpi.so.40 is Open MPI's soname (3.0 and newer)"
    if major != 12:
        return "unknown", f"libmpi.so.{major} is neither Open MPI's libmpi.so.40 nor the MPICH ABI's libmpi.so.12"
    if re.search(r"/(intel|oneapi|impi)(/|$)", low):
        return "intelmpi", "libmpi.so.12 in an Intel MPI installation"
    found = _near(tree, directory, ("impi_info",))
    if found:
        return "intelmpi", f"libmpi.so.12 with {found}"
    found = _near(tree, directory, ("mpiname",))
    if found or "mvapich" in low:
        return "mvapich2", f"libmpi.so.12 with {found}" if found else "libmpi.so.12 in an MVAPICH2 installation"
    if "/cray/" in low:
        return "cray-mpich", "libmpi.so.12 in a Cray installation"
    found = _near(tree, directory, ("mpichversion", "mpichversion.mpich"))
    if found or any(n.startswith("libmpich.so") for n in siblings) or "mpich" in low:
        return "mpich", f"libmpi.so.12 with {found}" if found else "libmpi.so.12 of an MPICH installation"
    return "mpich-abi", "libmpi.so.12 (MPICH ABI); no file tells which implementation"


def mpi(tree: ImageTree, index: Index, stated: list[packages.Stated], out: Userland) -> None:
    libraries: dict[str, tuple[str, int, str]] = {}  # real file -> (name, major, path)
    for path, real in index.existing(r"(libmpi|libmpich)\.so\.\d+(\.\d+)*"):
        major = int(path.rpartition("/")[2].split(".so.")[1].split(".")[0])
        libraries.setdefault(real, (path.rpartition("/")[2], major, path))
    families: dict[str, list[tuple[str, int, str, str]]] = {}
    for real, (_, major, path) in sorted(libraries.items()):
        family, why = _mpi_family(tree, real, major)
        out.findings.append(Finding("mpi", family, abs_path(path), why))
        families.setdefault(family, []).append((real, major, why, path))
    if not families:
        for key in (k.MPI_IMPLEMENTATION, k.MPI_VERSION, k.MPI_ABI_VERSION):
            out.miss(key, "no libmpi.so in the image")
        return
    majors = {major for entries in families.values() for _, major, _, _ in entries}
    first_real, first_major, first_why, first_path = next(iter(families.values()))[0]
    if len(majors) == 1 and first_major in (12, 40):
        out.add(Mpi(abi_version=in_image(f"{first_major}.0", abs_path(first_path), f"soname libmpi.so.{first_major}",
                                         "libmpi.so.40: Open MPI ABI, libmpi.so.12: MPICH ABI")))
    else:
        out.miss(k.MPI_ABI_VERSION, f"MPI libraries of several ABIs: {', '.join(map(str, sorted(majors)))}")
    named = [f for f in families if f not in ("mpich-abi", "unknown")]
    if len(families) > 1:
        listing = "; ".join(f"{f}: {', '.join(abs_path(p) for _, _, _, p in e)}" for f, e in families.items())
        out.miss(k.MPI_IMPLEMENTATION, f"several MPI libraries: {listing}")
        out.miss(k.MPI_VERSION, "several MPI libraries")
        return
    if not named:
        out.miss(k.MPI_IMPLEMENTATION, f"{abs_path(first_path)}: {first_why}")
        out.miss(k.MPI_VERSION, "the MPI implementation is not known")
        return
    family = named[0]
    out.add(Mpi(implementation=in_image(family, abs_path(first_path), first_path.rpartition("/")[2], first_why)))
    near = [parent_of(r) for r, _, _, _ in families[family]]
    if family == "intelmpi":
        match = re.search(r"/mpi/(\d{4}\.\d+(?:\.\d+)?)/", abs_path(first_real))
        if match:
            out.add(Mpi(version=in_image(match.group(1), abs_path(first_real),
                                         f"installation directory mpi/{match.group(1)}",
                                         "Intel MPI's version directory")))
            return
    version = _version_for(family, stated, near)
    if isinstance(version, str):
        out.miss(k.MPI_VERSION, version)
    else:
        out.add(Mpi(version=in_image(version.version, version.file, version.fragment, PACKAGE_RELEASE)))


def fabric(tree: ImageTree, index: Index, stated: list[packages.Stated], out: Userland) -> None:
    ucx = index.existing(r"libucp\.so\.\d+(\.\d+)*")
    for path, _ in ucx:
        out.findings.append(Finding("ucx", "ucx", abs_path(path)))
    if ucx:
        version = _version_for("ucx", stated, [parent_of(r) for _, r in ucx])
        if isinstance(version, str):
            out.miss(k.UCX_VERSION, version + " (libucp.so.0.0.0 names no release)")
        else:
            out.add(Fabric(ucx_version=in_image(version.version, version.file, version.fragment, PACKAGE_RELEASE)))
    else:
        out.miss(k.UCX_VERSION, "no libucp.so in the image")
    fabric = index.existing(r"libfabric\.so\.\d+(\.\d+)*")
    for path, _ in fabric:
        out.findings.append(Finding("libfabric", "libfabric", abs_path(path)))
    if not fabric:
        out.miss(k.LIBFABRIC_VERSION, "no libfabric.so in the image")
        out.miss(k.LIBFABRIC_ABI_VERSION, "no libfabric.so in the image")
    else:
        version = _version_for("libfabric", stated, [parent_of(r) for _, r in fabric])
        if isinstance(version, str):
            out.miss(k.LIBFABRIC_VERSION, version + " (the .so numbers are libtool's, not the release)")
        else:
            out.add(Fabric(libfabric_version=in_image(version.version, version.file, version.fragment,
                                                      PACKAGE_RELEASE)))
        abis = set()
        for _, real in fabric:
            data = tree.read_bytes(real) or b""
            minors = {int(m) for m in re.findall(rb"FABRIC_1\.(\d+)\x00", data)}
            if minors:
                abis.add((f"1.{max(minors)}", real))
        if len({a for a, _ in abis}) == 1:
            abi, real = abis.pop()
            out.add(Fabric(libfabric_abi_version=in_image(
                abi, abs_path(real), f"symbol versions FABRIC_1.0 ... FABRIC_{abi}",
                "the newest FABRIC_1.N symbol version the library defines")))
        else:
            out.miss(k.LIBFABRIC_ABI_VERSION, "no FABRIC_1.N symbol versions found" if not abis else
                     f"libfabric libraries of several ABIs: {', '.join(sorted(a for a, _ in abis))}")
    for kind, pattern in (("verbs", r"libibverbs\.so\.\d+(\.\d+)*"), ("psm2", r"libpsm2\.so\.\d+(\.\d+)*")):
        for path, _ in index.existing(pattern):
            out.findings.append(Finding(kind, kind, abs_path(path)))


def _named(pattern: str, path: str, real: str) -> re.Match[str] | None:
    """The version a library's file name states: the name its links end at, else the name found."""
    return re.fullmatch(pattern, real.rpartition("/")[2]) or re.fullmatch(pattern, path.rpartition("/")[2])


def cuda(tree: ImageTree, index: Index, stated: list[packages.Stated], out: Userland) -> None:
    versions: dict[str, list[str]] = {}
    for path, real in index.existing(r"libcudart\.so(\.\d+)*"):
        match = _named(r"libcudart\.so\.(\d+\.\d+)(\.\d+)*", path, real)
        out.findings.append(Finding("cuda", "cudart", abs_path(path)))
        if match:
            versions.setdefault(match.group(1), []).append(abs_path(path))
    for path in index.tree.list_dir("usr/local"):
        if not path.startswith("cuda"):
            continue
        text = tree.read_text(f"usr/local/{path}/version.json")
        try:
            version = json.loads(text)["cuda"]["version"] if text else None
        except (ValueError, KeyError, TypeError):
            version = None
        match = re.match(r"(\d+\.\d+)", str(version or ""))
        if match:
            real = tree.resolve(f"usr/local/{path}/version.json") or f"usr/local/{path}/version.json"
            versions.setdefault(match.group(1), []).append(abs_path(real))
    key = k.HARDWARE_GPU_NVIDIA_CUDA_VERSION
    if len(versions) == 1:
        ((version, files),) = versions.items()
        out.add(Cuda(version=in_image(version, sorted(files)[0], ", ".join(sorted(set(files))),
                                      "libcudart.so.X.Y file names")))
    elif versions:
        listing = "; ".join(f"{v}: {', '.join(f)}" for v, f in sorted(versions.items()))
        out.miss(key, f"several CUDA runtimes: {listing}")
    else:
        out.miss(key, "no libcudart.so.X.Y and no /usr/local/cuda*/version.json")
    nccl = {}
    for path, real in index.existing(r"libnccl\.so(\.\d+)*"):
        out.findings.append(Finding("nccl", "nccl", abs_path(path)))
        match = _named(r"libnccl\.so\.(\d+\.\d+\.\d+)", path, real)
        if match:
            nccl.setdefault(match.group(1), abs_path(real))
    if len(nccl) == 1:
        ((version, path),) = nccl.items()
        out.add(Nccl(version=in_image(version, path, path.rpartition("/")[2], "libnccl.so.X.Y.Z file name")))
        return
    if nccl:
        out.miss(k.NCCL_VERSION, f"several NCCL libraries: {', '.join(sorted(nccl))}")
        return
    found = _version_for("nccl", stated, [])
    if isinstance(found, str):
        out.miss(k.NCCL_VERSION, "no libnccl.so.X.Y.Z" + ("" if "no package" in found else f"; {found}"))
    else:
        out.add(Nccl(version=in_image(found.version, found.file, found.fragment, PACKAGE_RELEASE)))
