"""What an image's user land is, read from its file system: the extraction table and the rules.

``TABLE`` says which files the probe records (by file name or by path) and which
of them it needs the bytes of; ``layers.apply_layer`` extracts exactly those,
and the rules below read only those, so extraction and inference cannot drift
apart. A wrong value is worse than no value: where the files do not say, a key
is left out and ``missing`` says why.

Rules (each value keeps the image path it came from):

- ``libc.implementation``/``glibc.version``: a ``libc.so.6`` in a system library
  directory that is a link to ``libc-X.Y.so`` (glibc < 2.34), or whose bytes hold
  glibc's banner ``GNU C Library ... version X.Y``; else musl when a
  ``ld-musl-ARCH.so.1`` loader is in ``/lib``.
- ``os.name``/``os.version``: ``ID``/``VERSION_ID`` of ``/etc/os-release`` (links followed).
- ``python.version``: what ``python3`` on PATH links to (``python3.11``), else the
  newest ``python3.X`` on PATH, else a ``libpython3.X`` library.
- ``shell.implementation``: root's login shell (``/etc/passwd``) first, then what
  ``/bin/sh`` is, then the other shells on PATH; ``sh`` when ``/bin/sh`` exists.
  A shell is named after the file its links end at (busybox's shell is ``ash``).
- ``tools.includes``: the tools of ``TOOLS`` with a command on PATH.
- ``path.extra``: directories on the image's PATH (its config ``Env``) that exist and are empty.
- MPI: ``libmpi.so.40`` is Open MPI (3.0 and newer), ``libmpi.so.N`` beside
  ``libopen-pal`` is Open MPI, ``libmpi.so.12``/``libmpich.so.12`` is the MPICH ABI,
  told apart where a file says so: a path under ``intel``/``oneapi``/``impi`` or an
  ``impi_info`` command is Intel MPI, ``mpiname`` or a ``mvapich`` path MVAPICH2, a
  ``cray`` path Cray MPICH, ``mpichversion``/``libmpich`` or an ``mpich`` path MPICH.
  ``mpi.abi.version`` is ``40.0``/``12.0`` from the soname, as the recipe adapters write it.
- Versions of MPI, UCX, libfabric and NCCL: a pkg-config file or the package
  database (``packages.py``); for NCCL also ``libnccl.so.X.Y.Z``; for Intel MPI the
  ``mpi/YYYY.N`` directory of its installation. Library file names of MPI, UCX and
  libfabric are libtool interface numbers, not releases: never used as versions.
- ``libfabric.abi.version``: the newest ``FABRIC_1.N`` symbol version that
  ``libfabric.so.1`` defines (libfabric's ABI is versioned exactly so).
- ``kernel.version``: ``LINUX_VERSION_CODE`` of ``/usr/include/linux/version.h``
  (the kernel headers the user land was built against), as ``X.Y``.
- ``hardware.gpu.nvidia.cuda.version``: ``libcudart.so.X.Y[.Z]`` file names and
  ``/usr/local/cuda*/version.json``, as ``X.Y``, when they agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hpcannotate.image.probe import libraries, packages
from hpcannotate.image.probe.model import Finding, Index, Userland, abs_path, in_image
from hpcannotate.image.probe.tree import FILE, ImageTree, join, parent_of, split
from hpcannotate.model import keynames as k
from hpcannotate.model.knowledge import shells
from hpcannotate.model.versions import version_key
from hpcannotate.recipes.facts import BaseOs, Kernel, Libc, Python, SearchPath, Shell, Tools

KIB = 1024
MIB = 1024 * KIB
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Keys the probe reads from a built image's files (the rules above), short names: what `render --explain`
# announces as still to come after the build.
PROBED_KEYS = tuple(key.removeprefix(k.SUPERCONTAINERS) for key in (
    k.LIBC_IMPLEMENTATION, k.GLIBC_VERSION, k.OS_NAME, k.OS_VERSION, k.PYTHON_VERSION, k.SHELL_IMPLEMENTATION,
    k.TOOLS_INCLUDES, k.PATH_EXTRA, k.MPI_IMPLEMENTATION, k.MPI_VERSION, k.MPI_ABI_VERSION, k.UCX_VERSION,
    k.LIBFABRIC_VERSION, k.LIBFABRIC_ABI_VERSION, k.NCCL_VERSION, k.KERNEL_VERSION,
    k.HARDWARE_GPU_NVIDIA_CUDA_VERSION,
))

# tool name in tools.includes -> commands that provide it
TOOLS: dict[str, tuple[str, ...]] = {
    "jq": ("jq",),
    "curl": ("curl",),
    "wget": ("wget",),
    "git": ("git",),
    "awscli": ("aws",),
    "ssh": ("ssh",),
    "rsync": ("rsync",),
    "numactl": ("numactl",),
    "hwloc": ("lstopo", "lstopo-no-graphics", "hwloc-ls"),
    "vim": ("vim", "vim.basic", "vim.tiny"),
    "vi": ("vi",),
    "nano": ("nano",),
    "less": ("less",),
    "strace": ("strace",),
    "gdb": ("gdb",),
    "valgrind": ("valgrind",),
    "make": ("make",),
    "cmake": ("cmake",),
    "gcc": ("gcc",),
    "g++": ("g++",),
    "gfortran": ("gfortran",),
    "python3": ("python3",),
    "pip": ("pip3", "pip"),
    "perl": ("perl",),
    "tar": ("tar",),
    "gzip": ("gzip",),
    "bzip2": ("bzip2",),
    "xz": ("xz",),
    "zstd": ("zstd",),
    "unzip": ("unzip",),
    "file": ("file",),
    "ps": ("ps",),
    "mpirun": ("mpirun", "mpiexec"),
    "ucx_info": ("ucx_info",),
    "fi_info": ("fi_info",),
    "ibv_devinfo": ("ibv_devinfo",),
}

# the shells looked for on PATH (data/shells.yaml; /bin/sh is looked at on its own, first)
SHELLS = tuple(name for name in shells() if name != "sh")
# the file a shell's links end at -> shell.implementation
SHELL_FILES = {"busybox": "ash", "ksh93": "ksh", "bash": "bash", "dash": "dash", "ash": "ash", "zsh": "zsh",
               "ksh": "ksh", "mksh": "mksh", "tcsh": "tcsh", "csh": "csh", "bsd-csh": "csh", "fish": "fish",
               "sh": "sh"}


@dataclass(frozen=True)
class Want:
    """One row of the extraction table."""

    what: str  # what the rules learn from it
    names: str = ""  # regular expression on the file name (full match)
    paths: str = ""  # regular expression on the path without its leading / (full match)
    content: int = 0  # bytes of the file the rules read (0: name, type and link target are enough)


_TOOL_NAMES = sorted({re.escape(name) for names in TOOLS.values() for name in names})
_SHELL_NAMES = sorted({re.escape(name) for name in (*SHELL_FILES, *SHELLS)})

TABLE: tuple[Want, ...] = (
    Want("commands (what links on PATH end at)", paths=r"(.*/)?s?bin/[^/]+"),
    Want("OS name and version", paths=r"(etc|usr/lib)/os-release", content=64 * KIB),
    Want("root's login shell", paths=r"etc/passwd", content=1 * MIB),
    Want("glibc's version banner", names=r"libc\.so\.6", content=32 * MIB),
    Want("glibc's version in a file name (before 2.34)", names=r"libc-\d+\.\d+(\.\d+)?\.so"),
    Want("musl", names=r"ld-musl-[A-Za-z0-9_]+\.so\.1|libc\.musl-[A-Za-z0-9_]+\.so\.1"),
    Want("package versions (dpkg, apk)",
         paths=r"var/lib/dpkg/status|var/lib/dpkg/status\.d/[^/]+|lib/apk/db/installed", content=128 * MIB),
    Want("versions in pkg-config files",
         paths=r"(.*/)?pkgconfig/(" + "|".join(map(re.escape, packages.PKGCONFIG_COMPONENTS)) + r")\.pc",
         content=64 * KIB),
    Want("CUDA toolkit version", paths=r"usr/local/cuda[^/]*/version\.json", content=64 * KIB),
    Want("kernel headers version", paths=r"usr/include/linux/version\.h", content=16 * KIB),
    Want("MPI libraries", names=r"(libmpi|libmpich|libmpifort|libopen-pal)\.so(\.\d+)*"),
    Want("commands that tell MPI implementations apart",
         names=r"mpichversion(\.mpich)?|mpiname|impi_info|ompi_info(\.openmpi)?"),
    Want("UCX", names=r"libucp\.so(\.\d+)*"),
    Want("libfabric and its ABI", names=r"libfabric\.so(\.\d+)*", content=32 * MIB),
    Want("verbs and PSM2", names=r"(libibverbs|libpsm2)\.so(\.\d+)*"),
    Want("CUDA runtime", names=r"libcudart\.so(\.\d+)*"),
    Want("NCCL", names=r"libnccl\.so(\.\d+)*"),
    Want("Python", names=r"python3?(\.\d+)?|libpython3\.\d+[a-z]*\.so(\.\d+)*"),
    Want("shells", names="|".join(_SHELL_NAMES)),
    Want("tools", names="|".join(_TOOL_NAMES)),
)


class Selection:
    """``TABLE`` compiled for ``layers.apply_layer``: one regular expression for names, one for paths."""

    def __init__(self, table: Iterable[Want] = TABLE):
        rows = list(table)
        self._rows = rows
        self._names = re.compile("|".join(f"(?P<r{i}>{w.names})" for i, w in enumerate(rows) if w.names))
        self._paths = re.compile("|".join(f"(?P<r{i}>{w.paths})" for i, w in enumerate(rows) if w.paths))

    def limit(self, path: str) -> int | None:
        best: int | None = None
        for regex, text in ((self._paths, path), (self._names, path.rpartition("/")[2])):
            found = regex.fullmatch(text)
            if found and found.lastgroup:
                content = self._rows[int(found.lastgroup[1:])].content
                best = content if best is None else max(best, content)
        return best


def multiarch(architecture: str) -> str:
    return {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu",
            "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu", "386": "i386-linux-gnu"}.get(
                architecture, "x86_64-linux-gnu")


def library_dirs(architecture: str) -> list[str]:
    triplet = multiarch(architecture)
    return [f"lib/{triplet}", f"usr/lib/{triplet}", "lib64", "usr/lib64", "lib", "usr/lib"]


def path_dirs(config: dict) -> tuple[list[str], str]:
    """The directories of the image's PATH (config ``Env``), and where that PATH came from."""
    env = (config.get("config") or {}).get("Env") or []
    for item in env:
        if isinstance(item, str) and item.startswith("PATH="):
            return [d for d in item[5:].split(":") if d.startswith("/")], item
    return DEFAULT_PATH.split(":"), f"PATH={DEFAULT_PATH} (the image config sets none: the runtimes' default)"


