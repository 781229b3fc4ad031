"""Spack environments: ``spack.yaml`` read statically, ``spack.lock`` read as concrete truth.

A spack.yaml holds abstract specs and configuration; what it pins (a target
required for all packages, ``^cuda@12.0.0``, ``mpi: require: openmpi``) is
read without Spack, with line numbers, through ``include:`` files, Spack 1.x
spec groups (and their ``override:`` configuration), ``definitions:`` and
``matrix:``. The schema is not enforced: real environments carry keys that
Spack no longer accepts, and only the shapes this adapter reads are checked.

A spack.lock next to the spack.yaml is concrete, so its values win; the yaml
fills in what the lock cannot say (the container section's OS and labels, the
environment text itself). ``--concretize`` asks the real Spack for that lock.
"""

from __future__ import annotations

import base64
import itertools
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.files import read_head
from hpcannotate.model.inputs import read_text
from hpcannotate.model.keynames import (
    APP_NAME,
    APP_VERSION,
    COMMUNICATION_FRAMEWORK,
    COMPILER_IMPLEMENTATION,
    COMPILER_VERSION,
    GLIBC_VERSION,
    HARDWARE_CPU_OPTIMIZED_MODE,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    HARDWARE_GPU_NVIDIA_ARCHITECTURE,
    HARDWARE_GPU_NVIDIA_CUDA_VERSION,
    LIBC_IMPLEMENTATION,
    MPI_ABI_VERSION,
    MPI_IMPLEMENTATION,
    MPI_VERSION,
)
from hpcannotate.recipes.base import Adapter, Inference, InferOptions, apply_target
from hpcannotate.recipes.facts import App, BaseOs, Compiler, Cuda, Fabric, Mpi, Nccl, Python, Recipe, Rocm, Sourced
from hpcannotate.recipes.facts import Fact as Typed
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
from hpcannotate.recipes.spack.lock import (
    FABRIC_BOOL_VARIANTS,
    FABRIC_DEPENDENCIES,
    FABRIC_VALUES,
    FABRIC_VARIANTS,
    apply_pinned_target,
    framework_order,
    infer_lock,
    short_list,
    sorted_unique,
)
from hpcannotate.recipes.spack.specs import (
    Node,
    Spec,
    SpecSyntaxError,
    is_range,
    lower_bound,
    parse_spec,
    pinned_version,
    version_satisfies,
)

ENV_NAMES = ("spack.yaml", "spack.yml")
LOCK_NAME = "spack.lock"
MAX_ROOTS = 20_000  # a matrix that expands past this is a mistake (or an attack), not an environment
CONCRETIZE_TIMEOUT = 600.0  # concretizing a real environment takes minutes, not the 20 s a recipe gets
COMPILER_VIRTUALS = ("c", "cxx", "fortran")
# Spack 0.x compiler names -> the package that provides them in Spack 1.x
COMPILER_PACKAGE_NAMES = {
    "oneapi": "intel-oneapi-compilers",
    "clang": "llvm",
    "intel": "intel-oneapi-compilers-classic",
}
# `spack containerize` base image names -> os-release ID
MANAGED_PREFIXES = ("org.supercontainers.", "org.opencontainers.")
CONTAINER_OS = {
    "ubuntu": "ubuntu",
    "debian": "debian",
    "rockylinux": "rocky",
    "almalinux": "almalinux",
    "centos": "centos",
    "fedora": "fedora",
    "amazonlinux": "amzn",
    "opensuse/leap": "opensuse-leap",
}


# -- YAML with line numbers -------------------------------------------------------------------


class YStr(str):
    """A YAML scalar that remembers where it was written."""

    line: int | None = None
    file: str | None = None


class YMap(dict):
    line: int | None = None
    file: str | None = None


class YList(list):
    line: int | None = None
    file: str | None = None


def _mark(obj, node, file: str):
    obj.line = node.start_mark.line + 1
    obj.file = file
    return obj


def _convert(root, file: str, warnings: list[str]):
    """Composed YAML nodes -> YMap/YList/YStr; scalars stay text (``12.10`` is not a float).

    Each node is converted once, so aliases cannot multiply the work (billion laughs).
    """
    import yaml

    memo: dict[int, object] = {}

    def convert(node):
        if id(node) in memo:
            return memo[id(node)]
        if isinstance(node, yaml.ScalarNode):
            value = None if node.tag == "tag:yaml.org,2002:null" else _mark(YStr(node.value), node, file)
            memo[id(node)] = value
            return value
        if isinstance(node, yaml.SequenceNode):
            seq = memo[id(node)] = _mark(YList(), node, file)
            seq.extend(convert(item) for item in node.value)
            return seq
        mapping = memo[id(node)] = _mark(YMap(), node, file)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError(f"{file}:{key_node.start_mark.line + 1}: a mapping key must be text")
            key = key_node.value.rstrip(":")  # Spack's `require::` overrides; the key is still `require`
            if key in mapping:
                warnings.append(f"{file}:{key_node.start_mark.line + 1}: key {key!r} given twice; the last one counts")
            mapping[key] = convert(value_node)
        return mapping

    return convert(root)


def load_yaml(path: Path, warnings: list[str], what: str = "Spack environment"):
    """One YAML document with line numbers; InputError naming file and line when it is malformed."""
    import yaml

    text = read_text(path, what)
    if not text.strip():
        raise InputError(f"{path}: is empty, expected a {what}")
    try:
        # The pure-Python loader on purpose: libyaml's composer recurses in C and crashes the
        # interpreter on deeply nested input, where Python's raises RecursionError.
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        return None if node is None else _convert(node, str(path), warnings)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{path}{line}: malformed YAML: {exc.problem or exc.context or 'syntax error'}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise InputError(f"{path}: YAML nested too deeply to be a Spack environment") from None


def _where(obj) -> str:
    file = getattr(obj, "file", None) or "?"
    line = getattr(obj, "line", None)
    return f"{file}:{line}" if line else file


def _kind(value) -> str:
    return {YMap: "a mapping", YList: "a list", YStr: "text", type(None): "nothing"}.get(type(value), "a value")


# -- the environment model --------------------------------------------------------------------


@dataclass
class Scope:
    """One ``packages:`` section, with a label saying where it is (for provenance)."""

    packages: YMap
    label: str

    def settings(self, name: str) -> YMap | None:
        value = self.packages.get(name)
        return value if isinstance(value, YMap) else None


