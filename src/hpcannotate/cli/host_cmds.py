"""``match``, ``check`` and ``edf``: the host side, before anything is pulled.

``match`` ranks images for a host, ``check`` judges an image or a Dockerfile against the
seeds' expected behaviour, ``edf`` writes a CSCS Environment Definition File. All three read
manifests and configs only.
"""

from __future__ import annotations

from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.cli.registry_cmds import registry_options
from hpcannotate.errors import EXIT_NOT_COMPLIANT, EXIT_OK, HpcAnnotateError, InputError
from hpcannotate.files import write_text
from hpcannotate.host import Fingerprint, fingerprint
from hpcannotate.image.read import Transport
from hpcannotate.verdict.check_dockerfile import check
from hpcannotate.verdict.edf import EdfOptions, check_env, edf
from hpcannotate.verdict.match import match


def _transport(authfile, tls_verify, plain_http):
    return Transport(authfile=authfile, tls_verify=tls_verify, plain_http=plain_http or None)


def _host(fingerprint_file: Path | None, sysroot: Path | None):
    if fingerprint_file and sysroot:
        raise InputError("--fingerprint and --sysroot are exclusive: describe one host")
    if fingerprint_file:
        return Fingerprint.load(fingerprint_file)
    return fingerprint(sysroot)


def _short(pull: str) -> str:
    """``repo@sha256:0123456789ab`` for tables (the JSON keeps the full digest)."""
    name, at, digest = pull.partition("@")
    return f"{name}@{digest[:19]}" if at else pull


def _styled(verdict: str, width: int) -> str:
    return click.style(verdict.ljust(width), fg=console.VERDICT_COLOURS.get(verdict), bold=verdict == "green")


# -- match -------------------------------------------------------------------------------------------


