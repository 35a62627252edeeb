"""The agent's metrics: each facade call shows in the exposition, on a private registry."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ipvsctl.agent.metrics import AgentMetrics, serve_metrics
from ipvsctl.model.changes import ChangeFailure, IpvsChange, Op
from ipvsctl.model.ipvs import AF_INET, Protocol, RealServer, ServiceKey, VirtualServer
from tests.agent.http_get import get, refuses

WEB = VirtualServer(ServiceKey(AF_INET, Protocol.TCP, "10.96.0.10", 80))
POD = RealServer("10.244.1.5", 8080)


def samples(metrics: AgentMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels."""
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: AgentMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[name, frozenset(labels.items())]


def test_every_metric_appears_after_the_facade_calls() -> None:
    metrics = AgentMetrics()
    metrics.observe_reconcile("incremental", 0.004)
    metrics.observe_reconcile("full", 1.5)
    metrics.observe_latency(0.0015)
    metrics.count_operations([IpvsChange(Op.ADD_SERVICE, WEB)])
    metrics.set_owned(virtual=12, real=30)
    metrics.set_rejected(2)
    metrics.watch_restarted("services", "expired")
    metrics.relisted("endpointslices")
    metrics.api_error("services")
    metrics.synced(1_700_000_000.5)
    metrics.count_element_changes(added=1, deleted=0, ok=True)
    metrics.count_element_changes(added=2, deleted=3, ok=False)

    assert value(metrics, "ipvsctl_reconcile_duration_seconds_count", kind="incremental") == 1
    assert value(metrics, "ipvsctl_reconcile_duration_seconds_sum", kind="full") == 1.5
    assert value(metrics, "ipvsctl_event_to_kernel_latency_seconds_bucket", le="0.002") == 1
    assert value(metrics, "ipvsctl_event_to_kernel_latency_seconds_bucket", le="0.001") == 0
    assert value(metrics, "ipvsctl_netlink_operations_total", op="-A", result="ok") == 1
    elements = "ipvsctl_netfilter_element_changes_total"
    assert value(metrics, elements, op="add", result="ok") == 1
    assert value(metrics, elements, op="delete", result="error") == 3
    assert value(metrics, "ipvsctl_owned_virtual_servers") == 12
    assert value(metrics, "ipvsctl_owned_real_servers") == 30
    assert value(metrics, "ipvsctl_rejected_services") == 2
    restarts = "ipvsctl_watch_restarts_total"
    assert value(metrics, restarts, resource="services", reason="expired") == 1
    assert value(metrics, "ipvsctl_relists_total", resource="endpointslices") == 1
    assert value(metrics, "ipvsctl_api_errors_total", resource="services") == 1
    assert value(metrics, "ipvsctl_last_successful_sync_timestamp_seconds") == 1_700_000_000.5


def test_every_metric_is_named_ipvsctl_and_documented() -> None:
    families = {
        family.name: family.documentation
        for family in text_string_to_metric_families(AgentMetrics().exposition().decode())
        if not family.name.endswith("_created")  # prometheus_client's counter start times
    }
    assert set(families) == {
        "ipvsctl_reconcile_duration_seconds",
        "ipvsctl_event_to_kernel_latency_seconds",
        "ipvsctl_netlink_operations",
        "ipvsctl_netfilter_element_changes",
        "ipvsctl_owned_virtual_servers",
        "ipvsctl_owned_real_servers",
        "ipvsctl_rejected_services",
        "ipvsctl_nodeport_record_failures",
        "ipvsctl_watch_restarts",
        "ipvsctl_relists",
        "ipvsctl_api_errors",
        "ipvsctl_last_successful_sync_timestamp_seconds",
    }
    for name, documentation in families.items():
        assert len(documentation) > 40, name


def test_latency_buckets_run_from_one_millisecond_to_ten_seconds() -> None:
    metrics = AgentMetrics()
    bounds = [
        float(dict(labels)["le"])
        for name, labels in samples(metrics)
        if name == "ipvsctl_event_to_kernel_latency_seconds_bucket"
    ]
    finite = sorted(b for b in bounds if b != float("inf"))
    assert finite[0] == 0.001 and finite[-1] == 10.0
    assert len(finite) >= 15


def test_operations_count_ok_and_refused_changes_by_op() -> None:
    metrics = AgentMetrics()
    add_real = IpvsChange(Op.ADD_REAL, WEB, POD)
    changes = [
        IpvsChange(Op.ADD_SERVICE, WEB),
        add_real,
        add_real,
        IpvsChange(Op.DELETE_REAL, WEB, POD),
    ]
    refused = ChangeFailure(add_real, 17, "File exists")
    metrics.count_operations(changes, [refused, IpvsChange(Op.DELETE_REAL, WEB, POD)])

    counted = "ipvsctl_netlink_operations_total"
    assert value(metrics, counted, op="-A", result="ok") == 1
    assert value(metrics, counted, op="-a", result="ok") == 1
    assert value(metrics, counted, op="-a", result="error") == 1
    assert value(metrics, counted, op="-d", result="ok") == 0
    assert value(metrics, counted, op="-d", result="error") == 1


def test_every_op_and_result_exists_at_zero_before_any_change() -> None:
    metrics = AgentMetrics()
    for op in ("-A", "-E", "-D", "-a", "-e", "-d"):
        for result in ("ok", "error"):
            assert value(metrics, "ipvsctl_netlink_operations_total", op=op, result=result) == 0


def test_two_agents_in_one_process_keep_separate_metrics_off_the_global_registry() -> None:
    first, second = AgentMetrics(), AgentMetrics()
    first.set_rejected(3)
    assert value(second, "ipvsctl_rejected_services") == 0
    assert REGISTRY.get_sample_value("ipvsctl_rejected_services") is None


def test_metrics_are_served_over_http_until_closed() -> None:
    metrics = AgentMetrics()
    metrics.set_owned(virtual=4, real=8)
    server = serve_metrics("127.0.0.1:0", metrics)
    try:
        status, headers, body = get(server.port, "/metrics")
    finally:
        server.close()
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert "ipvsctl_owned_virtual_servers 4.0" in body.decode()
    assert refuses(server.port)


def test_a_bad_metrics_address_names_the_flag() -> None:
    with pytest.raises(ValueError, match=r"^--metrics-address: 'localhost:10249'"):
        serve_metrics("localhost:10249", AgentMetrics())
