"""``discover``, ``site``, ``report`` and ``resolve``: which image on which node, for a whole site."""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.cli.host_cmds import _host, _short, _styled, _transport
from hpcannotate.cli.registry_cmds import registry_options
from hpcannotate.errors import EXIT_NOT_COMPLIANT, EXIT_OK, InputError
from hpcannotate.host.site import Site, from_fingerprint_dir, slurm_site
from hpcannotate.verdict.discover import Catalog, ProgressBar, discover, write_atomic
from hpcannotate.verdict.report import pyxis_image, write_report
from hpcannotate.verdict.resolve import resolve


@click.command("discover")
@click.argument("target", metavar="REGISTRY[/PREFIX]")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The catalog (JSON). When it exists, only what changed since is read again.")
@click.option("--full", is_flag=True, help="Read everything again, ignoring the existing catalog.")
@click.option("--jobs", type=click.IntRange(1, 64), default=16, show_default=True,
              help="Requests in flight at the same time.")
@click.option("--no-progress", is_flag=True, help="No progress bar or progress lines on stderr.")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print the crawl's figures as JSON.")
@click.pass_context
def discover_cmd(ctx: click.Context, target: str, output: Path, full: bool, jobs: int, no_progress: bool,
                 authfile, tls_verify, plain_http, as_json: bool) -> None:
    """Crawl a registry into a catalog of every image, its platform and annotations.

    Lists repositories (/v2/_catalog, every page) under PREFIX and their tags, then reads each
    tag's manifests and configs (never a layer), JOBS at a time. With an existing catalog,
    each tag is first asked with one HEAD: an unchanged digest reuses what was read before.
    A progress bar is drawn on a terminal; in a log, a line every 5 s. Exit 1 when some tag
    could not be read (the catalog is written all the same, the error kept in its record).

    \b
    Examples:
      hpcannotate discover registry.example.org/hpc -o catalog.json
      hpcannotate discover 127.0.0.1:5000 -o catalog.json --json
    """

    previous = Catalog.load(output) if output.exists() and not full else None
    bar = None if no_progress else ProgressBar("discover")
    catalog = discover(target, _transport(authfile, tls_verify, plain_http), previous=previous, workers=jobs,
                       progress=bar)
    catalog.save(output)
    s = catalog.stats
    if as_json:
        console.emit_json({"catalog": str(output), **s.to_json()})
    else:
        click.echo(f"{output}: {s.references} reference(s) in {s.repositories} repositories, {s.entries} "
                   f"image(s); read {s.read}, unchanged {s.reused}, errors {s.errors}; {s.requests} requests, "
                   f"{s.bytes_received} bytes received, {s.seconds:.2f} s")
        for image in catalog.images:
            if image.get("error"):
                console.warn(image["error"])
    ctx.exit(EXIT_NOT_COMPLIANT if s.errors else EXIT_OK)


@click.command("site")
@click.option("--slurm", is_flag=True, help="Fingerprint one node of each Slurm partition with srun.")
@click.option("--fingerprint-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Saved `hpcannotate fingerprint --json` files, one per node type, named after it.")
@click.option("--by-features", is_flag=True, help="With --slurm: one node per partition and node feature set.")
@click.option("--partition", "partitions", multiple=True, metavar="NAME", help="Only these partitions (repeatable).")
@click.option("--remote-command", metavar="CMD",
              help="What srun runs on the node, printing a fingerprint as JSON (default: this Python with "
                   "`-m hpcannotate fingerprint --json`; the install must be visible on the nodes).")
@click.option("--srun-arg", "srun_args", multiple=True, metavar="ARG",
              help="An extra srun argument such as --account=A or --time=5 (repeatable).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds one srun may take.")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True, help="sruns at the same time.")
