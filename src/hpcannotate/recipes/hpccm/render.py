"""Worker-side: hpccm renders an HPCCM recipe to a Dockerfile for one CPU target.

Runs inside ``isolation.run_isolated`` because the recipe is arbitrary Python
and hpccm keeps its CPU target and distribution as process-wide globals.
"""

from __future__ import annotations

import os


def render(payload: dict) -> dict:
    import hpccm
    from hpccm.common import container_type

    recipe = os.path.abspath(payload["recipe"])  # before the chdir below
    cwd = os.getcwd()
    try:
        os.chdir(os.path.dirname(recipe))
        text = hpccm.recipe(
            recipe,
            cpu_target=payload.get("target"),
            ctype=container_type.DOCKER,
            raise_exceptions=True,
            userarg=payload.get("userargs") or {},
        )
    finally:
        os.chdir(cwd)
    return {"dockerfile": str(text)}