@dataclass
class Root:
    text: YStr
    spec: Spec
    group: str | None
    scopes: list[Scope]  # highest precedence first: the group's override, the environment, its includes


@dataclass
class Fact:
    """A value and the YAML text that says it."""

    value: str
    source: YStr
    fragment: str
    note: str | None = None
    preference: bool = False  # a 0.x ``compiler:`` list: a weak preference (Spack 1.x ignores it), not a fact


@dataclass
class Environment:
    path: Path
    text: str
    data: YMap
    roots: list[Root]
    scopes: list[Scope]
    compilers: list[YStr]
    warnings: list[str] = field(default_factory=list)
    _parsed: dict[tuple[str, str | None, int | None], Spec | None] = field(default_factory=dict)

    def parse(self, text: YStr) -> Spec | None:
        """A configuration spec string (a requirement, a provider); a warning instead of a crash if malformed."""
        key = (str(text), text.file, text.line)
        if key not in self._parsed:
            try:
                self._parsed[key] = parse_spec(str(text))
            except SpecSyntaxError as exc:
                self.warnings.append(f"{_where(text)}: cannot parse spec {str(text)!r} ({exc}); ignored")
                self._parsed[key] = None
        return self._parsed[key]


def load_environment(path: Path) -> Environment:
    warnings: list[str] = []
    top = load_yaml(path, warnings)
    if not isinstance(top, YMap) or not top:
        raise InputError(f"{path}: expected a Spack environment (a mapping with the top-level key 'spack:'), "
                         f"got {_kind(top)}")
    if "spack" not in top:
        first = next(iter(top))
        raise InputError(f"{path}:{top.line}: top-level key is {first!r}, expected 'spack:' (a Spack environment)")
    for other in top:
        if other != "spack":
            warnings.append(f"{path}: top-level key {other!r} next to 'spack:' is ignored")
    env = top["spack"]
    if env is None:
        env = YMap()
    if not isinstance(env, YMap):
        raise InputError(f"{path}:{getattr(env, 'line', '?')}: 'spack:' must be a mapping, got {_kind(env)}")
    included = _follow_includes(env, path.parent, {path.resolve()}, warnings)
    scopes = [Scope(env["packages"], "packages")] if isinstance(env.get("packages"), YMap) else []
    if env.get("packages") is not None and not scopes:
        warnings.append(f"{_where(env['packages'])}: packages: is {_kind(env['packages'])}, expected a mapping; "
                        "ignored")
    for inc_path, sections in included:
        if isinstance(sections.get("packages"), YMap):
            scopes.append(Scope(sections["packages"], f"{inc_path.name}: packages"))
    definitions: dict[str, list[YStr]] = {}
    for sections in [s for _, s in reversed(included)] + [env]:
        _read_definitions(sections.get("definitions"), definitions, warnings)
    compilers = _compiler_specs([env] + [s for _, s in included])
    roots = _read_roots(env, definitions, scopes)
    return Environment(path, read_text(path), env, roots, scopes, compilers, warnings)


def _follow_includes(env: YMap, base: Path, seen: set[Path], warnings: list[str]) -> list[tuple[Path, YMap]]:
    """Configuration sections of the ``include:`` entries, highest precedence first, recursively."""
    entries = env.get("include")
    if entries is None:
        return []
    if isinstance(entries, YStr):
        entries = [entries]
    if not isinstance(entries, YList):
        warnings.append(f"{_where(entries)}: include: is {_kind(entries)}, expected a list; ignored")
        return []
    found: list[tuple[Path, YMap]] = []
    for entry in entries:
        optional = False
        if isinstance(entry, YMap):
            raw, optional = entry.get("path"), str(entry.get("optional", "")).lower() == "true"
            if entry.get("when") is not None:
                warnings.append(f"{_where(entry)}: include {raw} has a when: condition hpcannotate cannot evaluate; "
                                "not followed")
                continue
        else:
            raw = entry
        if not isinstance(raw, YStr) or not raw.strip():
            warnings.append(f"{_where(entry)}: an include entry without a path; ignored")
            continue
        if "://" in raw or "$" in raw or raw.startswith("~"):
            warnings.append(f"{_where(raw)}: include {raw} uses a URL or a Spack variable; not followed")
            continue
        target = Path(raw) if Path(raw).is_absolute() else base / raw
        if not target.exists():
            kind = "optional include" if optional else "include"
            warnings.append(f"{_where(raw)}: {kind} {raw} not found ({target}); its configuration is not read")
            continue
        files = sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml")) if target.is_dir() else [target]
        for file in files:
            resolved = file.resolve()
            if resolved in seen:
                warnings.append(f"{_where(raw)}: include {file} is included twice (a loop?); read once")
                continue
            seen.add(resolved)
            data = load_yaml(file, warnings, "Spack configuration file")
            if isinstance(data, YMap) and isinstance(data.get("spack"), YMap):
                data = data["spack"]
            if not isinstance(data, YMap):
                warnings.append(f"{file}: included file holds {_kind(data)}, expected configuration sections; ignored")
                continue
            found.append((file, data))
            found.extend(_follow_includes(data, file.parent, seen, warnings))
    return found


def _read_definitions(value, definitions: dict[str, list[YStr]], warnings: list[str]) -> None:
    """``definitions:`` entries, in order; later entries of a name append, and may use earlier names."""
    if value is None:
        return
    if not isinstance(value, YList):
        raise InputError(f"{_where(value)}: definitions: must be a list of named spec lists, got {_kind(value)}")
    for entry in value:
        if not isinstance(entry, YMap):
            raise InputError(f"{_where(entry)}: a definitions: entry must be a mapping (name: [specs])")
        when = entry.get("when")
        for name, specs in entry.items():
            if name == "when":
                continue
            if when is not None:
                warnings.append(f"{_where(entry)}: definition {name!r} has a when: condition hpcannotate cannot "
                                "evaluate; its specs are counted")
            definitions[name] = definitions.get(name, []) + _expand(specs, definitions, f"definition {name!r}")


