"""Reading a concretized Spack environment (``spack.lock``, lockfile versions 5 and 6).

A lock is concrete: every node carries its version, variants, target and the
dependency edges with the virtuals they provide (``mpi``, ``libc``, and in
Spack 1.x the ``c``/``cxx``/``fortran`` compilers). So a lock answers what a
spack.yaml can only constrain. Externals may carry a more generic target than
the packages Spack builds (a system glibc is ``x86_64``), so the CPU target is
taken from the roots, never from an arbitrary node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.model.inputs import read_text
from hpcannotate.model.keynames import (
    APP_NAME,
    APP_VERSION,
    COMMUNICATION_FRAMEWORK,
    COMPILER_IMPLEMENTATION,
    COMPILER_VERSION,
    HARDWARE_CPU_OPTIMIZED_MODE,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    HARDWARE_GPU_NVIDIA_ARCHITECTURE,
    HARDWARE_GPU_NVIDIA_CUDA_VERSION,
    LIBC_IMPLEMENTATION,
    MPI_ABI_VERSION,
    MPI_IMPLEMENTATION,
    MPI_VERSION,
    OS_NAME,
)
from hpcannotate.recipes.base import Inference, InferOptions, apply_target
from hpcannotate.recipes.facts import (
    App,
    BaseOs,
    Compiler,
    Cuda,
    Fabric,
    Fact,
    Libc,
    Mpi,
    Nccl,
    Python,
    Recipe,
    Rocm,
    Sourced,
)
from hpcannotate.recipes.packages import (
    COMPILER_PACKAGES,
    INFRASTRUCTURE,
    MPI_PACKAGES,
    bundled_mpi_reason,
    cuda_arch_to_sm,
    is_release_version,
    major_minor,
    mpi_abi_version,
)

SUPPORTED_LOCKFILE_VERSIONS = (5, 6)

# variant value of an MPI (openmpi ``fabrics``, mpich/mvapich ``netmod``, mvapich2 ``fabrics``) -> framework
FABRIC_VALUES = {
    "ucx": "ucx",
    "ofi": "libfabric",
    "libfabric": "libfabric",
    "nemesisofi": "libfabric",
    "psm2": "psm2",
    "verbs": "verbs",
    "tcp": "tcp",
    "sock": "tcp",
}
FABRIC_VARIANTS = ("fabrics", "netmod")
FABRIC_BOOL_VARIANTS = {"external-libfabric": "libfabric"}
FABRIC_DEPENDENCIES = {"ucx": "ucx", "libfabric": "libfabric"}

_OS_RE = re.compile(r"([a-z]+)(\d[\d.]*)")
# Spack's platform_os names whose prefix is the distribution's os-release ID.
KNOWN_OS = frozenset({"ubuntu", "debian", "rhel", "centos", "rocky", "almalinux", "fedora", "sles", "amzn"})


@dataclass
class Edge:
    name: str
    hash: str
    deptypes: tuple[str, ...]
    virtuals: tuple[str, ...]


@dataclass
class LockNode:
    hash: str
    name: str
    version: str
    data: dict
    edges: list[Edge] = field(default_factory=list)

    @property
    def parameters(self) -> dict:
        params = self.data.get("parameters")
        return params if isinstance(params, dict) else {}

    @property
    def target(self) -> str | None:
        arch = self.data.get("arch")
        target = arch.get("target") if isinstance(arch, dict) else None
        if isinstance(target, dict):
            target = target.get("name")
        return target if isinstance(target, str) and target else None

    @property
    def platform_os(self) -> str | None:
        arch = self.data.get("arch")
        value = arch.get("platform_os") if isinstance(arch, dict) else None
        return value if isinstance(value, str) else None

    @property
    def external(self) -> bool:
        return bool(self.data.get("external"))

    def values(self, variant: str) -> list[str]:
        """A multi-valued or single-valued variant as a list of strings."""
        value = self.parameters.get(variant)
        if isinstance(value, list):
            return [str(v) for v in value]
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return [str(value)]
        return []

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass
class Lock:
    path: Path
    text: str
    version: int
    roots: list[tuple[LockNode, str]]  # (node, the abstract spec the user wrote)
    nodes: dict[str, LockNode]

    def line_of(self, node: LockNode, key: str | None = None) -> int | None:
        """The line of ``"hash": {`` (and of ``"key"`` inside it) when the lock is pretty-printed."""
        if "\n" not in self.text.strip():
            return None  # Spack writes locks on one line: a fragment says more than "line 1"
        start = self.text.find(f'"{node.hash}": {{')
        if start < 0:
            start = self.text.find(f'"{node.hash}":{{')
        if start < 0:
            return None
        if key:
            found = self.text.find(f'"{key}"', start)
            start = found if found >= 0 else start
        return self.text.count("\n", 0, start) + 1

    def edges(self, node: LockNode) -> Iterator[tuple[Edge, LockNode]]:
        for edge in node.edges:
            target = self.nodes.get(edge.hash)
            if target is not None:
                yield edge, target

    def runtime_closure(self, starts: Iterable[LockNode]) -> list[LockNode]:
        """Nodes reachable through link or run edges: what ends up in the image, not build tools."""
        seen: dict[str, LockNode] = {}
        stack = list(starts)
        while stack:
            node = stack.pop()
            if node.hash in seen:
                continue
            seen[node.hash] = node
            for edge, child in self.edges(node):
                if {"link", "run"} & set(edge.deptypes):
                    stack.append(child)
        return list(seen.values())


def _fail(path: Path, reason: str) -> InputError:
    return InputError(f"{path}: {reason}")


def read_lock(path: Path) -> Lock:
    """Parse and check a spack.lock; InputError naming the file for anything that is not one."""
    text = read_text(path, "spack.lock")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"line {exc.lineno}: not a spack.lock (malformed JSON: {exc.msg})") from None
    except RecursionError:
        raise _fail(path, "not a spack.lock (JSON nested too deeply)") from None
    meta = data.get("_meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("file-type") != "spack-lockfile":
        raise _fail(path, "not a spack.lock (no _meta.file-type: spack-lockfile)")
    version = meta.get("lockfile-version")
    if version not in SUPPORTED_LOCKFILE_VERSIONS:
        supported = " and ".join(map(str, SUPPORTED_LOCKFILE_VERSIONS))
        raise _fail(path, f"lockfile-version {version!r} is not supported (versions {supported} are)")
    specs = data.get("concrete_specs")
    roots = data.get("roots")
    if not isinstance(specs, dict) or not isinstance(roots, list):
        raise _fail(path, "a spack.lock needs 'roots' (a list) and 'concrete_specs' (a mapping)")
    nodes = {h: _node(path, h, s) for h, s in specs.items()}
    lock_roots = []
    for i, root in enumerate(roots):
        if not isinstance(root, dict) or root.get("hash") not in nodes:
            raise _fail(path, f"roots[{i}] does not name a hash of concrete_specs")
        lock_roots.append((nodes[root["hash"]], str(root.get("spec", ""))))
    return Lock(path, text, version, lock_roots, nodes)


def _json_kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else "a value")


def _names(path: Path, what: str, params: dict, key: str) -> tuple[str, ...]:
    """``deptypes`` / ``virtuals`` of an edge: a list of strings (a bare string would read as its letters)."""
    value = params.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"{what}: parameters.{key} must be a list of names, got {_json_kind(value)}")
    return tuple(value)


def _node(path: Path, hash_: str, spec: object) -> LockNode:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise _fail(path, f"concrete_specs[{hash_}] is not a spec (no name)")
    edges = []
    dependencies = spec.get("dependencies")
    if dependencies is not None and not isinstance(dependencies, list):
        raise _fail(path, f"concrete_specs[{hash_}] ({spec['name']}): 'dependencies' must be a list, "
                          f"got {_json_kind(dependencies)}")
    for dep in dependencies or []:
        if not isinstance(dep, dict) or "hash" not in dep:
            raise _fail(path, f"concrete_specs[{hash_}] ({spec['name']}): a dependency without a hash")
        what = f"concrete_specs[{hash_}] ({spec['name']}): dependency {dep.get('name')!r}"
        params = dep.get("parameters")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _fail(path, f"{what}: 'parameters' must be a mapping, got {_json_kind(params)}")
        edges.append(Edge(str(dep.get("name")), str(dep["hash"]), _names(path, what, params, "deptypes"),
                          _names(path, what, params, "virtuals")))
    return LockNode(hash_, spec["name"], str(spec.get("version", "")), spec, edges)


# -- inference --------------------------------------------------------------------------------


class _Reader:
    """Sets the annotations one lock supports on an Inference."""

    def __init__(self, lock: Lock, inference: Inference, options: InferOptions):
        self.lock = lock
        self.inf = inference
        self.options = options
        roots = [node for node, _ in lock.roots]
        apps = [node for node in roots if node.name not in INFRASTRUCTURE]
        self.apps = apps
        self.focus = apps or roots  # the roots an image is "for"
        self.closure = lock.runtime_closure(self.focus)

    def said(self, value: str, node: LockNode, what: str, field_: str | None = None,
             note: str | None = None) -> Sourced:
        """``value`` as the lock says it: the node's line (of ``field_``) and ``<node>/<hash> what``."""
        fragment = f"{node}/{node.hash[:7]} {what}"
        return self.inf.sourced(value, line=self.lock.line_of(node, field_), fragment=fragment, note=note,
                                file=self.lock.path)

    def add(self, fact: Fact) -> None:
        self.inf.add(fact.spelled_short())

    def run(self) -> None:
        self.add(Recipe(format=self.inf.sourced("spack", file=self.lock.path, fragment="spack.lock")))
        self.app()
        self.target()
        self.operating_system()
        self.mpi()
        self.libc()
        self.compiler()
        self.cuda()
        self.versions()

    def app(self) -> None:
        names = sorted({n.name for n in self.apps})
        if len(names) == 1:
            nodes = [n for n in self.apps if n.name == names[0]]
            versions = {n.version for n in nodes}
            self.add(App(name=self.said(names[0], nodes[0], "root", "name"),
                         version=self.said(nodes[0].version, nodes[0], "root", "version") if len(versions) == 1
                         else None))
            if len(versions) != 1:
                self.inf.miss(APP_VERSION, f"the lock holds {names[0]} at versions {', '.join(sorted(versions))}")
        elif names:
            self.inf.miss(APP_NAME, f"the lock has {len(names)} application roots: {short_list(names)}")
        else:
            self.inf.miss(APP_NAME, "every root of the lock is an MPI, compiler or other infrastructure package")

    def target(self) -> None:
        built = [n for n in self.focus if not n.external] or self.focus
        targets: dict[str, LockNode] = {}
        for node in built:
            if node.target:
                targets.setdefault(node.target, node)
        if not targets:
            self.inf.miss(HARDWARE_CPU_OPTIMIZED_VERSION, "the lock's roots carry no arch.target")
            apply_target(self.inf, self.options.target)
            return
        if len(targets) > 1:
            listed = ", ".join(f"{t} ({n.name})" for t, n in sorted(targets.items()))
            self.inf.warnings.append(f"{self.lock.path}: the roots are built for several targets: {listed}")
            self.inf.miss(HARDWARE_CPU_OPTIMIZED_VERSION, f"the lock's roots are built for several targets: {listed}")
            self.inf.miss(HARDWARE_CPU_OPTIMIZED_MODE, "follows hardware.cpu.optimized.version, which is ambiguous")
            return
        (target, node), = targets.items()
        apply_pinned_target(self.inf, target, self.options.target, fragment=f"{node}/{node.hash[:7]} arch.target",
                             line=self.lock.line_of(node, "target"), where=str(self.lock.path), file=self.lock.path)

    def operating_system(self) -> None:
        systems = {n.platform_os for n in self.focus if n.platform_os}
        if len(systems) != 1:
            return
        (platform_os,) = systems
        match = _OS_RE.fullmatch(platform_os)
        if not match or match.group(1) not in KNOWN_OS:
            self.inf.miss(OS_NAME, f"platform_os {platform_os!r} is not a distribution hpcannotate can name")
            return
        node = next(n for n in self.focus if n.platform_os == platform_os)
        self.add(BaseOs(name=self.said(match.group(1), node, "arch.platform_os", "platform_os"),
                        version=self.said(match.group(2), node, "arch.platform_os", "platform_os")))

    def providers(self, virtual: str, nodes: Iterable[LockNode]) -> dict[str, tuple[LockNode, LockNode]]:
        """hash -> (provider, a node that depends on it) for every edge providing ``virtual``."""
        found: dict[str, tuple[LockNode, LockNode]] = {}
        for node in nodes:
            for edge, child in self.lock.edges(node):
                if virtual in edge.virtuals:
                    found.setdefault(child.hash, (child, node))
        return found

    def mpi(self) -> None:
        providers = self.providers("mpi", self.closure)
        if not providers:
            mpi_roots = [n for n, _ in self.lock.roots if n.name in MPI_PACKAGES]
            providers = {n.hash: (n, n) for n in mpi_roots}
        if not providers:
            if not any(n.name in MPI_PACKAGES for n in self.lock.nodes.values()):
                root = self.focus[0] if self.focus else None
                if root is not None:
                    self.add(Mpi(implementation=self.said("none", root, "no MPI in the concretized environment")))
            else:
                self.inf.miss(MPI_IMPLEMENTATION, "no root links an MPI (no dependency edge provides 'mpi')")
            return
        names = {p.name for p, _ in providers.values()}
        if len(names) > 1:
            self.inf.miss(MPI_IMPLEMENTATION, f"the lock links several MPIs: {', '.join(sorted(names))}")
            return
        provider, user = next(iter(providers.values()))
        versions = {p.version for p, _ in providers.values()}
        implementation = MPI_PACKAGES.get(provider.name)
        if implementation is None:
            self.inf.miss(MPI_IMPLEMENTATION, f"MPI provider {provider.name!r} is not one hpcannotate knows")
            return
        via = f"mpi provider of {user.name}" if user is not provider else "root"
        version = abi = None
        bundled = bundled_mpi_reason(provider.name, provider.version)
        if bundled:
            self.inf.miss(MPI_VERSION, f"{provider}: {bundled}")
            self.inf.miss(MPI_ABI_VERSION, "follows mpi.version, which is unknown")
        elif len(versions) > 1:
            self.inf.miss(MPI_VERSION, f"the lock holds {provider.name} at versions {', '.join(sorted(versions))}")
            self.inf.miss(MPI_ABI_VERSION, "follows mpi.version, which is ambiguous")
        elif not is_release_version(provider.version):
            self.inf.miss(MPI_VERSION, f"{provider}: {provider.version!r} is a git reference or branch, "
                                         "not a release version")
            self.inf.miss(MPI_ABI_VERSION, "follows mpi.version, which is unknown")
        else:
            version = self.said(provider.version, provider, via, "version")
            number = mpi_abi_version(implementation, provider.version)
            if number:
                abi = self.said(number, provider, via, "version", note=f"{implementation} {provider.version} has "
                                f"the ABI of libmpi.so.{number.split('.')[0]}")
        self.add(Mpi(implementation=self.said(implementation, provider, via, "name"), version=version,
                     abi_version=abi))
        if version is not None and abi is None:
            self.inf.miss(MPI_ABI_VERSION, f"no known ABI for {implementation} {provider.version}")
        frameworks = mpi_frameworks(provider, self.lock)
        if frameworks:
            self.add(Fabric(framework=self.said(",".join(frameworks), provider, "fabrics/netmod and dependencies")))
        else:
            self.inf.miss(COMMUNICATION_FRAMEWORK, f"{provider} selects no fabric (fabrics/netmod, ucx or libfabric)")

    def libc(self) -> None:
        providers = self.providers("libc", self.focus)
        if not providers:
            self.inf.miss(LIBC_IMPLEMENTATION, "the lock records no libc (Spack before 0.22 does not)")
            return
        names = {p.name for p, _ in providers.values()}
        if len(names) > 1:
            self.inf.miss(LIBC_IMPLEMENTATION, f"the roots link several libcs: {', '.join(sorted(names))}")
            return
        node = next(iter(providers.values()))[0]
        self.add(Libc(
            implementation=self.said(node.name, node, "libc provider", "name") if node.name in ("glibc", "musl")
            else None,
            glibc_version=self.said(major_minor(node.version), node, "libc provider", "version")
            if node.name == "glibc" and node.version else None))

    def compiler(self) -> None:
        # (name, version) -> (node to point at, what it is, the field that says it)
        found: dict[tuple[str, str], tuple[LockNode, str, str]] = {}
        for node in self.focus:
            compiler = node.data.get("compiler")
            if isinstance(compiler, dict) and compiler.get("name"):  # lockfile v5: a node attribute
                key = (str(compiler["name"]), str(compiler.get("version", "")))
                found.setdefault(key, (node, "compiler", "compiler"))
            for edge, child in self.lock.edges(node):  # lockfile v6: compilers are c/cxx/fortran providers
                if {"c", "cxx", "fortran"} & set(edge.virtuals):
                    found.setdefault((child.name, child.version), (child, f"compiler of {node.name}", "version"))
        if not found:
            self.inf.miss(COMPILER_IMPLEMENTATION, "the lock's roots record no compiler")
            return
        names = {COMPILER_PACKAGES.get(name, name) for name, _ in found}
        if len(names) > 1:
            self.inf.miss(COMPILER_IMPLEMENTATION, f"the roots are built with several compilers: {short_list(names)}")
            return
        (name, version), (node, what, field_) = next(iter(found.items()))
        implementation = COMPILER_PACKAGES.get(name)
        if implementation is None:
            self.inf.miss(COMPILER_IMPLEMENTATION, f"compiler {name!r} is not one hpcannotate knows")
            return
        one = bool(version) and len({v for _, v in found}) == 1
        self.add(Compiler(implementation=self.said(implementation, node, what, field_),
                          version=self.said(version, node, what, field_) if one else None))
        if not one:
            self.inf.miss(COMPILER_VERSION, f"the roots are built with several {name} versions")

    def cuda(self) -> None:
        cuda = {n.version for n in self.closure if n.name == "cuda"}
        node = next((n for n in self.closure if n.name == "cuda"), None)
        if node is not None and len(cuda) == 1:
            self.add(Cuda(version=self.said(major_minor(node.version), node, "cuda node", "version")))
        elif len(cuda) > 1:
            self.inf.miss(HARDWARE_GPU_NVIDIA_CUDA_VERSION, f"the lock holds CUDA {', '.join(sorted(cuda))}")
        else:
            self.inf.miss(HARDWARE_GPU_NVIDIA_CUDA_VERSION, "no cuda package is linked by the roots")
        sms, amd = [], []
        first_sm = first_amd = None
        for n in self.closure:
            if n.parameters.get("cuda") is True:
                for sm in cuda_arch_to_sm(",".join(n.values("cuda_arch"))):
                    first_sm = first_sm or n
                    sms.append(sm)
            if n.parameters.get("rocm") is True:
                for gfx in n.values("amdgpu_target"):
                    if gfx != "none":
                        first_amd = first_amd or n
                        amd.append(gfx.split(":")[0])
        if first_sm is not None:
            self.add(Cuda(architecture=self.said(",".join(sorted_unique(sms)), first_sm,
                                                 "cuda_arch of the +cuda nodes", "cuda_arch")))
        else:
            self.inf.miss(HARDWARE_GPU_NVIDIA_ARCHITECTURE, "no linked node is built with +cuda and a cuda_arch")
        if first_amd is not None:
            self.add(Rocm(architecture=self.said(",".join(sorted_unique(amd)), first_amd,
                                                 "amdgpu_target of the +rocm nodes", "amdgpu_target")))

    def versions(self) -> None:
        """Versions of single packages in the image: python, nccl, ucx, libfabric."""
        for package, kind, field_, shorten in (("python", Python, "version", True), ("nccl", Nccl, "version", False),
                                               ("ucx", Fabric, "ucx_version", False),
                                               ("libfabric", Fabric, "libfabric_version", False)):
            nodes = [n for n in self.closure if n.name == package]
            if len({n.version for n in nodes}) == 1:
                version = major_minor(nodes[0].version) if shorten else nodes[0].version
                self.add(kind(**{field_: self.said(version, nodes[0], f"{package} node", "version")}))


FRAMEWORK_ORDER = ("ucx", "libfabric", "verbs", "psm2", "tcp")


def framework_order(framework: str) -> int:
    """Frameworks are listed in one fixed order, so a yaml and its lock spell the same list alike."""
    return FRAMEWORK_ORDER.index(framework) if framework in FRAMEWORK_ORDER else len(FRAMEWORK_ORDER)


def mpi_frameworks(provider: LockNode, lock: Lock) -> list[str]:
    """What an MPI node uses for the network: its fabrics/netmod variants and the ucx/libfabric it links."""
    found = []
    for variant in FABRIC_VARIANTS:
        for value in provider.values(variant):
            framework = FABRIC_VALUES.get(value)
            if framework and framework not in found:
                found.append(framework)
    for variant, framework in FABRIC_BOOL_VARIANTS.items():
        if provider.parameters.get(variant) is True and framework not in found:
            found.append(framework)
    for edge, child in lock.edges(provider):
        framework = FABRIC_DEPENDENCIES.get(child.name)
        if framework and "link" in edge.deptypes and framework not in found:
            found.append(framework)
    return sorted(found, key=framework_order)


def apply_pinned_target(inference: Inference, target: str, requested: str | None, *, fragment: str,
                         line: int | None, where: str, file: Path | str | None = None) -> None:
    """The recipe's own target wins over --target; an unknown name is a warning, not a crash."""
    from hpcannotate.model import targets

    if not targets.is_target(target):
        inference.warnings.append(f"{where}: target {target!r} is not an archspec CPU target; not annotated")
        inference.miss(HARDWARE_CPU_OPTIMIZED_VERSION, f"the recipe's target {target!r} is not an archspec target")
        inference.miss(HARDWARE_CPU_OPTIMIZED_MODE, "follows hardware.cpu.optimized.version, which is unknown")
        return
    if requested and requested != target:
        inference.warnings.append(f"{where}: --target {requested} ignored: the environment pins target {target}")
    # the pin may live in another file than the inference's path (None: that path)
    apply_target(inference, target, pinned_by_recipe=True, fragment=fragment, line=line, file=file)


def sorted_unique(values: Iterable[str]) -> list[str]:
    def key(value: str) -> tuple[int, str]:
        digits = re.sub(r"\D", "", value)
        return (int(digits) if digits else 0, value)

    return sorted(set(values), key=key)


def short_list(names: Iterable[str], limit: int = 6) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def infer_lock(path: Path, inference: Inference, options: InferOptions) -> Lock:
    """Read the lock at ``path`` and set what it says on ``inference``."""
    lock = read_lock(path)
    _Reader(lock, inference, options).run()
    return lock
