"""`ipvsctl show`: read the kernel, print what ipvsadm -Ln would print."""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence

from ipvsctl.kernel import IpvsKernel, KernelError
from ipvsctl.model import KernelTable
from ipvsctl.show.arguments import USAGE, parse_show_arguments
from ipvsctl.show.listing_command import (
    ShowOutcome,
    ShowRequest,
    check_show_request,
    render_show,
    usage_failure,
)
from ipvsctl.show.service_address import IpvsadmUsageError

# Exit status for "the kernel cannot be used" (no IPVS, no permission).
EXIT_KERNEL = 2


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
            return render_show(request, timeouts=kernel.timeouts())
        if request.service is None:
            return render_show(request, table=kernel.table())
        # One service: ask the kernel for it (IPVS_CMD_GET_SERVICE), as ipvsadm does.
        entry = kernel.service(request.service)
        found = KernelTable(kernel.info(), (entry,) if entry else ())
        return render_show(request, table=found)


def show_main(argv: Sequence[str]) -> int:
    """Run `ipvsctl show ARGV...`; returns the exit status."""
    if "-h" in argv or "--help" in argv:
        sys.stdout.write(USAGE)
        return 0
    try:
        outcome = read_and_show(parse_show_arguments(argv, _resolve_host, _resolve_port))
    except IpvsadmUsageError as error:
        outcome = usage_failure(error)
    except KernelError as error:
        outcome = ShowOutcome(stderr=f"ipvsctl: {error}\n", exit_status=EXIT_KERNEL)
    sys.stdout.write(outcome.stdout)
    sys.stderr.write(outcome.stderr)
    return outcome.exit_status
