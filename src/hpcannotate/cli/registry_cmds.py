"""``inspect``, ``annotate`` and ``collection apply|export``: images already in a registry or a layout."""

from __future__ import annotations

from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.files import write_text
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.inputs import parse_assignments
from hpcannotate.model.keynames import HARDWARE_CPU_OPTIMIZED_MODE, HARDWARE_CPU_OPTIMIZED_VERSION
from hpcannotate.model.targets import is_target, mode_for_target, suggest_target


def registry_options(func):
    """Options every registry command shares: credentials and transport."""
    func = click.option("--plain-http", is_flag=True, default=None,
                        help="Talk plain HTTP to the registry (loopback registries get it anyway).")(func)
    func = click.option("--tls-verify/--no-tls-verify", default=True, show_default=True,
                        help="Verify the registry's TLS certificate.")(func)
    func = click.option("--authfile", type=click.Path(path_type=Path),
                        help="Registry credentials (containers auth.json or docker config.json).")(func)
    return func


def _transport(authfile, tls_verify, plain_http) -> dict:
    return {"authfile": authfile, "tls_verify": tls_verify, "plain_http": plain_http or None}


# -- inspect ------------------------------------------------------------------------------------------


@click.command("inspect")
@click.argument("ref", metavar="REF")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH[/VARIANT]",
              help="Only these images of an index (repeatable).")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def inspect_cmd(ref: str, platforms, authfile, tls_verify, plain_http, as_json: bool) -> None:
    """Show the annotations of an image or index, grouped, with their validation status.

    Reads the index, its descriptors, each child manifest and each image config (for labels);
    never a layer. REF is registry/repo:tag, repo@sha256:..., or oci:PATH[:tag] (an OCI layout).

    \b
    Examples:
      hpcannotate inspect registry.example.org/hpc/gromacs:2023.3
      hpcannotate inspect oci:build/gromacs/oci:2022.5 --platform linux/amd64 --json
    """
    from hpcannotate.image.inspect import inspect

    found = inspect(ref, platforms=platforms, **_transport(authfile, tls_verify, plain_http))
    if as_json:
        console.emit_json(found.to_json())
        return
    _print_inspection(found)


def _print_inspection(found) -> None:
    from hpcannotate.image.inspect import grouped

    kind = "index" if found.is_index else "image"
    console.heading(f"{found.reference}")
    click.echo(f"  {kind} {found.digest} ({found.media_type}, {found.size} bytes)")
    if found.is_index:
        if found.annotations:
            click.echo("  index annotations:")
            _grouped_rows({k: [v, "index"] for k, v in found.annotations.items()}, grouped(found.annotations))
        for problem in found.problems:
            console.bad(f"    {problem.key}: {problem.message}")
        if found.skipped:
            click.echo(f"  ({found.skipped} other manifest(s) not shown: --platform)")
    for image in found.images:
        click.echo()
        label = image.platform_text if found.is_index else f"image for {image.platform_text}"
        console.heading(f"  {label}  {image.digest}")
        if image.kind != "image":
            click.echo(f"    {image.kind}: not an image to run; not validated")
            continue
        effective = dict(image.effective())
        sources = image.sources()
        rows = {k: [v, ", ".join(sources.get(k, []))] for k, v in effective.items()}
        _grouped_rows(rows, grouped(effective))
        for key, (label_value, annotation) in image.stale_labels().items():
            console.warn(f"{image.digest[:19]}: label {key}={label_value!r} differs from the annotation "
                         f"{annotation!r} (the annotation wins)")
        if image.compliant:
            console.ok("    HPC Container Compliant")
        else:
            console.bad(f"    not HPC Container Compliant: {len(image.problems)} problem(s)")
            for problem in image.problems:
                click.echo(f"      {problem.key}: {problem.message}")


def _grouped_rows(rows: dict[str, list[str]], groups: dict[str, dict[str, str]]) -> None:
    table = []
    for group, keys in groups.items():
        for key in keys:
            value, where = rows[key]
            table.append([group, key, console.shorten(value, 60), where])
    console.table(table, headers=["group", "key", "value", "in"], indent=4)


aliases_option = click.option(
    "--aliases", is_flag=True,
    help="Also write the seeds' spellings of the keys (mpi.provider, openmpi.version, ...) beside the canonical "
         "ones, for older consumers.")
labels_option = click.option(
    "--labels", is_flag=True,
    help="Also change each image's config labels (what skopeo/docker inspect, Apptainer and Charliecloud read): "
         "one small config blob per image, layers untouched.")