def _expand(items, definitions: dict[str, list[YStr]], what: str) -> list[YStr]:
    """A spec list with ``$name`` references and ``matrix:`` entries expanded to spec strings."""
    if items is None:
        return []
    if not isinstance(items, YList):
        raise InputError(f"{_where(items)}: {what} must be a list of specs, got {_kind(items)}")
    result: list[YStr] = []
    for item in items:
        if isinstance(item, YStr):
            result.extend(_reference(item, definitions) if item.strip().startswith("$") else [item])
        elif isinstance(item, YMap) and "matrix" in item:
            result.extend(_matrix(item, definitions))
        else:
            raise InputError(f"{_where(item if item is not None else items)}: a spec in {what} must be a string "
                             f"or a matrix, got {_kind(item)}")
        if len(result) > MAX_ROOTS:
            raise InputError(f"{_where(items)}: {what} expands to more than {MAX_ROOTS} specs")
    return result


def _reference(item: YStr, definitions: dict[str, list[YStr]]) -> list[YStr]:
    name = item.strip()[1:].strip("{}")
    if name not in definitions:
        raise InputError(f"{_where(item)}: {item.strip()} is not defined in definitions:")
    return definitions[name]


def _matrix(item: YMap, definitions: dict[str, list[YStr]]) -> list[YStr]:
    rows = item["matrix"]
    if not isinstance(rows, YList) or not all(isinstance(r, YList) for r in rows):
        raise InputError(f"{_where(item)}: matrix: must be a list of lists of specs")
    expanded = [_expand(row, definitions, "a matrix row") for row in rows]
    size = 1
    for row in expanded:
        size *= len(row)
    if size > MAX_ROOTS:
        raise InputError(f"{_where(item)}: matrix expands to {size} specs (more than {MAX_ROOTS})")
    excludes = []
    for text in _expand(item.get("exclude"), definitions, "matrix exclude"):
        try:
            excludes.append(parse_spec(str(text)))
        except SpecSyntaxError as exc:
            raise InputError(f"{_where(text)}: matrix exclude {str(text)!r} does not parse: {exc}") from None
    result = []
    for combo in itertools.product(*expanded):
        text = _mark_like(YStr(" ".join(combo)), item)
        try:
            spec = parse_spec(text)
        except SpecSyntaxError as exc:
            raise InputError(f"{_where(item)}: matrix gives spec {str(text)!r}, which does not parse: {exc}") from None
        if not any(_satisfies(spec, ex) for ex in excludes):
            result.append(text)
    return result


def _mark_like(text: YStr, like) -> YStr:
    text.line, text.file = like.line, like.file
    return text


def _satisfies(spec: Spec, constraint: Spec) -> bool:
    """Enough of Spack's ``satisfies`` for matrix excludes: names, versions and variants match."""

    def node_ok(node: Node | None, want: Node) -> bool:
        if node is None or (want.version and node.version != want.version):
            return False
        return all(node.variants.get(k) == v for k, v in want.variants.items())

    if constraint.name and constraint.name != spec.name:
        return False
    if not node_ok(spec.root, constraint.root):
        return False
    return all(node_ok(spec.find(dep.name) if dep.name else None, dep) for dep in constraint.dependencies)


def _read_roots(env: YMap, definitions: dict[str, list[YStr]], scopes: list[Scope]) -> list[Root]:
    specs = env.get("specs")
    if specs is None:
        return []
    if not isinstance(specs, YList):
        raise InputError(f"{_where(specs)}: specs: must be a list of spec strings, got {_kind(specs)}")
    roots: list[Root] = []
    for entry in specs:
        if isinstance(entry, YMap) and "matrix" not in entry:
            if "specs" not in entry and "group" not in entry:
                raise InputError(f"{_where(entry)}: a specs: entry that is a mapping needs 'matrix:', "
                                 "or 'group:' and 'specs:'")
            group = entry.get("group")
            group_scopes = scopes
            override = entry.get("override")
            if isinstance(override, YMap) and isinstance(override.get("packages"), YMap):
                group_scopes = [Scope(override["packages"], f"group {group} override: packages"), *scopes]
            texts = _expand(entry.get("specs"), definitions, f"group {group} specs")
            roots.extend(_root(text, str(group) if group else None, group_scopes) for text in texts)
        else:
            roots.extend(_root(text, None, scopes) for text in _expand(_as_list(entry, specs), definitions, "specs"))
        if len(roots) > MAX_ROOTS:
            raise InputError(f"{_where(specs)}: specs: expand to more than {MAX_ROOTS} specs")
    return roots


def _as_list(entry, parent: YList) -> YList:
    items = YList([entry])
    items.line, items.file = parent.line, parent.file
    return items


def _root(text: YStr, group: str | None, scopes: list[Scope]) -> Root:
    if not text.strip():
        raise InputError(f"{_where(text)}: an empty spec in specs:")
    try:
        spec = parse_spec(str(text))
    except SpecSyntaxError as exc:
        raise InputError(f"{_where(text)}: cannot parse spec {str(text)!r}: {exc}") from None
    if not spec.name:
        raise InputError(f"{_where(text)}: spec {str(text)!r} names no package")
    return Root(text, spec, group, scopes)


def _compiler_specs(sections: Iterable[YMap]) -> list[YStr]:
    """Spack 0.x ``compilers:`` entries (``- compiler: {spec: gcc@12.3.0}``)."""
    found = []
    for section in sections:
        entries = section.get("compilers")
        for entry in entries if isinstance(entries, YList) else []:
            compiler = entry.get("compiler") if isinstance(entry, YMap) else None
            spec = compiler.get("spec") if isinstance(compiler, YMap) else None
            if isinstance(spec, YStr):
                found.append(spec)
    return found


# -- reading configuration --------------------------------------------------------------------


def _strings(value) -> list[YStr]:
    """Unconditional spec strings of a ``require``/``prefer``/``variants`` value.

    Entries with ``when:`` may not apply, and ``one_of``/``any_of`` with several
    choices do not say which one Spack takes: both are skipped.
    """
    if isinstance(value, YStr):
        return [value]
    if not isinstance(value, YList):
        return []
    result = []
    for entry in value:
        if isinstance(entry, YStr):
            result.append(entry)
        elif isinstance(entry, YMap) and entry.get("when") is None:
            if isinstance(entry.get("spec"), YStr):
                result.append(entry["spec"])
            for key in ("one_of", "any_of"):
                choices = entry.get(key)
                if isinstance(choices, YList) and len(choices) == 1 and isinstance(choices[0], YStr):
                    result.append(choices[0])
    return result


def _first(value) -> YStr | None:
    """The first (preferred) entry of a preference list such as ``target: [x86_64_v3]``."""
    if isinstance(value, YStr):
        return value
    if isinstance(value, YList) and value and isinstance(value[0], YStr):
        return value[0]
    return None


