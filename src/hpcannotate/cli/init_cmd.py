"""``hpcannotate init``: a recipe directory from the recipe a user already has."""

from __future__ import annotations

from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.cli.infer_cmd import FormatChoice


@click.command("init")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--name", help="Image name (default: the application the recipe builds, else the file or directory).")
@click.option("--format", "fmt", type=FormatChoice(inferable_only=False),
              help="Recipe format (default: from the file name and contents).")
@click.option("--force", is_flag=True, help="Replace an existing hpcannotate.yaml (and Dockerfile fragment).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def init_cmd(recipe: Path, name, fmt, force: bool, as_json: bool) -> None:
    """Write hpcannotate.yaml beside RECIPE (a Dockerfile, spack.yaml, HPCCM recipe or easyconfig).

    One variant, the CPU targets the recipe pins (else this machine's architecture, and why), and
    for a Dockerfile its FROM as base: with the rest as NAME.Dockerfile. Then build it:

    \b
    Example:
      hpcannotate init Dockerfile --name myapp
      hpcannotate build .
    """
    from hpcannotate.recipes.init import scaffold

    result = scaffold(recipe, name=name, fmt=fmt, force=force)
    if as_json:
        console.emit_json(result.to_json())
        return
    console.ok(f"{result.config}: {result.name}, {result.format} variant, targets {', '.join(result.targets)}")
    click.echo(f"  targets: {result.targets_reason}")
    for note in result.notes:
        click.echo(f"  {note}")
    where = "." if result.directory.resolve() == Path.cwd().resolve() else str(result.directory)
    click.echo(f"  next: hpcannotate build {where}")
