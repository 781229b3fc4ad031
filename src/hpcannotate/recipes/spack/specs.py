"""A small reader for Spack spec strings (``gromacs+mpi ^openmpi@4.1.5 fabrics=ucx %gcc@12``).

Spack itself is not a dependency of hpcannotate, and a spack.yaml only holds
abstract specs, so this module tokenizes them the way Spack's own grammar does
(``spack.spec_parser``) and keeps what annotations need: package names,
versions, variants, ``key=value`` pairs, ``^`` dependencies and ``%`` direct
dependencies (compilers).

The binding rule is the one that matters: everything after ``^dep`` belongs to
``dep``, so in ``gromacs+mpi ^openmpi target=x86_64_v3`` the target is
openmpi's, not gromacs's. A ``%compiler`` is a direct dependency of the node
before it (Spack 1.x); options written after ``%gcc`` bind to gcc, as in Spack
1.x. (Spack 0.x bound them to the node before ``%``; reading them as the
compiler's can only lose a value, never attribute one to the wrong package.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_IDENT = r"[A-Za-z0-9_][A-Za-z0-9_\-]*"
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_\-.]*"
_VALUE = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[A-Za-z0-9_\-+*.,:=%^~/\\]+)"
_ASSIGN = rf"(?:\s*(?P<{{p}}v>{_IDENT}(?:,{_IDENT})*)=(?P<{{p}}s>{_IDENT}(?:\.{_IDENT})*))"

# Order matters: the first alternative that matches at a position wins (as in Spack).
_TOKENS: list[tuple[str, str]] = [
    ("EDGE_OPEN", r"(?:\^|%%?)\["),
    ("EDGE_CLOSE", r"\]" + _ASSIGN.format(p="c") + "?"),
    ("DEP", r"(?:\^|%%?)" + _ASSIGN.format(p="d") + "?"),
    ("VERSION", r"@\s*=?[A-Za-z0-9_.\-:,=/]+"),
    ("PROP_BOOL", rf"(?:\+\+|~~|--)\s*{_NAME}"),
    ("BOOL", rf"[~+-]\s*{_NAME}"),
    ("KEY_VALUE", rf"{_NAME}:?==?{_VALUE}"),
    ("NAME", rf"{_IDENT}(?:\.{_IDENT})*|\*"),
    ("HASH", r"/[A-Za-z0-9_]+"),
    ("WS", r"\s+"),
    ("ERROR", r"."),
]
_SCANNER = re.compile("|".join(f"(?P<{kind}>{rx})" for kind, rx in _TOKENS))

# Variant-like keys that are node attributes rather than package variants.
ARCH_KEYS = ("target", "os", "platform", "arch", "architecture")


class SpecSyntaxError(ValueError):
    """A spec string Spack would not parse either; the message names the column."""


@dataclass
class Token:
    kind: str
    text: str
    column: int
    virtuals: tuple[str, ...] = ()
    substitute: str | None = None


@dataclass
class Node:
    """One package node of a spec: ``name@version +variant key=value``."""

    name: str | None = None
    version: str | None = None
    variants: dict[str, bool | str] = field(default_factory=dict)
    virtuals: tuple[str, ...] = ()  # the virtuals this node provides on its edge (``^[virtuals=mpi]``, ``%c=gcc``)
    direct: bool = False  # reached through ``%`` (a compiler, in practice)
    conditional: bool = False  # an edge with ``when=``: may not apply
    direct_deps: list[Node] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        """The ``target=`` (or the last part of ``arch=platform-os-target``) of this node."""
        value = self.variants.get("target")
        if isinstance(value, str):
            return value
        arch = self.variants.get("arch") or self.variants.get("architecture")
        if isinstance(arch, str) and arch.count("-") >= 2:
            return arch.split("-", 2)[2] or None
        return None

    def value(self, key: str) -> str | None:
        value = self.variants.get(key)
        return value if isinstance(value, str) else None

    def flag(self, key: str) -> bool | None:
        value = self.variants.get(key)
        return value if isinstance(value, bool) else None

    def compilers(self) -> list[Node]:
        return [n for n in self.direct_deps if not n.conditional]

    def __str__(self) -> str:
        parts = [(self.name or "") + (f"@{self.version}" if self.version else "")]
        for key, value in self.variants.items():
            parts.append(f"+{key}" if value is True else f"~{key}" if value is False else f"{key}={value}")
        return " ".join(p for p in parts if p)


@dataclass
class Spec:
    """A parsed spec: its root node, and the ``^`` dependencies in order."""

    text: str
    root: Node
    dependencies: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        return self.root.name

    def nodes(self) -> Iterator[Node]:
        """Every unconditional node: root, ``^`` dependencies and their ``%`` direct dependencies."""
        for node in (self.root, *self.dependencies):
            if node.conditional:
                continue
            yield node
            yield from node.compilers()

    def find(self, name: str) -> Node | None:
        for node in self.nodes():
            if node.name == name:
                return node
        return None

    def provider(self, virtual: str) -> Node | None:
        """The dependency the spec names as provider of ``virtual`` (``^[virtuals=mpi] x`` or ``^mpi=x``)."""
        for node in self.nodes():
            if virtual in node.virtuals:
                return node
        return None


def tokenize(text: str) -> list[Token]:
    """Tokens of a spec string without white space; SpecSyntaxError on a character Spack rejects."""
    tokens = []
    for match in _SCANNER.finditer(text):
        kind = match.lastgroup or "ERROR"
        if kind == "WS":
            continue
        if kind == "ERROR":
            raise SpecSyntaxError(f"unexpected {match.group()!r} at column {match.start() + 1}")
        token = Token(kind, match.group(), match.start() + 1)
        if kind in ("DEP", "EDGE_CLOSE"):
            prefix = "d" if kind == "DEP" else "c"
            virtuals = match.group(f"{prefix}v")
            if virtuals:
                token.virtuals = tuple(virtuals.split(","))
                token.substitute = match.group(f"{prefix}s")
        tokens.append(token)
    return tokens


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def node(self, node: Node, *, named: bool = True) -> Node:
        """Read ``[name] [@version] {variant | key=value}`` into ``node``."""
        token = self.peek()
        if named and token is not None and token.kind == "NAME" and node.name is None:
            self.take()
            node.name = None if token.text == "*" else token.text.rsplit(".", 1)[-1]
        while (token := self.peek()) is not None:
            if token.kind == "VERSION":
                if node.version is not None:
                    raise SpecSyntaxError(f"a second version at column {token.column}")
                node.version = token.text[1:].strip()
            elif token.kind in ("BOOL", "PROP_BOOL"):
                width = 2 if token.kind == "PROP_BOOL" else 1
                node.variants[token.text[width:].strip()] = token.text[0] == "+"
            elif token.kind == "KEY_VALUE":
                key, _, value = token.text.partition("=")
                node.variants[key.rstrip(":")] = _unquote(value.lstrip("="))
            elif token.kind == "HASH":
                pass  # /hash: a concrete spec reference, nothing to annotate from
            else:
                break
            self.take()
        return node

    def edge_attributes(self) -> tuple[dict[str, str], Token]:
        attributes: dict[str, str] = {}
        while (token := self.peek()) is not None:
            self.take()
            if token.kind == "KEY_VALUE":
                key, _, value = token.text.partition("=")
                attributes[key.rstrip(":")] = _unquote(value)
            elif token.kind == "EDGE_CLOSE":
                return attributes, token
            else:
                raise SpecSyntaxError(f"unexpected {token.text!r} in edge attributes at column {token.column}")
        raise SpecSyntaxError("edge attributes '[' are not closed with ']'")

    def dependency(self, opener: Token) -> Node:
        node = Node(direct=opener.text.startswith("%"))
        closer = opener
        if opener.kind == "EDGE_OPEN":
            attributes, closer = self.edge_attributes()
            node.virtuals = tuple(v for v in attributes.get("virtuals", "").split(",") if v)
            node.conditional = "when" in attributes
        if closer.substitute:
            node.virtuals += closer.virtuals
            node.name = closer.substitute.rsplit(".", 1)[-1]
        self.node(node)
        if node.name is None and not node.version and not node.variants:
            raise SpecSyntaxError(f"{opener.text!r} at column {opener.column} is not followed by a package")
        return node

    def spec(self) -> Spec:
        root = self.node(Node())
        spec = Spec(self.text, root)
        current = root
        while (token := self.peek()) is not None:
            if token.kind not in ("DEP", "EDGE_OPEN"):
                if token.kind == "NAME":
                    raise SpecSyntaxError(f"a second package name {token.text!r} at column {token.column}")
                raise SpecSyntaxError(f"unexpected {token.text!r} at column {token.column}")
            self.take()
            dep = self.dependency(token)
            if dep.direct:
                current.direct_deps.append(dep)
            else:
                spec.dependencies.append(dep)
                current = dep
        return spec


def parse_spec(text: str) -> Spec:
    """Parse one spec string (named or anonymous, such as ``target=zen3 %gcc``)."""
    if not isinstance(text, str):
        raise SpecSyntaxError(f"a spec must be a string, got {type(text).__name__}")
    return _Parser(text).spec()


# -- versions ---------------------------------------------------------------------------------

_DATE_VERSION = re.compile(r"\d{8}")


def is_range(version: str) -> bool:
    return ":" in version or "," in version


def pinned_version(version: str | None) -> str | None:
    """The version a constraint names, when it names one precisely enough to annotate.

    ``@=4.1.5`` is exact. ``@4.1.5`` means "4.1.5 or a 4.1.5.x release", which is
    the same release for annotation purposes; ``@4`` means any 4.x and is not a
    version (None). Ranges (``@4:``) and lists are not versions either. A date
    version (``lammps@20230802``) names one release.
    """
    if not version:
        return None
    if version.startswith("="):
        exact = version[1:]
        return exact if exact and not is_range(exact) else None
    if is_range(version) or version.startswith("git.") or "=" in version:
        return None
    if version.count(".") >= 1 or _DATE_VERSION.fullmatch(version):
        return version
    return None


def lower_bound(version: str | None) -> str | None:
    """The lowest version a constraint allows (``4.1:`` -> ``4.1``, ``@4`` -> ``4``), None when unbounded."""
    if not version or "," in version:
        return None
    version = version.lstrip("=")
    low = version.split(":", 1)[0]
    return low or None


def _numbers(version: str) -> tuple[int, ...] | None:
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def version_satisfies(version: str, constraint: str | None) -> bool:
    """Whether a concrete ``version`` meets a constraint (``4``, ``=4.1.5``, ``4.1:``, ``:5``, ``4,5``).

    Versions that are not plain numbers are compared as text, exactly.
    """
    if not constraint:
        return True
    if "," in constraint:
        return any(version_satisfies(version, part) for part in constraint.split(","))
    if constraint.startswith("="):
        return version == constraint[1:]
    if ":" not in constraint:
        return version == constraint or version.startswith(constraint + ".")
    low, _, high = constraint.partition(":")
    have = _numbers(version)
    if have is None:
        return False
    for bound, ok in ((low, lambda b: have >= b), (high, lambda b: have[: len(b)] <= b)):
        numbers = _numbers(bound) if bound else ()
        if numbers is None or (numbers and not ok(numbers)):
            return False
    return True