class Static:
    """What a spack.yaml says, root by root, with the configuration that applies to each root."""

    def __init__(self, env: Environment, inference: Inference, options: InferOptions):
        self.env = env
        self.inf = inference
        self.options = options
        self.apps = [r for r in env.roots if r.spec.name not in INFRASTRUCTURE]
        self.focus = self.apps or env.roots
        # org.supercontainers.* / org.opencontainers.* labels of the container: section, applied last
        self.own_labels: list[tuple[str, YStr]] = []

    def pseudo_root(self) -> Root:
        """Stands for "any package" when the environment has no specs: only configuration applies."""
        return Root(YStr(""), Spec("", Node()), None, self.env.scopes)

    def said(self, fact: Fact, value: str | None = None) -> Sourced:
        """``value`` (default: the fact's own) with where the YAML says it."""
        return self.inf.sourced(fact.value if value is None else value, line=fact.source.line,
                                file=fact.source.file, fragment=fact.fragment, note=fact.note)

    def add(self, fact: Typed) -> None:
        self.inf.add(fact.spelled_short())

    def run(self) -> None:
        env = self.env
        self.add(Recipe(format=self.inf.sourced("spack", line=env.data.line, fragment="spack:", file=env.path),
                        spack=self.inf.sourced(base64.b64encode(env.text.encode()).decode(), line=env.data.line,
                                               fragment="the spack.yaml text", file=env.path)))
        self.app()
        self.target()
        self.mpi()
        self.compiler()
        self.gpu()
        self.package_versions()
        self.container()
        self.inf.miss(LIBC_IMPLEMENTATION, "a spack.yaml does not say; it is in the spack.lock after concretizing")
        self.inf.miss(GLIBC_VERSION, "a spack.yaml does not say; it is in the spack.lock after concretizing")

    # -- per-root configuration lookups ------------------------------------------------------

    def config_specs(self, root: Root | None, package: str, keys: tuple[str, ...] = ("require", "prefer"),
                     scopes: list[Scope] | None = None) -> Iterator[tuple[Spec, YStr, str]]:
        """Parsed unconditional ``packages:<package>:<key>`` specs, highest-precedence scope first."""
        for scope in scopes if scopes is not None else (root.scopes if root else self.env.scopes):
            settings = scope.settings(package)
            if settings is None:
                continue
            for key in keys:
                for text in _strings(settings.get(key)):
                    spec = self.env.parse(text)
                    if spec is not None:
                        yield spec, text, f"{scope.label}: {package}: {key}: {text}"

    def first_layer(self, scopes: list[Scope], package: str, pick: Callable[[Spec], str | None],
                    keys: tuple[str, ...] = ("require", "prefer")) -> list[Fact]:
        """Facts from the highest-precedence scope (and key) that says anything, as ``pick`` reads it."""
        for scope in scopes:
            for key in keys:
                found = self.config_specs(None, package, (key,), [scope])
                facts = [Fact(value, text, frag) for spec, text, frag in found if (value := pick(spec)) is not None]
                if facts:
                    return facts
        return []

    def version_of(self, package: str, node: Node | None, source: Fact | None, root: Root | None) -> Fact | None:
        """The pinned version of ``package``, from the most specific place that pins one.

        In order: its node in the spec, its requirements, its only external when
        it is not buildable, a root that pins it, its preferred version, the
        Spack 0.x ``compilers:`` section. A version from elsewhere must satisfy
        the node's own constraint (``^openmpi@4`` is never annotated as 5.0.3).
        """
        return self.version_lookup(package, node, source, root)[0]

    def version_lookup(self, package: str, node: Node | None, source: Fact | None,
                       root: Root | None) -> tuple[Fact | None, Fact | None]:
        """(the version, None), or (None, the version found but rejected by the node's constraint)."""
        if node is not None and source is not None and pinned_version(node.version):
            return Fact(pinned_version(node.version), source.source, source.fragment), None
        scopes = root.scopes if root else self.env.scopes
        for lookup in (self._required_version, self._external_version, self._root_version,
                       self._preferred_version, self._compilers_section_version):
            fact = lookup(package, scopes)
            if fact is not None:
                if version_satisfies(fact.value, node.version if node else None):
                    return fact, None
                return None, fact
        return None, None

    def _required_version(self, package: str, scopes: list[Scope]) -> Fact | None:
        def pick(spec: Spec) -> str | None:
            return pinned_version(spec.root.version) if spec.name in (None, package) else None

        facts = self.first_layer(scopes, package, pick, ("require",))
        return facts[0] if len({f.value for f in facts}) == 1 else None

    def _external_version(self, package: str, scopes: list[Scope]) -> Fact | None:
        for scope in scopes:
            settings = scope.settings(package)
            externals = settings.get("externals") if settings else None
            buildable = str(settings.get("buildable", "")).lower() if settings else ""
            if buildable != "false" or not isinstance(externals, YList):
                continue
            texts = [e["spec"] for e in externals if isinstance(e, YMap) and isinstance(e.get("spec"), YStr)]
            versions = {pinned_version(p.root.version) if (p := self.env.parse(t)) else None for t in texts}
            if len(versions) == 1 and None not in versions:
                return Fact(versions.pop(), texts[0], f"{scope.label}: {package}: externals: {texts[0]}",
                            note="the only external, and buildable: false")
        return None

    def _root_version(self, package: str, _scopes: list[Scope]) -> Fact | None:
        pinned = {pinned_version(r.spec.root.version): r for r in self.env.roots if r.spec.name == package}
        if len(pinned) == 1 and None not in pinned:
            ((version, root),) = pinned.items()
            return Fact(version, root.text, str(root.text))
        return None

    def _preferred_version(self, package: str, scopes: list[Scope]) -> Fact | None:
        for scope in scopes:
            settings = scope.settings(package)
            first = _first(settings.get("version")) if settings else None
            if first is not None and pinned_version(first):
                return Fact(pinned_version(first), first, f"{scope.label}: {package}: version: [{first}, ...]",
                            note="the preferred version")
        return None

    def _compilers_section_version(self, package: str, _scopes: list[Scope]) -> Fact | None:
        texts = [t for t in self.env.compilers if (p := self.env.parse(t)) is not None and p.name == package]
        versions = {pinned_version(self.env.parse(t).root.version) for t in texts}
        if len(versions) == 1 and None not in versions:
            return Fact(versions.pop(), texts[0], f"compilers: {texts[0]}")
        return None

    def variant(self, root: Root, node: Node, key: str) -> tuple[bool | str | None, Fact | None]:
        """A variant of a root's node: written on the node, else required/preferred for it or for ``all``."""
        if key in node.variants:
            value = node.variants[key]
            return value, Fact(str(value), root.text, str(root.text))
        for package in (node.name, "all"):
            if not package:
                continue
            for spec, text, fragment in self.config_specs(root, package, ("require", "prefer", "variants")):
                if spec.name in (None, package) and key in spec.root.variants:
                    value = spec.root.variants[key]
                    return value, Fact(str(value), text, fragment)
        return None, None

    # -- keys ---------------------------------------------------------------------------------

    def app(self) -> None:
        names = sorted({r.spec.name for r in self.apps if r.spec.name})
        if not names:
            reason = "the environment has no specs" if not self.env.roots else \
                "every root spec is an MPI, compiler or other infrastructure package"
            self.inf.miss(APP_NAME, reason)
            return
        if len(names) > 1:
            self.inf.miss(APP_NAME, f"the environment has {len(names)} application roots: {short_list(names)}")
            return
        roots = [r for r in self.apps if r.spec.name == names[0]]
        versions = {pinned_version(r.spec.root.version) for r in roots}
        pinned = len(versions) == 1 and None not in versions
        self.add(App(name=self.said(Fact(names[0], roots[0].text, str(roots[0].text))),
                     version=self.said(Fact(versions.pop(), roots[0].text, str(roots[0].text))) if pinned else None))
        if not pinned:
            self.inf.miss(APP_VERSION, f"{names[0]} has no pinned version in the spack.yaml")

    def root_target(self, root: Root) -> list[Fact]:
        """A root's target: on its own node, required/preferred for its package, for ``all``, or ``all: target``."""
        own = root.spec.root.target
        if own:
            return [Fact(own, root.text, str(root.text))]
        for package in (root.spec.name, "all"):
            facts = self.first_layer(root.scopes, package, _target_of(package))
            if facts:
                return facts
        return self.preferred_target(root.scopes)

    def preferred_target(self, scopes: list[Scope]) -> list[Fact]:
        for scope in scopes:
            settings = scope.settings("all")
            first = _first(settings.get("target")) if settings else None
            if first is not None:
                return [Fact(str(first), first, f"{scope.label}: all: target: [{first}]")]
        return []

    def target(self) -> None:
        facts: list[Fact] = []
        unpinned = []
        for root in self.focus or [self.pseudo_root()]:
            found = self.root_target(root)
            facts.extend(found)
            if not found and root.spec.name:
                unpinned.append(root.spec.name)
        usable = []
        for fact in facts:
            if is_range(fact.value):
                self.inf.warnings.append(f"{_where(fact.source)}: target={fact.value} is a range, not one target")
            else:
                usable.append(fact)
        values = {f.value for f in usable}
        if len(values) == 1 and not unpinned:
            fact = usable[0]
            apply_pinned_target(self.inf, fact.value, self.options.target, fragment=fact.fragment,
                                 line=fact.source.line, where=_where(fact.source), file=fact.source.file)
            return
        if not values:
            apply_target(self.inf, self.options.target)
            return
        listed = ", ".join(sorted(values)) + (f", and none for {short_list(unpinned, 3)}" if unpinned else "")
        self.inf.warnings.append(f"{self.env.path}: the environment is built for several targets: {listed}")
        if self.options.target and self.options.target in values:
            apply_target(self.inf, self.options.target)
            return
        self.inf.miss(HARDWARE_CPU_OPTIMIZED_VERSION, f"the environment is built for several targets: {listed}")
        self.inf.miss(HARDWARE_CPU_OPTIMIZED_MODE, "follows hardware.cpu.optimized.version, which is ambiguous")

    def root_mpi(self, root: Root, mpi_roots: list[Root]) -> tuple[Node, Fact] | None:
        """The MPI a root uses: named in its spec, required for ``mpi``, an MPI root, or the preferred provider."""
        if root.spec.name in MPI_PACKAGES:
            return root.spec.root, Fact(root.spec.name, root.text, str(root.text))
        for node in root.spec.dependencies:
            if not node.conditional and (node.name in MPI_PACKAGES or "mpi" in node.virtuals) and node.name:
                return node, Fact(node.name, root.text, str(root.text))
        for spec, text, fragment in self.config_specs(root, "mpi", ("require",)):
            if spec.name:
                return spec.root, Fact(spec.name, text, fragment)
        if len({r.spec.name for r in mpi_roots}) == 1:
            mpi = mpi_roots[0]
            return mpi.spec.root, Fact(mpi.spec.name, mpi.text, str(mpi.text), note="the MPI root of the environment")
        for scope in root.scopes:
            settings = scope.settings("all")
            providers = settings.get("providers") if settings else None
            first = _first(providers.get("mpi")) if isinstance(providers, YMap) else None
            spec = self.env.parse(first) if first is not None else None
            if spec is not None and spec.name:
                return spec.root, Fact(spec.name, first, f"{scope.label}: all: providers: mpi: [{first}, ...]",
                                       note="the preferred mpi provider")
        return None

    def mpi(self) -> None:
        mpi_roots = [r for r in self.env.roots if r.spec.name in MPI_PACKAGES]
        choices: dict[str, tuple[Root, Node, Fact]] = {}
        for root in self.focus or [self.pseudo_root()]:
            found = self.root_mpi(root, mpi_roots)
            if found:
                choices.setdefault(found[1].value, (root, *found))
        if not choices:
            self.inf.miss(MPI_IMPLEMENTATION, "the spack.yaml names no MPI (no ^mpi, mpi: require or providers)")
            return
        implementations = {MPI_PACKAGES.get(name, name) for name in choices}
        if len(implementations) > 1:
            self.inf.miss(MPI_IMPLEMENTATION, f"the roots use several MPIs: {', '.join(sorted(choices))}")
            return
        name, (root, node, fact) = next(iter(choices.items()))
        implementation = MPI_PACKAGES.get(name)
        if implementation is None:
            self.inf.miss(MPI_IMPLEMENTATION, f"MPI provider {name!r} is not one hpcannotate knows")
            return
        self.add(Mpi(implementation=self.said(fact, implementation)))
        version, rejected = self.version_lookup(name, node, fact, root)
        bundled = bundled_mpi_reason(name, version.value if version else None)
        abi = None
        if bundled:
            self.inf.miss(MPI_VERSION, bundled)
            self.inf.miss(MPI_ABI_VERSION, "follows mpi.version, which is unknown")
        elif version and not is_release_version(version.value):
            self.inf.miss(MPI_VERSION, f"{name}@{version.value} is a git reference or branch, not a release version")
            self.inf.miss(MPI_ABI_VERSION, "follows mpi.version, which is unknown")
        else:
            if version:
                self.add(Mpi(version=self.said(version)))
            elif rejected:
                self.inf.miss(MPI_VERSION, f"{name}@{node.version} is asked for, but {rejected.fragment} gives "
                                             f"{rejected.value}, which does not satisfy it")
            elif node.version and not is_release_version(lower_bound(node.version)):
                self.inf.miss(MPI_VERSION, f"{name}@{node.version} is a git reference or branch, not a release "
                                             "version")
            else:
                self.inf.miss(MPI_VERSION, f"{name} has no pinned version in the spack.yaml")
            known = version.value if version else lower_bound(node.version)
            abi = mpi_abi_version(implementation, known) if known else None
            if abi is None:
                self.inf.miss(MPI_ABI_VERSION, f"the {name} version does not say its ABI")
        if abi:
            source = version or fact
            said = known if version else f"{node.version} (every release)"
            note = f"{implementation} {said} has libmpi.so.{abi.split('.')[0]}"
            self.add(Mpi(abi_version=self.said(Fact(abi, source.source, source.fragment, note=note))))
        frameworks = self.frameworks(root, name, node, fact, version.value if version else None)
        if frameworks:
            values = _sorted_frameworks(frameworks)
            self.add(Fabric(framework=self.said(frameworks[values[0]], ",".join(values))))
        else:
            self.inf.miss(COMMUNICATION_FRAMEWORK, f"nothing selects a fabric for {name} (fabrics=, netmod=, ^ucx)")

    def frameworks(self, root: Root | None, name: str, node: Node, fact: Fact,
                   version: str | None = None) -> dict[str, Fact]:
        found: dict[str, Fact] = {}

        def from_node(n: Node, source: Fact) -> None:
            for variant in FABRIC_VARIANTS:
                for value in (n.value(variant) or "").split(","):
                    if value in FABRIC_VALUES:
                        found.setdefault(FABRIC_VALUES[value], source)
            for variant, framework in FABRIC_BOOL_VARIANTS.items():
                if n.flag(variant):
                    found.setdefault(framework, source)

        from_node(node, fact)
        for spec, text, fragment in self.config_specs(root, name, ("require", "prefer", "variants")):
            if spec.name in (None, name):
                from_node(spec.root, Fact("", text, fragment))
        if root is not None:
            for dep in root.spec.dependencies:
                if dep.name in FABRIC_DEPENDENCIES and not dep.conditional:
                    found.setdefault(FABRIC_DEPENDENCIES[dep.name], Fact("", root.text, str(root.text)))
        if not found:  # the MPI may be an external: its spec's variants say the fabric (mpich ... netmod=ofi)
            per_external = []
            for spec, text, fragment, note in self.used_externals(root, name, version):
                before = dict(found)
                found.clear()
                from_node(spec.root, Fact("", text, fragment, note=note))
                per_external.append(dict(found))
                found.clear()
                found.update(before)
            if per_external and all(set(f) == set(per_external[0]) for f in per_external):
                found.update(per_external[0])
            elif per_external:
                self.inf.warnings.append(f"the externals of {name} select different fabrics: "
                                         "communication.framework is left out")
        return found

    def used_externals(self, root: Root | None, package: str,
                       version: str | None) -> list[tuple[Spec, YStr, str, str]]:
        """The ``externals:`` of ``package`` the build uses: all of them when it is not buildable, else the
        ones whose version is the version found for it. The first scope that lists any decides."""
        for scope in root.scopes if root else self.env.scopes:
            settings = scope.settings(package)
            externals = settings.get("externals") if settings else None
            if not isinstance(externals, YList):
                continue
            buildable = str(settings.get("buildable", "")).lower() != "false"
            used = []
            for entry in externals:
                text = entry.get("spec") if isinstance(entry, YMap) else None
                spec = self.env.parse(text) if isinstance(text, YStr) else None
                if spec is None or spec.name not in (None, package):
                    continue
                if buildable and (version is None or pinned_version(spec.root.version) != version):
                    continue
                note = "the external, and buildable: false" if not buildable else f"the external {package}@{version}"
                used.append((spec, text, f"{scope.label}: {package}: externals: {text}", note))
            if used:
                return used
        return []

    def root_compiler(self, root: Root) -> tuple[str, Node, Fact] | None:
        def compiler_of(spec: Spec) -> Node | None:
            for node in spec.root.compilers():
                if node.name in COMPILER_PACKAGES or set(COMPILER_VIRTUALS) & set(node.virtuals):
                    return node
            return None

        node = compiler_of(root.spec)
        if node is not None and node.name:
            return node.name, node, Fact(node.name, root.text, str(root.text))
        package = root.spec.name
        # requirements first; a prefer: is Spack 1.x's strong preference, said as one in the note
        for key in ("require", "prefer"):
            note = "a strong preference (prefer:), which the concretizer follows unless it conflicts" \
                if key == "prefer" else None
            for spec, text, fragment in self.config_specs(root, package, (key,)) if package else ():
                if spec.name in (None, package) and (node := compiler_of(spec)) is not None and node.name:
                    return node.name, node, Fact(node.name, text, fragment, note=note)
            for virtual in COMPILER_VIRTUALS:
                for spec, text, fragment in self.config_specs(root, virtual, (key,)):
                    if spec.name:
                        return spec.name, spec.root, Fact(spec.name, text, fragment, note=note)
            for spec, text, fragment in self.config_specs(root, "all", (key,)):
                if spec.name is None and (node := compiler_of(spec)) is not None and node.name:
                    return node.name, node, Fact(node.name, text, fragment, note=note)
        for scope in root.scopes:
            settings = scope.settings("all")
            first = _first(settings.get("compiler")) if settings else None
            spec = self.env.parse(first) if first is not None else None
            if spec is not None and spec.name:
                return spec.name, spec.root, Fact(spec.name, first, f"{scope.label}: all: compiler: [{first}, ...]",
                                                  preference=True)
        if len(self.env.compilers) == 1:
            spec = self.env.parse(self.env.compilers[0])
            if spec is not None and spec.name:
                text = self.env.compilers[0]
                return spec.name, spec.root, Fact(spec.name, text, f"compilers: {text}", note="the only compiler")
        return None

    def compiler(self) -> None:
        choices: dict[str, tuple[Root, Node, Fact]] = {}
        for root in self.focus or [self.pseudo_root()]:
            found = self.root_compiler(root)
            if found:
                choices.setdefault(COMPILER_PACKAGES.get(found[0], found[0]), (root, found[1], found[2]))
        if not choices:
            self.inf.miss(COMPILER_IMPLEMENTATION, "the spack.yaml names no compiler")
            return
        if len(choices) > 1:
            self.inf.miss(COMPILER_IMPLEMENTATION, f"the roots use several compilers: {', '.join(sorted(choices))}")
            return
        implementation, (root, node, fact) = next(iter(choices.items()))
        if implementation not in COMPILER_PACKAGES.values():
            self.inf.miss(COMPILER_IMPLEMENTATION, f"compiler {fact.value!r} is not one hpcannotate knows")
            return
        if fact.preference:
            reason = (f"{fact.fragment} is a preference, which the concretizer may not follow (Spack 1.x ignores "
                      "packages: all: compiler:); the spack.lock says which compiler was used (concretize, or "
                      "keep the spack.lock beside the spack.yaml)")
            self.inf.miss(COMPILER_IMPLEMENTATION, reason)
            self.inf.miss(COMPILER_VERSION, reason)
            self.inf.warnings.append(f"{_where(fact.source)}: {fact.value} is a preferred compiler, not a required "
                                     "one: compiler.implementation is left out")
            return
        self.add(Compiler(implementation=self.said(fact, implementation)))
        package = COMPILER_PACKAGE_NAMES.get(fact.value, fact.value)
        version, rejected = self.version_lookup(fact.value, node, fact, root)
        if version is None and rejected is None and package != fact.value:
            # a Spack 0.x compiler name (oneapi): its Spack 1.x package may pin the version; the node's
            # own constraint still applies
            version, rejected = self.version_lookup(package, node, fact, root)
        if version:
            self.add(Compiler(version=self.said(version)))
        elif rejected:
            self.inf.miss(COMPILER_VERSION, f"{fact.value}@{node.version} is asked for, but {rejected.fragment} "
                                              f"gives {rejected.value}, which does not satisfy it")
        else:
            self.inf.miss(COMPILER_VERSION, f"{fact.value} has no pinned version in the spack.yaml")

    def gpu(self) -> None:
        sms: dict[str, Fact] = {}
        amd: dict[str, Fact] = {}
        cuda_used = False
        for root in self.env.roots:
            for node in root.spec.nodes():
                if node.direct:
                    continue  # a compiler
                if node.name == "cuda":
                    cuda_used = True
                    continue
                cuda, _ = self.variant(root, node, "cuda")
                cuda_used = cuda_used or cuda is True
                arch, fact = self.variant(root, node, "cuda_arch")
                # cuda_arch counts when CUDA is on, or when it is written on the node itself
                if isinstance(arch, str) and fact and (cuda is True or (cuda is None and "cuda_arch" in node.variants)):
                    for sm in cuda_arch_to_sm(arch):
                        sms.setdefault(sm, fact)
                rocm, _ = self.variant(root, node, "rocm")
                gfx, fact = self.variant(root, node, "amdgpu_target")
                if rocm is True and isinstance(gfx, str) and fact:
                    for item in gfx.split(","):
                        if item and item != "none":
                            amd.setdefault(item.split(":")[0], fact)
        if sms:
            values = sorted_unique(sms)
            self.add(Cuda(architecture=self.said(sms[values[0]], ",".join(values))))
        else:
            self.inf.miss(HARDWARE_GPU_NVIDIA_ARCHITECTURE, "no root is built with +cuda and a cuda_arch")
        if amd:
            values = sorted_unique(amd)
            self.add(Rocm(architecture=self.said(amd[values[0]], ",".join(values))))
        self.cuda_version(cuda_used)

    def cuda_version(self, cuda_used: bool) -> None:
        nodes = [(r, n) for r in self.env.roots for n in r.spec.nodes() if n.name == "cuda"]
        if not cuda_used and not nodes:
            self.inf.miss(HARDWARE_GPU_NVIDIA_CUDA_VERSION, "no root is built with +cuda")
            return
        facts = {}
        for root, node in nodes or [(None, None)]:
            fact = self.version_of("cuda", node, Fact("cuda", root.text, str(root.text)) if root else None, root)
            if fact:
                facts.setdefault(major_minor(fact.value), fact)
        if len(facts) == 1:
            (version, fact), = facts.items()
            self.add(Cuda(version=self.said(fact, version)))
        elif facts:
            self.inf.miss(HARDWARE_GPU_NVIDIA_CUDA_VERSION, f"the roots ask for CUDA {', '.join(sorted(facts))}")
        else:
            self.inf.miss(HARDWARE_GPU_NVIDIA_CUDA_VERSION, "CUDA is used but its version is not pinned (^cuda@X.Y)")

    def package_versions(self) -> None:
        """Versions of single packages the environment holds: python (major.minor), nccl, ucx, libfabric."""
        for package, kind, field_, shorten in (("python", Python, "version", True), ("nccl", Nccl, "version", False),
                                               ("ucx", Fabric, "ucx_version", False),
                                               ("libfabric", Fabric, "libfabric_version", False)):
            facts = {}
            for root in self.env.roots:
                for node in root.spec.nodes():
                    if node.name == package:
                        fact = self.version_of(package, node, Fact(package, root.text, str(root.text)), root)
                        if fact:
                            facts.setdefault(major_minor(fact.value) if shorten else fact.value, fact)
            if len(facts) == 1:
                ((version, fact),) = facts.items()
                self.add(kind(**{field_: self.said(fact, version)}))

    def container(self) -> None:
        """``spack containerize`` settings: the base OS of the image, and its labels."""
        container = self.env.data.get("container")
        if not isinstance(container, YMap):
            return
        images = container.get("images")
        if isinstance(images, YMap):
            image = images.get("os") if isinstance(images.get("os"), YStr) else images.get("final")
            if isinstance(image, YStr):
                self.base_os(image)
        labels = container.get("labels")
        if isinstance(labels, YMap):
            for key, value in labels.items():
                if isinstance(value, (YStr, type(None))):
                    text = _mark_like(YStr(value or ""), value if value is not None else labels)
                    if key.startswith(MANAGED_PREFIXES):
                        self.own_labels.append((key, text))
                    else:
                        self.inf.labels[key] = str(text)

    def base_os(self, image: YStr) -> None:
        name, _, tag = str(image).rpartition(":")
        if not name or "/" in tag:
            return
        name = re.sub(r"^(docker\.io/)?(library/)?", "", name)
        distro = CONTAINER_OS.get(name)
        if distro and re.fullmatch(r"\d+(\.\d+)*", tag):
            fact = Fact(distro, image, f"container: images: {image}")
            self.add(BaseOs(name=self.said(fact), version=self.said(fact, tag)))


