"""``hpcannotate infer``: annotations from a build recipe, with where each came from."""

from __future__ import annotations

import math
from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.model.inputs import parse_assignments
from hpcannotate.recipes import formats
from hpcannotate.recipes.base import InferOptions
from hpcannotate.recipes.infer import infer
from hpcannotate.recipes.isolation import DEFAULT_TIMEOUT


class FormatChoice(click.Choice):
    """``--format``: the registered recipe formats, read when the option is used (a format registered
    after start-up is a choice too). ``inferable_only``: only formats whose annotations are inferred."""

    def __init__(self, inferable_only: bool) -> None:
        super().__init__([])
        self.inferable_only = inferable_only

    @property
    def choices(self) -> tuple[str, ...]:
        """What click offers and checks: the registry's names now."""
        return tuple(formats.inferable() if self.inferable_only else formats.names())

    @choices.setter
    def choices(self, _value) -> None:
        pass  # click.Choice.__init__ assigns it; the registry decides


def _finite(value: float) -> float:
    """FloatRange lets nan and inf through; neither is a number of seconds to wait."""
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds (use a finite number above 0)")
    return value


@click.command("infer")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--target", help="CPU target the image is built for (archspec name, e.g. zen3, x86_64_v3).")
@click.option("--format", "fmt", type=FormatChoice(inferable_only=True), help="Recipe format.")
@click.option("--variant", help="Variant of a recipe directory's hpcannotate.yaml (default: its default variant).")
@click.option("--userarg", multiple=True, metavar="KEY=VALUE", help="HPCCM USERARG entries (repeatable).")
@click.option("--robot-path", multiple=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Extra easyconfig trees (existing directories).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT, show_default=True,
              callback=lambda _ctx, _param, value: _finite(value), help="Seconds allowed to evaluate a recipe.")
@click.option("--concretize", is_flag=True, help="Spack: run `spack concretize` first and read spack.lock.")
@click.option("--explain", is_flag=True, help="Show the source of every value and why keys are missing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def infer_cmd(path: Path, target, fmt, variant, userarg, robot_path, timeout, concretize, explain, as_json) -> None:
    """Infer annotations from a recipe file or a recipe directory.

    \b
    Examples:
      hpcannotate infer recipes/gromacs/gromacs.py --target zen3
      hpcannotate infer recipes/gromacs/spack.yaml --explain
      hpcannotate infer recipes/pytorch --variant hpccm-cpu --json
      hpcannotate infer GROMACS-2023.3-foss-2023a.eb --target x86_64_v3   # looked up in easybuild-easyconfigs
    """

    options = InferOptions(
        target=target,
        userargs=parse_assignments(userarg, "--userarg"),
        robot_paths=tuple(robot_path),
        timeout=timeout,
        concretize=concretize,
    )
    inference = infer(path, options, fmt, variant)
    for warning in inference.warnings:
        console.warn(warning)
    if as_json:
        console.emit_json(inference.to_json())
        return
    _print_inference(inference, explain)


def print_annotations(annotations, explain: bool) -> None:
    """Key/value table; with ``explain`` the source of each value and the values it overrode."""
    rows = []
    for entry in annotations.entries():
        row = [entry.key, console.shorten(entry.value, 60)]
        if explain:
            row.append(entry.provenance.describe())
        rows.append(row)
        if explain:
            for lost in entry.overridden:
                rows.append(["", f"(overrode {console.shorten(lost.value, 40)})", lost.provenance.describe()])
    console.table(rows, ["KEY", "VALUE", "SOURCE"] if explain else ["KEY", "VALUE"], indent=2)


def _print_inference(inference, explain: bool) -> None:
    annotations = inference.annotations
    console.heading(f"{inference.path} ({inference.format} recipe): {len(annotations)} annotations")
    print_annotations(annotations, explain)
    if explain and inference.missing:
        click.echo()
        console.heading("not inferred")
        console.table([[key, reason] for key, reason in inference.missing.items()], indent=2)
    if explain and inference.labels:
        click.echo()
        console.heading("other labels the recipe carries")
        console.table([[k, console.shorten(v, 60)] for k, v in inference.labels.items()], indent=2)
    problems = annotations.validate()
    click.echo()
    if problems:
        console.bad(f"not HPC Container Compliant yet: {len(problems)} problem(s)")
        console.table([[p.key, p.message] for p in problems], indent=2)
    else:
        console.ok("HPC Container Compliant")