@click.option("--name", "site_name", metavar="NAME", help="The site's name in the report.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The site file (JSON).")
@click.option("--json", "as_json", is_flag=True, help="Print the site file's summary as JSON.")
@click.pass_context
def site_cmd(ctx: click.Context, slurm: bool, fingerprint_dir: Path | None, by_features: bool, partitions,
             remote_command: str | None, srun_args, timeout: float, jobs: int, site_name: str | None,
             output: Path, as_json: bool) -> None:
    """Fingerprint every node type of a cluster into a site file for `report`.

    With --slurm, one `srun -p PARTITION -N1` per partition (and per node feature set with
    --by-features) runs hpcannotate's own fingerprint on a node: hpcannotate must be
    installed where the nodes see it (a shared file system), or --remote-command names what
    prints the fingerprint there. With --fingerprint-dir, saved fingerprints are read. Exit 1
    when some node type could not be fingerprinted (kept in the file with its error).

    \b
    Examples:
      hpcannotate site --slurm -o site.json
      hpcannotate site --slurm --by-features --srun-arg=--time=5 -o site.json
      hpcannotate site --fingerprint-dir fingerprints/ -o site.json
    """

    if slurm == bool(fingerprint_dir):
        raise InputError("give exactly one of --slurm and --fingerprint-dir")
    if fingerprint_dir:
        site = from_fingerprint_dir(fingerprint_dir, site_name)
    else:
        command = shlex.split(remote_command) if remote_command else None
        if remote_command is not None and not command:
            raise InputError("--remote-command: empty")
        site = slurm_site(site_name or socket.getfqdn(), by_features=by_features, partitions=partitions,
                          command=command, extra=list(srun_args), timeout=timeout, jobs=jobs,
                          progress=console.progress)
    write_atomic(output, json.dumps(site.to_json(), indent=1))
    failed = [n for n in site.node_types if n.fingerprint is None]
    if as_json:
        console.emit_json({"site": str(output), "partitions": [
            {"name": n.name, "partition": n.partition, "features": n.features, "nodes": n.nodes,
             "target": n.fingerprint.cpu.target if n.fingerprint else None, "error": n.error}
            for n in site.node_types]})
    else:
        rows = [[n.name, n.nodes or "-", n.fingerprint.cpu.target if n.fingerprint else "-",
                 "ok" if n.fingerprint else f"failed: {n.error}"] for n in site.node_types]
        console.table(rows, ["node type", "nodes", "cpu target", "fingerprint"])
        click.echo(f"wrote {output}")
    ctx.exit(EXIT_NOT_COMPLIANT if failed else EXIT_OK)


@click.command("report")
@click.argument("catalog_file", metavar="CATALOG", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--site", "site_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="The site file of `hpcannotate site`.")
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory of the web site (created).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def report_cmd(catalog_file: Path, site_file: Path, output: Path, as_json: bool) -> None:
    """Write a static web site: per application, which image to use on which partition.

    Needs no server: open OUTPUT/index.html from a shared file system or serve the directory.
    The matrix images x partitions shows green/orange/red/unknown with the reasons; each image
    has a page with its annotations and decoded docs. report.json holds the choices.

    \b
    Example:
      hpcannotate report catalog.json --site site.json -o public/
    """

    catalog = Catalog.load(catalog_file)
    site = Site.load(site_file)
    if not site.usable():
        raise InputError(f"{site_file}: no partition has a fingerprint")
    stats = write_report(catalog, site, output)
    if as_json:
        console.emit_json({"output": str(output), **stats.to_json()})
    else:
        click.echo(f"{output}/index.html: {stats.apps} application(s), {stats.images} image(s) x "
                   f"{stats.node_types} partition(s); {stats.files} files, {stats.bytes} bytes")


@click.command("resolve")
@click.argument("ref", metavar="REF")
@click.option("--fingerprint", "fingerprint_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A host saved with `hpcannotate fingerprint --json` (default: this host).")
@click.option("--format", "form", type=click.Choice(["oci", "pyxis"]), default="oci", show_default=True,
              help="oci: REGISTRY/REPO@sha256:...; pyxis: REGISTRY#REPO@sha256:... (srun --container-image).")
@click.option("--no-siblings", is_flag=True, help="Only the reference's own entries, not its TAG-TARGET tags.")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print every candidate with its verdict as JSON.")
@click.pass_context
def resolve_cmd(ctx: click.Context, ref: str, fingerprint_file: Path | None, form: str, no_siblings: bool,
                authfile, tls_verify, plain_http, as_json: bool) -> None:
    """Print the pinned reference of the best image of REF for this node; exit 1 when none runs.

    Considers every entry of REF (an index and its children) and the per-target tags TAG-TARGET
    of its repository. Only manifests and configs are read.

    \b
    Examples:
      srun --container-image=$(hpcannotate resolve --format pyxis reg.example.org/hpc/gromacs:2023.3) gmx mdrun
      podman run $(hpcannotate resolve reg.example.org/hpc/gromacs:2023.3) gmx --version
    """

    host = _host(fingerprint_file, None)
    found = resolve(ref, host, _transport(authfile, tls_verify, plain_http), siblings=not no_siblings)
    for warning in found.warnings:
        console.warn(warning)
    use = found.use
    if as_json:
        data = found.to_json()
        if use and form == "pyxis":
            data["use"] = pyxis_image(use.entry.pull)
        console.emit_json(data)
    elif use:
        click.echo(pyxis_image(use.entry.pull) if form == "pyxis" else use.entry.pull)
    else:
        best = found.best
        for c in found.candidates:
            click.echo(f"  {_styled(c.verdict.verdict, 7)} {_short(c.entry.pull)}  "
                       f"{c.verdict.reasons[0]['message'] if c.verdict.reasons else ''}", err=True)
        where = f"the host of {fingerprint_file}" if fingerprint_file else "this host"
        console.warn(f"no image of {ref} runs on {where}" + (f" (best: {best.verdict.verdict})" if best else ""))
    ctx.exit(EXIT_OK if use else EXIT_NOT_COMPLIANT)
