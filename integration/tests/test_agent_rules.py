"""`ipvsctl run`: the node-dependent rules (traffic policies, topology hints, health check
node ports) and the Services it refuses (an Event each, the others served)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from integration.tests.agent_fixtures import NODE, Agent, real_server_lines, table, wait_until
from tests.sources.kube_api import KubeApi, service

VIP = "10.96.21.1"
PORTS = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]


def members(*endpoints: tuple[str, str], **extra: Any) -> dict[str, Any]:
    """A slice of (address, node) endpoints, each with `extra` fields (e.g. hints)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-1",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {"ready": True},
                "nodeName": node,
                **extra.get(address, {}),
            }
            for address, node in endpoints
        ],
    }


def addresses_of(virtual: str) -> list[str]:
    return [line.split(":")[0] for line in real_server_lines("-t", virtual)]


def test_local_internal_traffic_keeps_this_nodes_endpoints(api: KubeApi, agent: Agent) -> None:
    api.create(service("web", "shop", VIP, internalTrafficPolicy="Local"))
    api.create(members(("10.244.1.1", NODE), ("10.244.2.1", "node-2")))
    wait_until(lambda: addresses_of(f"{VIP}:80") == ["10.244.1.1"], "only the local endpoint")


def test_zone_hints_keep_this_zones_endpoints(api: KubeApi, agent: Agent) -> None:
    hints = {
        "10.244.1.1": {"hints": {"forZones": [{"name": "zone-a"}]}},
        "10.244.2.1": {"hints": {"forZones": [{"name": "zone-b"}]}},
    }
    api.create(service("web", "shop", VIP))
    api.create(members(("10.244.1.1", "node-2"), ("10.244.2.1", "node-3"), **hints))
    wait_until(lambda: addresses_of(f"{VIP}:80") == ["10.244.1.1"], "the zone-a endpoint only")


def get(url: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_a_health_check_node_port_tells_how_many_local_endpoints(
    api: KubeApi, agent: Agent
) -> None:
    api.create(
        service(
            "web",
            "shop",
            VIP,
            type="LoadBalancer",
            externalTrafficPolicy="Local",
            healthCheckNodePort=32100,
            ports=[{**PORTS[0], "nodePort": 30100}],
        )
    )
    api.create(members(("10.244.1.1", NODE), ("10.244.1.2", NODE), ("10.244.2.1", "node-2")))
    url = "http://127.0.0.1:32100/healthz"

    def answered(status: int, count: int) -> bool:
        try:
            code, body, headers = get(url)
        except OSError:
            return False
        return (code, body["localEndpoints"]) == (status, count) and headers.get(
            "X-Load-Balancing-Endpoint-Weight"
        ) == str(count)

    wait_until(lambda: answered(200, 2), "200 with two local endpoints")
    _, body, headers = get(url)
    assert body == {
        "service": {"namespace": "shop", "name": "web"},
        "localEndpoints": 2,
        "serviceProxyHealthy": True,
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    api.patch(
        "EndpointSlice",
        "shop",
        "web-1",
        {"endpoints": [{"addresses": ["10.244.2.1"], "nodeName": "node-2"}]},
    )
    wait_until(lambda: answered(503, 0), "503 with no local endpoint")


def events_about(api: KubeApi, name: str) -> list[dict[str, Any]]:
    """The Events the agent posted (create, or patch of a repeat) about object `name`."""
    found = []
    for request in api.requests():
        body = request.data if isinstance(request.data, dict) else {}
        if "/events" in request.url.path and body.get("involvedObject", {}).get("name") == name:
            found.append(body)
    return found


def test_a_bad_service_gets_an_event_and_the_others_are_served(api: KubeApi, agent: Agent) -> None:
    bad = service("bad", "shop", "10.96.21.2")
    bad["metadata"]["annotations"] = {"ipvsctl.io/scheduler": "fastest"}
    api.create(bad)
    api.create(service("web", "shop", VIP))
    api.create(members(("10.244.1.1", NODE)))
    wait_until(lambda: addresses_of(f"{VIP}:80") == ["10.244.1.1"], "the good Service")
    assert "10.96.21.2" not in table()
    event = wait_until(lambda: events_about(api, "bad"), "an Event about the bad Service")[0]
    assert event["type"] == "Warning" and event["reason"] == "InvalidScheduler"
    assert "fastest" in event["message"] and "ipvsctl.io/scheduler" in event["message"]
    wait_until(
        lambda: agent.metrics().get("ipvsctl_rejected_services") == 1, "one rejected Service"
    )
