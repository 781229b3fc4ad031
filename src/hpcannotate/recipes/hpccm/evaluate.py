"""Evaluate an HPCCM recipe and describe what ends up in its image, as plain JSON facts.

This module imports hpccm and runs in two places only:

* in the worker process that ``run_isolated`` starts for ``hpcannotate infer``
  (``evaluate``): a recipe is arbitrary Python, and hpccm keeps global state
  (``hpccm.config.g_cpu_arch``, ``g_linux_distro``, ``g_cpu_target``) that must
  not leak from one recipe into the next, so each recipe gets a fresh interpreter;
* inside hpccm's own process, through ``hpcannotate.hpccm.annotations``, where
  the user runs their recipe with ``hpccm`` anyway.

hpccm's ``recipe()`` execs the recipe and keeps only the text of the stages, so
``evaluate`` re-implements its small exec/include step and keeps the ``Stage``
objects. A few transparent hooks record what hpccm itself forgets: where in the
recipe each block was created and added, the keyword arguments it was given,
which blocks the string a ``runtime()`` call returns copies, and whether the
recipe pins a CPU target. ``describe`` then walks the stages, nested building
blocks included, and reports facts; turning facts into annotation keys is the
adapter's job (``adapters/hpccm.py``), so both places share one implementation.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import shlex
import sys
import sysconfig
import traceback
from collections.abc import Iterator
from typing import Any

import hpccm
import hpccm.building_blocks
import hpccm.config
import hpccm.primitives
from hpccm.building_blocks.base import bb_base, bb_instructions
from hpccm.common import container_type
from hpccm.Stage import Stage

import hpcannotate

# `hpccm.recipe` is the recipe() function (hpccm/__init__.py shadows the module), so look the module up.
RECIPE_MODULE = importlib.import_module("hpccm.recipe")

MADE = "_hpcannotate_made"  # (file, line) of the recipe line that created an object
KWARGS = "_hpcannotate_kwargs"  # the keyword arguments the recipe passed
ADDS = "_hpcannotate_adds"  # on a Stage: [(layer, file, line)] for each `Stage += layer`
HOOKED = "_hpcannotate_hooked"
RUNTIME = "_hpcannotate_runtime"  # on a block: what its last runtime() call returned

# Attributes worth reporting, looked up as hpccm's private `_<class>__<name>` and then as public ones.
ATTRIBUTES = (
    "version", "url", "repository", "branch", "commit", "package", "prefix", "image", "arch", "distro", "as",
    "cuda", "cuda_version", "cuda_multi", "ucx", "pmi", "pmix", "mpi", "upstream", "source", "tarball",
    "configure_opts", "cmake_opts", "ospackages", "apt", "yum", "from", "src", "files", "toolchain",
)
MAX_TEXT = 300
# Primitives that say something about the image; the others (shell, comment, environment ...) are skipped.
REPORTED_PRIMITIVES = frozenset({"baseimage", "label", "copy"})

_MISSING = object()
_TOOL_DIRS = tuple(
    os.path.dirname(os.path.abspath(p)) + os.sep
    for p in (hpccm.__file__, os.path.abspath(hpcannotate.__file__))  # hpccm's and hpcannotate's own frames
)
_LIBRARY_DIRS = tuple(
    {os.path.abspath(sysconfig.get_paths()[name]) + os.sep for name in ("stdlib", "platstdlib", "purelib", "platlib")}
)

# The recipe files being evaluated (the main one and those it includes); empty inside hpccm's own process.
RECIPE_FILES: set[str] = set()
# Calls the recipe made to hpccm.config.set_cpu_target: {"target", "file", "line"}.
PINS: list[dict] = []


class RuntimeText(str):
    """The text a ``runtime()`` call returns, remembering the blocks it copies and their stage."""

    sources: tuple = ()
    stage: Any = None


class MissingUserArg(KeyError):
    """``USERARG['key']`` for a key the user did not pass: say which ``--userarg`` is needed."""

    def __str__(self) -> str:
        return str(self.args[0])


class UserArgs(dict):
    """hpccm's ``USERARG`` dictionary, with a useful message for a missing key."""

    def __missing__(self, key: object):
        raise MissingUserArg(f"USERARG has no key {key!r} (pass --userarg {key}=VALUE)")


