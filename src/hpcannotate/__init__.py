"""hpcannotate: make HPC container images describe themselves.

The library API, which the CLI is a thin layer over::

    from hpcannotate import Annotations, Provenance, Layer
    recipe = Annotations.from_mapping({"mpi.provider": "openmpi"}, Provenance(Layer.RECIPE, "spack.yaml"))
    problems = recipe.validate()

Names are imported lazily so that ``import hpcannotate`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {  # name -> the module (under hpcannotate) that defines it
    "Annotations": "model.annotations",
    "Entry": "model.annotations",
    "Problem": "model.problem",
    "Provenance": "model.provenance",
    "Layer": "model.provenance",
    "catalogue": "model.catalogue",
    "annotation_schema": "model.schema",
    "HpcAnnotateError": "errors",
    "InputError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'hpcannotate' has no attribute {name!r}")
