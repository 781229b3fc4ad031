"""The ``Annotations`` model: canonical key -> value, each value with its provenance.

Every producer (recipe adapters, the image probe, the registry reader, a user's
``--set``) builds one of these, and they are combined with ``merge``. Keys are
normalised to their canonical spelling on the way in, so the rest of the code
never sees an alias; the spelling that was used is kept for error messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from hpcannotate.model.catalogue import catalogue, is_managed
from hpcannotate.model.keynames import OCI_REF_NAME
from hpcannotate.model.problem import Problem  # ``annotations.Problem`` stays where callers import it
from hpcannotate.model.provenance import Provenance
from hpcannotate.model.values import as_text, normalise_value

# Annotations that describe a reference inside an OCI layout, not the image, so
# they are not copied into config labels.
LAYOUT_ONLY_KEYS = frozenset({OCI_REF_NAME})


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    provenance: Provenance = field(default_factory=Provenance)
    spelled: str | None = None
    overridden: tuple[Entry, ...] = ()

    def to_dict(self) -> dict:
        data = self.provenance.to_dict()
        if self.spelled and self.spelled != self.key:
            data["spelled"] = self.spelled
        if self.overridden:
            data["overridden"] = [{"value": e.value, **e.provenance.to_dict()} for e in self.overridden]
        return data



class Annotations(Mapping[str, str]):
    """A read-mostly mapping of canonical key -> value; ``entry(key)`` gives the provenance."""

    def __init__(self, entries: Iterable[Entry] = (), problems: Iterable[Problem] = ()):
        self._entries: dict[str, Entry] = {}
        self._problems: list[Problem] = list(problems)
        for entry in entries:
            self._put(entry)

    # -- construction -------------------------------------------------
    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, object],
        provenance: Provenance | None = None,
        *,
        source: str | None = None,
    ) -> Annotations:
        """Read a user's mapping: any alias or short spelling, values as text.

        Two spellings of one key with different values are reported by
        ``validate`` instead of one silently winning.
        """
        provenance = provenance or Provenance()
        result = cls()
        for name, raw in data.items():
            where = f"{source}: {name}" if source else str(name)
            if not isinstance(name, str):
                raise TypeError(f"{where}: keys must be strings")
            try:
                value = as_text(raw)
            except TypeError as exc:
                raise TypeError(f"{where}: {exc}") from None
            known = result._entries.get(catalogue().canonical(name))
            entry = result.set(name, value, provenance)
            if known is not None and known.value != entry.value:
                first = known.spelled or known.key
                message = f"given twice with different values: {first}={known.value!r} and {name}={value!r}"
                result._problems.append(Problem(entry.key, message, value))
        return result

    def set(self, name: str, value: str, provenance: Provenance | None = None) -> Entry:
        """Set one value under any spelling, replacing what this set held."""
        key = catalogue().canonical(name)
        spelled = name.strip() if name.strip() != key else None
        if key in catalogue().specs:
            value = normalise_value(catalogue()[key], value)
        entry = Entry(key, value, provenance or Provenance(), spelled)
        self._put(entry)
        return entry

    def _put(self, entry: Entry) -> None:
        self._entries[entry.key] = entry

    def remove(self, name: str) -> Entry | None:
        return self._entries.pop(catalogue().canonical(name), None)

    def copy(self) -> Annotations:
        return Annotations(self._entries.values(), self._problems)

    def merge(self, other: Annotations) -> Annotations:
        """Combine two sets; the higher layer wins, ties go to ``other``, losers stay in the provenance."""
        merged = self.copy()
        for entry in other.entries():
            mine = merged._entries.get(entry.key)
            if mine is None:
                merged._put(entry)
            elif entry.provenance.layer >= mine.provenance.layer:
                lost = (replace(mine, overridden=()), *mine.overridden)
                merged._put(replace(entry, overridden=lost + entry.overridden))
            else:
                merged._put(replace(mine, overridden=(*mine.overridden, replace(entry, overridden=()))))
        merged._problems.extend(other._problems)
        return merged

    # -- mapping ------------------------------------------------------
    def __getitem__(self, key: str) -> str:
        return self._entries[catalogue().canonical(key)].value

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and catalogue().canonical(key) in self._entries

    def __repr__(self) -> str:
        return f"Annotations({dict(self)!r})"

    def entry(self, key: str) -> Entry:
        return self._entries[catalogue().canonical(key)]

    def entries(self) -> list[Entry]:
        return [self._entries[k] for k in sorted(self._entries)]

    @property
    def input_problems(self) -> list[Problem]:
        return list(self._problems)

    # -- checks -------------------------------------------------------
    def validate(self) -> list[Problem]:
        """Every problem (key, value, why); an empty list means HPC Container Compliant."""
        from hpcannotate.model.validation import validate  # on use: validation imports only Problem from below

        return validate(self)

    def is_compliant(self) -> bool:
        return not self.validate()

    # -- output -------------------------------------------------------
    def _flat(self, include_aliases: bool) -> dict[str, str]:
        values = dict(self)
        out = dict(values)
        if include_aliases:
            for key, value in values.items():
                spec = catalogue().specs.get(key)
                for alias in spec.aliases if spec else ():
                    if alias.applies_to(values):
                        out.setdefault(alias.key, value)
        return dict(sorted(out.items()))

    def to_oci(self, include_aliases: bool = False) -> dict[str, str]:
        """Manifest/index annotations: every key, canonical spelling (plus old spellings when asked)."""
        return self._flat(include_aliases)

    def to_labels(self, include_aliases: bool = False) -> dict[str, str]:
        """Image config labels: like ``to_oci`` without keys that only make sense in an OCI layout."""
        return {k: v for k, v in self._flat(include_aliases).items() if k not in LAYOUT_ONLY_KEYS}

    def managed(self) -> Annotations:
        """Only the keys in the catalogue's namespaces (drops other tools' annotations)."""
        return Annotations((e for e in self.entries() if is_managed(e.key)), self._problems)

    def unknown(self) -> dict[str, str]:
        """Keys in a namespace hpcannotate manages that the catalogue does not know, as the user spelled them.

        They are typos or keys of a newer catalogue: reported by ``validate``, never a canonical key.
        """
        specs = catalogue().specs
        return {e.spelled or e.key: e.value for e in self.entries() if e.key not in specs and is_managed(e.key)}

    def known(self) -> dict[str, str]:
        """Canonical key -> value, without ``unknown()`` keys (other tools' keys are kept as they are)."""
        specs = catalogue().specs
        return {k: v for k, v in self.items() if k in specs or not is_managed(k)}

    def to_json(self) -> dict:
        return {
            "annotations": dict(self),
            "provenance": {e.key: e.to_dict() for e in self.entries()},
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Annotations:
        """Inverse of ``to_json`` (the losers of earlier merges are restored too)."""
        provenance = data.get("provenance") or {}
        entries = []
        for key, value in (data.get("annotations") or {}).items():
            prov = provenance.get(key) or {}
            overridden = tuple(
                Entry(key, lost["value"], Provenance.from_dict(lost)) for lost in prov.get("overridden", ())
            )
            entries.append(Entry(key, as_text(value), Provenance.from_dict(prov), prov.get("spelled"), overridden))
        return cls(entries)