def _which(tree: ImageTree, dirs: list[str], name: str) -> str | None:
    for directory in dirs:
        candidate = join("/".join(split(directory)), name)
        node = tree.lookup(candidate)
        if node is not None and node.kind == FILE:
            return candidate
    return None


# -- rules -----------------------------------------------------------------------------------------


def _os(tree: ImageTree, out: Userland) -> None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        text = tree.read_text(path)
        if text is None:
            continue
        real = abs_path(tree.resolve(path) or path)
        fields = {}
        for line in text.splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#"):
                fields[name] = value.strip().strip("\"'")
        if fields.get("ID"):
            out.add(BaseOs(name=in_image(fields["ID"], real, f"ID={fields['ID']}", "ID in os-release")))
        else:
            out.miss(k.OS_NAME, f"{real} has no ID")
        if fields.get("VERSION_ID"):
            out.add(BaseOs(version=in_image(fields["VERSION_ID"], real, f"VERSION_ID={fields['VERSION_ID']}",
                                            "VERSION_ID in os-release")))
        else:
            out.miss(k.OS_VERSION, f"{real} has no VERSION_ID (a rolling or testing release)")
        return
    out.miss(k.OS_NAME, "no /etc/os-release or /usr/lib/os-release")
    out.miss(k.OS_VERSION, "no /etc/os-release or /usr/lib/os-release")


