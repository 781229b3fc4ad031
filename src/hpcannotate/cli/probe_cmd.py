"""``hpcannotate probe REF``: system annotations read from an image's own layers, and conflicts with a recipe."""

from __future__ import annotations

from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.build.builders import BuildOptions
from hpcannotate.cli.registry_cmds import registry_options
from hpcannotate.errors import EXIT_NOT_COMPLIANT, EXIT_OK
from hpcannotate.model.keynames import HARDWARE_CPU_OPTIMIZED_VERSION


@click.command("probe")
@click.argument("reference")
@click.option("--recipe", type=click.Path(path_type=Path),
              help="Compare with what this recipe claims: a recipe directory (hpcannotate.yaml), a recipe file, "
                   "or an annotation YAML/JSON.")
@click.option("--variant", help="Variant of the recipe directory given with --recipe.")
@click.option("--target", help="CPU target to render the --recipe directory for (default: the image's, else the "
                               "variant's first).")
@click.option("--check-labels", is_flag=True, help="Compare with the annotations and labels the image already carries.")
@click.option("--strict", is_flag=True, help="Exit 1 when a claim conflicts with the image.")
@click.option("--platform", metavar="OS/ARCH", help="Image of an index to probe (default: this machine's).")
@click.option("--cache", type=click.Path(path_type=Path),
              help="Blob cache and scratch directory (default: ~/.cache/hpcannotate).")
@click.option("--keep", type=click.Path(path_type=Path), help="Keep the extracted files in this directory.")
@click.option("--root", type=click.Path(path_type=Path), help="buildah --root, for containers-storage:NAME.")
@click.option("--runroot", type=click.Path(path_type=Path), help="buildah --runroot.")
@click.option("--storage-driver", help="buildah --storage-driver.")
@registry_options
@click.option("--explain", is_flag=True, help="Show the rule behind each value and why other keys are missing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
@click.pass_context
def probe_cmd(ctx: click.Context, reference: str, recipe, variant, target, check_labels, strict, platform, cache,
              keep, root, runroot, storage_driver, authfile, tls_verify, plain_http, explain, as_json) -> None:
    """Read an image's file system from its layers and infer its system annotations.

    REFERENCE is oci:PATH[:tag], a registry image (registry/repo:tag), or
    containers-storage:NAME for an image in buildah's store (such as a base that
    `hpcannotate base` loaded; builds write to a layout or a registry, not to the
    store). Only the files the
    rules need are extracted; registry layers are cached by digest, so probing
    again downloads nothing. No container runtime is used.

    \b
    Examples:
      hpcannotate probe oci:build/gromacs/oci:2022.5-x86_64_v2
      hpcannotate probe registry.example.org/hpc/gromacs:2022.5 --recipe recipes/gromacs --strict
      hpcannotate probe containers-storage:docker.io/library/debian:bookworm --json
    """
    from hpcannotate.image.probe import cross_check, probe_image
    from hpcannotate.image.probe.claims import image_claims, recipe_claims

    options = BuildOptions(root=root, runroot=runroot, storage_driver=storage_driver, authfile=authfile,
                           tls_verify=tls_verify, plain_http=plain_http or None)
    console.progress(f"probing {reference}: reading libc, shells, tools, python, MPI and fabric libraries from "
                     "its layers (only the files the rules need)")
    result = probe_image(reference, store_options=options, cache=cache, platform=platform, keep=keep)
    console.progress(f"probed {result.reference}: {len(result.annotations)} annotations")
    for warning in result.warnings:
        console.warn(warning)
    conflicts = []
    if recipe is not None:
        key = HARDWARE_CPU_OPTIMIZED_VERSION  # hpcannotate writes it as an annotation
        target = target or result.image_annotations.get(key) or result.labels.get(key)
        conflicts += cross_check(recipe_claims(recipe, variant=variant, target=target), result)
    if check_labels:
        conflicts += cross_check(image_claims(result.image_annotations, result.labels, result.reference), result)
    errors = [c for c in conflicts if c.severity == "error"]
    if as_json:
        data = result.to_json()
        data["conflicts"] = [c.to_json() for c in conflicts]
        console.emit_json(data)
    else:
        _print(result, conflicts, explain)
    ctx.exit(EXIT_NOT_COMPLIANT if strict and errors else EXIT_OK)


def _print(result, conflicts, explain: bool) -> None:
    annotations = result.annotations
    console.heading(f"{result.reference}: {len(annotations)} annotations from the image's file system")
    rows = []
    for entry in annotations.entries():
        row = [entry.key, console.shorten(entry.value, 50), entry.provenance.file or ""]
        if explain:
            row.append(console.shorten(entry.provenance.note or "", 60))
        rows.append(row)
    console.table(rows, ["KEY", "VALUE", "FILE", "RULE"] if explain else ["KEY", "VALUE", "FILE"], indent=2)
    if result.findings:
        click.echo()
        console.heading("libraries found")
        console.table([[f.kind, f.name, f.path, console.shorten(f.detail, 70)] for f in result.findings], indent=2)
    if explain and result.missing:
        click.echo()
        console.heading("not read from the image")
        console.table([[key, reason] for key, reason in sorted(result.missing.items())], indent=2)
    click.echo()
    source = result.source
    cached = f", {source.blobs_from_cache} blob(s) from the cache" if source.blobs_from_cache else ""
    fetched = f", {source.blobs_fetched} fetched ({source.bytes_fetched} bytes)" if source.blobs_fetched else ""
    click.echo(f"  {len(result.layers)} layer(s), {result.bytes_read} bytes read{fetched}{cached}, "
               f"{len(result.files_read)} file(s) extracted, {result.seconds:.1f} s")
    if conflicts:
        click.echo()
        errors = sum(c.severity == "error" for c in conflicts)
        console.bad(f"CONFLICTS: {errors} claim(s) the image contradicts"
                    + (f", {len(conflicts) - errors} warning(s)" if len(conflicts) > errors else ""))
        console.table([[c.severity.upper(), c.key, c.message, c.recipe_source or ""] for c in conflicts], indent=2)