# -- annotate -----------------------------------------------------------------------------------------
def target_assignments(target: str, given: dict[str, str]) -> dict[str, str]:
    """``--target T``: the target and the mode archspec derives from it, so the two never disagree."""

    if not is_target(target):
        hint = suggest_target(target)
        raise InputError(f"--target {target}: not an archspec CPU target" + (f" (did you mean {hint!r}?)" if hint
                                                                              else ""))
    wanted = {HARDWARE_CPU_OPTIMIZED_VERSION: target, HARDWARE_CPU_OPTIMIZED_MODE: mode_for_target(target)}
    for key, value in given.items():
        canonical = catalogue().canonical(key)
        if canonical in wanted and value != wanted[canonical]:
            raise InputError(f"--set {key}={value} contradicts --target {target} ({canonical}={wanted[canonical]})")
    return wanted



@click.command("annotate")
@click.argument("ref", metavar="REF")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Set a key (any spelling; written canonical). Repeatable.")
@click.option("--unset", "removals", multiple=True, metavar="KEY", help="Remove a key (any spelling). Repeatable.")
@click.option("--target", metavar="T",
              help="CPU target (archspec name): sets hardware.cpu.optimized.version and the mode it implies.")
@click.option("--from", "from_path", type=click.Path(path_type=Path), metavar="FILE|RECIPE",
              help="Keys from a YAML/JSON mapping, or inferred from a recipe (HPCCM, spack.yaml, *.eb).")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH[/VARIANT]",
              help="Only these images of an index (repeatable; default: all).")
@click.option("--descriptor", is_flag=True, help="Also write the keys on the index's descriptors.")
@labels_option
@aliases_option
@click.option("--convert-to-oci", is_flag=True,
              help="Rewrite Docker v2 schema 2 manifests as OCI (they cannot carry annotations).")
@click.option("--backend", type=click.Choice(["native", "crane"]), default="native", show_default=True,
              help="native: the built-in client; crane: `crane mutate` (single images only).")
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing.")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def annotate_cmd(ref: str, assignments, removals, target, from_path, platforms, descriptor: bool, labels: bool,
                 aliases: bool,
                 convert_to_oci: bool, backend: str, dry_run: bool, authfile, tls_verify, plain_http,
                 as_json: bool) -> None:
    """Add or change annotations of an image or index in place, without rebuilding or re-uploading layers.

    Keys not named are kept. For an index each changed image is written by digest first and
    the index under its tag last; if the tag moves meanwhile, the merge is redone. The result
    is read back and checked. REF is registry/repo:tag, repo@sha256:..., or oci:PATH[:tag].

    \b
    Examples:
      hpcannotate annotate reg.example.org/hpc/gromacs:2023.3 --set mpi.implementation=mpich --dry-run
      hpcannotate annotate reg.example.org/hpc/gromacs:2023.3-zen3 --target zen3
      hpcannotate annotate reg.example.org/hpc/gromacs:2023.3 --from curated.yaml --platform linux/amd64
      hpcannotate annotate oci:build/app/oci:1.0 --unset org.supercontainers.tools.includes
    """
    from hpcannotate.retrofit.annotate import annotate, make_change

    values = parse_assignments(assignments, "--set")
    if target:
        values.update(target_assignments(target, values))
    change, warnings = make_change(values, removals, from_path, aliases)
    result = annotate(ref, change=change, platforms=platforms, descriptor=descriptor, convert_to_oci=convert_to_oci,
                      labels=labels,
                      dry_run=dry_run, backend=backend, **_transport(authfile, tls_verify, plain_http))
    result.warnings[:0] = warnings
    if as_json:
        console.emit_json(result.to_json())
    else:
        _print_retrofit(result)
    if result.written and result.verified is False:
        raise HpcAnnotateError(f"{result.reference}: written as {result.new_digest}, but not verified: "
                               f"{result.verification[0]}")


def _print_retrofit(result) -> None:
    console.heading(result.reference)
    if not result.diff:
        console.ok("  nothing to change: the annotations are already as asked")
        return
    for place in result.diff:
        note = " (converted to OCI)" if place.converted else ""
        click.echo(f"  {place.where}{note}")
        for change in place.changes:
            if change.kind == "added":
                click.echo(click.style(f"    + {change.key} = {console.shorten(change.new, 80)}", fg="green"))
            elif change.kind == "removed":
                click.echo(click.style(f"    - {change.key} (was {console.shorten(change.old, 60)})", fg="red"))
            else:
                click.echo(click.style(f"    ~ {change.key}: {console.shorten(change.old, 40)} -> "
                                       f"{console.shorten(change.new, 40)}", fg="yellow"))
    if result.command:
        click.echo("  " + " ".join(result.command))
    if result.dry_run:
        click.echo(f"  dry run: nothing written ({result.old_digest} would become {result.new_digest})")
    else:
        verdict = "verified" if result.verified else "NOT verified" if result.verified is False else "not checked"
        click.echo(f"  {result.old_digest} -> {result.new_digest} ({verdict})")
    if not result.compliant:
        count = sum(len(p) for where, p in result.status.items() if where != "index")
        click.echo(f"  not HPC Container Compliant afterwards: {count} problem(s) (see hpcannotate inspect)")
    for warning in result.warnings:
        console.warn(warning)


