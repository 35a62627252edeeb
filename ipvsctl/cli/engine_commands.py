"""`ipvsctl apply`, `diff` and `cleanup`: options in, one engine call, the plan out.

Exit statuses, as `diff` has them: 0 nothing to do (or done), 1 changes
(`diff`) or a change the kernel refused (`apply`), 2 bad input or an
unusable kernel, with nothing changed (70, an internal error, is the command
group's: `ipvsctl.cli.internal_error`).
"""

from __future__ import annotations

import gc
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ipvsctl.kernel import KernelError
from ipvsctl.links import LinkError
from ipvsctl.model.ipvs import Timeouts
from ipvsctl.model.printable import printable
from ipvsctl.reconcile import (
    HOST,
    EngineOptions,
    NodeAccess,
    OptionError,
    Outcome,
    cleanup,
    reconcile_manifests,
)
from ipvsctl.render.plan_lines import plan_text

EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2

Handler = TypeVar("Handler", bound=Callable[..., Any])


def default_node_name() -> str:
    return os.environ.get("NODE_NAME") or socket.gethostname()


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    """A list flag given comma-separated (as kube-proxy takes it), repeated, or both."""
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


# The flags `apply`, `diff` and `run` spell alike, defined once so their names,
# defaults and help cannot drift apart.
def node_name_option(help: str) -> Callable[[Handler], Handler]:
    return click.option(
        "--node-name",
        default=default_node_name,
        show_default="$NODE_NAME, then the hostname",
        help=help,
    )


scheduler_option = click.option(
    "--scheduler",
    default="rr",
    show_default=True,
    help="Scheduler of Services without an ipvsctl.io/scheduler annotation.",
)
interface_option = click.option(
    "--interface",
    default="kube-ipvs0",
    show_default=True,
    help="Dummy interface the service IPs are bound to.",
)
strict_arp_option = click.option(
    "--strict-arp",
    is_flag=True,
    help="Set arp_ignore=1 and arp_announce=2 (for ARP-based load balancers).",
)


