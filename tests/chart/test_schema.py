"""values.schema.json: good values pass, bad ones are refused before anything renders."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart.manifests import SCENARIOS, Render

# The schedulers contract.md lists for --scheduler and the annotation.
CONTRACT_SCHEDULERS = [
    "rr",
    "wrr",
    "lc",
    "wlc",
    "lblc",
    "lblcr",
    "dh",
    "sh",
    "sed",
    "nq",
    "mh",
    "fo",
    "ovf",
]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_passes_the_schema(chart: helm.Chart, scenario: str) -> None:
    chart.validate_schema(chart.merge_values(SCENARIOS[scenario]))


@pytest.mark.parametrize("scheduler", CONTRACT_SCHEDULERS)
def test_schema_accepts_every_scheduler_of_the_contract(chart: helm.Chart, scheduler: str) -> None:
    chart.validate_schema(chart.merge_values({"scheduler": scheduler}))


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"scheduler": "fastest"}, "/scheduler"),
        ({"scheduler": "RR"}, "/scheduler"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
        ({"healthz": {"port": 0}}, "/healthz/port"),
        ({"healthz": {"port": "10256"}}, "/healthz/port"),
        ({"apiServer": {"port": 65536}}, "/apiServer/port"),
        ({"logFormat": "yaml"}, "/logFormat"),
        ({"dnsPolicy": "None"}, "/dnsPolicy"),
        ({"syncPeriod": "30"}, "/syncPeriod"),
        ({"minSyncPeriod": "-1s"}, "/minSyncPeriod"),
        ({"gracefulPeriod": 900}, "/gracefulPeriod"),
        ({"interface": "a-name-longer-than-15"}, "/interface"),
        ({"interface": ""}, "/interface"),
        ({"nodePortAddresses": ["10.0.0.1"]}, "/nodePortAddresses/0"),
        ({"nodePortAddresses": ["10.0.0.0/33"]}, "/nodePortAddresses/0"),
        ({"nodePortAddresses": "10.0.0.0/8"}, "/nodePortAddresses"),
        ({"strictArp": "true"}, "/strictArp"),
        ({"metrics": {"bindAddress": "localhost"}}, "/metrics/bindAddress"),
        ({"healthz": {"bindAddress": "256.0.0.1"}}, "/healthz/bindAddress"),
        ({"metrics": {"serviceMonitor": {"interval": "30 s"}}}, "/metrics/serviceMonitor/interval"),
        ({"sysctls": {"extra": {"net/../../etc/x": 1}}}, "net/../../etc/x"),
        ({"sysctls": {"extra": {"net.ipv4.ip_forward": "1; reboot"}}}, "net.ipv4.ip_forward"),
        ({"sysctls": {"extra": {"net.ipv4.ip_forward": "'1'"}}}, "net.ipv4.ip_forward"),
        ({"sysctls": {"manage": "yes"}}, "/sysctls/manage"),
        ({"updateStrategy": {"type": "Recreate"}}, "/updateStrategy/type"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"extraArgs": "--verbose"}, "/extraArgs"),
        ({"nodePortRecord": {"hostPath": "run/ipvsctl"}}, "/nodePortRecord/hostPath"),
        ({"nodePortRecord": {"hostPath": "/var/lib/ipvsctl"}}, "/nodePortRecord/hostPath"),
        ({"nodePortRecord": {"hostPath": "/run"}}, "/nodePortRecord/hostPath"),
        ({"nodePortRecord": {"hostPath": "/run/../etc"}}, "/nodePortRecord/hostPath"),
        ({"nodePortRecord": {"hostPath": "/run/a b"}}, "/nodePortRecord/hostPath"),
        ({"schedular": "rr"}, "schedular"),
        ({"metrics": {"adress": "0.0.0.0"}}, "adress"),
    ],
)
def test_schema_rejects_bad_values_naming_the_key(
    chart: helm.Chart, values: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(chart.merge_values(values))
    assert where in str(refused.value)


def test_install_is_refused_before_rendering_an_unknown_scheduler(render_chart: Render) -> None:
    with pytest.raises(helm.HelmValuesError, match="/scheduler"):
        render_chart({"scheduler": "fastest"})


def test_install_is_refused_for_a_port_out_of_range(render_chart: Render) -> None:
    with pytest.raises(helm.HelmValuesError, match="/metrics/port"):
        render_chart({"metrics": {"port": 70000}})
