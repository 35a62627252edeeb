"""The optional Service and ServiceMonitor that let Prometheus scrape every node."""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.chart.manifests import NAMESPACE, SCENARIOS, Manifest, Render, agent, of_kind, only

SCRAPED = {"metrics": {"bindAddress": "0.0.0.0", "serviceMonitor": {"enabled": True}}}


def test_no_service_or_service_monitor_by_default(defaults: list[Manifest]) -> None:
    assert of_kind(defaults, "Service") == []
    assert of_kind(defaults, "ServiceMonitor") == []


def test_service_monitor_scrapes_the_agents_metrics_port(render_chart: Render) -> None:
    objects = render_chart(SCRAPED)
    service = only(objects, "Service")
    monitor = only(objects, "ServiceMonitor")
    pod_labels = only(objects, "DaemonSet")["spec"]["template"]["metadata"]["labels"]

    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "metrics"
    assert port["port"] == 10249
    assert any(p["name"] == "metrics" for p in agent(objects)["ports"])

    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "30s"


def test_service_monitor_takes_interval_and_labels_from_values(render_chart: Render) -> None:
    monitor = only(render_chart(SCENARIOS["everything"]), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["interval"] == "1m"
    assert monitor["metadata"]["labels"]["release"] == "prom"


def test_service_monitor_labels_series_with_the_node_name(render_chart: Render) -> None:
    (endpoint,) = only(render_chart(SCRAPED), "ServiceMonitor")["spec"]["endpoints"]
    assert {
        "sourceLabels": ["__meta_kubernetes_pod_node_name"],
        "targetLabel": "node",
        "action": "replace",
    } in endpoint["relabelings"]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.5"])
def test_service_monitor_refuses_metrics_prometheus_cannot_reach(
    render_chart: Render, address: str
) -> None:
    values = {"metrics": {"bindAddress": address, "serviceMonitor": {"enabled": True}}}
    with pytest.raises(helm.HelmRenderError, match=r"metrics\.bindAddress"):
        render_chart(values)


def test_service_monitor_accepts_every_ipv6_address(render_chart: Render) -> None:
    objects = render_chart({"metrics": {"bindAddress": "::", "serviceMonitor": {"enabled": True}}})
    assert "--metrics-address=[::]:10249" in agent(objects)["args"]
    assert len(of_kind(objects, "ServiceMonitor")) == 1
