"""The `ipvsctl` command: parse options, call one function, print its result."""

from __future__ import annotations

import functools
import socket
import sys
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

import click

from ipvsctl import __version__
from ipvsctl.kernel import IpvsKernel, KernelError
from ipvsctl.listing_command import (
    ShowOutcome,
    ShowRequest,
    check_show_request,
    run_show,
    usage_failure,
)
from ipvsctl.model import KernelTable
from ipvsctl.service_address import IpvsadmUsageError
from ipvsctl.show_arguments import USAGE, parse_show_arguments

P = ParamSpec("P")
R = TypeVar("R")

# Exit status for "the kernel cannot be used" (no IPVS, no permission).
EXIT_KERNEL = 2


def reports_kernel_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a kernel error into one line on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KernelError as e:
            click.echo(f"ipvsctl: {e}", err=True)
            sys.exit(EXIT_KERNEL)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ipvsctl")
def main() -> None:
    """ipvsctl: IPVS load balancing for Kubernetes nodes."""


def _resolve_host(name: str) -> str | None:
    try:
        return socket.gethostbyname(name)
    except OSError:
        return None


def _resolve_port(name: str, protocol: str) -> int | None:
    try:
        return socket.getservbyname(name, protocol)
    except OSError:
        return None


def read_and_show(request: ShowRequest) -> ShowOutcome:
    """Read what the request needs from the kernel and render it as ipvsadm would."""
    refused = check_show_request(request)
    if refused is not None:
        return refused
    with IpvsKernel() as kernel:
        if request.timeout:
            return run_show(request, timeouts=kernel.timeouts())
        if request.service is None:
            return run_show(request, table=kernel.table())
        # One service: ask the kernel for it (IPVS_CMD_GET_SERVICE), as ipvsadm does.
        entry = kernel.service(request.service)
        found = KernelTable(kernel.info(), (entry,) if entry else ())
        return run_show(request, table=found)


@main.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
    help=USAGE,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@reports_kernel_errors
def show(args: Sequence[str]) -> None:
    if "-h" in args or "--help" in args:
        click.echo(USAGE, nl=False)
        return
    try:
        request = parse_show_arguments(args, _resolve_host, _resolve_port)
    except IpvsadmUsageError as error:
        outcome = usage_failure(error)
    else:
        outcome = read_and_show(request)
    sys.stdout.write(outcome.stdout)
    sys.stderr.write(outcome.stderr)
    sys.exit(outcome.exit_status)
