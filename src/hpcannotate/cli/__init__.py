"""The ``hpcannotate`` command line: a thin layer that parses arguments and prints.

Every command calls the library and hands the result to ``console``. The group
is lazy (``lazy.LazyGroup``): a command's module is imported when that command
runs, so a command pays only for its own imports and ``hpcannotate --help``
for none.
"""

from __future__ import annotations

import os
import sys

import click

from hpcannotate import console
from hpcannotate.cli.lazy import LazyGroup
from hpcannotate.errors import EXIT_ERROR, HpcAnnotateError

# Every command: (module in cli/, attribute, the first paragraph of its help as `--help` lists it).
# A command's module is imported only when that command runs (or its own --help is asked for), so
# `hpcannotate annotate` never imports jinja2, jsonschema, hpccm or easybuild, and `hpcannotate --help`
# imports no command at all. tests/test_cli_lazy.py checks this table against the commands themselves.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "keys": ("catalogue_cmds", "keys_cmd", "List every annotation key, its group, value kind and aliases."),
    "schema": ("catalogue_cmds", "schema_cmd", "Print the JSON Schema (2020-12) of an annotation set."),
    "validate": ("catalogue_cmds", "validate_cmd",
                 "Check a YAML or JSON mapping of annotations (any alias spelling)."),
    "init": ("init_cmd", "init_cmd",
             "Write hpcannotate.yaml beside RECIPE (a Dockerfile, spack.yaml, HPCCM recipe or easyconfig)."),
    "infer": ("infer_cmd", "infer_cmd", "Infer annotations from a recipe file or a recipe directory."),
    "render": ("build_cmds", "render_cmd",
               "Write the build context (Dockerfile, profile, entrypoint, annotations.json) without building."),
    "build": ("build_cmds", "build_cmd",
              "Build one annotated image per CPU target and an annotated index over them."),
    "base": ("build_cmds", "base_cmd", "Make a base image locally when it cannot be pulled (air-gapped clusters)."),
    "inspect": ("registry_cmds", "inspect_cmd",
                "Show the annotations of an image or index, grouped, with their validation status."),
    "annotate": ("registry_cmds", "annotate_cmd",
                 "Add or change annotations of an image or index in place, without rebuilding or re-uploading "
                 "layers."),
    "collection": ("registry_cmds", "collection_group",
                   "Curated MetaHub collections: images per application and tag, as annotated indexes."),
    "fingerprint": ("fingerprint_cmd", "fingerprint_cmd",
                    "Describe this host: CPU target, GPUs, interconnect, OS, MPI and container runtimes."),
    "match": ("host_cmds", "match_cmd",
              "Smoke-test images for a host before pulling them, and rank them best first."),
    "check": ("host_cmds", "check_cmd",
              "Check an image, a Dockerfile or a directory against the expected HPC image behaviour."),
    "edf": ("host_cmds", "edf_cmd", "Write a CSCS Environment Definition File (TOML) for an image."),
    "probe": ("probe_cmd", "probe_cmd",
              "Read an image's file system from its layers and infer its system annotations."),
    "discover": ("site_cmds", "discover_cmd",
                 "Crawl a registry into a catalog of every image, its platform and annotations."),
    "site": ("site_cmds", "site_cmd", "Fingerprint every node type of a cluster into a site file for `report`."),
    "report": ("site_cmds", "report_cmd",
               "Write a static web site: per application, which image to use on which partition."),
    "resolve": ("site_cmds", "resolve_cmd",
                "Print the pinned reference of the best image of REF for this node; exit 1 when none runs."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, package=__name__,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hpcannotate", prog_name="hpcannotate")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr (warnings and errors still).")
def cli(debug: bool, quiet: bool) -> None:
    """Make HPC container images describe themselves.

    Reads build recipes (HPCCM, Spack, EasyBuild), infers org.supercontainers.*
    annotations, builds and retrofits images, and tells which image fits a host.
    """
    console.set_quiet(quiet)


def _print_traceback() -> None:
    """--debug only: traceback (with linecache and tokenize) is imported when one is printed."""
    import traceback

    traceback.print_exc()


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
            _print_traceback()
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
            _print_traceback()
        what = "memory" if isinstance(exc, MemoryError) else "stack (input nested too deeply)"
        command = next((a for a in args if a in COMMANDS), "hpcannotate")  # no argument values: they may be secrets
        click.echo(f"hpcannotate: error: {command}: ran out of {what}; is an input file huge or deeply nested?",
                   err=True)
        return EXIT_ERROR
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            _print_traceback()
        name = type(exc).__name__
        click.echo(f"hpcannotate: internal error: {name}: {_one_line(str(exc))} (rerun with --debug)", err=True)
        return EXIT_ERROR


def run() -> None:
    sys.exit(main())