def _target_of(package: str) -> Callable[[Spec], str | None]:
    """Reads the target of a requirement written for ``package`` (named, or anonymous as most are)."""
    return lambda spec: spec.root.target if spec.name in (None, package) else None


def _sorted_frameworks(found: dict[str, Fact]) -> list[str]:
    return sorted(found, key=framework_order)


# -- the adapter ------------------------------------------------------------------------------


def _is_lock(path: Path) -> bool:
    if path.name == LOCK_NAME:
        return True
    head = read_head(path, 4096)
    if head is None:
        return False
    return head.lstrip().startswith(b"{") and b"spack-lockfile" in head


def _is_environment_yaml(path: Path) -> bool:
    if path.name in ENV_NAMES:
        return True
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    raw = read_head(path, 65536)
    if raw is None:
        return False
    head = raw.decode("utf-8", "replace")
    for line in head.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "---", "%")):
            continue
        return re.match(r"spack\s*:", line) is not None
    return False


def concretize(env_dir: Path, options: InferOptions) -> Path:
    """Run ``spack -e DIR concretize`` and return the lock it writes."""
    spack = shutil.which("spack")
    if spack is None:
        raise InputError(f"{env_dir}: --concretize needs the spack command on PATH (it is not there); "
                         "without --concretize the spack.yaml is read statically")
    timeout = max(options.timeout, CONCRETIZE_TIMEOUT)
    try:
        proc = subprocess.run([spack, "-e", str(env_dir), "concretize"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InputError(f"{env_dir}: spack concretize did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise InputError(f"{env_dir}: cannot run {spack}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr or proc.stdout or "")
        tail = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise InputError(f"{env_dir}: spack concretize failed (exit {proc.returncode}): {tail}")
    lock = env_dir / LOCK_NAME
    if not lock.is_file():
        raise InputError(f"{env_dir}: spack concretize succeeded but wrote no {LOCK_NAME}")
    return lock


class SpackAdapter(Adapter):
    name = "spack"
    description = "Spack environments: spack.yaml (read statically) and spack.lock (concretized)"

    def detect(self, path: Path) -> bool:
        """spack.yaml/spack.yml/spack.lock, a YAML file whose top-level key is ``spack:``, a lock by content.

        A directory holding one of those files is detected too.
        """
        if path.is_dir():
            return any((path / name).is_file() for name in (*ENV_NAMES, LOCK_NAME))
        if not path.is_file():
            return False
        return _is_lock(path) or _is_environment_yaml(path)

    def infer(self, path: Path, options: InferOptions) -> Inference:
        env_file, lock_file = self._files(path)
        if options.concretize:
            lock_file = self._concretize(path, env_file, options)
        inference = Inference(self.name, path)
        own_labels: list[tuple[str, YStr]] = []
        if env_file is not None:
            env = load_environment(env_file)
            static = Static(env, inference, options)
            static.run()
            own_labels = static.own_labels
            inference.warnings.extend(env.warnings)
        if lock_file is not None:
            if env_file is not None and env_file.stat().st_mtime > lock_file.stat().st_mtime:
                inference.warnings.append(f"{lock_file}: older than {env_file.name}; it may not match the environment")
            from_lock = Inference(self.name, path)
            infer_lock(lock_file, from_lock, options)
            _prefer(inference, from_lock)
        _apply_own_labels(inference, own_labels)
        inference.warnings[:] = list(dict.fromkeys(inference.warnings))
        return inference

    @staticmethod
    def _files(path: Path) -> tuple[Path | None, Path | None]:
        """The environment file and the lock to read for ``path`` (a file or an environment directory)."""
        if path.is_dir():
            env_file = next((path / n for n in ENV_NAMES if (path / n).is_file()), None)
            lock_file = path / LOCK_NAME if (path / LOCK_NAME).is_file() else None
            if env_file is None and lock_file is None:
                raise InputError(f"{path}: no spack.yaml or spack.lock in this directory")
            return env_file, lock_file
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if not path.is_file():
            raise InputError(f"{path}: not a file or directory")
        if _is_lock(path) or path.suffix == ".lock":
            return None, path
        sibling = path.parent / LOCK_NAME
        return path, sibling if path.name in ENV_NAMES and sibling.is_file() else None

    @staticmethod
    def _concretize(path: Path, env_file: Path | None, options: InferOptions) -> Path:
        env_dir = path if path.is_dir() else path.parent
        if env_file is None or env_file.name not in ENV_NAMES:
            found = env_file.name if env_file else "no spack.yaml"
            raise InputError(f"{path}: --concretize needs an environment directory with a spack.yaml ({found})")
        return concretize(env_dir, options)


def _apply_own_labels(inference: Inference, labels: list[tuple[str, YStr]]) -> None:
    """The image carries the container: section's own labels, so they win over anything inferred."""
    for key, value in labels:
        known = inference.annotations.get(key)
        if known is not None and known != str(value):
            inference.warnings.append(f"{_where(value)}: the container label sets {key}={value}, not the inferred "
                                      f"{known}")
        inference.set(key, str(value), line=value.line, file=value.file, fragment=f"container: labels: {key}",
                      note="the environment's own container label", check=False)


def _prefer(inference: Inference, concrete: Inference) -> None:
    """Values from the lock win; the yaml's stay for what the lock lacks (and as the overridden source)."""
    inference.annotations = inference.annotations.merge(concrete.annotations)
    inference.facts.extend(concrete.facts)  # later facts win, as the merge lets the lock's values win
    for key, reason in concrete.missing.items():
        if key not in inference.annotations:
            inference.missing[key] = reason
    for key in list(inference.missing):
        if key in inference.annotations:
            del inference.missing[key]
    inference.warnings.extend(concrete.warnings)
    inference.labels.update({k: v for k, v in concrete.labels.items() if k not in inference.labels})