# ------------------------------------------------------------------ where in the recipe
def _is_recipe_file(name: str) -> bool:
    if RECIPE_FILES:
        return os.path.abspath(name) in RECIPE_FILES
    if name.startswith("<"):
        return False
    path = os.path.abspath(name)
    return not path.startswith(_TOOL_DIRS) and not path.startswith(_LIBRARY_DIRS)


def recipe_frame() -> tuple[str | None, int | None]:
    """File and line of the innermost recipe frame on the stack (not hpccm's, not ours)."""
    frame = sys._getframe(1)
    while frame is not None:
        if _is_recipe_file(frame.f_code.co_filename):
            return os.path.abspath(frame.f_code.co_filename), frame.f_lineno
        frame = frame.f_back
    return None, None


# ------------------------------------------------------------------ hooks
def _wrap_init(cls: type) -> None:
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        # A subclass's wrapper already recorded the recipe's own call.
        if KWARGS not in vars(self):
            vars(self)[KWARGS] = dict(kwargs)
            vars(self)[MADE] = recipe_frame()
        original(self, *args, **kwargs)

    cls.__init__ = __init__


def _wrap_runtime(cls: type) -> None:
    original = cls.__dict__["runtime"]

    @functools.wraps(original)
    def runtime(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        vars(self)[RUNTIME] = result
        if isinstance(result, str) and not isinstance(result, RuntimeText):
            result = RuntimeText(result)
            result.sources = (self,) if result.strip() else ()
        return result

    cls.runtime = runtime


def _hook_stage() -> None:
    original_iadd = Stage.__iadd__
    original_runtime = Stage.runtime

    def __iadd__(self, layer):
        file, line = recipe_frame()
        adds = vars(self).setdefault(ADDS, [])
        for item in layer if isinstance(layer, list) else [layer]:
            adds.append((item, file, line))
        return original_iadd(self, layer)

    def runtime(self, _from=None, exclude=None):
        exclude = list(exclude or [])
        for layer in stage_layers(self):
            if hasattr(layer, "__dict__"):
                vars(layer).pop(RUNTIME, None)
        text = RuntimeText(original_runtime(self, _from=_from, exclude=exclude))
        # the blocks whose runtime() copied something (nvhpc without redist= copies nothing)
        text.sources = tuple(
            layer for layer in stage_layers(self)
            if type(layer).__name__ not in exclude and str(vars(layer).get(RUNTIME, "") if hasattr(layer, "__dict__")
                                                           else "").strip()
        )
        text.stage = self
        return text

    Stage.__iadd__ = __iadd__
    Stage.runtime = runtime


def _hook_cpu_target() -> None:
    original = hpccm.config.set_cpu_target

    @functools.wraps(original)
    def set_cpu_target(target):
        file, line = recipe_frame()
        if file is not None:
            PINS.append({"target": target, "file": file, "line": line})
        original(target)

    hpccm.config.set_cpu_target = set_cpu_target


def install_hooks() -> None:
    """Wrap hpccm's classes so that they remember where and how the recipe used them (idempotent).

    The wrappers return what hpccm returns (a ``runtime()`` string is a ``str``
    subclass), so the generated Dockerfile does not change.
    """
    if getattr(Stage, HOOKED, False):
        return
    setattr(Stage, HOOKED, True)
    _hook_stage()
    _hook_cpu_target()
    for module in (hpccm.building_blocks, hpccm.primitives):
        for obj in list(vars(module).values()):
            if isinstance(obj, type) and obj.__module__.startswith(module.__name__):
                _wrap_init(obj)
                if "runtime" in obj.__dict__:
                    _wrap_runtime(obj)


# ------------------------------------------------------------------ reading hpccm objects
def stage_layers(stage: Stage) -> list:
    return list(getattr(stage, "_Stage__layers", []))


def private(obj: object, name: str, default: Any = _MISSING) -> Any:
    """hpccm keeps parameters in name-mangled attributes (``_openmpi__version``); find one along the MRO."""
    values = vars(obj) if hasattr(obj, "__dict__") else {}
    for klass in type(obj).__mro__:
        key = f"_{klass.__name__.lstrip('_')}__{name}"
        if key in values:
            return values[key]
    return default


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a parameter value (toolchains become a dict of their settings)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)[:MAX_TEXT]
    if depth > 3:
        return repr(value)[:MAX_TEXT]
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if type(value).__name__ == "toolchain":
        return {k: v for k, v in vars(value).items() if isinstance(v, str) and v}
    return f"<{type(value).__name__}>"