GLIBC_BANNER = re.compile(rb"GNU C Library [^\n\x00]{0,200}?version (\d+\.\d+)(?:\.\d+)?")


def _libc(tree: ImageTree, index: Index, architecture: str, out: Userland) -> None:
    dirs = library_dirs(architecture)
    seen: set[str] = set()
    for directory in dirs:
        path = join(directory, "libc.so.6")
        real = tree.resolve(path)
        if real is None or real in seen or tree.nodes[real].kind != FILE:
            continue
        seen.add(real)
        hops = tree.chain(path)
        named = re.fullmatch(r"libc-(\d+\.\d+)(?:\.\d+)?\.so", real.rpartition("/")[2])
        data = tree.read_bytes(real)
        banner = GLIBC_BANNER.search(data) if data else None
        if named:
            out.findings.append(Finding("libc", "glibc", abs_path(real), " -> ".join(hops)))
            why = "libc.so.6 links to libc-X.Y.so"
            out.add(Libc(implementation=in_image("glibc", hops[0], " -> ".join(hops), why),
                         glibc_version=in_image(named.group(1), hops[0], " -> ".join(hops), why)))
            return
        if banner:
            text = banner.group(0).decode("ascii", "replace")
            out.findings.append(Finding("libc", "glibc", abs_path(real), text))
            why = "glibc's banner in libc.so.6"
            out.add(Libc(implementation=in_image("glibc", abs_path(real), text, why),
                         glibc_version=in_image(banner.group(1).decode(), abs_path(real), text, why)))
            return
    musl = [p for p, _ in index.existing(r"ld-musl-[A-Za-z0-9_]+\.so\.1") if parent_of(p) in ("lib", "usr/lib")]
    if musl:
        out.findings.append(Finding("libc", "musl", abs_path(musl[0])))
        out.add(Libc(implementation=in_image("musl", abs_path(musl[0]), None, "the musl loader is in /lib")))
        out.miss(k.GLIBC_VERSION, "the C library is musl")
        return
    if seen:
        out.miss(k.LIBC_IMPLEMENTATION, f"libc.so.6 in {', '.join(abs_path(s) for s in sorted(seen))} has no glibc "
                                         "banner and no libc-X.Y.so name")
    else:
        out.miss(k.LIBC_IMPLEMENTATION, "no libc.so.6 in the system library directories and no musl loader "
                                        "(static binaries only?)")
    out.miss(k.GLIBC_VERSION, "no glibc found")


