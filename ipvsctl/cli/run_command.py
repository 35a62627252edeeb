"""`ipvsctl run`: the node agent's flags (those the Helm chart passes), then the agent.

Durations are spelled as kube-proxy's flags and the chart spell them (Go's
time.ParseDuration): `30s`, `15m`, `1h30m`, `500ms`, `0s`.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import click

from ipvsctl.cli.engine_commands import (
    EXIT_ERROR,
    Duration,
    engine_options,
    interface_option,
    ipvs_options,
    netfilter_options,
    node_name_option,
    parse_duration,
    scheduler_option,
    strict_arp_option,
)

__all__ = ["Duration", "parse_duration", "run"]


@click.command("run")
@click.option(
    "--kubeconfig",
    default=None,
    help="Kubeconfig file; default: in-cluster, then $KUBECONFIG or ~/.kube/config.",
)
@node_name_option("This node's Node object.")
@scheduler_option
@interface_option
@click.option(
    "--sync-period",
    type=Duration(),
    default="30s",
    show_default=True,
    help="How often the whole table is read and drift repaired.",
)
@click.option(
    "--min-sync-period",
    type=Duration(),
    default="0s",
    show_default=True,
    help="Least time between two syncs; changes meanwhile are folded into one.",
)
@click.option(
    "--nodeport-addresses",
    multiple=True,
    metavar="CIDRS",
    help="Node addresses for NodePorts: comma-separated CIDRs, or repeat the flag. "
    "Default: the Node's InternalIP and ExternalIP addresses.",
)
@strict_arp_option
@netfilter_options
@ipvs_options
@click.option(
    "--graceful-period",
    type=Duration(),
    default="15m",
    show_default=True,
    help="Longest time a removed TCP real server drains at weight 0 before it is deleted.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text (key=value) or json; one line per event.",
)
@click.option(
    "--metrics-address",
    default="127.0.0.1:10249",
    show_default=True,
    help="host:port of the Prometheus metrics endpoint.",
)
@click.option(
    "--healthz-address", default="0.0.0.0:10256", show_default=True, help="host:port of /healthz."
)
@click.option(
    "--api-idle-timeout",
    type=Duration(),
    default="2m",
    show_default=True,
    help="A watch that delivers nothing, not even a bookmark (the API server sends one "
    "about every minute), for this long is taken for dead and started again.",
)
def run(
    kubeconfig: str | None,
    node_name: str,
    scheduler: str,
    interface: str,
    sync_period: float,
    min_sync_period: float,
    nodeport_addresses: Sequence[str],
    strict_arp: bool,
    cluster_cidrs: Sequence[str],
    masquerade_all: bool,
    no_netfilter: bool,
    ipvs_exclude_cidrs: Sequence[str],
    ipvs_tcp_timeout: float,
    ipvs_tcpfin_timeout: float,
    ipvs_udp_timeout: float,
    graceful_period: float,
    log_format: str,
    metrics_address: str,
    healthz_address: str,
    api_idle_timeout: float,
) -> None:
    """Run the node agent: keep IPVS in step with the API server's Services and EndpointSlices."""
    # Imported here: `apply` and friends need none of the agent (nor the API client).
    from ipvsctl.agent.runner import AgentOptions, run_agent
    from ipvsctl.kernel import KernelError
    from ipvsctl.links import LinkError
    from ipvsctl.reconcile import OptionError
    from ipvsctl.sources.api.client import ApiConfigError

    for value, flag in ((sync_period, "--sync-period"), (api_idle_timeout, "--api-idle-timeout")):
        if value <= 0:
            raise click.BadParameter("must be more than 0s", param_hint=flag)
    options = AgentOptions(
        engine=engine_options(
            node_name=node_name,
            scheduler=scheduler,
            interface=interface,
            nodeport_addresses=nodeport_addresses,
            strict_arp=strict_arp,
            cluster_cidrs=cluster_cidrs,
            masquerade_all=masquerade_all,
            no_netfilter=no_netfilter,
            ipvs_exclude_cidrs=ipvs_exclude_cidrs,
            ipvs_tcp_timeout=ipvs_tcp_timeout,
            ipvs_tcpfin_timeout=ipvs_tcpfin_timeout,
            ipvs_udp_timeout=ipvs_udp_timeout,
            graceful_period=graceful_period,
        ),
        kubeconfig=kubeconfig,
        sync_period=sync_period,
        min_sync_period=min_sync_period,
        log_format=log_format,
        metrics_address=metrics_address,
        healthz_address=healthz_address,
        api_idle_timeout=api_idle_timeout,
    )
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    try:
        sys.exit(run_agent(options, stop))
    except (OptionError, ApiConfigError, KernelError, LinkError, ValueError, OSError) as error:
        click.echo(f"ipvsctl: {error}", err=True)
        sys.exit(EXIT_ERROR)
