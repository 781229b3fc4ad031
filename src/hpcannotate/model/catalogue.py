"""The key catalogue: a small reader of ``data/keys.yaml``.

All knowledge about keys lives in the data file; this module only turns it into
objects and lookup tables. It is read on first use (like archspec's
``TARGETS``) so that importing hpcannotate, and ``hpcannotate --help``, cost
nothing, and then from its compiled JSON twin (``datafiles``) in milliseconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hpcannotate.model import datafiles

SUPERCONTAINERS_PREFIX = "org.supercontainers."
OCI_PREFIX = "org.opencontainers.image."

GROUPS = ("hardware", "mpi", "interconnect", "system", "host", "docs", "oci", "extension")
KINDS = (
    "enum",
    "version",
    "archspec_target",
    "comma_list",
    "path",
    "url",
    "base64",
    "boolean",
    "pattern",
    "text",
    "datetime",
    "digest",
)


@dataclass(frozen=True)
class Alias:
    """Another spelling of a key; ``when`` restricts it to images whose other keys match."""

    key: str
    when: tuple[tuple[str, str], ...] = ()

    def applies_to(self, values: dict[str, str]) -> bool:
        return all(values.get(k) == v for k, v in self.when)


@dataclass(frozen=True)
class ValueSpec:
    """What a value (or one item of a comma list) may be."""

    kind: str
    values: tuple[str, ...] = ()
    value_aliases: dict[str, str] = field(default_factory=dict)
    pattern: str | None = None


@dataclass(frozen=True)
class KeySpec:
    key: str
    group: str
    mandatory: bool
    spec: ValueSpec
    example: str
    description: str
    source: str
    aliases: tuple[Alias, ...]
    items: ValueSpec | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def short(self) -> str:
        """The key without the ``org.supercontainers.`` prefix, as people type it."""
        if self.key.startswith(SUPERCONTAINERS_PREFIX):
            return self.key[len(SUPERCONTAINERS_PREFIX) :]
        return self.key

    @property
    def extension(self) -> bool:
        return self.group == "extension"

    def allowed_values(self) -> tuple[str, ...]:
        """Allowed values of an enum, or of the items of an enum comma list."""
        if self.spec.kind == "enum":
            return self.spec.values
        if self.items is not None and self.items.kind == "enum":
            return self.items.values
        return ()

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "group": self.group,
            "mandatory": self.mandatory,
            "kind": self.kind,
            "values": list(self.allowed_values()),
            "pattern": self.spec.pattern or (self.items.pattern if self.items else None),
            "example": self.example,
            "description": self.description,
            "aliases": [a.key for a in self.aliases],
            "extension": self.extension,
            "source": self.source,
        }


class CatalogueError(ValueError):
    """The shipped data file is inconsistent (a bug in hpcannotate, caught by the tests)."""


def _value_spec(raw: dict, where: str) -> ValueSpec:
    kind = raw.get("kind")
    if kind not in KINDS:
        raise CatalogueError(f"{where}: unknown kind {kind!r}")
    values = tuple(str(v) for v in raw.get("values", ()))
    if kind == "enum" and not values:
        raise CatalogueError(f"{where}: enum without values")
    if kind == "pattern" and not raw.get("pattern"):
        raise CatalogueError(f"{where}: pattern kind without a pattern")
    aliases = {str(k): str(v) for k, v in (raw.get("value_aliases") or {}).items()}
    for alias, target in aliases.items():
        if target not in values:
            raise CatalogueError(f"{where}: value alias {alias!r} points at unknown value {target!r}")
    return ValueSpec(kind=kind, values=values, value_aliases=aliases, pattern=raw.get("pattern"))


def _alias(raw: str | dict) -> Alias:
    if isinstance(raw, str):
        return Alias(raw)
    return Alias(raw["key"], tuple((str(k), str(v)) for k, v in raw.get("when", {}).items()))


def _key_spec(raw: dict) -> KeySpec:
    key = raw["key"]
    if raw["group"] not in GROUPS:
        raise CatalogueError(f"{key}: unknown group {raw['group']!r}")
    spec = _value_spec(raw, key)
    items = None
    if spec.kind == "comma_list":
        if "items" not in raw:
            raise CatalogueError(f"{key}: comma_list without items")
        items = _value_spec(raw["items"], f"{key} items")
    return KeySpec(
        key=key,
        group=raw["group"],
        mandatory=bool(raw["mandatory"]),
        spec=spec,
        example=str(raw["example"]),
        description=raw["description"],
        source=raw.get("source", ""),
        aliases=tuple(_alias(a) for a in raw.get("aliases") or ()),
        items=items,
    )


class Catalogue:
    """Every known key, with lookups by canonical key and by any alias or short form."""

    def __init__(self, specs: list[KeySpec]):
        self.specs: dict[str, KeySpec] = {}
        self._lookup: dict[str, tuple[KeySpec, Alias | None]] = {}
        for spec in specs:
            if spec.key in self.specs:
                raise CatalogueError(f"{spec.key}: listed twice")
            self.specs[spec.key] = spec
        for spec in specs:
            self._add(spec.key, spec, None)
            self._add(spec.short, spec, None)
            for alias in spec.aliases:
                self._add(alias.key, spec, alias)
                if alias.key.startswith(SUPERCONTAINERS_PREFIX):
                    self._add(alias.key[len(SUPERCONTAINERS_PREFIX) :], spec, alias)

    def _add(self, name: str, spec: KeySpec, alias: Alias | None) -> None:
        known = self._lookup.get(name)
        if known is not None and known[0].key != spec.key:
            raise CatalogueError(f"{name}: spelling of both {known[0].key} and {spec.key}")
        self._lookup.setdefault(name, (spec, alias))

    def __iter__(self):
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, key: str) -> KeySpec:
        return self.specs[key]

    def resolve(self, name: str) -> tuple[KeySpec, Alias | None] | None:
        """The spec a spelling refers to, and the alias used (None for the canonical or short form)."""
        return self._lookup.get(name.strip())

    def canonical(self, name: str) -> str:
        """The canonical key for a spelling.

        An unknown spelling that starts like one of our short keys (``mpi.implmentation``)
        is taken as a typo in our namespace, so validation reports it instead of
        passing it through as another tool's key; other unknown keys come back unchanged.
        """
        name = name.strip()
        found = self.resolve(name)
        if found:
            return found[0].key
        if "." in name and not name.startswith("org.") and name.split(".", 1)[0] in self._short_roots:
            return SUPERCONTAINERS_PREFIX + name
        return name

    @functools.cached_property
    def _short_roots(self) -> frozenset[str]:
        return frozenset(
            name.split(".", 1)[0] for name in self._lookup if not name.startswith("org.")
        )

    def suggest(self, name: str) -> str | None:
        """The catalogue key a wrong spelling most likely means, or None.

        ``mpi.abi`` -> ``mpi.abi.version`` (a key it begins), ``cuda.version`` ->
        ``hardware.gpu.nvidia.cuda.version`` (the one key it ends), else the closest spelling.
        """
        import difflib

        short = name.strip().removeprefix(SUPERCONTAINERS_PREFIX)
        names = [s for s in self.spellings() if not s.startswith("org.")]
        for candidates in ([n for n in names if n.startswith(short + ".")],
                           [n for n in names if n.endswith("." + short)]):
            keys = sorted({self.canonical(n) for n in candidates})
            if len(keys) == 1:
                return keys[0]
        close = difflib.get_close_matches(short, names, n=1, cutoff=0.75)
        return self.canonical(close[0]) if close else None

    def foreign_notice(self, name: str) -> str | None:
        """The notice for a key outside the catalogue's namespaces (it passes through as another tool's key);
        None for a key in them (known, or an error that validation reports)."""
        key = self.canonical(name)
        if is_managed(key):
            return None
        hint = self.suggest(name) if "." in name and not name.startswith(("org.", "com.", "io.", "net.")) else None
        extra = f"; did you mean {hint}?" if hint else ""
        return (f"{name}: not a catalogue key (outside org.supercontainers.* and org.opencontainers.image.*), "
                f"passed through as another tool's key{extra}")

    def mandatory(self) -> list[KeySpec]:
        return [s for s in self if s.mandatory]

    def in_group(self, group: str) -> list[KeySpec]:
        return [s for s in self if s.group == group]

    def spellings(self) -> list[str]:
        return sorted(self._lookup)


def is_managed(key: str) -> bool:
    """Keys in the namespaces the catalogue owns; anything else is passed through untouched."""
    return key.startswith(SUPERCONTAINERS_PREFIX) or key.startswith(OCI_PREFIX)


@functools.cache
def catalogue() -> Catalogue:
    raw = datafiles.load("keys.yaml")  # the compiled JSON twin: milliseconds, no yaml import
    return Catalogue([_key_spec(entry) for entry in raw["keys"]])