def unquote(value: object) -> str:
    """The value Docker sees for a LABEL word (hpccm quotes annotate values with shlex.quote)."""
    text = str(value)
    try:
        words = shlex.split(text)
    except ValueError:
        return text
    return words[0] if len(words) == 1 else text


def _attributes(obj: object) -> dict:
    found = {}
    public = vars(obj) if hasattr(obj, "__dict__") else {}
    for name in ATTRIBUTES:
        value = private(obj, name)
        if value is _MISSING:
            value = public.get(name, _MISSING)
        if value is not _MISSING:
            found[name] = jsonable(value)
    return found


def _labels(obj: object) -> dict[str, str]:
    labels = private(obj, "labels", None)  # hpccm.templates.annotate, filled even when annotate=False
    if not isinstance(labels, dict):
        labels = private(obj, "metadata", None) if type(obj).__name__ == "label" else None
    return {str(k): unquote(v) for k, v in (labels or {}).items()}


def walk(layer: object, depth: int = 0, parent: object = None, seen: set | None = None) -> Iterator[tuple]:
    """Every hpccm object in a layer, nested building blocks included: (object, depth, parent object)."""
    seen = set() if seen is None else seen
    if id(layer) in seen or isinstance(layer, str):
        return
    seen.add(id(layer))
    yield layer, depth, parent
    if isinstance(layer, bb_instructions):
        for child in getattr(layer, "_bb_instructions__instructions_bb", []):
            yield from walk(child, depth + 1, layer, seen)


def _is_hpccm(obj: object) -> bool:
    # not just "hpccm.": a class a recipe defines gets __module__ "hpccm.recipe" (recipes exec in its namespace)
    return type(obj).__module__.startswith(("hpccm.building_blocks.", "hpccm.primitives.", "hpccm.templates."))


def object_fact(obj: object, depth: int, parent: object = None) -> dict:
    """What one hpccm object says: kind, the recipe's keyword arguments, effective parameters, labels.

    ``parent_hpccm`` tells a block hpccm itself nests (openmpi's generic_autotools) from one a
    recipe's own block class holds, which counts as the recipe's.
    """
    made = vars(obj).get(MADE, (None, None)) if hasattr(obj, "__dict__") else (None, None)
    fact: dict = {"kind": type(obj).__name__, "depth": depth, "attrs": _attributes(obj),
                  "parent": type(parent).__name__ if parent is not None else None,
                  "parent_hpccm": parent is not None and _is_hpccm(parent)}
    kwargs = vars(obj).get(KWARGS) if hasattr(obj, "__dict__") else None
    if kwargs is not None:
        fact["kwargs"] = jsonable(kwargs)
    if made[0] is not None:
        fact["made_file"], fact["made_line"] = made
    labels = _labels(obj)
    if labels:
        fact["labels"] = labels
    return fact


# ------------------------------------------------------------------ stages
def _adds(stage: Stage) -> dict[int, tuple]:
    return {id(layer): (file, line) for layer, file, line in vars(stage).get(ADDS, [])}


