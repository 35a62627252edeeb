"""The `ipvsctl` click command group: every subcommand's options and help."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from ipvsctl import __version__
from ipvsctl.cli.internal_error import DEBUG, internal_error


class _Commands(click.Group):
    """The command group; an exception no command anticipated is one line and
    EXIT_INTERNAL (a traceback only with --debug), never a status `diff` gives meaning."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:  # the last line of defence, by design
            sys.exit(internal_error(error, debug=bool(ctx.meta.get(DEBUG))))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ipvsctl")
@click.option(
    "--debug",
    is_flag=True,
    envvar="IPVSCTL_DEBUG",
    help="Print the traceback of an internal error (also: IPVSCTL_DEBUG=1).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """ipvsctl: IPVS load balancing for Kubernetes nodes.

    Exit status: 0 done (or nothing to do), 1 changes pending (diff) or a change
    the kernel refused (apply, cleanup), 2 bad input or an unusable kernel with
    nothing changed, 70 an internal error (a bug: please report it with --debug's
    traceback).
    """
    ctx.meta[DEBUG] = debug


# The console script never runs this command: `ipvsctl.cli.main` hands `show`
# to `show_main` before click is imported (the import alone costs ~0.1 s of a
# listing ipvsadm prints in ~1 s). It is registered so that `ipvsctl --help`
# lists it, and so that invoking the group directly (click's CliRunner) runs
# that same `show_main`, not a second implementation.
@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
    # The full option list (ipvsadm's) is show_main's own -h; importing it
    # here would cost every other command ~0.1 s in the kernel lab.
    help="Print the IPVS table as ipvsadm -Ln does; `ipvsctl show -h` lists the options.",
    short_help="Print the IPVS table as ipvsadm -Ln does.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def show(args: Sequence[str]) -> None:
    from ipvsctl.cli.show import show_main

    sys.exit(show_main(args))


def _register_engine_commands() -> None:
    from ipvsctl.cli.engine_commands import apply, cleanup_command, diff
    from ipvsctl.cli.run_command import run

    for command in (apply, diff, cleanup_command, run):
        cli.add_command(command)


_register_engine_commands()