@click.command("match")
@click.argument("refs", nargs=-1, required=True, metavar="REF [REF ...]")
@click.option("--fingerprint", "fingerprint_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A host saved with `hpcannotate fingerprint --json` (default: this host).")
@click.option("--sysroot", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Fingerprint the captured tree DIR instead of this host.")
@click.option("--app", metavar="NAME", help="Only images of this application (app.name or image title).")
@click.option("--jobs", type=click.IntRange(1, 64), default=16, show_default=True,
              help="References read at the same time.")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
@click.pass_context
def match_cmd(ctx: click.Context, refs, fingerprint_file, sysroot, app, jobs, authfile, tls_verify, plain_http,
              as_json: bool) -> None:
    """Smoke-test images for a host before pulling them, and rank them best first.

    Reads each image's annotations from the registry or OCI layout (index, descriptors, child
    manifests and configs; never a layer) and scores every platform entry: green (near bare
    metal), orange (runs, not optimally), red (will not run), unknown (mandatory annotations
    missing). Exit 0 when an image runs here (green or orange), 1 when none does.

    \b
    Examples:
      hpcannotate match registry.example.org/hpc/gromacs:2023.3
      hpcannotate match --fingerprint node.json img:zen2 img:zen3 img:x86_64 --json
    """

    host = _host(fingerprint_file, sysroot)
    report = match(refs, host, _transport(authfile, tls_verify, plain_http), app=app, workers=jobs)
    if len(report.errors) == len(report.reads):
        raise HpcAnnotateError(report.errors[0].error or "no reference could be read")
    for failed in report.errors:
        console.warn(failed.error or failed.reference)
    if not report.ranking:
        raise HpcAnnotateError(f"no image among {len(refs)} reference(s) says it is {app!r} "
                               "(org.supercontainers.app.name or org.opencontainers.image.title)")
    if as_json:
        console.emit_json(report.to_json())
    else:
        _print_match(report, _host_label(fingerprint_file, sysroot))
    ctx.exit(EXIT_OK if report.use else EXIT_NOT_COMPLIANT)


def _host_line(fp) -> str:
    parts = [f"{fp.cpu.target} ({fp.cpu.family}, generic {fp.cpu.generic})"]
    nvidia = fp.gpu.nvidia if fp.gpu else None
    amd = fp.gpu.amd if fp.gpu else None
    if nvidia:
        parts.append(f"NVIDIA {','.join(nvidia.architectures) or '?'} driver {nvidia.driver_version or '?'} "
                     f"(CUDA <= {nvidia.cuda_version or '?'})")
    if amd:
        parts.append(f"AMD {','.join(amd.architectures)}")
    if not nvidia and not amd:
        parts.append("no GPU")
    parts.append(", ".join(fp.interconnect.kinds) or "no fast interconnect")
    mpi = fp.software.primary_mpi
    if mpi:
        parts.append(f"{mpi.implementation} {mpi.version or ''}".strip())
    if fp.os.kernel_version:
        parts.append(f"kernel {fp.os.kernel_version}")
    return " · ".join(parts)


def _host_label(fingerprint_file: Path | None, sysroot: Path | None) -> str:
    """How the host is named in words: this machine, a saved fingerprint, a captured tree."""
    if fingerprint_file:
        return f"the host of {fingerprint_file}"
    if sysroot:
        return f"the host captured in {sysroot}"
    return "this host"


def _print_match(report, where: str = "this host") -> None:
    source = where.removeprefix("the host of ").removeprefix("the host captured in ")
    console.heading(f"host ({source}): {_host_line(report.host)}")
    click.echo()
    rows = [[str(m.rank), m.verdict, str(m.score), _short(m.entry.pull), m.entry.platform_text, m.target or "-"]
            for m in report.ranking]
    headers = ["#", "verdict", "score", "image", "platform", "target"]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    click.echo(click.style("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), bold=True))
    marks = {"red": "✗", "unknown": "?", "orange": "~", "green": "✓", "note": "·"}
    for ranked, row in zip(report.ranking, rows, strict=True):
        cells = [row[0].ljust(widths[0]), _styled(row[1], widths[1])] + \
            [c.ljust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        click.echo("  ".join(cells).rstrip())
        for reason in ranked.reasons:
            colour = console.VERDICT_COLOURS.get(reason.level)
            text = reason.message + (f" ({reason.detail})" if reason.detail else "")
            click.echo("      " + click.style(f"{marks[reason.level]} {text}", fg=colour,
                                              dim=reason.level == "note"))
    if report.left_out:
        click.echo(f"\n({report.left_out} image(s) of other applications left out: --app {report.app})")
    click.echo()
    use = report.use
    if use:
        click.echo(f"use: {click.style(use.entry.pull, bold=True)} ({_styled(use.verdict, 0)}, score {use.score})")
    else:
        best = report.best
        console.bad(f"no image runs on {where} (best: {best.entry.pull}, {best.verdict})")


# -- check -------------------------------------------------------------------------------------------


@click.command("check")
@click.argument("subject", metavar="REF|Dockerfile|DIR")
@registry_options
@click.option("--layers/--no-layers", default=None,
              help="Read the image's layers for /etc/profile, to verify that a login-shell CMD loads "
                   "/etc/profile.d (default: for OCI layouts and archives, not for registry images).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for automation.")
@click.pass_context
def check_cmd(ctx: click.Context, subject: str, authfile, tls_verify, plain_http, layers: bool | None,
              as_json: bool) -> None:
    """Check an image, a Dockerfile or a directory against the expected HPC image behaviour.

    Named checks, each pass or fail with a reason: mandatory annotations present and valid;
    ENTRYPOINT absent or a small script that exec's its arguments; no runtime binary
    selection; CMD a shell or a usage message; the environment available without the
    entrypoint (ENV or /etc/profile.d); one CPU target per image. A registry image is read from
    its manifests and config only, unless --layers: then (as for a layout or an archive) its
    layers are streamed for /etc/profile, to tell whether a login shell loads /etc/profile.d.
    DIR is a build context, a recipe directory or an OCI layout.
    Exit 0 when conformant, 1 when not.

    \b
    Examples:
      hpcannotate check registry.example.org/hpc/gromacs:2023.3
      hpcannotate check path/to/Dockerfile --json
      hpcannotate check recipes/gromacs
    """

    report = check(subject, _transport(authfile, tls_verify, plain_http), layers)
    if as_json:
        console.emit_json(report.to_json())
    else:
        _print_check(report)
    ctx.exit(EXIT_OK if report.conformant else EXIT_NOT_COMPLIANT)


def _print_checks(checks, indent: str) -> None:
    width = max(len(c.name) for c in checks)
    for item in checks:
        status = click.style("PASS", fg="green") if item.passed else click.style("FAIL", fg="red", bold=True)
        click.echo(f"{indent}{status}  {item.name.ljust(width)}  {item.reason}")


def _print_check(report) -> None:
    console.heading(f"{report.subject} ({report.kind})")
    if report.checks:
        _print_checks(report.checks, "  ")
    for part in report.parts:
        click.echo(f"  {part.label or part.subject}")
        if part.subject != report.subject and part.label:
            click.echo(click.style(f"    {part.subject}", dim=True))
        _print_checks(part.checks, "    ")
    click.echo()
    failed = report.failed()
    if report.conformant:
        console.ok("conformant")
    else:
        console.bad(f"not conformant: {len(failed)} check(s) failed ({', '.join(sorted({c.name for c in failed}))})")


# -- edf ---------------------------------------------------------------------------------------------


@click.command("edf")
@click.argument("ref", metavar="REF")
@click.option("--mount", "mounts", multiple=True, metavar="SRC:DST[:ro]", help="A bind mount (repeatable).")
@click.option("--workdir", metavar="DIR", help="Working directory in the container (default: the image's).")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="An [env] entry (repeatable).")
@click.option("--entrypoint/--no-entrypoint", default=None,
              help="Run the image's entrypoint (default: only when its environment is not in ENV).")
@click.option("--writable", is_flag=True, help="Make the container's file system writable.")
@click.option("--hook-style", type=click.Choice(["current", "seed-2024"]), default="current", show_default=True,
              help="Hook keys as the Container Engine documents them now, or as in the 2024 CSCS talk.")
@click.option("--fingerprint", "fingerprint_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Host to choose an index entry for (default: this host).")
@click.option("--by-tag", is_flag=True,
              help="Name the image by tag (Enroot's REGISTRY#REPO:TAG) instead of pinning it by digest.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the EDF here.")
@registry_options
def edf_cmd(ref: str, mounts, workdir, env, entrypoint, writable, hook_style, fingerprint_file, by_tag, output,
            authfile, tls_verify, plain_http) -> None:
    """Write a CSCS Environment Definition File (TOML) for an image.

    The image is the one `resolve` chooses for the host (among an index's entries and the
    per-target tags TAG-TARGET), pinned in Enroot's REGISTRY#REPO@sha256:... form (--by-tag:
    REGISTRY#REPO:TAG); [annotations] switch on the CXI hook (libfabric, or a replaceable
    MPICH-ABI MPI) and the AWS OFI NCCL hook (NCCL with CUDA 11/12) as the image's
    annotations call for. Only manifests and configs are read.

    \b
    Examples:
      hpcannotate edf registry.example.org/hpc/gromacs:2023.3 --mount '${SCRATCH}:/scratch' -o gromacs.toml
      srun --environment=$PWD/gromacs.toml gmx mdrun ...
    """

    options = EdfOptions(mounts=list(mounts), workdir=workdir, env=dict(check_env(e) for e in env),
                         entrypoint=entrypoint, writable=writable, hook_style=hook_style, pin=not by_tag)
    host = Fingerprint.load(fingerprint_file) if fingerprint_file else None
    result = edf(ref, options, fp=host, transport=_transport(authfile, tls_verify, plain_http))
    for warning in result.warnings:
        console.warn(warning)
    text = result.toml()
    if output:
        write_text(output, text, "environment definition file")
        console.status(f"wrote {output}")
    else:
        click.echo(text, nl=False)