def _stage_of(obj: object, stages: list[Stage]) -> int | None:
    for index, stage in enumerate(stages):
        if any(layer is obj for layer in stage_layers(stage)):
            return index
    return None


def _stage_by_name(name: str, stages: list[Stage]) -> int | None:
    for index, stage in enumerate(stages):
        if stage.name and stage.name == name:
            return index
    if str(name).isdigit() and int(name) < len(stages):
        return int(name)
    return None


def _stage_summary(index: int, stage: Stage) -> dict:
    summary: dict = {"index": index, "name": stage.name, "layers": len(stage)}
    adds = _adds(stage)
    for layer in stage_layers(stage):
        if type(layer).__name__ == "baseimage":
            summary["base"] = object_fact(layer, 0)
            summary["base"]["file"], summary["base"]["line"] = adds.get(id(layer), (None, None))
            break
    return summary


def _emit(facts: list, layer: object, where: dict, seen: set) -> None:
    for obj, depth, parent in walk(layer, seen=seen):
        if not isinstance(obj, bb_base) and type(obj).__name__ not in REPORTED_PRIMITIVES:
            continue
        fact = object_fact(obj, depth, parent)
        fact.update(where)
        facts.append(fact)


def _copied_blocks(copy_layer: object, stages: list[Stage]) -> tuple[int | None, list]:
    """Top-level blocks of another stage whose install prefix a ``copy(_from=...)`` copies."""
    source = private(copy_layer, "from", "")
    if not source:
        return None, []
    index = _stage_by_name(str(source), stages)
    if index is None:
        return None, []
    srcs = private(copy_layer, "src", "")
    srcs = [srcs] if isinstance(srcs, str) else list(srcs or [])
    copied = []
    for layer in stage_layers(stages[index]):
        prefix = private(layer, "prefix", None) or getattr(layer, "prefix", None)
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            continue
        prefix = prefix.rstrip("/")
        for src in srcs:
            src = str(src).rstrip("/")
            if src and (prefix == src or prefix.startswith(src + "/") or src.startswith(prefix + "/")):
                copied.append(layer)
                break
    return index, copied


def describe(stages: list[Stage], final: Stage) -> dict:
    """Facts about the image ``final`` builds: its objects, those it copies from other stages, and those stages."""
    final_index = next((i for i, s in enumerate(stages) if s is final), None)
    if final_index is None:
        stages = [*stages, final]
        final_index = len(stages) - 1
    image: list[dict] = []
    seen: set = set()
    sources: set[int] = set()
    adds = _adds(final)
    for layer in stage_layers(final):
        file, line = adds.get(id(layer), (None, None))
        if isinstance(layer, RuntimeText):
            for block in layer.sources:
                origin = _stage_of(block, stages)
                if origin is not None:
                    sources.add(origin)
                block_file, block_line = (_adds(stages[origin]).get(id(block), (None, None))
                                          if origin is not None else vars(block).get(MADE, (None, None)))
                where = {"origin": "runtime", "stage": origin, "file": block_file, "line": block_line,
                         "via_file": file, "via_line": line}
                _emit(image, block, where, seen)
            continue
        _emit(image, layer, {"origin": "stage", "stage": final_index, "file": file, "line": line}, seen)
        if type(layer).__name__ == "copy":
            origin, blocks = _copied_blocks(layer, stages)
            for block in blocks:
                if origin is not None:
                    sources.add(origin)
                block_file, block_line = _adds(stages[origin]).get(id(block), (None, None))
                where = {"origin": "copy", "stage": origin, "file": block_file, "line": block_line,
                         "via_file": file, "via_line": line}
                _emit(image, block, where, seen)
    build: list[dict] = []
    for index in sorted(sources - {final_index}):
        stage_adds = _adds(stages[index])
        for layer in stage_layers(stages[index]):
            if isinstance(layer, str):
                continue
            file, line = stage_adds.get(id(layer), (None, None))
            _emit(build, layer, {"origin": "build", "stage": index, "file": file, "line": line}, set())
    return {
        "stages": [_stage_summary(i, s) for i, s in enumerate(stages) if len(s) or s is final],
        "final": final_index,
        "sources": sorted(sources - {final_index}),
        "image": image,
        "build": build,
        "cpu_target": hpccm.config.g_cpu_target,
        "pins": list(PINS),
        "cpu_arch": getattr(hpccm.config.g_cpu_arch, "name", str(hpccm.config.g_cpu_arch)).lower(),
        **arch_facts([stages[i] for i in sorted(sources | {final_index})]),
    }


