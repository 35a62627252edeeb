"""The notes printed after install tell how to check the agent works."""

from __future__ import annotations

import helm_python as helm


def notes(chart: helm.Chart, values: dict[str, object] | None = None) -> str:
    rendered = chart.render(values, name="edge", namespace="net")
    return rendered["ipvsctl/templates/NOTES.txt"]


def test_notes_show_logs_and_the_ipvs_table_of_the_release(chart: helm.Chart) -> None:
    text = notes(chart)
    assert "kubectl -n net logs daemonset/edge-ipvsctl -c ipvsctl" in text
    assert "kubectl -n net exec daemonset/edge-ipvsctl -c ipvsctl -- ipvsctl show" in text
    assert "kubectl -n net logs daemonset/edge-ipvsctl -c sysctls" in text


def test_notes_give_reachable_health_and_metrics_urls(chart: helm.Chart) -> None:
    text = notes(chart)
    assert "http://NODE_ADDRESS:10256/healthz" in text
    assert "http://127.0.0.1:10249/metrics (from the node itself)" in text
    text = notes(chart, {"healthz": {"bindAddress": "::1"}, "metrics": {"bindAddress": "::"}})
    assert "http://[::1]:10256/healthz (from the node itself)" in text
    assert "http://NODE_ADDRESS:10249/metrics" in text


def test_notes_warn_about_the_api_server_address_until_it_is_set(chart: helm.Chart) -> None:
    assert "set apiServer.host" in notes(chart)
    assert "apiServer.host" not in notes(chart, {"apiServer": {"host": "10.0.0.1"}})
