"""Reading a Dockerfile/Containerfile the way BuildKit and buildah do, for static checks.

``check`` judges a Dockerfile without building it: the final stage's ENTRYPOINT, CMD, ENV,
LABELs and the files it copies from the build context. This parser knows what that needs:
parser directives (``# escape=``), line continuations, comment lines inside them, heredocs
(``RUN <<EOF`` and ``COPY <<EOF /path``), exec (JSON) and shell forms, ``KEY=VALUE`` and the
legacy ``ENV KEY VALUE`` form, and ``$VAR``/``${VAR}``/``${VAR:-default}`` from ARG and ENV.

It is the project's one Dockerfile reader: ``final_base`` and ``base_images`` answer what a build
starts from, ARG defaults (and ``--build-arg`` values) substituted and stage names followed, so
``ARG BASE=debian:bookworm`` / ``FROM $BASE AS b`` / ``FROM b`` answers ``debian:bookworm``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from hpcannotate.errors import InputError

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"^--[a-z-]+(=\S*)?$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the text after the keyword, continuations joined, flags included
    line: int  # 1-based line of the keyword
    heredocs: tuple[tuple[str, str], ...] = ()  # (name, body)

    def split_flags(self) -> tuple[list[str], str]:
        """Leading ``--flag[=value]`` words (COPY --from=..., RUN --mount=...) and the rest."""
        flags, rest = [], self.args.lstrip()
        while rest.startswith("--"):
            word, _, remainder = rest.partition(" ")
            if not _FLAG.match(word):
                break
            flags.append(word)
            rest = remainder.lstrip()
        return flags, rest

    def flag(self, name: str) -> str | None:
        for word in self.split_flags()[0]:
            key, _, value = word[2:].partition("=")
            if key == name:
                return value
        return None

    def exec_form(self) -> list[str] | None:
        """The JSON-array form (``["a", "b"]``), or None for the shell form."""
        text = self.split_flags()[1].strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None

    def argv(self, shell: list[str]) -> list[str]:
        """The command this instruction runs: its exec form, or ``shell + [text]`` for the shell form."""
        form = self.exec_form()
        return form if form is not None else [*shell, self.split_flags()[1].strip()]


@dataclass
class Stage:
    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    path: str
    stages: list[Stage]
    global_args: dict[str, str | None]
    build_args: Mapping[str, str] = field(default_factory=dict)  # --build-arg values over ARG defaults

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage_named(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name and s.name.lower() == name.lower()), None)

    def final_base(self) -> str:
        """The image the final stage starts from, following stage names (``scratch`` stays ``scratch``)."""
        base, seen = self.final.base, set()
        while (stage := self.stage_named(base)) is not None and base.lower() not in seen:
            seen.add(base.lower())
            base = stage.base
        return base

    def external_bases(self) -> list[str]:
        """The images the stages start from, once each in order: ``scratch`` and names of earlier stages
        (``FROM builder``) left out, as BuildKit resolves them."""
        names: set[str] = set()
        bases: list[str] = []
        for stage in self.stages:
            if stage.base.lower() != "scratch" and stage.base.lower() not in names and stage.base not in bases:
                bases.append(stage.base)
            if stage.name:
                names.add(stage.name.lower())
        return bases

    def variables(self, stage: Stage, upto: int | None = None) -> dict[str, str | None]:
        """ARG defaults and ENV values in effect in ``stage`` (before instruction ``upto``)."""
        values: dict[str, str | None] = {}
        for instruction in stage.instructions[:upto]:
            if instruction.keyword == "ARG":
                for name, default in parse_arg(instruction.args):
                    values[name] = (self.build_args[name] if name in self.build_args else
                                    default if default is not None else self.global_args.get(name))
            elif instruction.keyword == "ENV":
                for name, value in parse_pairs(instruction, values):
                    values[name] = value
        return values


def parse(text: str, path: str = "Dockerfile", build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Stages and instructions of a Dockerfile; ``InputError`` naming ``path`` when it has no FROM.

    ``build_args`` (``--build-arg NAME=VALUE``) replace the defaults of the ARGs they name, as the
    builders do; an ARG the Dockerfile does not declare is not a variable."""
    build_args = dict(build_args or {})
    lines = text.splitlines()
    escape = "\\"
    start = 0
    for n, line in enumerate(lines):
        found = _DIRECTIVE.match(line.strip())
        if not found:
            break
        if found.group(1).lower() == "escape":
            escape = found.group(2)
            if escape not in ("\\", "`"):
                raise InputError(f"{path}:{n + 1}: escape directive must be \\ or `, not {escape!r}")
        start = n + 1
    instructions = list(_instructions(lines, start, escape, path))
    stages: list[Stage] = []
    global_args: dict[str, str | None] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            if not words:
                raise InputError(f"{path}:{instruction.line}: FROM without an image")
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            base = substitute(words[0], global_args) or words[0]
            stages.append(Stage(base, name, instruction.line))
        elif not stages:
            if instruction.keyword != "ARG":
                raise InputError(f"{path}:{instruction.line}: {instruction.keyword} before the first FROM")
            global_args.update((name, build_args.get(name, default))
                               for name, default in parse_arg(instruction.args))
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise InputError(f"{path}: no FROM instruction (not a Dockerfile)")
    return Dockerfile(path, stages, global_args, build_args)


def final_base(text: str, path: str = "Dockerfile", build_args: Mapping[str, str] | None = None) -> str | None:
    """The image the final stage of Dockerfile ``text`` starts from (stage names followed, ARGs
    substituted); None for ``scratch``."""
    base = parse(text, path, build_args).final_base()
    return None if base.lower() == "scratch" else base