def netfilter_options(command: Handler) -> Handler:
    """`--cluster-cidr`, `--masquerade-all` and `--no-netfilter` (`apply`, `diff`, `run`)."""
    for option in reversed(
        [
            click.option(
                "--cluster-cidr",
                "cluster_cidrs",
                multiple=True,
                metavar="CIDRS",
                help="The pod network: ClusterIP traffic from outside it is masqueraded. "
                "Comma-separated CIDRs, or repeat the flag.",
            ),
            click.option(
                "--masquerade-all", is_flag=True, help="Masquerade all ClusterIP traffic."
            ),
            click.option(
                "--no-netfilter",
                is_flag=True,
                help="Write no netfilter state (no nftables table): for CNIs that masquerade "
                "and filter service traffic themselves, and kernels without nftables.",
            ),
        ]
    ):
        command = option(command)
    return command


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (`1h30m`, `500ms`, `0`); ValueError otherwise."""
    spelled = text.strip()
    if spelled == "0":
        return 0.0
    position, total = 0, 0.0
    while position < len(spelled):
        match = _PART.match(spelled, position)
        if match is None:
            raise ValueError(f"{text!r} is not a duration (e.g. 30s, 15m, 1h30m, 500ms)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not spelled:
        raise ValueError("an empty duration")
    return total


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def ipvs_timeouts(tcp: float, tcp_fin: float, udp: float) -> Timeouts:
    """The timeout flags in whole seconds (as kube-proxy truncates them)."""
    return Timeouts(int(tcp), int(tcp_fin), int(udp))


def ipvs_options(command: Handler) -> Handler:
    """kube-proxy's IPVS flags (`apply`, `diff`, `run`): the node-wide connection
    timeouts (`ipvsadm --set`) and the excluded CIDRs."""
    timeouts = [
        click.option(
            f"--ipvs-{name}-timeout",
            type=Duration(),
            default="0s",
            show_default=True,
            help=f"Timeout of idle IPVS {what} connections (ipvsadm --set); 0s leaves "
            "the kernel's value as it is.",
        )
        for name, what in (("tcp", "TCP"), ("tcpfin", "TCP FIN_WAIT"), ("udp", "UDP"))
    ]
    for option in reversed(
        [
            click.option(
                "--ipvs-exclude-cidrs",
                multiple=True,
                metavar="CIDRS",
                help="Virtual servers on addresses in these CIDRs are never deleted as "
                "unwanted (kube-proxy's flag). Comma-separated CIDRs, or repeat the flag.",
            ),
            *timeouts,
        ]
    ):
        command = option(command)
    return command


def translation_options(command: Handler) -> Handler:
    """The flags `apply` and `diff` share (`run` takes most of them too)."""
    for option in reversed(
        [
            node_name_option("This node, for internalTrafficPolicy/externalTrafficPolicy Local."),
            scheduler_option,
            interface_option,
            click.option(
                "--nodeport-addresses",
                multiple=True,
                metavar="CIDRS",
                help="Node addresses for NodePorts: comma-separated CIDRs, or repeat the "
                "flag. No NodePorts when not given.",
            ),
            strict_arp_option,
            netfilter_options,
            ipvs_options,
            click.option(
                "-o",
                "--output",
                type=click.Choice(["text", "json"]),
                default="text",
                help="Plan as ipvsadm-like lines, or JSON.",
            ),
        ]
    ):
        command = option(command)
    return command


def engine_options(
    *,
    node_name: str,
    scheduler: str,
    interface: str,
    nodeport_addresses: Sequence[str],
    strict_arp: bool,
    cluster_cidrs: Sequence[str],
    masquerade_all: bool,
    no_netfilter: bool,
    ipvs_exclude_cidrs: Sequence[str],
    ipvs_tcp_timeout: float,
    ipvs_tcpfin_timeout: float,
    ipvs_udp_timeout: float,
    graceful_period: float = EngineOptions().graceful_period,
) -> EngineOptions:
    """The one options record, from the flags `apply`, `diff` and `run` share."""
    return EngineOptions(
        node_name=node_name,
        scheduler=scheduler,
        interface=interface,
        nodeport_cidrs=split_list(nodeport_addresses),
        strict_arp=strict_arp,
        netfilter=not no_netfilter,
        cluster_cidrs=split_list(cluster_cidrs),
        masquerade_all=masquerade_all,
        exclude_cidrs=split_list(ipvs_exclude_cidrs),
        ipvs_timeouts=ipvs_timeouts(ipvs_tcp_timeout, ipvs_tcpfin_timeout, ipvs_udp_timeout),
        graceful_period=graceful_period,
    )


def _print_plan(outcome: Outcome, output: str) -> None:
    """The netfilter table's lines first, as it is changed first."""
    netfilter = outcome.netfilter
    if output == "json":
        # Imported here: the text every `apply` prints needs none of the JSON schema.
        import json

        from ipvsctl.render.plan_json import plan_document

        steps: list[Any] = []
        if netfilter is not None:
            from ipvsctl.netfilter import plan_steps

            steps.extend(plan_steps(netfilter))
        steps.extend(plan_document(outcome.plan))
        sys.stdout.write(json.dumps(steps, indent=2) + "\n")
        return
    # One write: with PYTHONUNBUFFERED (the image sets it) every line written alone
    # is a system call, 12,000 of them for 1,000 Services.
    lines: list[str] = []
    if netfilter is not None:
        from ipvsctl.netfilter import plan_lines as netfilter_lines

        lines = netfilter_lines(netfilter)
    sys.stdout.write("".join(f"{line}\n" for line in lines) + plan_text(outcome.plan))


def _node() -> NodeAccess:
    """The node the commands reach: this one, unless a test handed click another
    (`CliRunner().invoke(cli, args, obj=NodeAccess(...))`)."""
    return click.get_current_context().find_object(NodeAccess) or HOST


