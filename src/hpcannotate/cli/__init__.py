"""The ``hpcannotate`` command line: a thin layer that parses arguments and prints.

Every command calls the library and hands the result to ``console``. Heavy
modules (archspec, jsonschema, hpccm, requests) are imported inside the
commands, so ``hpcannotate --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from ..errors import EXIT_ERROR, HpcAnnotateError
from .build_cmds import base_cmd, build_cmd, render_cmd
from .catalogue_cmds import keys_cmd, schema_cmd, validate_cmd
from .fingerprint_cmd import fingerprint_cmd
from .host_cmds import check_cmd, edf_cmd, match_cmd
from .infer_cmd import infer_cmd
from .init_cmd import init_cmd
from .probe_cmd import probe_cmd
from .registry_cmds import annotate_cmd, collection_group, inspect_cmd
from .site_cmds import discover_cmd, report_cmd, resolve_cmd, site_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hpcannotate", prog_name="hpcannotate")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr (warnings and errors still).")
def cli(debug: bool, quiet: bool) -> None:
    """Make HPC container images describe themselves.

    Reads build recipes (HPCCM, Spack, EasyBuild), infers org.supercontainers.*
    annotations, builds and retrofits images, and tells which image fits a host.
    """
    from .. import console

    console.set_quiet(quiet)


cli.add_command(keys_cmd)
cli.add_command(schema_cmd)
cli.add_command(validate_cmd)
cli.add_command(init_cmd)
cli.add_command(infer_cmd)
cli.add_command(render_cmd)
cli.add_command(build_cmd)
cli.add_command(base_cmd)
cli.add_command(inspect_cmd)
cli.add_command(annotate_cmd)
cli.add_command(collection_group)
cli.add_command(fingerprint_cmd)
cli.add_command(match_cmd)
cli.add_command(check_cmd)
cli.add_command(edf_cmd)
cli.add_command(probe_cmd)
cli.add_command(discover_cmd)
cli.add_command(site_cmd)
cli.add_command(report_cmd)
cli.add_command(resolve_cmd)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: every failure becomes one line on stderr and exit 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("HPCANNOTATE_DEBUG") not in (None, "", "0")
    try:
        result = cli.main(args=args, prog_name="hpcannotate", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("hpcannotate: aborted", err=True)
        return 130
    except click.UsageError as exc:
        # command_path starts with the program name: "hpcannotate" for the group, "hpcannotate build" ...
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"hpcannotate: error: {_one_line(exc.format_message())}{where}", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        click.echo(f"hpcannotate: error: {_one_line(exc.format_message())}", err=True)
        return EXIT_ERROR
    except HpcAnnotateError as exc:
        if debug:
            traceback.print_exc()
            if exc.detail:
                click.echo(exc.detail, err=True)
        click.echo(f"hpcannotate: error: {_one_line(str(exc))}", err=True)
        return getattr(exc, "exit_code", EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("hpcannotate: interrupted", err=True)
        return 130
    except (MemoryError, RecursionError) as exc:
        # Inputs are bounded where they are read (files.py, inputs.check_size); this is the last line of defence.
        if debug:
            traceback.print_exc()
        what = "memory" if isinstance(exc, MemoryError) else "stack (input nested too deeply)"
        command = next((a for a in args if a in cli.commands), "hpcannotate")  # no argument values: they may be secrets
        click.echo(f"hpcannotate: error: {command}: ran out of {what}; is an input file huge or deeply nested?",
                   err=True)
        return EXIT_ERROR
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            traceback.print_exc()
        name = type(exc).__name__
        click.echo(f"hpcannotate: internal error: {name}: {_one_line(str(exc))} (rerun with --debug)", err=True)
        return EXIT_ERROR


def run() -> None:
    sys.exit(main())
