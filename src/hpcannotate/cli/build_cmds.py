"""``render``, ``build`` and ``base``: from a recipe directory to annotated images."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.build.baseimage import describe_layout, load_into_buildah, make_base
from hpcannotate.build.builders import BuildOptions, BuildxOptions
from hpcannotate.build.builders.buildah import BuildahBuilder
from hpcannotate.build.pipeline import base_reader, build, image_version, index_annotations, plan
from hpcannotate.build.script import write_script
from hpcannotate.cli.registry_cmds import aliases_option, registry_options
from hpcannotate.dockerfile.reader import final_base
from hpcannotate.dockerfile.render import render_variant, warn_all
from hpcannotate.errors import InputError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.inputs import parse_assignments
from hpcannotate.model.keynames import OCI_BASE_DIGEST
from hpcannotate.recipes.isolation import DEFAULT_TIMEOUT
from hpcannotate.recipes.recipedir import load_recipe_dir


@click.command("render")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--variant", help="Variant of hpcannotate.yaml (default: its `default`).")
@click.option("--target", "targets", multiple=True, help="CPU target (repeatable; default: the variant's targets).")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=Path("build/render"),
              show_default=True, help="Directory for the build contexts (one per target).")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="Seconds for recipe code.")
@click.option("--userarg", multiple=True, metavar="KEY=VALUE",
              help="HPCCM USERARG entries over the variant's userargs: (repeatable).")
@click.option("--explain", is_flag=True, help="Show where every annotation came from and what it overrode.")
@click.option("--script", type=click.Path(path_type=Path),
              help="Also write a standalone POSIX sh script that builds every target with buildah and the index.")
@click.option("--root", type=click.Path(path_type=Path), help="buildah --root to read base images' annotations from.")
@click.option("--runroot", type=click.Path(path_type=Path), help="buildah --runroot.")
@click.option("--storage-driver", help="buildah --storage-driver.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def render_cmd(directory: Path, variant, targets, out: Path, timeout: float, userarg, explain: bool,
               script: Path | None, root, runroot, storage_driver, as_json: bool) -> None:
    """Write the build context (Dockerfile, profile, entrypoint, annotations.json) without building.

    With --script, the contexts go to one directory per target and the script builds them all
    with buildah (on a build node without Python); the base image's annotations are read from
    buildah's store, as `build` does.

    \b
    Examples:
      hpcannotate render recipes/gromacs --variant hpccm --target zen3 -o /tmp/ctx
      hpcannotate render recipes/gromacs -o build/ctx --script build/ctx/build.sh && sh build/ctx/build.sh
    """

    recipe_dir = load_recipe_dir(directory)
    chosen = recipe_dir.variant(variant)
    wanted = list(targets or chosen.targets)
    reader = _store_base_reader(root, runroot, storage_driver) if script is not None or explain else None
    results = []
    for target in wanted:
        destination = out / target if len(wanted) > 1 or script is not None else out
        context = render_variant(recipe_dir, chosen.name, target, destination, timeout=timeout,
                                 target_source="--target" if targets else None,
                                 userargs=parse_assignments(userarg, "--userarg"), base_reader=reader)
        warn_all(context)
        results.append(context)
    if script is not None:
        _write_script(script, recipe_dir, chosen.name, results)
    if as_json:
        console.emit_json([
            {"target": c.target, "variant": c.variant.name, "context": str(c.directory),
             "dockerfile": str(c.dockerfile), "annotations": c.oci_annotations()}
            for c in results
        ])
        return
    for c in results:
        console.ok(f"{c.directory}: {c.variant.name} for {c.target}, {len(c.oci_annotations())} annotations")
        if explain:
            from hpcannotate.cli.infer_cmd import print_annotations

            print_annotations(c.annotations, explain=True)
            _print_after_build(c, reader)


def _store_base_reader(root=None, runroot=None, storage_driver=None):
    """The base image's annotations as buildah's store (default, or --root/--runroot) holds it (render
    makes no base); None when buildah or the base is not there, which ``_print_after_build`` then says."""

    store = BuildOptions(root=root, runroot=runroot, storage_driver=storage_driver)
    return base_reader(BuildahBuilder(store), allow_make=False, make=False)


def _print_after_build(context, reader) -> None:
    """What `build` adds to the rendered keys: the base's keys when the store did not have the base,
    the probe's reading of the built image's files, and the base digest, each marked as such."""
    from hpcannotate.image.probe.userland import PROBED_KEYS

    base = final_base(context.dockerfile.read_text())
    rows = []
    if base and base != "scratch" and (reader is None or reader(base) is None):
        rows.append([f"(keys of {base})", "not read: the base is not in buildah's default store; build reads it and "
                                          "carries its keys over (marked 'base image')"])
    for short in PROBED_KEYS:
        key = P + short
        if key in context.annotations:
            rows.append([key, "checked by the probe after the build; the image's own files win"])
        else:
            rows.append([key, "added by the probe after the build when the image's files say it"])
    if base and base != "scratch":
        rows.append([OCI_BASE_DIGEST, f"added by the build: the digest of {base} it used"])
    click.echo()
    console.heading("  after the build (not in the rendered context)")
    console.table(rows, ["KEY", "WHERE IT COMES FROM"], indent=2)


def _write_script(script: Path, recipe_dir, variant: str, contexts) -> None:
    version, why_not = (None, None) if recipe_dir.version else image_version(contexts)
    if why_not:
        console.warn(why_not)
    tag = recipe_dir.version or version or "latest"
    index_values = index_annotations(recipe_dir.name, [c.oci_annotations() for c in contexts])
    write_script(script, recipe_dir.name, variant, tag, contexts, index_values)
    console.progress(f"wrote {script}: sh {script} [oci:PATH | docker://REGISTRY/REPOSITORY]")


@click.command("build")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--variant", help="Variant of hpcannotate.yaml (default: its `default`, which builds offline).")
@click.option("--target", "targets", multiple=True, help="CPU target (repeatable; default: the variant's targets).")
@click.option("--backend", type=click.Choice(["auto", "buildah", "buildx"]), default="auto", show_default=True)
@click.option("--push", metavar="REF", help="Push to a registry: per-target tags REF-<target> and the index at REF.")
@click.option("--output", metavar="oci:PATH", help="OCI image layout to write (default: build/<app>/oci).")
@click.option("--builder", "buildx_builder", help="buildx builder (remote BuildKit) to use.")
@click.option("--base", "bases", multiple=True, metavar="REF=oci:PATH[:TAG]",
              help="buildx: the base FROM REF is this image of an OCI layout (a named build context; repeatable).")
@click.option("--root", type=click.Path(path_type=Path), help="buildah --root: a private image store.")
@click.option("--runroot", type=click.Path(path_type=Path), help="buildah --runroot.")
@click.option("--storage-driver", help="buildah --storage-driver (vfs where overlay is unavailable).")
@registry_options
@click.option("--make-base/--no-make-base", default=True, show_default=True,
              help="Make missing debian/busybox bases locally (debootstrap, busybox-static).")
@click.option("--probe/--no-probe", default=True, show_default=True,
              help="After the build, read libc, shells, tools, MPI... from the image's layers and annotate them.")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("build"), show_default=True)
@click.option("--dry-run", is_flag=True,
              help="Render and print the builder commands, long values shortened (--json: the complete argv); "
                   "build nothing.")
@click.option("--log", "stream_log", is_flag=True, help="Stream the builder's log to stderr.")
@click.option("--userarg", multiple=True, metavar="KEY=VALUE",
              help="HPCCM USERARG entries over the variant's userargs: (repeatable).")
@aliases_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def build_cmd(directory: Path, variant, targets, backend, push, output, buildx_builder, bases, root, runroot,
              storage_driver, authfile, tls_verify, plain_http, make_base, probe, workdir, dry_run, stream_log,
              userarg, aliases, as_json) -> None:
    """Build one annotated image per CPU target and an annotated index over them.

    \b
    Examples:
      hpcannotate build recipes/gromacs                       # debian variant, OCI layout in build/gromacs/oci
      hpcannotate build recipes/gromacs --push registry.example.org/hpc/gromacs:2022.5
      hpcannotate build recipes/gromacs --variant spack --backend buildx --builder remote-bk --push REF
    """

    common = {"root": root, "runroot": runroot, "storage_driver": storage_driver, "authfile": authfile,
              "tls_verify": tls_verify, "plain_http": plain_http or None, "stream_log": stream_log,
              "aliases": aliases}
    # buildx's own flags make buildx options; the backend chosen adopts (or refuses) them
    options = (BuildxOptions(**common, builder=buildx_builder, base_layouts=_base_layouts(bases))
               if buildx_builder or bases else BuildOptions(**common))
    userargs = parse_assignments(userarg, "--userarg")
    if dry_run:
        _dry_run(directory, variant=variant, targets=list(targets) or None, backend=backend, push=push,
                 output=output, workdir=workdir, options=options, allow_make_base=make_base, as_json=as_json,
                 userargs=userargs)
        return

    report = build(directory, variant=variant, targets=list(targets) or None, backend=backend, push=push,
                   output=output, workdir=workdir, options=options, allow_make_base=make_base, probe=probe,
                   userargs=userargs)
    if as_json:
        console.emit_json(report.to_json())
        return
    console.ok(f"built {report.app} ({report.variant}): {report.reference}")
    for conflict in report.conflicts:
        console.bad(f"  CONFLICT {conflict}")
    click.echo(f"  index digest {report.digest}")
    for t in report.targets:
        click.echo()
        console.heading(f"  {t.target} ({t.platform}) {t.reference}")
        click.echo(f"    digest {t.digest}")
        rows = [[k, console.shorten(v, 70)] for k, v in sorted(t.annotations.items())]
        console.table(rows, indent=4)


def _base_layouts(bases: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for item in bases:
        ref, sep, spec = item.partition("=")
        if not sep or not ref or not spec.startswith("oci:"):
            raise InputError(f"--base {item!r}: expected REF=oci:PATH[:TAG] (the FROM reference, an OCI layout)")
        found[ref] = spec
    return found


DRY_RUN_WIDTH = 120  # a --dry-run argument is shown up to this many characters


def _dry_run(directory, *, as_json: bool, **kwargs) -> None:
    """The plan ``build`` would carry out (same builder, destination and argv), built nothing."""

    the_plan = plan(directory, dry_run=True, **kwargs)
    if not the_plan.available:
        console.warn(f"the {the_plan.builder.name} backend is not available on this machine: "
                     "`build` would stop here")
    if as_json:
        console.emit_json(the_plan.to_json())
        return
    console.heading(f"{the_plan.recipe_dir.name} ({the_plan.variant}) with {the_plan.builder.name}, "
                    f"index {the_plan.destination.index_ref()}")
    shortened = False
    for step in the_plan.targets:
        console.heading(f"{step.target}: {step.context.directory}")
        shown = [console.shorten(a, DRY_RUN_WIDTH) for a in step.argv]
        shortened = shortened or shown != step.argv
        click.echo("  " + shlex.join(shown))
    if shortened:
        click.echo("long values shortened with '…' and line breaks shown as \\n, so these lines cannot be run "
                   "as they are; --json prints the complete argv")


@click.command("base")
@click.argument("reference")
@click.option("--mirror", default="http://deb.debian.org/debian", show_default=True, help="Debian mirror.")
@click.option("--rebuild", is_flag=True, help="Make it again even if the cache has it.")
@click.option("--load/--no-load", default=True, show_default=True, help="Load it into buildah's store.")
@click.option("--root", type=click.Path(path_type=Path), help="buildah --root.")
@click.option("--runroot", type=click.Path(path_type=Path), help="buildah --runroot.")
@click.option("--storage-driver", help="buildah --storage-driver.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
def base_cmd(reference: str, mirror: str, rebuild: bool, load: bool, root, runroot, storage_driver,
             as_json: bool) -> None:
    """Make a base image locally when it cannot be pulled (air-gapped clusters).

    REFERENCE is debian:<suite> (debootstrap --variant=minbase; needs root) or
    busybox (Debian's busybox-static, FROM scratch). The image is cached as an
    OCI layout and loaded into buildah's store under the name FROM uses.

    \b
    Example:
      hpcannotate base debian:bookworm
    """

    layout = make_base(reference, mirror=mirror, rebuild=rebuild)
    info = describe_layout(layout)
    if load:
        builder = BuildahBuilder(BuildOptions(root=root, runroot=runroot, storage_driver=storage_driver))
        info["store_name"] = load_into_buildah(layout, reference, builder.global_args())
    if as_json:
        console.emit_json(info)
        return
    console.ok(f"{reference}: oci:{info['layout']}:{reference.split(':')[-1] if ':' in reference else 'latest'}")
    if "store_name" in info:
        click.echo(f"  loaded into buildah as {info['store_name']}")
    console.table([[k, v] for k, v in info["annotations"].items()], indent=2)
