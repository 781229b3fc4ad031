"""The lazy command group: `--help` lists the commands from a static table without importing them, each
command imports only its own module, and the table says what the commands themselves say."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from hpcannotate.cli import COMMANDS, cli

HEAVY = ("requests", "jinja2", "jsonschema", "easybuild", "hpccm", "yaml", "archspec")
# What `annotate` needs only on a rarer path: a credential helper (subprocess, shutil), writing an OCI layout
# (tempfile), a misspelt target (difflib), a configured logging (logging, with traceback and textwrap).
RARE = ("logging", "traceback", "subprocess", "shutil", "bz2", "lzma", "tempfile", "difflib")


def imported_by(*argv: str, modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``modules`` a real `hpcannotate ARGV` process has imported when it exits."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print('HEAVY=' + ','.join(m for m in {modules!r} if m in sys.modules)))\n"
        "from hpcannotate.cli import run\n"
        "sys.argv = ['hpcannotate', *sys.argv[1:]]\n"
        "run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY="))
    return [m for m in line.removeprefix("HEAVY=").split(",") if m]


@pytest.mark.parametrize("argv", [("--help",), ("annotate", "--help"), ("inspect", "--help"),
                                  ("keys", "--help"), ("match", "--help"), ("build", "--help")])
def test_help_imports_no_heavy_module(argv):
    assert imported_by(*argv) == []


def test_annotate_on_a_registry_imports_only_what_it_uses(registry):
    """The whole `annotate` run (read, write, verify, read the tag back) on the real registry."""
    from hpcannotate.oci import media
    from hpcannotate.registry import RegistryClient

    ref = f"{registry.host}/startup/imports:one"
    config = b'{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}'
    with RegistryClient() as client:
        digest = client.push_blob(ref, config)
        manifest = media.canonical_json({"schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "layers": [],
                                         "config": {"mediaType": media.OCI_CONFIG, "digest": digest,
                                                    "size": len(config)}})
        client.put_manifest(ref, manifest, media.OCI_MANIFEST)
    assert imported_by("annotate", ref, "--set", "app.version=1", modules=HEAVY + RARE) == []


def test_help_imports_no_command_module():
    code = ("import sys; sys.argv = ['hpcannotate', '--help']\nfrom hpcannotate.cli import main\nmain(['--help'])\n"
            "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.startswith('hpcannotate.cli.')"
            " and m != 'hpcannotate.cli.lazy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED=\n" in out


def test_the_table_lists_every_command_as_the_command_describes_itself():
    ctx = click.Context(cli)
    loaded = {name: cli.get_command(ctx, name) for name in COMMANDS}
    for name, cmd in loaded.items():
        assert isinstance(cmd, click.Command), name
        assert cmd.name == name
        assert not cmd.hidden and not cmd.short_help and not cmd.deprecated, name  # as the stand-in renders it
        stand_in = click.Command(name, help=COMMANDS[name][2])
        for limit in (20, 45, 60, 80, 120):
            assert stand_in.get_short_help_str(limit) == cmd.get_short_help_str(limit), (name, limit)
    # every command module's commands are in the table (a new command cannot be left out of it)
    import importlib

    for module in {m for m, _, _ in COMMANDS.values()}:
        mod = importlib.import_module(f"hpcannotate.cli.{module}")
        defined = {obj for obj in vars(mod).values() if isinstance(obj, click.Command)
                   and getattr(obj.callback, "__module__", None) == mod.__name__}
        top = {c for c in defined if not any(c in getattr(g, "commands", {}).values() for g in defined)}
        assert top <= set(loaded.values()), f"{module}: {[c.name for c in top - set(loaded.values())]}"


def test_a_misspelt_command_is_matched_against_every_command(run_cli):
    r = run_cli("annotat")
    assert r.returncode == 2
    assert "No such command 'annotat'." in r.stderr
    if hasattr(click.exceptions, "NoSuchCommand"):  # click >= 8.4 suggests a spelling
        assert "Did you mean 'annotate'?" in r.stderr