# CPU-specific compiler flags: what hpccm's cpu target puts into a toolchain (GCC/Clang -march, -mcpu;
# NVHPC -tp; Intel -x), and what a recipe writes into its own commands.
ARCH_FLAG = re.compile(r"(?<![\w-])(-march=[\w.+-]+|-mcpu=[\w.+-]+|-tp[= ][\w-]+"
                       r"|-x(?:Host|CORE-[\w-]+|[A-Z][\w.]+)|-ax[\w,-]+)")


# Commands that build for the build host's CPU unless told otherwise: Spack concretizes for the host's
# microarchitecture, EasyBuild compiles with -march=native.
HOST_TUNED_COMMAND = re.compile(r"(?<![\w/-])(spack(?:\s+-\S+)*\s+install|eb(?=\s+\S+\.eb\b|\s+-r\b))")


def arch_facts(stages: list[Stage]) -> dict:
    """The CPU-specific flags in the Dockerfile text of ``stages`` (what compiles the image's binaries),
    and the commands there that tune for the build host: ``{"arch_flags": [...], "host_tuned": [...]}``."""
    flags: dict[str, None] = {}
    commands: dict[str, None] = {}
    for stage in stages:
        try:
            text = str(stage)
        except Exception:  # noqa: S112 - a stage hpccm cannot render says nothing about flags
            continue
        flags.update(dict.fromkeys(ARCH_FLAG.findall(text)))
        commands.update(dict.fromkeys(" ".join(m.split()) for m in HOST_TUNED_COMMAND.findall(text)))
    return {"arch_flags": list(flags), "host_tuned": list(commands)}


# ------------------------------------------------------------------ evaluation in the worker
_BASE_DIR: list[str] = []


def include(recipe_file, _globals=None, _locals=None, prepend_path=True, raise_exceptions=True):
    """hpccm's ``include``, raising instead of printing a traceback and exiting, and remembering the file.

    Like hpccm, a relative path is taken relative to the main recipe's directory.
    """
    del raise_exceptions  # always raise: the caller turns the exception into one line
    if _locals is None:
        _locals = sys._getframe(1).f_locals
    if _globals is None:
        _globals = sys._getframe(1).f_globals
    if prepend_path and _BASE_DIR and not os.path.isabs(recipe_file):
        recipe_file = os.path.join(_BASE_DIR[0], recipe_file)
    path = os.path.abspath(recipe_file)
    RECIPE_FILES.add(path)
    with open(path, "rb") as handle:
        data = handle.read()
    code = compile(_source_text(path, data), path, "exec")
    exec(code, _globals, _locals)  # noqa: S102 - a recipe is Python; this runs in the isolated worker


