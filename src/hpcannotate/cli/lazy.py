"""A click group whose commands are imported on first use, listed in ``--help`` from a static table.

Importing every command module up front cost ``hpcannotate annotate`` the imports of every other
command (jinja2, jsonschema, hpccm, easybuild, archspec through the modules they pull in). Here the
group knows each command by ``(module, attribute, help)``: running a command imports its module only;
``--help`` lists the table's help lines without importing anything. Commands added with
``add_command`` (as some tests do) work as in a plain group.
"""

from __future__ import annotations

from importlib import import_module

import click


class LazyGroup(click.Group):
    """``lazy``: name -> (module, attribute, first paragraph of the help); modules relative to ``package``."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str, str]], package: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy
        self.package = package

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute, _ = self.lazy[cmd_name]
            self.add_command(getattr(import_module(f".{module}", self.package), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """As click's; an unknown name is matched against every command for "Did you mean", not only the
        ones imported so far (click >= 8.4 suggests from ``self.commands``)."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            no_such = getattr(click.exceptions, "NoSuchCommand", None)
            if no_such is None or not isinstance(exc, no_such):
                raise
            raise no_such(exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with a stand-in carrying the table's help for each command not imported yet."""
        commands = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name) or click.Command(name, help=self.lazy[name][2])
            if not cmd.hidden:
                commands.append((name, cmd))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])