# -- collection ---------------------------------------------------------------------------------------


@click.group("collection")
def collection_group() -> None:
    """Curated MetaHub collections: images per application and tag, as annotated indexes."""


@collection_group.command("apply")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--push", metavar="REF", help="Where the indexes go: REGISTRY[/NAMESPACE] (each at .../NAME:TAG), "
              "a full REF:TAG (one application), or oci:DIR. Default: the images' registry.")
@click.option("--convert-to-oci", is_flag=True, help="Rewrite Docker v2 schema 2 images as OCI to annotate them.")
@aliases_option
@labels_option
@click.option("--compression", type=click.Choice(["gzip", "zstd", "none"]), default=None,
              help="How uncompressed layers read from an OCI layout are pushed (default: gzip to a registry, "
                   "as they are to a layout).")
@click.option("--dry-run", is_flag=True, help="Validate, read the images and print the plan; write nothing.")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def collection_apply_cmd(file: Path, push, convert_to_oci: bool, aliases: bool, labels: bool, compression: str | None,
                         dry_run: bool, authfile, tls_verify, plain_http, as_json: bool) -> None:
    """Annotate the listed images and assemble an OCI index per application from a collection YAML.

    The listed images are not changed: each one's manifest, with the curated annotations, is
    written by digest into the index's repository (blobs mounted, or copied from elsewhere).

    \b
    Example:
      hpcannotate collection apply examples/collection.yaml --push registry.example.org/metahub
    """
    from hpcannotate.retrofit.collection import apply_collection, load_collection

    collection = load_collection(file)
    results = apply_collection(collection, push=push, dry_run=dry_run, convert_to_oci=convert_to_oci, aliases=aliases,
                               labels=labels, compression=compression,
                               **_transport(authfile, tls_verify, plain_http))
    if as_json:
        console.emit_json([r.to_json() for r in results])
    else:
        for result in results:
            _print_collection(result)
    failed = [r for r in results if r.written and r.verified is False]
    if failed:
        raise HpcAnnotateError(f"{failed[0].reference}: the read-back disagrees: {failed[0].verification[0]}")


def _print_collection(result) -> None:
    console.heading(f"{result.name}:{result.tag} -> {result.reference}")
    rows = []
    for image in result.images:
        changes = ", ".join(f"{'+' if c.kind == 'added' else '-' if c.kind == 'removed' else '~'}"
                            f"{c.key.removeprefix('org.supercontainers.')}" for c in image.changes) or "-"
        rows.append([image.platform + (f" [{','.join(image.features)}]" if image.features else ""),
                     console.shorten(image.image, 50), image.digest[:19], console.shorten(changes, 60)])
    console.table(rows, headers=["platform", "image", "digest", "changes"], indent=2)
    done = result.compression
    if done.get("layers"):
        click.echo(f"  {done['layers']} layer(s) compressed with {done['compression']}: "
                   f"{done['bytes_before']:,} -> {done['bytes_after']:,} bytes")
    if result.dry_run:
        click.echo(f"  dry run: nothing written (the index would be {result.digest})")
    else:
        verdict = "verified" if result.verified else "NOT verified"
        copied = sum(i.transfer.bytes_copied for i in result.images)
        mounted = sum(i.transfer.mounted for i in result.images)
        click.echo(f"  index {result.digest} ({verdict}; {mounted} blob(s) mounted, {copied} bytes copied)")
    for warning in result.warnings:
        console.warn(warning)


@collection_group.command("export")
@click.argument("ref", metavar="REF")
@click.option("--name", help="Application name in the YAML (default: the repository path).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the YAML here (default: stdout).")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def collection_export_cmd(ref: str, name, output: Path | None, authfile, tls_verify, plain_http,
                          as_json: bool) -> None:
    """Write the collection YAML of an index: each image pinned by digest, its platform, features and keys.

    \b
    Example:
      hpcannotate collection export registry.example.org/metahub/gromacs/mpich:2021.5 -o 2021.5.yaml
    """
    from hpcannotate.retrofit.collection import dump_collection, export_collection

    data = export_collection(ref, name=name, **_transport(authfile, tls_verify, plain_http))
    if as_json:
        console.emit_json(data)
        return
    text = dump_collection(data)
    if output is None:
        click.echo(text, nl=False)
        return

    write_text(output, text, "collection YAML")
    console.ok(f"wrote {output}")