class RecipeEncodingError(ValueError):
    """A recipe file that is not text in its declared encoding (UTF-8 unless a coding line says otherwise)."""

    def __init__(self, path: str, reason: str):
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _source_text(path: str, data: bytes) -> str:
    """The recipe's text, decoded as Python decodes source (PEP 263 coding line, else UTF-8)."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        problem = None
    except SyntaxError as exc:  # bytes that are not UTF-8 in the first lines, or an unknown coding: line
        encoding, problem = "utf-8", " ".join(str(exc).split())
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RecipeEncodingError(path, f"not {encoding.upper()} text (byte 0x{data[exc.start]:02x} at offset "
                                        f"{exc.start}); save the recipe as UTF-8") from None
    if problem:
        raise RecipeEncodingError(path, problem)
    return text.removeprefix("\ufeff")


def _where(exc: BaseException, main: str) -> str:
    """``line N`` (or ``other.py:N`` for an included file) of the innermost recipe frame of an exception."""
    if isinstance(exc, SyntaxError) and exc.filename:
        file, line = os.path.abspath(exc.filename), exc.lineno
    else:
        file = line = None
        for frame in traceback.extract_tb(exc.__traceback__):
            if os.path.abspath(frame.filename) in RECIPE_FILES:
                file, line = os.path.abspath(frame.filename), frame.lineno
    if file is None:
        return ""
    if file == main:
        return f"line {line}: "
    return f"{os.path.relpath(file, os.path.dirname(main))}:{line}: "


def describe_error(exc: BaseException, main: str) -> str:
    """One line for a recipe that failed: where, and why."""
    where = _where(exc, main)
    if isinstance(exc, SyntaxError):
        return f"{where}syntax error: {exc.msg}"
    if isinstance(exc, SystemExit):
        return f"{where}the recipe called exit({exc.code})"
    if isinstance(exc, RecipeEncodingError):
        name = "" if exc.path == main else f"{os.path.relpath(exc.path, os.path.dirname(main))}: "
        return f"{where}{name}{exc.reason}"
    if isinstance(exc, MissingUserArg):
        return f"{where}{exc}"
    text = " ".join(str(exc).split())
    return f"{where}{type(exc).__name__}: {text}" if text else f"{where}{type(exc).__name__}"


def _namespace(path: str, stages: list[Stage], userargs: dict, target: str | None) -> tuple[dict, dict]:
    """The globals and locals hpccm's ``recipe()`` execs a recipe with."""
    globals_ = dict(vars(RECIPE_MODULE))
    globals_["include"] = include
    locals_ = {
        "recipe_file": path, "cpu_target": target, "ctype": container_type.DOCKER, "raise_exceptions": True,
        "single_stage": False, "singularity_version": "2.6", "userarg": userargs,
        "working_directory": hpccm.config.g_wd, "singularity_tmp_fallback": True,
        "USERARG": UserArgs(userargs), "stages": stages, "Stage0": stages[0], "Stage1": stages[1],
    }
    return globals_, locals_


def evaluate(payload: dict) -> dict:
    """Worker entry point: exec the recipe like ``hpccm --recipe`` does, keep the stages, return facts.

    payload: ``path``, ``userargs`` (dict), ``target`` (archspec name or None).
    A recipe that fails is a user error: the reply is ``{"error": one line, "traceback": ...}``.
    """
    path = os.path.abspath(payload["path"])
    target = payload.get("target")
    install_hooks()
    RECIPE_FILES.add(path)
    _BASE_DIR[:] = [os.path.dirname(path)]
    hpccm.include = include
    RECIPE_MODULE.include = include
    hpccm.config.set_cpu_target(target)
    hpccm.config.g_ctype = container_type.DOCKER
    stages = [Stage(), Stage()]
    globals_, locals_ = _namespace(path, stages, dict(payload.get("userargs") or {}), target)
    cwd = os.getcwd()
    try:
        # the recipe runs in its own directory, as `hpccm --recipe` from there and render do: open('version.txt')
        os.chdir(os.path.dirname(path))
        include(path, _globals=globals_, _locals=locals_, prepend_path=False)
    except BaseException as exc:  # the recipe's own failure, reported as one line
        return {"error": describe_error(exc, path), "traceback": traceback.format_exc()}
    finally:
        os.chdir(cwd)
    final = stages[1] if len(stages[1]) else stages[0]
    facts = describe(stages, final)
    facts["files"] = sorted(RECIPE_FILES)
    facts["given_target"] = target
    return facts
