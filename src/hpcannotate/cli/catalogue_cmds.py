"""Commands about the key catalogue itself: ``keys``, ``schema``, ``validate``."""

from __future__ import annotations

import click

from hpcannotate import console
from hpcannotate.errors import EXIT_NOT_COMPLIANT, EXIT_OK, InputError
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import GROUPS, catalogue
from hpcannotate.model.inputs import load_annotation_mapping
from hpcannotate.model.keydocs import reference_markdown
from hpcannotate.model.provenance import Provenance
from hpcannotate.model.schema import annotation_schema
from hpcannotate.model.validation import foreign_notices

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")


@click.command("keys")
@click.option("--group", type=click.Choice(GROUPS), help="Only keys of this group.")
@click.option("--markdown", is_flag=True, help="Print the reference page (docs/keys.md).")
@json_option
def keys_cmd(group: str | None, markdown: bool, as_json: bool) -> None:
    """List every annotation key, its group, value kind and aliases.

    \b
    Example:
      hpcannotate keys --group mpi
    """

    if markdown:
        click.echo(reference_markdown(), nl=False)
        return
    specs = [s for s in catalogue() if group is None or s.group == group]
    if as_json:
        console.emit_json([s.to_dict() for s in specs])
        return
    width = max(len(s.key) for s in specs) if specs else 0
    for name in GROUPS:
        in_group = [s for s in specs if s.group == name]
        if not in_group:
            continue
        console.heading(name)
        for spec in in_group:
            values = spec.allowed_values()
            kind = f"{spec.kind}: {'|'.join(values)}" if values else spec.kind
            flag = click.style("mandatory", fg="cyan") if spec.mandatory else " " * 9
            click.echo(f"  {spec.key.ljust(width)}  {flag}  {kind}")
            click.echo(f"      {spec.description}")
            if spec.aliases:
                click.echo(f"      aliases: {', '.join(a.key for a in spec.aliases)}")
        click.echo()


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema (2020-12) of an annotation set.

    \b
    Example:
      hpcannotate schema > annotations.schema.json
    """

    console.emit_json(annotation_schema())


@click.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@json_option
@click.pass_context
def validate_cmd(ctx: click.Context, file: str, as_json: bool) -> None:
    """Check a YAML or JSON mapping of annotations (any alias spelling).

    Exit 0 when HPC Container Compliant, 1 when not (each problem listed),
    2 when FILE cannot be read.

    \b
    Example:
      hpcannotate validate annotations.yaml
    """

    mapping = load_annotation_mapping(file)
    try:
        annotations = Annotations.from_mapping(mapping, Provenance(file=file), source=file)
    except TypeError as exc:
        raise InputError(str(exc)) from None
    problems = annotations.validate()

    notices = foreign_notices(annotations)
    if as_json:
        console.emit_json(
            {
                "file": file,
                "compliant": not problems,
                "errors": [p.to_dict() for p in problems],
                "annotations": annotations.known(),
                "unknown": annotations.unknown(),
                "notices": notices,
            }
        )
        ctx.exit(EXIT_NOT_COMPLIANT if problems else EXIT_OK)
    for notice in notices:
        console.notice(notice)
    if problems:
        console.bad(f"{file}: not HPC Container Compliant: {len(problems)} problem(s)")
        console.table([[p.key, p.message] for p in problems], indent=2)
    else:
        console.ok(f"{file}: HPC Container Compliant ({len(annotations)} keys)")
    ctx.exit(EXIT_NOT_COMPLIANT if problems else EXIT_OK)
