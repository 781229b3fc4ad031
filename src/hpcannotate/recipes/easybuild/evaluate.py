"""Worker side of the EasyBuild adapter: runs inside ``isolation.run_isolated``, never in the CLI's process.

Easyconfigs are executed Python, so they are parsed here, in a worker
process, with easybuild-framework's ``EasyConfigParser`` (no modules tool and
no EasyBuild configuration needed). The result is plain JSON: per easyconfig
its typed facts (``facts.to_wire``: kind, and per field the value with its line,
fragment and note), the keys that could not be inferred with the reason, or a
one-line error. The parent rebuilds the facts with ``facts.from_wire``, strictly:
the easyconfig's code ran here and may have written a reply of its own.

One worker evaluates a whole batch of easyconfigs, so that a corpus of 12,000
files costs two interpreter start-ups instead of 12,000. Everything a batch
shares is cached for the life of the worker: directory listings of the
easyconfig trees (the index the toolchain look-ups use), parsed toolchain
easyconfigs and resolved toolchains. Each easyconfig gets its own deadline
(SIGALRM), so a looping easyconfig fails alone and the batch goes on; the
caller's ``run_isolated`` timeout stays the backstop for code a signal cannot
interrupt.
"""

from __future__ import annotations

import os
import re
import signal
import site
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hpcannotate.model import keynames as k
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.recipes.base import check_timeout
from hpcannotate.recipes.facts import App, Compiler, Cuda, Fabric, Fact, Mpi, Nccl, Python, Rocm, Sourced, to_wire
from hpcannotate.recipes.isolation import DEFAULT_TIMEOUT
from hpcannotate.recipes.packages import (
    COMPILER_PACKAGES,
    FABRIC_PACKAGES,
    MPI_PACKAGES,
    cuda_arch_to_sm,
    major_minor,
    mpi_abi_version,
)

# EasyBuild spellings of compilers that facts.COMPILER_PACKAGES does not know. ``intel`` is left out
# on purpose: in EasyBuild it names a toolchain (intel-compilers + impi + imkl), not a compiler.
# In EasyBuild, "intel" names a toolchain (compilers + impi + imkl), not a compiler.
EB_COMPILERS: dict[str, str] = {name: value for name, value in COMPILER_PACKAGES.items() if name != "intel"}
CUDA_NAMES = ("cuda", "cudacore")
SYSTEM_NAMES = ("system", "dummy")
EASYCONFIGS_SUBDIR = os.path.join("easybuild", "easyconfigs")
PLAIN_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")
VERSION = re.compile(r"[0-9]+(\.[0-9]+)*([.+~-]?[A-Za-z0-9]+)*")
TEMPLATE = re.compile(r"%\((\w+)\)s")
ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*=(?!=)", re.M)
TOOLCHAIN_EASYBLOCK = re.compile(r"^easyblock\s*=\s*['\"]Toolchain['\"]", re.M)

# the keys of the MPI and of the fabrics it reaches the network with, as one easyconfig can miss them together
MPI_KEYS = (k.MPI_IMPLEMENTATION, k.MPI_VERSION, k.MPI_ABI_VERSION)
FABRIC_KEYS = (k.COMMUNICATION_FRAMEWORK, k.UCX_VERSION, k.LIBFABRIC_VERSION)
# a fabric dependency -> the Fabric field its version goes in
FABRIC_VERSION_FIELDS = {"ucx": "ucx_version", "libfabric": "libfabric_version"}
TARGET_REASON = (
    "an easyconfig names no CPU target: EasyBuild compiles with -march=native for the build host "
    "(or what --optarch / toolchainopts optarch say); give --target"
)


class Deadline(BaseException):
    """Raised by SIGALRM when one easyconfig takes longer than its timeout.

    A BaseException, so that an easyconfig's (or EasyBuild's) ``except Exception`` cannot swallow it.
    """


class EasyconfigFailure(Exception):
    """An easyconfig that cannot be used; ``str()`` is the one-line reason (the caller prefixes the file)."""


# ----------------------------------------------------------------------------- entry points (run_isolated)
def evaluate_batch(payload: dict) -> dict:
    """Facts for every easyconfig in ``payload['paths']``: ``{"results": [{"facts": [...], "missing": [...],
    "warnings": [...]} | {"error": ...}]}`` (the facts in ``facts.to_wire``'s form, in the order found).

    ``payload``: paths, robot_paths (extra trees), timeout (seconds per easyconfig), progress (optional
    file where the index of the easyconfig being evaluated is written, so that the caller can tell
    which file killed or hung the worker).
    """
    timeout = payload.get("timeout", DEFAULT_TIMEOUT)
    if not check_timeout(timeout):  # 0 is not "the default": the caller validates, this is the backstop
        raise ValueError(f"timeout {timeout!r}: must be a positive number of seconds")
    robot_paths = [os.path.abspath(p) for p in payload.get("robot_paths", [])]
    # EasyBuild's modules take seconds to import on a busy machine: before the first deadline, not in it.
    import easybuild.framework.easyconfig.parser
    import easybuild.framework.easyconfig.types
    import easybuild.tools.build_log  # noqa: F401

    results = []
    with _progress(payload.get("progress")) as mark:
        for index, path in enumerate(payload["paths"]):
            mark(index)
            results.append(_evaluate_one(path, robot_paths, timeout))
    return {"results": results}


def parse_batch(payload: dict) -> dict:
    """The raw parser alone over ``payload['paths']``: the baseline the corpus bench compares against."""
    from easybuild.framework.easyconfig.parser import EasyConfigParser

    failures = 0
    for path in payload["paths"]:
        try:
            EasyConfigParser(path).get_config_dict()
        except Exception:  # the bench only counts them
            failures += 1
    return {"files": len(payload["paths"]), "failures": failures}


