"""EasyBuild easyconfigs (``*.eb``): annotations from the easyconfig and its toolchain's own easyconfigs.

An easyconfig names its toolchain (``foss/2023a``), not its compiler or MPI;
those are found by reading the toolchain's easyconfig (foss -> GCC 12.3.0 +
OpenMPI 4.1.5 ...) and the MPI's (OpenMPI -> UCX, libfabric), looked up in the
easyconfigs tree the file lives in, then in the installed easybuild-easyconfigs
package, then in ``--robot-path``. Easyconfigs are executed Python: all of that
happens in worker processes (``easybuild_eval``), never in this one.

``infer_many`` evaluates many easyconfigs in one worker per core, so a corpus
costs a couple of interpreter start-ups, not one per file; ``infer`` is the
one-file case of it.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hpcannotate.errors import HpcAnnotateError, InputError, IsolatedError
from hpcannotate.files import read_bytes
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.recipes.base import Adapter, Inference, InferOptions, apply_target
from hpcannotate.recipes.facts import MAX_WIRE_TEXT, Recipe, WireError, from_wire
from hpcannotate.recipes.isolation import run_isolated

WORKER = "hpcannotate.recipes.easybuild.evaluate"
# A batch is only declared hung after the per-file timeout plus these allowances: the worker's own
# SIGALRM deadline catches looping easyconfigs; this backstop is for code a signal cannot interrupt.
STARTUP_ALLOWANCE = 10.0  # seconds to start an interpreter and import easybuild-framework
PER_FILE_ALLOWANCE = 0.05  # seconds per easyconfig (they take about 1 ms)


class EasyBuildAdapter(Adapter):
    name = "easybuild"
    description = "EasyBuild easyconfig (*.eb), its toolchain resolved through the toolchain's own easyconfigs"

    def detect(self, path: Path) -> bool:
        return path.suffix == ".eb" and path.is_file()

    def infer(self, path: Path, options: InferOptions) -> Inference:
        if not path.is_file():
            raise InputError(f"{path}: no such easyconfig file")
        result = self.infer_many([path], options)[0]
        if isinstance(result, HpcAnnotateError):
            raise result
        return result

    def infer_many(self, paths: Sequence[Path | str], options: InferOptions,
                   workers: int | None = None) -> list[Inference | HpcAnnotateError]:
        """One Inference, or the one-line error naming the file, per easyconfig, in the order given.

        A bad easyconfig does not stop the others; a bad ``--target`` stops everything (it is the caller's).
        """
        if options.target:
            apply_target(Inference(self.name, Path()), options.target)  # raises InputError for an unknown target
        replies = evaluate_easyconfigs([str(p) for p in paths], options, workers)
        return [self._inference(Path(path), reply, options) for path, reply in zip(paths, replies, strict=True)]

    def _inference(self, path: Path, reply: dict, options: InferOptions) -> Inference | HpcAnnotateError:
        if "error" in reply:
            return InputError(f"{path}: {reply['error']}", reply.get("detail"))
        inference = Inference(self.name, path)
        for fact in reply["facts"]:  # rebuilt and checked by _checked; the file is the one we asked about
            inference.add(fact.spelled_short())
        for key, reason in reply["missing"]:
            inference.miss(key, reason)
        inference.warnings.extend(reply["warnings"])
        try:
            text = read_bytes(path, "easyconfig")
        except InputError as exc:
            return exc
        inference.add(Recipe(format=inference.sourced("easybuild", fragment="*.eb easyconfig"),
                             easyconfig=inference.sourced(base64.b64encode(text).decode("ascii"),
                                                          note="the easyconfig, base64")).spelled_short())
        apply_target(inference, options.target)
        return inference


# ----------------------------------------------------------------------------- batches of easyconfigs
def evaluate_easyconfigs(paths: list[str], options: InferOptions, workers: int | None = None) -> list[dict]:
    """``{"facts": [Fact], "missing": ..., "warnings": ...}`` or ``{"error": reason}`` per path, from one worker
    process per core.

    Paths are dealt round-robin to the workers so that slow corners of a tree are shared.
    """
    if not paths:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(paths)))
    chunks = [list(range(start, len(paths), workers)) for start in range(workers)]
    results: list[dict] = [{}] * len(paths)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_chunk, [paths[i] for i in chunk], options) for chunk in chunks]
        for chunk, future in zip(chunks, futures, strict=True):
            for index, reply in zip(chunk, future.result(), strict=True):
                results[index] = reply
    return results


def backstop_timeout(options: InferOptions, files: int) -> float:
    """How long a worker with ``files`` easyconfigs may run before it counts as hung."""
    return options.timeout + STARTUP_ALLOWANCE + PER_FILE_ALLOWANCE * files


def _run_chunk(paths: list[str], options: InferOptions) -> list[dict]:
    fd, progress = tempfile.mkstemp(prefix="hpcannotate-eb-", suffix=".progress")
    os.close(fd)
    robot_paths = [os.path.abspath(p) for p in options.robot_paths]
    payload = {
        "paths": [os.path.abspath(p) for p in paths],  # the sandbox has no working directory of ours
        "robot_paths": robot_paths,
        "timeout": options.timeout,
        "progress": progress,
    }
    what = paths[0] if len(paths) == 1 else f"a batch of {len(paths)} easyconfigs"
    limit = backstop_timeout(options, len(paths))
    started = time.monotonic()
    replied = False
    try:
        reply = run_isolated(f"{WORKER}:evaluate_batch", payload, timeout=limit, what=what,
                             reads=_trees(payload["paths"]) + robot_paths, writes=[progress])
        replied = True
        return _checked(reply, paths, what)
    except IsolatedError as exc:
        hung = time.monotonic() - started >= limit
        reason = str(exc).removeprefix(f"{what}: ")
        detail = exc.detail if replied else None  # what is wrong with a malformed reply, for --debug
        return _recover(paths, options, progress, reason, hung, detail)
    finally:
        os.unlink(progress)


def _trees(paths: list[str]) -> list[str]:
    """The directories the worker reads for these easyconfigs: each one's easyconfigs tree (where
    its toolchain's easyconfigs are looked up), or its own directory."""
    from hpcannotate.recipes.easybuild.evaluate import tree_root

    return sorted({tree_root(p) or os.path.dirname(p) for p in paths})


def _checked(reply: object, paths: list[str], what: str) -> list[dict]:
    """The worker's per-file replies, each ``{"facts": [Fact], "missing": [[key, reason]], "warnings": [str]}``
    (the facts rebuilt by ``facts.from_wire``, with the file asked about) or ``{"error": str}``.

    The worker ran easyconfig code, which can write a reply of its own: one without this shape (a fact of
    an unknown kind or field, a value that is not text, a text too long) is the batch's error
    (IsolatedError, what is wrong as its detail), never a TypeError later.
    """
    results = reply.get("results") if isinstance(reply, dict) else None
    if not isinstance(results, list) or len(results) != len(paths):
        raise IsolatedError(f"{what}: the evaluation's reply is malformed (not one result per easyconfig); "
                            "did an easyconfig write to the worker's output?")
    checked = []
    for path, item in zip(paths, results, strict=True):
        if isinstance(item, dict) and isinstance(item.get("error"), str):
            checked.append({"error": item["error"]})
            continue
        try:
            checked.append(_facts_reply(item, path))
        except WireError as exc:
            raise IsolatedError(f"{what}: the evaluation's reply is malformed (a result is neither facts nor an "
                                "error); did an easyconfig write to the worker's output?", str(exc)) from None
    return checked


def _facts_reply(item: object, path: str) -> dict:
    """One result of the worker's reply, its facts rebuilt (recipe layer, file ``path``); WireError if malformed."""
    if not isinstance(item, dict) or set(item) != {"facts", "missing", "warnings"}:
        raise WireError("a result is not {facts, missing, warnings}")
    facts, missing, warnings = item["facts"], item["missing"], item["warnings"]
    if not (isinstance(facts, list) and isinstance(missing, list) and isinstance(warnings, list)):
        raise WireError("facts, missing and warnings are not lists")
    if not all(isinstance(row, list) and len(row) == 2 and all(_text(f) for f in row) for row in missing):
        raise WireError("a missing key is not [key, reason]")
    if not all(_text(w) for w in warnings):
        raise WireError("a warning is not text")
    base = Provenance(Layer.RECIPE, str(Path(path)))  # as Inference.provenance() names the file
    return {"facts": [from_wire(fact, base) for fact in facts], "missing": missing, "warnings": warnings}


def _text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_WIRE_TEXT


def _recover(paths: list[str], options: InferOptions, progress: str, reason: str, hung: bool,
             detail: str | None = None) -> list[dict]:
    """A worker crashed, hung or replied malformed: blame the easyconfig it was on, evaluate the others again.

    A crash is the current file's doing; a hang only when that file has run for its whole timeout
    (otherwise the batch was merely slow and every file gets another chance in a smaller batch).
    ``detail`` (what is wrong with a malformed reply) goes with the blamed file's error, for --debug.
    """
    index, since = _read_progress(progress)
    error = {"error": reason, "detail": detail} if detail else {"error": reason}
    if index is None or index >= len(paths):
        return [error] * len(paths)  # died before the first easyconfig: a broken installation
    if hung:
        error = {"error": f"evaluation did not finish within {options.timeout:g} s (raise it with --timeout)"}
        guilty = len(paths) == 1 or time.time() - since >= options.timeout
    else:
        guilty = True
    before = _run_chunk(paths[:index], options) if index else []
    current = [error] if guilty else _run_chunk([paths[index]], options)
    after = _run_chunk(paths[index + 1:], options) if index + 1 < len(paths) else []
    return before + current + after


def _read_progress(progress: str) -> tuple[int | None, float]:
    try:
        index, since = Path(progress).read_text().split()
        return int(index), float(since)
    except (OSError, ValueError):
        return None, 0.0


def locate_by_name(name: str) -> Path | None:
    """A bare easyconfig file name (``GROMACS-2023.3-foss-2023a.eb``) in the installed easyconfigs,
    where EasyBuild's robot would look for it; None when ``name`` is a path or is not there."""
    from hpcannotate.recipes.easybuild.evaluate import find_easyconfig, installed_easyconfigs

    if "/" in name or not name.endswith(".eb"):
        return None
    found = find_easyconfig(tuple(installed_easyconfigs()), name.split("-", 1)[0], name[: -len(".eb")])
    return Path(found) if found else None