def _python(tree: ImageTree, index: Index, dirs: list[str], out: Userland) -> None:
    found = _which(tree, dirs, "python3")
    if found:
        hops = tree.chain(found)
        real = tree.resolve(found) or found
        version = re.fullmatch(r"python(3\.\d+)[a-z]?", real.rpartition("/")[2])
        if version:
            out.add(Python(version=in_image(version.group(1), hops[0], " -> ".join(hops), "python3 on PATH")))
            return
    versions = []
    for directory in dirs:
        for name in tree.list_dir("/".join(split(directory))):
            match = re.fullmatch(r"python(3\.\d+)", name)
            if match and tree.is_file(join("/".join(split(directory)), name)):
                versions.append((version_key(match.group(1)), match.group(1), join(directory, name)))
    if versions:
        _, version, path = max(versions)
        out.add(Python(version=in_image(version, path, None, "the newest python3.X on PATH")))
        return
    libs = []
    for path, _ in index.existing(r"libpython3\.\d+[a-z]*\.so(\.\d+)*"):
        match = re.match(r"libpython(3\.\d+)", path.rpartition("/")[2])
        if match:
            libs.append((version_key(match.group(1)), match.group(1), path))
    if libs:
        _, version, path = max(libs)
        out.add(Python(version=in_image(version, abs_path(path), None, "libpython3.X (no python3 on PATH)")))
        return
    out.miss(k.PYTHON_VERSION, "no python3 on PATH and no libpython3")


def _shell_of(tree: ImageTree, path: str) -> str | None:
    real = tree.resolve(path)
    if real is None or tree.nodes[real].kind != FILE:
        return None
    return SHELL_FILES.get(re.sub(r"[-.]?\d[\d.]*$", "", real.rpartition("/")[2]))


