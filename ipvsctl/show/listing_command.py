"""`ipvsctl show` as ipvsadm's list command: which output, which error, which exit status.

The CLI parses its options into a `ShowRequest`, asks `check_show_request`
whether ipvsadm would refuse it, reads the kernel (the table, or the timeouts
for --timeout), and prints the `ShowOutcome` of `render_show`. `run_show` is
both steps in one, for callers that have the kernel's values already. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipvsctl.model import KernelTable, ServiceKey, Timeouts, VirtualServerEntry
from ipvsctl.show.listing import (
    NO_SUCH_SERVICE,
    ListingOptions,
    render_listing,
    render_service_listing,
    render_timeouts,
)
from ipvsctl.show.listing_json import render_json, render_timeouts_json
from ipvsctl.show.service_address import LIST_OPTIONS_CONFLICT, IpvsadmUsageError, conflict_message

__all__ = [
    "ShowOutcome",
    "ShowRequest",
    "check_show_request",
    "render_show",
    "run_show",
    "select_service",
    "usage_failure",
]


@dataclass(frozen=True)
class ShowRequest:
    """What `ipvsctl show` was asked for.

    `service` is the key from -t/-u/--sctp-service/-f (see `service_address`);
    `timeout` is --timeout; `json` is --json.
    """

    options: ListingOptions = field(default_factory=ListingOptions)
    service: ServiceKey | None = None
    timeout: bool = False
    json: bool = False


@dataclass(frozen=True)
class ShowOutcome:
    """What to write to stdout and stderr, and the exit status: exactly ipvsadm's."""

    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0


def usage_failure(error: IpvsadmUsageError) -> ShowOutcome:
    return ShowOutcome(stderr=error.stderr, exit_status=error.exit_status)


def check_show_request(request: ShowRequest) -> ShowOutcome | None:
    """The refusal ipvsadm gives before it reads the kernel, or None.

    Order matters: ipvsadm's `generic_opt_check` (service-address vs timeout)
    runs before the list command's own "options conflicts" test.
    """
    if request.service is not None and request.timeout:
        return usage_failure(IpvsadmUsageError(conflict_message("timeout", "service-address")))
    options = request.options
    columns = options.stats or options.rate or options.thresholds or options.persistent_conn
    if request.timeout and columns:
        return usage_failure(IpvsadmUsageError(LIST_OPTIONS_CONFLICT))
    return None


def select_service(table: KernelTable, key: ServiceKey) -> VirtualServerEntry | None:
    """The service the kernel would return for IPVS_CMD_GET_SERVICE, or None (ESRCH)."""
    for entry in table.services:
        found = entry.service.key
        if found.family != key.family or found.fwmark != key.fwmark:
            continue
        if key.is_fwmark:
            return entry
        # Model addresses are canonical: equal addresses are equal strings.
        if (
            found.protocol == key.protocol
            and found.port == key.port
            and found.address == key.address
        ):
            return entry
    return None


def run_show(
    request: ShowRequest, table: KernelTable | None = None, timeouts: Timeouts | None = None
) -> ShowOutcome:
    """The full outcome. Needs `timeouts` when `request.timeout`, else `table`."""
    refused = check_show_request(request)
    if refused is not None:
        return refused
    return render_show(request, table, timeouts)


def render_show(
    request: ShowRequest, table: KernelTable | None = None, timeouts: Timeouts | None = None
) -> ShowOutcome:
    """The outcome of a request `check_show_request` accepted."""
    if request.timeout:
        if timeouts is None:
            raise ValueError("--timeout needs the kernel's timeouts")
        text = render_timeouts_json(timeouts) if request.json else render_timeouts(timeouts)
        return ShowOutcome(stdout=text)
    if table is None:
        raise ValueError("show needs the kernel table")
    if request.service is None:
        if request.json:
            return ShowOutcome(stdout=render_json(table, request.options))
        return ShowOutcome(stdout=render_listing(table, request.options))
    entry = select_service(table, request.service)
    if entry is None:
        # ipvsadm prints nothing on stdout here, not even the column titles
        return ShowOutcome(stderr=NO_SUCH_SERVICE + "\n", exit_status=1)
    if request.json:
        return ShowOutcome(stdout=render_json(table, request.options, only=entry))
    return ShowOutcome(stdout=render_service_listing(entry, request.options))