def _evaluate_one(path: str, robot_paths: list[str], timeout: float) -> dict:
    cwd = os.getcwd()
    try:
        with _deadline(timeout):
            return EasyconfigFacts(path, _search_roots(path, robot_paths)).infer()
    except Deadline:
        return {"error": f"evaluation did not finish within {timeout:g} s (raise it with --timeout)"}
    except SystemExit as exc:
        return {"error": f"the easyconfig called sys.exit({exc.code!r})"}
    except RecursionError:
        return {"error": "the easyconfig recurses without end"}
    except Exception as exc:  # every failure of one easyconfig becomes its one-line error
        return {"error": _one_line(exc)}
    finally:
        if os.getcwd() != cwd:  # an easyconfig may chdir; the next one must not notice
            os.chdir(cwd)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, (EasyconfigFailure, SyntaxError)) or type(exc).__name__ == "EasyBuildError":
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(_signum, _frame):
        raise Deadline

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _progress(path: str | None):
    """``mark(i)`` records (one pwrite) that easyconfig ``i`` is being evaluated, and since when."""
    if not path:
        yield lambda _index: None
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        yield lambda index: os.pwrite(fd, f"{index:>10d} {time.time():>20.3f}\n".encode(), 0)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- where easyconfigs are found
_LISTINGS: dict[str, frozenset[str]] = {}
_INSTALLED: list[str] | None = None


def installed_easyconfigs() -> list[str]:
    """Trees of the installed easybuild-easyconfigs package (``<prefix>/easybuild/easyconfigs``).

    Looked for where pip puts data files (sys.prefix, the user base, sysconfig's data path) and next to
    every sys.path entry, as EasyBuild's own ``get_paths_for`` does.
    """
    global _INSTALLED
    if _INSTALLED is None:
        prefixes = [sys.prefix, sys.base_prefix, sysconfig.get_path("data"), getattr(site, "USER_BASE", None)]
        prefixes += sys.path
        found: list[str] = []
        for prefix in prefixes:
            if not prefix:
                continue
            tree = os.path.abspath(os.path.join(prefix, EASYCONFIGS_SUBDIR))
            if tree not in found and os.path.isdir(tree):
                found.append(tree)
        _INSTALLED = found
    return _INSTALLED


def letter_dir(name: str) -> str:
    """EasyBuild's letter directory: the lower-case first letter, ``0`` for anything else."""
    letter = name[:1].lower()
    return letter if "a" <= letter <= "z" else "0"


def tree_root(path: str) -> str | None:
    """The easyconfigs tree a file lives in: the directory holding the letter dirs, or ``easybuild/easyconfigs``."""
    package_dir = os.path.dirname(path)
    letter = os.path.dirname(package_dir)
    if os.path.basename(letter) == letter_dir(os.path.basename(package_dir)):
        return os.path.dirname(letter)
    current = package_dir
    for _ in range(8):
        if os.path.basename(current) == "easyconfigs" and os.path.basename(os.path.dirname(current)) == "easybuild":
            return current
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return None


def _search_roots(path: str, robot_paths: list[str]) -> tuple[str, ...]:
    """Where toolchain easyconfigs are looked for, in order: the file's own tree (or its directory),
    the installed easybuild-easyconfigs, then --robot-path."""
    path = os.path.abspath(path)
    roots = [tree_root(path) or os.path.dirname(path), *installed_easyconfigs(), *robot_paths]
    return tuple(dict.fromkeys(roots))


def _listing(directory: str) -> frozenset[str]:
    """The names in one directory, read once per worker: the index every look-up goes through."""
    names = _LISTINGS.get(directory)
    if names is None:
        try:
            names = frozenset(os.listdir(directory))
        except OSError:
            names = frozenset()
        _LISTINGS[directory] = names
    return names


def find_easyconfig(roots: tuple[str, ...], name: str, stem: str) -> str | None:
    """``<stem>.eb`` where EasyBuild's robot looks: ``root/<letter>/<name>/``, ``root/<name>/``, ``root/``."""
    filename = stem + ".eb"
    for root in roots:
        for directory in (os.path.join(root, letter_dir(name), name), os.path.join(root, name), root):
            if filename in _listing(directory):
                return os.path.join(directory, filename)
    return None


def easyconfig_stem(name: str, version: str, toolchain: tuple[str, str], suffix: str = "", prefix: str = "") -> str:
    """``<name>-<versionprefix><version>-<toolchain>-<toolchainversion><versionsuffix>`` (no toolchain for SYSTEM)."""
    tc = "" if _is_system(toolchain) else f"-{toolchain[0]}-{toolchain[1]}"
    return f"{name}-{prefix}{version}{tc}{suffix}"


