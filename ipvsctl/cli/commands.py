"""The `ipvsctl` click command group: every subcommand's options and help."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ipvsctl import __version__
from ipvsctl.show.arguments import USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ipvsctl")
def cli() -> None:
    """ipvsctl: IPVS load balancing for Kubernetes nodes."""


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
    help=USAGE,
    short_help="Print the IPVS table as ipvsadm -Ln does.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def show(args: Sequence[str]) -> None:
    from ipvsctl.cli.show import show_main

    sys.exit(show_main(args))