def _run(
    files: Sequence[str], options: EngineOptions, output: str, apply: bool, allow_empty: bool
) -> Outcome:
    """Read, validate, plan and (when `apply`) apply; exits 2 on bad input or kernel."""
    # Imported here: `cleanup` reads no manifests, and PyYAML alone is ~50 ms in the kernel lab.
    from ipvsctl.sources import SourceError, read_manifests

    try:
        inputs = read_manifests(files, sys.stdin)
        # A one-shot process: the cyclic collector would walk the inputs'
        # millions of objects again and again while translation allocates,
        # for garbage that holds no cycles worth freeing before exit.
        gc.disable()
        for note in inputs.notes:
            _say(note)
        outcome = reconcile_manifests(
            inputs, options, apply=apply, node=_node(), allow_empty=allow_empty
        )
    except (SourceError, OptionError, KernelError, LinkError) as error:
        _say(str(error))
        sys.exit(EXIT_ERROR)
    # Said before anything else: each names what was left out of a Service (an address
    # of another family, one that holds someone else's virtual server), and the command
    # goes on with the rest of it.
    for warning in outcome.warnings:
        _say(f"warning: {warning}")
    if outcome.errors:
        for problem in outcome.errors:
            _say(str(problem))
        click.echo("ipvsctl: nothing was changed", err=True)
        sys.exit(EXIT_ERROR)
    _print_plan(outcome, output)
    for failure in outcome.failures:
        click.echo(f"ipvsctl: failed: {failure}", err=True)
    return outcome


def _say(line: str) -> None:
    """One line on stderr; what it quotes of the input cannot make it two (printable).
    Not cut again: errors cut what they quote themselves, keeping their own ends."""
    click.echo(f"ipvsctl: {printable(line, len(line))}", err=True)


FILES = click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    metavar="FILE",
    help="YAML or JSON of Services and EndpointSlices: a file, a directory, or - for stdin. "
    "Repeatable.",
)
ALLOW_EMPTY = click.option(
    "--allow-empty",
    is_flag=True,
    help="Accept an input with no Service at all, and so delete every virtual server "
    "and address ipvsctl owns (without it, such an input is an error).",
)


@click.command()
@FILES
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@ALLOW_EMPTY
@translation_options
def apply(
    files: Sequence[str], dry_run: bool, allow_empty: bool, output: str, **translation: Any
) -> None:
    """Make the kernel match the Services and EndpointSlices in FILEs.

    Only what differs is changed; virtual servers ipvsctl does not own are
    never touched, nor any nftables table but ipvsctl's own. Prints what it
    did, one ipvsadm-like (or nft) line per change.
    """
    options = engine_options(**translation)
    outcome = _run(files, options, output, apply=not dry_run, allow_empty=allow_empty)
    sys.exit(EXIT_CHANGES if outcome.failures else EXIT_OK)


@click.command()
@FILES
@ALLOW_EMPTY
@translation_options
def diff(files: Sequence[str], allow_empty: bool, output: str, **translation: Any) -> None:
    """Print what `apply` would change: exit 0 when nothing, 1 when something, 2 on error."""
    options = engine_options(**translation)
    outcome = _run(files, options, output, apply=False, allow_empty=allow_empty)
    sys.exit(EXIT_OK if outcome.is_empty else EXIT_CHANGES)


@click.command(name="cleanup")
@click.option(
    "--interface", default="kube-ipvs0", show_default=True, help="ipvsctl's dummy interface."
)
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def cleanup_command(interface: str, dry_run: bool, output: str) -> None:
    """Remove everything ipvsctl owns: its virtual servers, addresses, interface and
    nftables table.

    Virtual servers on other addresses, and NodePort ones ipvsctl did not
    create, stay as they are.
    """
    try:
        outcome = cleanup(EngineOptions(interface=interface), apply=not dry_run, node=_node())
    except (OptionError, KernelError, LinkError) as error:
        _say(str(error))
        sys.exit(EXIT_ERROR)
    _print_plan(outcome, output)
    for note in outcome.notes:
        click.echo(f"ipvsctl: note: {note}", err=True)
    for failure in outcome.failures:
        click.echo(f"ipvsctl: failed: {failure}", err=True)
    sys.exit(EXIT_CHANGES if outcome.failures else EXIT_OK)