# ----------------------------------------------------------------------------- parsing
_PARSED: dict[str, dict] = {}


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise EasyconfigFailure(f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise EasyconfigFailure(f"cannot read: {exc.strerror}") from None


def parse_text(path: str, text: str) -> dict:
    """The easyconfig's parameters, as EasyConfigParser evaluates them (templates such as %(version)s stay)."""
    from easybuild.framework.easyconfig.parser import EasyConfigParser
    from easybuild.tools.build_log import EasyBuildError

    if "\0" in text:
        raise EasyconfigFailure("not a text file (contains NUL bytes)")
    try:
        return EasyConfigParser(filename=path, rawcontent=text).get_config_dict()
    except EasyBuildError as exc:
        raise EasyconfigFailure(_easybuild_reason(exc, text, path)) from None


def _easybuild_reason(exc: Exception, text: str, path: str | None = None) -> str:
    """EasyBuild's message, in the words of someone who wrote the easyconfig rather than EasyBuild's internals."""
    text_ = " ".join(str(exc).split())
    if path:  # EasyBuild compiles the text as "<string>": name the file the syntax error is in
        text_ = text_.replace("(<string>, line ", f"({os.path.basename(path)}, line ")
    conversion = re.match(r"Converting type of (.*?) \(<class '(\w+)'>\) to .* using <function (\w+) at \w+> failed",
                          text_)
    if conversion:
        value, kind, function = conversion.groups()
        names = _params_converted_by(function, set(ASSIGNMENT.findall(text)))
        which = f"{' or '.join(names)} = {value}" if names else f"a parameter is {value}"
        return f"{which}: not a valid value (a Python {kind})"
    return _plain_reason(text_)


def _params_converted_by(function: str, assigned: set[str]) -> list[str]:
    """The parameters set in the file whose EasyBuild type conversion is ``function`` (to name the culprit)."""
    from easybuild.framework.easyconfig.types import PARAMETER_TYPES, TYPE_CONVERSION_FUNCTIONS

    return sorted(p for p in assigned if p in PARAMETER_TYPES
                  and getattr(TYPE_CONVERSION_FUNCTIONS.get(PARAMETER_TYPES[p]), "__name__", None) == function)


def _plain_reason(text: str) -> str:
    missing = re.fullmatch(r"mandatory parameters not provided in pyheader: (.*)", text)
    if missing:
        names = missing.group(1)
        if names == "toolchain":
            return "no toolchain: set toolchain = SYSTEM or {'name': ..., 'version': ...}"
        return f"mandatory parameters missing: {names}"
    return text.replace("Parsing easyconfig file failed: ", "evaluation failed: ", 1)


def parse_cached(path: str) -> dict:
    """Toolchain and MPI easyconfigs are shared by thousands of files: parse each once per worker."""
    cfg = _PARSED.get(path)
    if cfg is None:
        cfg = parse_text(path, read_text(path))
        _PARSED[path] = cfg
    return cfg


def _is_system(toolchain: tuple[str, str] | None) -> bool:
    return toolchain is not None and toolchain[0].lower() in SYSTEM_NAMES


def as_toolchain(value: object) -> tuple[str, str] | None:
    """A toolchain in any spelling easyconfigs use (dict, (name, version), True/SYSTEM) -> (name, version)."""
    if value is True:
        return ("system", "system")
    if isinstance(value, dict) and "name" in value:
        return (str(value["name"]), str(value.get("version", "")))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (str(value[0]), str(value[1]))
    if isinstance(value, str) and value.upper() == "SYSTEM":
        return ("system", "system")
    return None


@dataclass(frozen=True)
class Dep:
    """One entry of dependencies: version and suffix as written; toolchain None = the parent's."""

    name: str
    version: str
    suffix: str = ""
    toolchain: tuple[str, str] | None = None
    kind: str = "dependencies"

    def tuple_text(self) -> str:
        parts = [repr(self.name), repr(self.version)]
        if self.suffix or self.toolchain:
            parts.append(repr(self.suffix))
        if self.toolchain:
            parts.append("SYSTEM" if _is_system(self.toolchain) else repr(self.toolchain))
        return f"({', '.join(parts)})"


def dependencies(cfg: dict, kinds: tuple[str, ...] = ("dependencies", "hiddendependencies")) -> list[Dep]:
    """The dependency entries of the given kinds; external modules and malformed entries are skipped."""
    deps = []
    for kind in kinds:
        value = cfg.get(kind) or []
        if not isinstance(value, (list, tuple)):
            continue
        for entry in value:
            dep = _as_dep(entry, kind)
            if dep is not None:
                deps.append(dep)
    return deps


def _as_dep(entry: object, kind: str) -> Dep | None:
    if isinstance(entry, dict):
        entry = (entry.get("name"), entry.get("version"), entry.get("versionsuffix", ""), entry.get("toolchain"))
    if not isinstance(entry, (tuple, list)) or len(entry) < 2:
        return None
    name, version = entry[0], entry[1]
    if not isinstance(name, str) or not isinstance(version, (str, int, float)) or version == "EXTERNAL_MODULE":
        return None
    suffix = entry[2] if len(entry) > 2 and isinstance(entry[2], str) else ""
    toolchain = as_toolchain(entry[3]) if len(entry) > 3 else None
    return Dep(name, str(version), suffix, toolchain, kind)


def fill_templates(text: str, values: dict[str, str]) -> str:
    """EasyBuild's %(name)s templates, for the ones we know; unknown ones stay as written."""
    if "%(" not in text:
        return text
    return TEMPLATE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def version_templates(prefix: str, version: str) -> dict[str, str]:
    """``cudaver``, ``cudamajver``, ``cudaminver``, ``cudashortver`` for prefix ``cuda`` (and ``py``...)."""
    parts = version.split(".")
    values = {f"{prefix}ver": version, f"{prefix}majver": parts[0]}
    if len(parts) > 1:
        values[f"{prefix}minver"] = parts[1]
        values[f"{prefix}shortver"] = ".".join(parts[:2])
    return values


# ----------------------------------------------------------------------------- toolchain resolution
@dataclass
class Component:
    """A package a toolchain brings, found by walking the toolchain easyconfigs."""

    name: str
    version: str  # the real version (from its easyconfig when found), else as written in the tuple
    toolchain: tuple[str, str] | None  # the toolchain it is built with
    spec_version: str  # version as written where it is used as a toolchain: NVHPC 22.7-CUDA-11.7.0
    file: str | None
    chain: tuple[str, ...]  # file names from the toolchain root down to this component
    deps: list[Dep] = field(default_factory=list)
    easyblock: str | None = None

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass
class Toolchain:
    """A toolchain resolved to its components (breadth first: direct components before nested ones)."""

    name: str
    version: str
    file: str | None
    components: list[Component] = field(default_factory=list)
    error: str | None = None

    def first(self, names: dict[str, str] | tuple[str, ...]) -> Component | None:
        return next((c for c in self.components if c.key in names and c.easyblock != "Toolchain"), None)

    @property
    def mpi(self) -> Component | None:
        return self.first(MPI_PACKAGES)

    @property
    def cuda(self) -> Component | None:
        return self.first(CUDA_NAMES)

    def subtoolchains(self) -> list[tuple[str, str]]:
        """The toolchain and the ones below it (those its components are built with), for dependency look-up."""
        result = [(self.name, self.version)]
        for comp in self.components:
            for tc in (comp.toolchain, (comp.name, comp.spec_version) if comp.key in EB_COMPILERS else None):
                if tc and not _is_system(tc) and tc not in result:
                    result.append(tc)
        return [*result, ("system", "system")]


_TOOLCHAINS: dict[tuple[tuple[str, ...], str, str], Toolchain] = {}


def resolve_toolchain(roots: tuple[str, ...], name: str, version: str) -> Toolchain:
    """The toolchain ``name/version`` with its components, cached per worker (errors included)."""
    key = (roots, name, version)
    toolchain = _TOOLCHAINS.get(key)
    if toolchain is None:
        toolchain = _resolve(roots, name, version)
        _TOOLCHAINS[key] = toolchain
    return toolchain


def _resolve(roots: tuple[str, ...], name: str, version: str) -> Toolchain:
    stem = f"{name}-{version}"
    file = find_easyconfig(roots, name, stem)
    toolchain = Toolchain(name, version, file)
    if file is None:
        toolchain.error = (
            f"unknown toolchain {name}/{version}: no {stem}.eb in {_describe_roots(roots)}"
            " (add the tree that has it with --robot-path)"
        )
        return toolchain
    try:
        root = _component(roots, name, version, ("system", "system"), file, ())
    except Deadline:
        raise
    except Exception as exc:  # a broken toolchain easyconfig breaks every file that uses it, with this reason
        toolchain.error = f"toolchain {name}/{version}: {os.path.basename(file)}: {_one_line(exc)}"
        return toolchain
    _walk(roots, toolchain, root)
    return toolchain


def _describe_roots(roots: tuple[str, ...]) -> str:
    return ", ".join(roots) if roots else "no easyconfig tree"


def _component(roots, name: str, version: str, toolchain, file: str | None, chain: tuple[str, ...]) -> Component:
    """A component; its easyconfig is parsed only when it is one whose contents matter (toolchain, compiler, MPI)."""
    comp = Component(name, version, toolchain, version, file, chain)
    if file is None:
        return comp
    must_parse = name.lower() in EB_COMPILERS or name.lower() in MPI_PACKAGES or not chain
    if not must_parse:
        try:
            must_parse = bool(TOOLCHAIN_EASYBLOCK.search(read_text(file)))
        except EasyconfigFailure:
            return comp
    if must_parse:
        cfg = parse_cached(file)
        comp.easyblock = cfg.get("easyblock") if isinstance(cfg.get("easyblock"), str) else None
        real = cfg.get("version")
        if isinstance(real, str) and real:
            comp.version = real
        comp.deps = dependencies(cfg)
    return comp


def _walk(roots: tuple[str, ...], toolchain: Toolchain, root: Component) -> None:
    """Breadth first through the toolchain easyconfigs: foss -> GCC, OpenMPI, ...; nested toolchains expanded."""
    queue = [root]
    seen = {(root.name, root.version)}
    toolchain.components.append(root)
    while queue:
        node = queue.pop(0)
        if node is not root and node.easyblock != "Toolchain" and node.key not in EB_COMPILERS:
            continue  # only toolchains and compilers bring further components; an MPI's deps are read, not walked
        parent_tc = node.toolchain or ("system", "system")
        for dep in node.deps:
            dep_tc = dep.toolchain or parent_tc
            if (dep.name, dep.version + dep.suffix) in seen:
                continue
            seen.add((dep.name, dep.version + dep.suffix))
            file = find_easyconfig(roots, dep.name, easyconfig_stem(dep.name, dep.version, dep_tc, dep.suffix))
            chain = (*node.chain, os.path.basename(file) if file else dep.tuple_text())
            comp = _component(roots, dep.name, dep.version, dep_tc, file, chain)
            comp.spec_version = dep.version + dep.suffix
            toolchain.components.append(comp)
            queue.append(comp)


# EasyBuild's MPI families (the MPI_FAMILY of its toolchain classes) -> mpi.implementation values.
EB_MPI_FAMILIES: dict[str, str] = {
    "OpenMPI": "openmpi", "MPICH": "mpich", "MPICH2": "mpich", "MVAPICH2": "mvapich2", "IntelMPI": "intelmpi",
}
_TOOLCHAIN_CLASSES: dict[str, type | None] = {}


def toolchain_class(name: str) -> type | None:
    """EasyBuild's own class for the toolchain ``name`` (``NVHPC`` -> easybuild.toolchains.nvhpc.NVHPC), or None.

    Its module is tried first (one import); EasyBuild's full search (every toolchain module) only when the
    module is named differently.
    """
    if name in _TOOLCHAIN_CLASSES:
        return _TOOLCHAIN_CLASSES[name]
    found = None
    try:
        import importlib

        from easybuild.tools.toolchain.toolchain import Toolchain as EBToolchain

        try:
            module = importlib.import_module("easybuild.toolchains." + name.lower().replace("-", "_"))
            found = next((c for c in vars(module).values() if isinstance(c, type) and issubclass(c, EBToolchain)
                          and getattr(c, "NAME", None) == name and c.__module__ == module.__name__), None)
        except ImportError:
            pass
        if found is None:
            from easybuild.tools.toolchain.utilities import search_toolchain

            found = search_toolchain(name)[0]
    except Exception:  # an EasyBuild without that toolchain (or a broken one): fall back to the easyconfig walk
        found = None
    _TOOLCHAIN_CLASSES[name] = found
    return found


def toolchain_mpi_family(toolchain: Toolchain) -> tuple[bool, str | None]:
    """(known, MPI family) of ``toolchain`` as EasyBuild's own toolchain class decides it.

    Some classes choose at instantiation: NVHPC >= 25 is NVHPC + NVHPCX (Open MPI) unless the toolchain
    depends on GCCcore (the legacy compiler-only NVHPC). The class's ``__new__`` is given the toolchain's
    dependencies as EasyBuild gives them, so that choice is EasyBuild's, not ours.
    """
    cls = toolchain_class(toolchain.name)
    if cls is None:
        return False, None
    if "__new__" in vars(cls):
        import contextlib
        import io

        root = toolchain.components[0] if toolchain.components else None
        tcdeps = [{"name": d.name, "version": d.version} for d in (root.deps if root else [])]
        try:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                cls = type(cls.__new__(cls, name=toolchain.name, version=toolchain.version, tcdeps=tcdeps))
        except Exception:  # the class could not decide without a configured EasyBuild: we cannot either
            return False, None
    return True, getattr(cls, "MPI_FAMILY", None)


def locate_dep(roots: tuple[str, ...], dep: Dep, hierarchy: list[tuple[str, str]]) -> str | None:
    """An app's dependency: with its own toolchain, else the app's toolchain or one below it (as the robot does)."""
    candidates = [dep.toolchain] if dep.toolchain else hierarchy
    for tc in candidates:
        file = find_easyconfig(roots, dep.name, easyconfig_stem(dep.name, dep.version, tc, dep.suffix))
        if file:
            return file
    return None


# ----------------------------------------------------------------------------- facts of one easyconfig
class EasyconfigFacts:
    """Everything one easyconfig says about the image: typed facts, sent as JSON for the adapter to turn into
    an Inference. Keys are full keys (``keynames``)."""

    def __init__(self, path: str, roots: tuple[str, ...]):
        self.path = path
        self.roots = roots
        self.text = read_text(path)
        self.cfg = parse_text(path, self.text)
        self.lines = {m.group(1): self.text.count("\n", 0, m.start()) + 1 for m in ASSIGNMENT.finditer(self.text)}
        self.facts: list[Fact] = []
        self.missing: list[list[str]] = []
        self.done: set[str] = set()
        self.warnings: list[str] = []
        self.templates: dict[str, str] = {}
        self.toolchain_is_self = False

    # -- output helpers
    @staticmethod
    def at(value: str, line: int | None = None, fragment: str | None = None, note: str | None = None) -> Sourced:
        """A value and where in the easyconfig it is (the parent fills in the layer and the file)."""
        return Sourced(value, Provenance(Layer.RECIPE, None, line, fragment, note))

    def found(self, fact: Fact) -> None:
        """Record ``fact``; the adapter adds the facts in this order, so that annotations keep it."""
        self.facts.append(fact)
        self.done.update(key for key, _ in fact.items())

    def miss(self, key: str, reason: str) -> None:
        if key not in self.done and all(known != key for known, _ in self.missing):
            self.missing.append([key, reason])

    def line_of(self, param: str) -> int | None:
        return self.lines.get(param)

    def source_line(self, line: int | None) -> str | None:
        if line is None:
            return None
        text = self.text.splitlines()[line - 1].strip()
        return text if len(text) <= 120 else text[:117] + "..."

    def param(self, param: str) -> tuple[int | None, str | None]:
        line = self.line_of(param)
        return line, self.source_line(line)

    def dep_line(self, dep: Dep) -> tuple[int | None, str | None]:
        match = re.search(r"""[(\[]\s*['"]""" + re.escape(dep.name) + r"""['"]\s*,""", self.text)
        if match:
            line = self.text.count("\n", 0, match.start()) + 1
            return line, self.source_line(line)
        return self.line_of(dep.kind), dep.tuple_text()

    # -- the inference
    def infer(self) -> dict:
        cfg = self.cfg
        name, version = str(cfg.get("name") or ""), str(cfg.get("version") or "")
        self.templates = {"name": name, "version": version, "nameletter": name[:1], "namelower": name.lower()}
        self.templates.update(_version_parts(version))
        self._app(name, version)
        own = [Dep(name, version, "", None, "self"), *dependencies(cfg)]
        build = dependencies(cfg, ("builddependencies",))
        self._dependency_templates(own + build)
        toolchain = self._toolchain()
        self._toolchain_templates(toolchain)
        own, build = self._filled(own), self._filled(build)
        self._cuda(own, build, toolchain)
        self._nccl(own)
        self._python(own)
        self._mpi_and_compiler(name, own, toolchain)
        self._optarch()
        return {"facts": [to_wire(fact) for fact in self.facts], "missing": self.missing, "warnings": self.warnings}

    def _app(self, name: str, version: str) -> None:
        app = App(name=self.at(name, *self.param("name")))
        if version:
            app.version = self.at(version, *self.param("version"))
        self.found(app)
        if not version:
            self.miss(k.APP_VERSION, "the easyconfig's version is empty")

    def _toolchain(self) -> Toolchain | None:
        """The resolved toolchain; None for SYSTEM. An easyconfig without one, or naming one no tree has, fails."""
        tc = as_toolchain(self.cfg.get("toolchain"))
        if tc is None:
            raise EasyconfigFailure("no toolchain: set toolchain = SYSTEM or {'name': ..., 'version': ...}")
        tc = (tc[0], fill_templates(tc[1], self.templates))  # NVHPC/25.3-CUDA-%(cudaver)s
        self.templates.update(toolchain_name=tc[0], toolchain_version=tc[1])
        if _is_system(tc):
            return self._itself_as_toolchain()
        toolchain = resolve_toolchain(self.roots, tc[0], tc[1])
        if toolchain.error:
            raise EasyconfigFailure(toolchain.error)
        return toolchain

    def _itself_as_toolchain(self) -> Toolchain | None:
        """A toolchain's own easyconfig (foss-2023a.eb, toolchain = SYSTEM) describes an image of that toolchain."""
        name, version = self.templates["name"], self.templates["version"]
        if self.cfg.get("easyblock") != "Toolchain" or not version:
            return None
        toolchain = resolve_toolchain(self.roots, name, version)
        if toolchain.error or not toolchain.file or not os.path.samefile(toolchain.file, self.path):
            return None  # another file of that name comes first in the search path: do not mix the two up
        self.toolchain_is_self = True
        return toolchain

    def tc_where(self, toolchain: Toolchain) -> tuple[int | None, str]:
        """Line and words for facts that come from the toolchain: its ``toolchain =`` line, or this file's deps."""
        if self.toolchain_is_self:
            return self.line_of("dependencies"), f"toolchain {toolchain.name}/{toolchain.version} (this easyconfig)"
        return self.line_of("toolchain"), f"toolchain = {toolchain.name}/{toolchain.version}"

    def _dependency_templates(self, deps: list[Dep]) -> None:
        """%(cudaver)s, %(pyver)s... come from the CUDA/Python/... dependency, as in EasyBuild."""
        prefixes = {"cuda": "cuda", "cudacore": "cuda", "python": "py", "perl": "perl", "r": "r", "java": "java"}
        for dep in deps:
            prefix = prefixes.get(dep.name.lower())
            if prefix and dep.kind != "self" and f"{prefix}ver" not in self.templates:
                self.templates.update(version_templates(prefix, dep.version))

    def _filled(self, deps: list[Dep]) -> list[Dep]:
        """Dependencies with templates filled in (``'-CUDA-%(cudaver)s'`` suffixes name real files)."""
        def fill(text: str) -> str:
            return fill_templates(text, self.templates)

        return [Dep(d.name, fill(d.version), fill(d.suffix),
                    (d.toolchain[0], fill(d.toolchain[1])) if d.toolchain else None, d.kind) for d in deps]

    def _toolchain_templates(self, toolchain: Toolchain | None) -> None:
        """The toolchain's CUDA stands in for %(cudaver)s when the easyconfig has none; then the versionsuffix."""
        if toolchain and toolchain.cuda and "cudaver" not in self.templates:
            self.templates.update(version_templates("cuda", toolchain.cuda.version))
        prefix = str(self.cfg.get("versionprefix") or "")
        suffix = fill_templates(str(self.cfg.get("versionsuffix") or ""), self.templates)
        self.templates.update(versionprefix=prefix, versionsuffix=suffix)

    def _tc_fragment(self, comp: Component, toolchain: Toolchain, tail: str = "") -> tuple[int | None, str, str]:
        chain = " -> ".join(comp.chain or (os.path.basename(toolchain.file or ""),))
        line, label = self.tc_where(toolchain)
        return line, f"{label} -> {chain}{tail}", f"read {comp.file or toolchain.file}"

    def _cuda(self, own: list[Dep], build: list[Dep], toolchain: Toolchain | None) -> None:
        dep = next((d for d in own + build if d.name.lower() in CUDA_NAMES), None)
        cuda = None
        if dep is not None and PLAIN_VERSION.fullmatch(dep.version):
            line, fragment = self.dep_line(dep) if dep.kind != "self" else self.param("version")
            note = "a build dependency" if dep.kind == "builddependencies" else None
            self.found(Cuda(version=self.at(major_minor(dep.version), line, fragment, note)))
            cuda = dep.version
        elif toolchain and toolchain.cuda and PLAIN_VERSION.fullmatch(toolchain.cuda.version):
            self.found(Cuda(version=self.at(major_minor(toolchain.cuda.version),
                                            *self._tc_fragment(toolchain.cuda, toolchain))))
            cuda = toolchain.cuda.version
        else:
            match = re.search(r"-CUDA-([0-9]+\.[0-9]+(?:\.[0-9]+)*)", self.templates.get("versionsuffix", ""))
            if match:
                line, fragment = self.param("versionsuffix")
                self.found(Cuda(version=self.at(major_minor(match.group(1)), line, fragment,
                                                "from the versionsuffix")))
                cuda = match.group(1)
        if cuda is None:
            self.miss(k.HARDWARE_GPU_NVIDIA_CUDA_VERSION, "no CUDA dependency, in the easyconfig or its toolchain")
        self._gpu_archs(cuda)

    def _gpu_archs(self, cuda: str | None) -> None:
        key = k.HARDWARE_GPU_NVIDIA_ARCHITECTURE
        caps = self.cfg.get("cuda_compute_capabilities")
        if isinstance(caps, (list, tuple)) and caps:
            sms = cuda_arch_to_sm(",".join(str(c) for c in caps))
            if sms:
                self.found(Cuda(architecture=self.at(",".join(sms), *self.param("cuda_compute_capabilities"))))
        elif cuda is not None:
            self.miss(key, "cuda_compute_capabilities is not set in the easyconfig: EasyBuild takes the GPU "
                           "architectures from --cuda-compute-capabilities at build time")
        else:
            self.miss(key, "no CUDA dependency and no cuda_compute_capabilities")
        amd = self.cfg.get("amdgcn_capabilities")
        if isinstance(amd, (list, tuple)) and amd:
            archs = [str(a) for a in amd if re.fullmatch(r"gfx[0-9a-f]{3,4}", str(a))]
            if archs:
                self.found(Rocm(architecture=self.at(",".join(archs), *self.param("amdgcn_capabilities"))))

    def _nccl(self, own: list[Dep]) -> None:
        dep = next((d for d in own if d.name.lower() == "nccl"), None)
        if dep is None or not VERSION.fullmatch(dep.version):
            self.miss(k.NCCL_VERSION, "no NCCL dependency")
            return
        line, fragment = self.dep_line(dep) if dep.kind != "self" else self.param("version")
        self.found(Nccl(version=self.at(dep.version, line, fragment)))

    def _python(self, own: list[Dep]) -> None:
        key = k.PYTHON_VERSION
        multi = self.cfg.get("multi_deps")
        if isinstance(multi, dict) and any(str(name).lower() == "python" for name in multi):
            versions = next(v for name, v in multi.items() if str(name).lower() == "python")
            self.miss(key, f"multi_deps builds for several Pythons ({', '.join(map(str, versions))})")
            return
        dep = next((d for d in own if d.name.lower() == "python"), None)
        if dep is None or not PLAIN_VERSION.fullmatch(dep.version):
            self.miss(key, "no Python among the (runtime) dependencies")
            return
        line, fragment = self.dep_line(dep) if dep.kind != "self" else self.param("version")
        self.found(Python(version=self.at(major_minor(dep.version), line, fragment)))

    # -- MPI, fabrics, compiler
    def _mpi_and_compiler(self, name: str, own: list[Dep], toolchain: Toolchain | None) -> None:
        if (not self._mpi_of_app(own, toolchain) and not self._mpi_of_toolchain(toolchain)
                and not self._mpi_bundled(toolchain)):
            if toolchain is None:
                reason = "toolchain = SYSTEM: the easyconfig uses no EasyBuild MPI (a binary may bundle its own)"
            else:
                reason = self._no_mpi_reason(own, toolchain)
            for key in (*MPI_KEYS, *FABRIC_KEYS):
                self.miss(key, reason)
        self._compiler(toolchain)

    def _mpi_of_app(self, own: list[Dep], toolchain: Toolchain | None) -> bool:
        """The easyconfig is an MPI itself, or lists one among its own dependencies."""
        dep = next((d for d in own if d.name.lower() in MPI_PACKAGES), None)
        if dep is None:
            return False
        impl = MPI_PACKAGES[dep.name.lower()]
        note = None
        if dep.kind == "self":  # the easyconfig of an MPI: its own dependencies are in this file
            line, fragment = self.param("version")
            deps = dependencies(self.cfg)
        else:
            line, fragment = self.dep_line(dep)
            hierarchy = toolchain.subtoolchains() if toolchain else [("system", "system")]
            file = locate_dep(self.roots, dep, hierarchy)
            deps = dependencies(parse_cached(file)) if file else None  # a broken MPI easyconfig fails this file
            note = f"read {file}" if file else None
        self._set_mpi(impl, dep.version, line, fragment, note)

        def where(fabric: Dep | None) -> tuple[int | None, str]:
            if fabric is None:
                return line, fragment or dep.tuple_text()
            if dep.kind == "self":
                return self.dep_line(fabric)
            return line, f"{fragment or dep.tuple_text()} -> {fabric.tuple_text()}"

        self._fabrics(impl, deps, where, note)
        return True

    def _mpi_of_toolchain(self, toolchain: Toolchain | None) -> bool:
        comp = toolchain.mpi if toolchain else None
        if comp is None:
            return False
        impl = MPI_PACKAGES[comp.key]
        line, fragment, note = self._tc_fragment(comp, toolchain)
        self._set_mpi(impl, comp.version, line, fragment, note)
        deps = comp.deps if comp.file else None

        def where(fabric: Dep | None) -> tuple[int | None, str]:
            return line, self._tc_fragment(comp, toolchain, f" -> {fabric.tuple_text()}" if fabric else "")[1]

        self._fabrics(impl, deps, where, note)
        return True

    def _mpi_bundled(self, toolchain: Toolchain | None) -> bool:
        """An MPI that EasyBuild's toolchain class says the toolchain has, with no easyconfig of its own.

        NVHPC 25+ toolchains bring NVHPCX (NVIDIA HPC-X, an Open MPI) inside the NVHPC installation: the
        toolchain easyconfig lists only nvidia-compilers and CUDA, so the walk finds no MPI component.
        """
        if toolchain is None:
            return False
        known, family = toolchain_mpi_family(toolchain)
        if not known or family is None:
            return False
        line, fragment = self.tc_where(toolchain)
        impl = EB_MPI_FAMILIES.get(family)
        cls = toolchain_class(toolchain.name)
        where = f"EasyBuild's toolchain class {cls.__module__}.{cls.__name__}" if cls else "EasyBuild"
        if impl is None:
            for key in MPI_KEYS:
                self.miss(key, f"{where} gives MPI family {family}, which has no mpi.implementation value")
        else:
            self.found(Mpi(implementation=self.at(
                impl, line, fragment,
                f"{where}: MPI family {family}, bundled with the toolchain (no MPI easyconfig of its own)")))
            reason = (f"the {family} bundled with {toolchain.name}/{toolchain.version} has no easyconfig "
                      "that states its version")
            self.miss(k.MPI_VERSION, reason)
            self.miss(k.MPI_ABI_VERSION, reason)
        for key in FABRIC_KEYS:
            self.miss(key, f"the MPI bundled with {toolchain.name}/{toolchain.version} has no easyconfig that "
                           "lists its UCX or libfabric")
        return True

    def _no_mpi_reason(self, own: list[Dep], toolchain: Toolchain) -> str:
        """Set mpi.implementation=none when neither the toolchain nor a dependency can bring an MPI."""
        for dep in own:
            if dep.toolchain and not _is_system(dep.toolchain) and dep.toolchain != (toolchain.name, toolchain.version):
                other = resolve_toolchain(self.roots, *dep.toolchain)
                if other.error:
                    return f"dependency {dep.name}: {other.error}"
                if other.mpi is not None:
                    return f"dependency {dep.name} is built with toolchain {'/'.join(dep.toolchain)}, which has an MPI"
        line, fragment = self.tc_where(toolchain)
        self.found(Mpi(implementation=self.at("none", line, fragment,
                                              "the toolchain has no MPI and no dependency is one")))
        return f"toolchain {toolchain.name}/{toolchain.version} has no MPI"

    def _set_mpi(self, impl: str, version: str, line: int | None, fragment: str | None, note: str | None) -> None:
        mpi = Mpi(implementation=self.at(impl, line, fragment, note))
        abi = None
        if VERSION.fullmatch(version):
            mpi.version = self.at(version, line, fragment, note)
            abi = mpi_abi_version(impl, version)
            if abi:
                mpi.abi_version = self.at(abi, line, fragment, f"{impl} {version} has ABI {abi}")
        self.found(mpi)
        if not VERSION.fullmatch(version):
            self.miss(k.MPI_VERSION, f"{version!r} is not a version")
            self.miss(k.MPI_ABI_VERSION, "the MPI version is unknown")
        elif not abi:
            self.miss(k.MPI_ABI_VERSION, f"no known ABI version for {impl} {version}")

    def _fabrics(self, impl: str, deps: list[Dep] | None, where, note: str | None) -> None:
        """communication.framework, ucx.version, libfabric.version from the MPI's own dependencies.

        ``where(dep)`` gives (line, fragment) for a dependency of the MPI; ``where(None)`` for the MPI itself.
        """
        if deps is None:
            for key in FABRIC_KEYS:
                self.miss(key, "the MPI's easyconfig was not found, so its dependencies (UCX, libfabric) are unknown")
            return
        fabric_deps = [d for d in deps if d.name.lower() in FABRIC_PACKAGES]
        frameworks = [FABRIC_PACKAGES[d.name.lower()] for d in fabric_deps]
        notes = [note] if note else []
        if impl == "intelmpi" and "libfabric" not in frameworks:
            # Intel MPI always reaches the network through libfabric (OFI), its bundled one unless a dependency
            frameworks.insert(0, "libfabric")
            notes.append("Intel MPI uses its bundled libfabric")
        for dep in fabric_deps:
            framework = FABRIC_PACKAGES[dep.name.lower()]
            if framework in FABRIC_VERSION_FIELDS and VERSION.fullmatch(dep.version):
                self.found(Fabric(**{FABRIC_VERSION_FIELDS[framework]: self.at(dep.version, *where(dep), note)}))
        if frameworks:
            places = [where(d) for d in fabric_deps] or [where(None)]
            self.found(Fabric(framework=self.at(",".join(dict.fromkeys(frameworks)), places[0][0],
                                                "; ".join(dict.fromkeys(f for _, f in places)),
                                                "; ".join(notes) or None)))
        else:
            self.miss(k.COMMUNICATION_FRAMEWORK, "the MPI's easyconfig lists no UCX or libfabric dependency")
        bundled = " (Intel MPI bundles its own)" if impl == "intelmpi" else ""
        self.miss(k.UCX_VERSION, "the MPI's easyconfig has no UCX dependency")
        self.miss(k.LIBFABRIC_VERSION, f"the MPI's easyconfig has no libfabric dependency{bundled}")

    def _compiler(self, toolchain: Toolchain | None) -> None:
        keys = (k.COMPILER_IMPLEMENTATION, k.COMPILER_VERSION)
        if toolchain is None:
            for key in keys:
                self.miss(key, "toolchain = SYSTEM: built with the build host's own compiler, which the easyconfig "
                               "does not name")
            return
        comp, reason = _toolchain_compiler(toolchain)
        if comp is None:
            for key in keys:
                self.miss(key, reason)
            return
        line, fragment, note = self._tc_fragment(comp, toolchain)
        if comp is toolchain.components[0]:
            line, fragment = self.tc_where(toolchain)
        compiler = Compiler(implementation=self.at(EB_COMPILERS[comp.key], line, fragment, note))
        if PLAIN_VERSION.fullmatch(comp.version):
            compiler.version = self.at(comp.version, line, fragment, note)
        self.found(compiler)
        if compiler.version is None:
            self.miss(k.COMPILER_VERSION, f"{comp.name} version {comp.version!r} is not a plain version")

    def _optarch(self) -> None:
        """A toolchainopts optarch pins compiler flags, not an archspec target: say so, do not guess."""
        opts = self.cfg.get("toolchainopts")
        optarch = opts.get("optarch") if isinstance(opts, dict) else None
        if optarch is False:
            self.warnings.append("toolchainopts optarch=False: built without -march flags (the compiler's generic "
                                 "default), so --target should be the generic architecture")
        elif optarch not in (None, True, ""):
            self.warnings.append(f"toolchainopts optarch={optarch!r} replaces EasyBuild's -march=native; "
                                 "make --target agree with it")
        self.miss(k.HARDWARE_CPU_OPTIMIZED_VERSION, TARGET_REASON)


def _toolchain_compiler(toolchain: Toolchain) -> tuple[Component | None, str]:
    """The toolchain's compiler: itself when it is one, else the one its MPI is built with, else its one compiler.

    GCCcore sits under GCC and under intel-compilers alike, so it only counts when there is no other.
    """
    root = toolchain.components[0]
    if root.key in EB_COMPILERS:
        return root, ""
    mpi = toolchain.mpi
    if mpi is not None and mpi.toolchain and not _is_system(mpi.toolchain):
        name, version = mpi.toolchain
        if name.lower() not in EB_COMPILERS:
            return None, f"{mpi.name} is built with {name}/{version}, a compiler hpcannotate does not know"
        comp = next((c for c in toolchain.components if (c.name, c.spec_version) == (name, version)), None)
        return comp or Component(name, version, None, version, None, (*mpi.chain[:-1], f"{name}-{version}")), ""
    unknown = [c.name for c in toolchain.components[1:] if c.key not in EB_COMPILERS and "compiler" in c.key]
    if unknown:
        return None, f"toolchain component {unknown[0]} is a compiler hpcannotate does not know"
    compilers = [c for c in toolchain.components if c.key in EB_COMPILERS and c.easyblock != "Toolchain"]
    main = [c for c in compilers if c.key != "gcccore"] or compilers
    if not main:
        return None, f"toolchain {toolchain.name}/{toolchain.version} names no compiler"
    if len({EB_COMPILERS[c.key] for c in main}) > 1:  # llvm-compilers bundles LLVM: one compiler, not two
        names = ", ".join(dict.fromkeys(c.name for c in main))
        return None, f"toolchain {toolchain.name}/{toolchain.version} has several compilers ({names})"
    return main[0], ""


def _version_parts(version: str) -> dict[str, str]:
    parts = version.split(".")
    values = {"version_major": parts[0]}
    if len(parts) > 1:
        values.update(version_minor=parts[1], version_major_minor=".".join(parts[:2]))
    return values
