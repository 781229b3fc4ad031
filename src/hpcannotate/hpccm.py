"""Annotate an image from inside its HPCCM recipe, so plain ``hpccm --recipe`` users get labelled Dockerfiles.

Usage, in a recipe::

    from hpcannotate.hpccm import annotations
    ...
    Stage0 += annotations(Stage0, target='zen3')

``annotations`` inspects the given stage (the image it describes) in hpccm's own
process, with the same walker and the same mapping as ``hpcannotate infer``
(``recipes/hpccm/evaluate.py`` and ``recipes/hpccm/adapter.py``), and returns an hpccm
``label`` primitive with the inferred ``org.supercontainers.*`` keys.

Importing this module wraps a few hpccm classes (see ``hpccm_eval.install_hooks``)
so that blocks added after the import remember their recipe line and the
blocks a ``runtime()`` string copies; import it at the top of the recipe.
The wrappers do not change what hpccm generates.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from types import FrameType

import hpccm.config
from hpccm.common import container_type
from hpccm.primitives.label import label
from hpccm.Stage import Stage

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.model import targets
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.values import as_text, check_value, normalise_value
from hpcannotate.recipes.base import Inference
from hpcannotate.recipes.hpccm import evaluate as hpccm_eval
from hpcannotate.recipes.hpccm.adapter import interpret

__all__ = ["annotations"]

hpccm_eval.install_hooks()


def _stages_in(frame: FrameType, stage: Stage) -> list[Stage]:
    """The recipe's stages, in order: hpccm's ``stages`` list, else every ``StageN`` the recipe can see."""
    scope = {**frame.f_globals, **frame.f_locals}
    listed = scope.get("stages")
    if isinstance(listed, list) and all(isinstance(s, Stage) for s in listed):
        stages = list(listed)
    else:
        named = sorted((k, v) for k, v in scope.items() if isinstance(v, Stage) and k.startswith("Stage"))
        stages = [v for _, v in named]
    return stages if any(s is stage for s in stages) else [*stages, stage]


def _extra_key(name: str) -> str:
    """``mpi_portability_mode`` -> ``mpi.portability.mode`` (no catalogue key has an underscore)."""
    return catalogue().canonical(name if "." in name else name.replace("_", "."))


def _add_extra(inference: Inference, extra: dict[str, object], line: int | None) -> None:
    for name, raw in extra.items():
        key = _extra_key(name)
        value = as_text(raw)
        spec = catalogue().specs.get(key)
        if spec is not None:
            value = normalise_value(spec, value)
            problem = check_value(spec, value)
            if problem:
                raise ValueError(f"annotations(): {name}={raw!r}: {problem}")
        inference.set(key, value, line=line, fragment=f"annotations({name}={raw!r})", note="given to annotations()")


def _label_value(value: str) -> str:
    """Quote a value the way the container format reads it back (hpccm's annotate uses shlex.quote too)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"annotations(): a label value cannot span lines: {value!r}")
    if hpccm.config.g_ctype == container_type.DOCKER:
        return shlex.quote(value)
    return value  # Singularity %labels: the rest of the line is the value, quotes would be kept


def annotations(stage: Stage, target: str | None = None, **extra: object) -> label:
    """An hpccm ``label`` with the annotations inferred for the image ``stage`` builds.

    ``target`` is the archspec CPU target the image is built for (default:
    hpccm's ``--cpu-target``, or what the recipe set with
    ``hpccm.config.set_cpu_target``). ``extra`` adds keys the recipe cannot
    show, short or full, with ``_`` for ``.``: ``mpi_portability_mode='mpi_replace'``.
    A bad target or value raises ValueError, which hpccm reports.
    """
    caller = sys._getframe(1)
    facts = hpccm_eval.describe(_stages_in(caller, stage), stage)
    recipe = Path(caller.f_code.co_filename)
    inference = Inference("hpccm", recipe)
    given = facts.get("cpu_target")
    if target is not None:
        call = f"annotations(target={target!r})"
        facts["pins"] = [{"target": target, "file": str(recipe), "line": caller.f_lineno, "fragment": call}]
        facts["cpu_target"] = given = target
    if target is not None and not targets.is_target(target):
        hint = targets.suggest_target(target)
        raise ValueError(f"annotations(): target {target!r} is not an archspec CPU target"
                         + (f" (did you mean {hint!r}?)" if hint else ""))
    try:
        interpret(facts, inference, given)
    except HpcAnnotateError as exc:  # e.g. hpccm --cpu-target with a name archspec does not know
        raise ValueError(f"annotations(): {exc}") from exc
    _add_extra(inference, extra, caller.f_lineno)
    for spec in catalogue().mandatory():
        if spec.key not in inference.annotations:
            reason = inference.missing.get(spec.key, "not inferred")
            inference.warnings.append(f"mandatory key {spec.key} is not in the label set ({reason}): the image "
                                      "will not be HPC Container Compliant; pass target= or hpccm --cpu-target")
    for warning in inference.warnings:
        logging.warning("hpcannotate: %s", warning)
    metadata = {key: _label_value(value) for key, value in inference.annotations.to_labels().items()}
    return label(metadata=metadata)