def base_images(text: str, path: str = "Dockerfile", build_args: Mapping[str, str] | None = None) -> list[str]:
    """The external images Dockerfile ``text`` starts from (stage names and ``scratch`` excluded)."""
    return parse(text, path, build_args).external_bases()


def _instructions(lines: list[str], start: int, escape: str, path: str):
    n = start
    while n < len(lines):
        raw = lines[n].strip()
        first = n
        n += 1
        if not raw or raw.startswith("#"):
            continue
        parts = [raw]
        while parts[-1].endswith(escape) and n < len(lines):
            parts[-1] = parts[-1][: -len(escape)]
            nxt = lines[n].strip()
            n += 1
            if nxt.startswith("#"):
                parts.append(escape)  # a comment line inside a continuation is dropped
                continue
            parts.append(nxt)
        if parts[-1].endswith(escape):
            parts[-1] = parts[-1][: -len(escape)]
        text = " ".join(p for p in parts if p != escape).strip()
        keyword, _, args = text.partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", keyword):
            raise InputError(f"{path}:{first + 1}: {keyword[:40]!r} is not a Dockerfile instruction")
        heredocs = []
        for found in _HEREDOC.finditer(args) if keyword.upper() in ("RUN", "COPY", "ADD") else ():
            body, terminator = [], found.group(3)
            while n < len(lines):
                line = lines[n]
                n += 1
                if (line.lstrip("\t") if found.group(1) else line) == terminator:
                    break
                body.append(line)
            else:
                raise InputError(f"{path}:{first + 1}: heredoc {terminator} is never closed")
            heredocs.append((terminator, "\n".join(body) + "\n"))
        yield Instruction(keyword.upper(), args.strip(), first + 1, tuple(heredocs))


def parse_arg(text: str) -> list[tuple[str, str | None]]:
    result = []
    for word, _ in words(text, None):
        name, eq, default = word.partition("=")
        result.append((name, default if eq else None))
    return result


def words(text: str, variables: dict[str, str | None] | None) -> list[tuple[str, bool]]:
    """Dockerfile words as BuildKit reads them: quotes, backslash escapes, and (given ``variables``)
    ``$VAR`` expansion outside single quotes. Each word comes with False when it used an unknown variable.
    """
    result: list[tuple[str, bool]] = []
    chars: list[str] = []
    known, started, quote = True, False, None
    i = 0
    while i < len(text):
        c = text[i]
        if quote is None and c.isspace():
            if started:
                result.append(("".join(chars), known))
            chars, known, started = [], True, False
            i += 1
            continue
        started = True
        if c == "\\" and i + 1 < len(text) and quote != "'":
            nxt = text[i + 1]
            if quote == '"' and nxt not in '"\\$':
                chars.append(c)
                i += 1
            else:
                chars.append(nxt)
                i += 2
            continue
        if c in "'\"" and quote in (None, c):
            quote = None if quote == c else c
            i += 1
            continue
        if c == "$" and quote != "'" and variables is not None:
            value, i = _reference(text, i, variables)
            if value is None:
                known = False
            else:
                chars.append(value)
            continue
        chars.append(c)
        i += 1
    if started:
        result.append(("".join(chars), known))
    return result


def _reference(text: str, i: int, variables: dict[str, str | None]) -> tuple[str | None, int]:
    """The value of the ``$...`` reference at ``text[i]`` and the index after it."""
    if i + 1 < len(text) and text[i + 1] == "{":
        depth, j = 1, i + 2
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        return (_braced(text[i + 2 : j - 1], variables) if not depth else None), j
    found = _NAME.match(text, i + 1)
    if not found:
        return "$", i + 1
    return variables.get(found.group(0)), found.end()


def parse_pairs(instruction: Instruction, variables: dict[str, str | None] | None = None,
                unresolved: list[str] | None = None) -> list[tuple[str, str]]:
    """``KEY=VALUE ...`` (or the legacy ``KEY VALUE``) of ENV and LABEL, ``$VAR`` expanded from ``variables``.

    Keys whose value uses a variable not in ``variables`` are appended to ``unresolved``.
    """
    text = instruction.args
    found = words(text, variables)
    if found and "=" not in found[0][0]:
        name, _, rest = text.strip().partition(" ")
        value = substitute(rest.strip(), variables) if variables is not None else rest.strip()
        pairs = [(name, value if value is not None else rest.strip(), value is not None)]
    else:
        pairs = [(w.partition("=")[0], w.partition("=")[2], ok) for w, ok in found if "=" in w]
    if unresolved is not None:
        unresolved.extend(name for name, _, ok in pairs if not ok)
    return [(name, value) for name, value, _ in pairs]


def substitute(text: str, variables: dict[str, str | None]) -> str | None:
    """``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:+alt}`` (nested) expanded; None if one is unknown."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        value, i = _reference(text, i, variables)
        if value is None:
            return None
        out.append(value)
    return "".join(out)


def _braced(inner: str, variables: dict[str, str | None]) -> str | None:
    found = _NAME.match(inner)
    if not found:
        return None
    name, rest = found.group(0), inner[found.end():]
    value = variables.get(name)
    for operator in (":-", "-", ":+", "+"):
        if rest.startswith(operator):
            word = substitute(rest[len(operator):], variables)
            if operator.endswith("-"):
                return value if value else word
            return (word if value else "") if word is not None or not value else None
    return value if not rest else None