def _shells(tree: ImageTree, dirs: list[str], out: Userland) -> None:
    order: list[tuple[str, str, str]] = []  # (implementation, file, evidence)
    passwd = tree.read_text("etc/passwd")
    for line in (passwd or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] == "root" and fields[6].startswith("/"):
            shell = _shell_of(tree, fields[6])
            if shell:
                order.append((shell, "/etc/passwd", f"root's shell {' -> '.join(tree.chain(fields[6]))}"))
            break
    has_sh = tree.is_file("bin/sh")
    if has_sh:
        shell = _shell_of(tree, "bin/sh")
        if shell:
            order.append((shell, "/bin/sh", " -> ".join(tree.chain("bin/sh"))))
    for name in SHELLS:
        found = _which(tree, dirs, name)
        shell = _shell_of(tree, found) if found else None
        if found and shell:
            order.append((shell, abs_path(found), " -> ".join(tree.chain(found))))
    if has_sh:
        order.append(("sh", "/bin/sh", "/bin/sh exists"))
    names, evidence = [], []
    for shell, _, why in order:
        if shell not in names:
            names.append(shell)
            evidence.append(f"{shell}: {why}")
    if names:
        out.add(Shell(implementation=in_image(",".join(names), order[0][1], "; ".join(evidence),
                                              "root's login shell, then /bin/sh, then the shells on PATH")))
    else:
        out.miss(k.SHELL_IMPLEMENTATION, "no shell on PATH and no /bin/sh")


def _tools(tree: ImageTree, dirs: list[str], path_text: str, out: Userland) -> None:
    found = []
    for tool, commands in TOOLS.items():
        for command in commands:
            where = _which(tree, dirs, command)
            if where:
                found.append((tool, abs_path(where)))
                break
    if found:
        out.add(Tools(includes=in_image(",".join(t for t, _ in found), found[0][1],
                                        ", ".join(f"{t}={w}" for t, w in found),
                                        f"commands on {path_text.split(' ')[0]}")))
    else:
        out.miss(k.TOOLS_INCLUDES, f"none of the known tools ({', '.join(TOOLS)}) is on PATH")


def _path_extra(tree: ImageTree, dirs: list[str], path_text: str, out: Userland) -> None:
    empty, seen = [], set()
    for directory in dirs:
        real = tree.resolve("/".join(split(directory)))
        if real is None or real in seen:
            continue
        seen.add(real)
        if tree.is_empty_dir(real):
            empty.append(directory)
    if empty:
        out.add(SearchPath(extra=in_image(":".join(empty), "config", path_text,
                                          "directories on PATH that exist and are empty")))
    else:
        out.miss(k.PATH_EXTRA, "no directory on the image's PATH is empty")


def _kernel_headers(tree: ImageTree, out: Userland) -> None:
    text = tree.read_text("usr/include/linux/version.h")
    code = re.search(r"#define\s+LINUX_VERSION_CODE\s+(\d+)", text or "")
    if not code:
        out.miss(k.KERNEL_VERSION, "no /usr/include/linux/version.h (kernel headers not installed)")
        return
    number = int(code.group(1))
    version = f"{number >> 16}.{(number >> 8) & 0xFF}"
    out.add(Kernel(version=in_image(version, "/usr/include/linux/version.h", code.group(0), "LINUX_VERSION_CODE")))


def infer_userland(tree: ImageTree, config: dict) -> Userland:
    """Every value the rules can read from ``tree``; ``config`` is the image config (PATH, architecture)."""
    out = Userland()
    index = Index(tree)
    dirs, path_text = path_dirs(config)
    architecture = str(config.get("architecture") or "amd64")
    stated = libraries.stated_versions(tree, index)
    _os(tree, out)
    _libc(tree, index, architecture, out)
    _python(tree, index, dirs, out)
    _shells(tree, dirs, out)
    _tools(tree, dirs, path_text, out)
    _path_extra(tree, dirs, path_text, out)
    libraries.mpi(tree, index, stated, out)
    libraries.fabric(tree, index, stated, out)
    libraries.cuda(tree, index, stated, out)
    _kernel_headers(tree, out)
    return out
