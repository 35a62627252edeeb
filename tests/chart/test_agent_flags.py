"""The chart and `ipvsctl run` agree: every flag the chart passes is one `run` parses, and
every `run` flag is reachable from the chart's values."""

from __future__ import annotations

from typing import Any

import click
import pytest

from ipvsctl.cli.run_command import run
from tests.chart.manifests import Render, agent

EVERY_VALUE_CHANGED: dict[str, Any] = {
    "scheduler": "wlc",
    "interface": "ipvs-test0",
    "syncPeriod": "1m30s",
    "minSyncPeriod": "2s",
    "gracefulPeriod": "1h",
    "apiIdleTimeout": "90s",
    "nodePortAddresses": ["10.0.0.0/8", "fd00::/64"],
    "strictArp": True,
    "ipvs": {
        "excludeCIDRs": ["192.0.2.0/24", "2001:db8::/64"],
        "tcpTimeout": "15m",
        "tcpFinTimeout": "2m",
        "udpTimeout": "5m",
    },
    "netfilter": {"clusterCIDRs": ["10.244.0.0/16", "fd00:10:244::/56"], "masqueradeAll": True},
    "logFormat": "json",
    "metrics": {"bindAddress": "0.0.0.0", "port": 19249},
    "healthz": {"bindAddress": "::", "port": 19256},
    "extraArgs": ["--kubeconfig=/etc/ipvsctl/kubeconfig"],
}


def parsed(args: list[str]) -> dict[str, Any]:
    """The container's args as `run`'s own parser reads them (no agent is started)."""
    assert args[0] == "run"
    context = run.make_context("run", list(args[1:]))
    return dict(context.params)


def chart_args(render_chart: Render, values: dict[str, Any] | None = None) -> list[str]:
    container = agent(render_chart(values))
    assert container["command"] == ["ipvsctl"]
    return [str(arg) for arg in container["args"]]


def test_the_default_chart_passes_only_flags_run_parses(render_chart: Render) -> None:
    params = parsed(chart_args(render_chart))
    assert params["scheduler"] == "rr" and params["sync_period"] == 30.0
    assert params["graceful_period"] == 900.0 and params["min_sync_period"] == 0.0
    assert params["metrics_address"] == "127.0.0.1:10249"
    assert params["healthz_address"] == "0.0.0.0:10256"


def test_every_value_changed_reaches_run(render_chart: Render) -> None:
    params = parsed(chart_args(render_chart, EVERY_VALUE_CHANGED))
    assert params == {
        "kubeconfig": "/etc/ipvsctl/kubeconfig",
        "node_name": params["node_name"],  # $NODE_NAME from the downward API
        "scheduler": "wlc",
        "interface": "ipvs-test0",
        "sync_period": 90.0,
        "min_sync_period": 2.0,
        "nodeport_addresses": ("10.0.0.0/8,fd00::/64",),
        "strict_arp": True,
        "cluster_cidrs": ("10.244.0.0/16,fd00:10:244::/56",),
        "masquerade_all": True,
        "no_netfilter": False,
        "ipvs_exclude_cidrs": ("192.0.2.0/24,2001:db8::/64",),
        "ipvs_tcp_timeout": 900.0,
        "ipvs_tcpfin_timeout": 120.0,
        "ipvs_udp_timeout": 300.0,
        "graceful_period": 3600.0,
        "api_idle_timeout": 90.0,
        "log_format": "json",
        "metrics_address": "0.0.0.0:19249",
        "healthz_address": "[::]:19256",
    }


def test_every_run_flag_is_reachable_from_the_values(render_chart: Render) -> None:
    # --node-name comes from $NODE_NAME (the pod's spec.nodeName), which the chart sets.
    container = agent(render_chart(EVERY_VALUE_CHANGED))
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in [
        {k: v for k, v in env.items() if k in ("name", "valueFrom")} for env in container["env"]
    ]
    given = {arg.split("=", 1)[0] for arg in chart_args(render_chart, EVERY_VALUE_CHANGED)[1:]}
    given |= set(chart_args(render_chart, {"netfilter": {"enabled": False}}))
    flags = {
        name
        for param in run.params
        if isinstance(param, click.Option)
        for name in param.opts
        if name.startswith("--") and name != "--help"
    }
    assert flags - given == {"--node-name"}


def test_netfilter_off_passes_no_netfilter_and_none_of_its_options(render_chart: Render) -> None:
    values = {"netfilter": {"enabled": False, "clusterCIDRs": ["10.244.0.0/16"]}}
    params = parsed(chart_args(render_chart, values))
    assert params["no_netfilter"] is True
    assert params["cluster_cidrs"] == () and params["masquerade_all"] is False


@pytest.mark.parametrize("duration", ["30s", "15m", "1h30m", "500ms", "0s", "2.5s"])
def test_go_durations_parse(duration: str) -> None:
    from ipvsctl.cli.run_command import parse_duration

    expected = {"30s": 30, "15m": 900, "1h30m": 5400, "500ms": 0.5, "0s": 0, "2.5s": 2.5}
    assert parse_duration(duration) == expected[duration]


@pytest.mark.parametrize("duration", ["", "30", "5x", "1h 30m", "-1s"])
def test_a_bad_duration_is_refused(duration: str) -> None:
    from ipvsctl.cli.run_command import parse_duration

    with pytest.raises(ValueError):
        parse_duration(duration)
