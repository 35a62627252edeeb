"""`ipvsctl run` when things go wrong: the API server away or forgetful, bad objects by the
hundred, bursts of changes. The kernel never loses what it serves."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from integration.tests.agent_fixtures import (
    SYNC_PERIOD,
    Agent,
    bound_addresses,
    real_server_lines,
    table,
    wait_until,
)
from tests.sources.kube_api import KubeApi, endpoint_slice, service

VIP = "10.96.22.1"


def serve_web(api: KubeApi, agent: Agent, *addresses: str) -> None:
    api.create(service("web", "shop", VIP))
    api.create(endpoint_slice("web-1", "web", addresses, "shop"))
    wanted = sorted(f"{a}:8080 Masq 1" for a in addresses)
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == wanted, "the service")
    # The kernel shows them a moment before the agent counts them in its metrics.
    wait_until(lambda: agent.operations() >= 1 + len(addresses), "the operations counted")


def test_the_api_server_away_for_30s_changes_nothing_then_it_catches_up(
    api: KubeApi, agent: Agent
) -> None:
    serve_web(api, agent, "10.244.1.1")
    before = table(), bound_addresses()
    assert agent.healthz()[0] == 200
    api.stop_serving()
    away = time.monotonic()
    wait_until(
        lambda: agent.healthz()[0] == 503, "healthz to turn 503", timeout=4 * SYNC_PERIOD + 5
    )
    # 503 because the last good sync is more than 2 x sync period old, and not before.
    _, body = agent.healthz()
    age = (parse_time(body["currentTime"]) - parse_time(body["lastUpdated"])).total_seconds()
    assert 2 * SYNC_PERIOD < age < 2 * SYNC_PERIOD + 3
    time.sleep(max(0.0, 30 - (time.monotonic() - away)))
    assert (table(), bound_addresses()) == before
    api.start_serving()
    back = time.monotonic()
    api.patch(
        "EndpointSlice",
        "shop",
        "web-1",
        {
            "endpoints": [
                {"addresses": [a], "conditions": {"ready": True}}
                for a in ("10.244.1.1", "10.244.1.2")
            ]
        },
    )
    wanted = ["10.244.1.1:8080 Masq 1", "10.244.1.2:8080 Masq 1"]
    wait_until(
        lambda: real_server_lines("-t", f"{VIP}:80") == wanted,
        "the change after the outage",
        timeout=60,
    )
    # Connected and synced: healthy at once, not a backoff or a sync period later.
    wait_until(lambda: agent.healthz()[0] == 200, "healthz to be 200 again")
    print(f"\nrecovery: API server back to healthz 200: {time.monotonic() - back:.2f} s")
    assert agent.metrics()['ipvsctl_api_errors_total{resource="Service"}'] >= 1


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_410_gone_relists_with_zero_kernel_operations(api: KubeApi, agent: Agent) -> None:
    serve_web(api, agent, "10.244.1.1", "10.244.1.2")
    before = agent.operations()
    relists = agent.metrics()['ipvsctl_relists_total{resource="Service"}']
    api.compact()  # every resourceVersion so far is too old: the next watch gets 410
    api.end_watches()
    wait_until(
        lambda: agent.metrics()['ipvsctl_relists_total{resource="Service"}'] > relists,
        "a relist after 410 Gone",
    )
    wait_until(
        lambda: agent.metrics()['ipvsctl_reconcile_duration_seconds_count{kind="full"}'] >= 3,
        "full syncs",
    )
    assert agent.operations() == before


def test_a_hundred_malformed_services_are_each_rejected_and_the_rest_served(
    api: KubeApi, agent: Agent
) -> None:
    for index in range(100):
        bad = service(f"bad-{index}", "shop", f"10.96.23.{index + 1}")
        bad["spec"]["ports"][0]["port"] = 70000 + index  # not a port
        api.create(bad)
    serve_web(api, agent, "10.244.1.1")
    wait_until(
        lambda: agent.metrics().get("ipvsctl_rejected_services") == 100, "100 rejected Services"
    )
    assert "10.96.23." not in table()
    wanted = {f"bad-{i}" for i in range(100)}
    wait_until(lambda: wanted <= told_about(api), "an Event for each")


def told_about(api: KubeApi) -> set[str]:
    """The names of the objects the agent posted Events about."""
    return {
        request.data["involvedObject"]["name"]
        for request in api.requests()
        if "/events" in request.url.path
        and isinstance(request.data, dict)
        and "involvedObject" in request.data
    }


@pytest.mark.agent_flags("--min-sync-period=1s")
def test_a_burst_of_1000_endpoint_changes_converges_to_the_last(api: KubeApi, agent: Agent) -> None:
    serve_web(api, agent, "10.244.1.1")
    last: tuple[str, ...] = ()
    for step in range(1000):
        last = tuple(
            f"10.244.{2 + step % 7}.{1 + (step * 13 + i) % 250}" for i in range(1 + step % 5)
        )
        api.patch(
            "EndpointSlice",
            "shop",
            "web-1",
            {"endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in last]},
        )
    wanted = sorted(f"{a}:8080 Masq 1" for a in set(last))
    # Drained ones stay at weight 0 until idle (they are: no traffic), then go.
    wait_until(
        lambda: real_server_lines("-t", f"{VIP}:80") == wanted, "the last endpoints", timeout=60
    )
    # Coalesced: at most one sync a second (--min-sync-period), so far fewer than changes.
    syncs = agent.metrics()['ipvsctl_reconcile_duration_seconds_count{kind="incremental"}']
    assert syncs < 200
