"""`ipvsctl run` against an API server that answers garbage, storms, goes silent, or is
fed bad objects, and against a node whose NodePort record cannot be written: after
each fault the kernel holds what it held (no flush: the agent sent no operation it
did not have to), and the agent recovers. Each test prints how long recovery took
(`pytest -s` shows it); the closing notes quote those figures.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.tests.agent_fixtures import (
    NODE_ADDRESS,
    Agent,
    real_server_lines,
    table,
    wait_until,
)
from tests.sources.kube_api import KubeApi, endpoint_slice, service
from tests.sources.stalling_proxy import StallingProxy

VIP, API_VIP = "10.96.24.1", "10.96.24.2"
SERVICES = "/api/v1/services"


def serve_web(api: KubeApi, agent: Agent, *addresses: str) -> None:
    api.create(service("web", "shop", VIP))
    api.create(endpoint_slice("web-1", "web", addresses, "shop"))
    wanted = sorted(f"{a}:8080 Masq 1" for a in addresses)
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == wanted, "the service")
    # The kernel shows them a moment before the agent counts them in its metrics.
    wait_until(lambda: agent.operations() >= 1 + len(addresses), "the operations counted")


def set_endpoints(api: KubeApi, *addresses: str) -> None:
    endpoints = [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]
    api.patch("EndpointSlice", "shop", "web-1", {"endpoints": endpoints})


def recovered(what: str, since: float) -> float:
    took = time.monotonic() - since
    print(f"\nrecovery: {what}: {took:.2f} s")
    return took


def relists(agent: Agent) -> float:
    return agent.metrics().get('ipvsctl_relists_total{resource="Service"}', 0.0)


@pytest.mark.parametrize(
    "body",
    [{}, {"apiVersion": "v1", "kind": "ServiceList", "metadata": {}}, {"kind": "NodeList"}],
    ids=["empty", "no-items", "wrong-kind"],
)
def test_a_list_answered_with_garbage_flushes_nothing(
    api: KubeApi, agent: Agent, body: dict[str, object]
) -> None:
    serve_web(api, agent, "10.244.1.1", "10.244.1.2")
    before, operations = table(), agent.operations()
    listed = relists(agent)
    api.garble_lists(body, body, path=SERVICES)
    fault = time.monotonic()
    api.compact()  # the next watch gets 410: its LIST is answered with garbage, twice
    api.end_watches()
    wait_until(lambda: relists(agent) >= listed + 3, "two refused lists, then a good one")
    assert table() == before
    assert agent.operations() == operations  # nothing deleted and added back
    set_endpoints(api, "10.244.1.1", "10.244.1.2", "10.244.1.3")
    wanted = ["10.244.1.1:8080 Masq 1", "10.244.1.2:8080 Masq 1", "10.244.1.3:8080 Masq 1"]
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == wanted, "a change after it")
    recovered(f"garbled list ({json.dumps(body)})", fault)
    assert agent.operations() == operations + 1


def test_a_410_storm_relists_with_backoff_and_changes_nothing(api: KubeApi, agent: Agent) -> None:
    serve_web(api, agent, "10.244.1.1")
    before, operations = table(), agent.operations()
    lists = len(api.requests("list", SERVICES))
    storm = 4
    api.expire_watches(storm, path=SERVICES)
    fault = time.monotonic()
    api.end_watches()
    wait_until(
        lambda: len(api.requests("list", SERVICES)) >= lists + storm,
        "a list per expired watch",
        timeout=60,
    )
    took = recovered(f"{storm} watches answered 410 after each list", fault)
    # Each LIST after an expiry waited its backoff (0.5 s doubling, less up to half of
    # it): 0.25 + 0.5 + 1 s at least before the last three. Back to back, the storm
    # took milliseconds.
    assert took >= 0.25 + 0.5 + 1.0
    assert table() == before and agent.operations() == operations
    set_endpoints(api, "10.244.1.1", "10.244.1.2")
    wanted = ["10.244.1.1:8080 Masq 1", "10.244.1.2:8080 Masq 1"]
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == wanted, "a change after it")


@pytest.fixture
def silent_api(api: KubeApi, tmp_path: Path) -> Iterator[tuple[StallingProxy, Agent]]:
    """The agent reaching `api` through a proxy that can go silent, its idle limit 3 s.

    The emulator sends every watch a bookmark each second meanwhile, as a real API
    server does each minute: a quiet watch that still gets through is not silent."""
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    done = threading.Event()

    def bookmarks() -> None:
        while not done.wait(1.0):
            api.bookmark()

    pulse = threading.Thread(target=bookmarks, name="bookmarks", daemon=True)
    with StallingProxy((host, int(port))) as proxy:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        agent = Agent(kubeconfig, tmp_path / "agent.log", "--api-idle-timeout=3s")
        pulse.start()
        try:
            agent.start()
            yield proxy, agent
        finally:
            agent.kill()
            done.set()
            pulse.join(10)


def test_a_silent_watch_is_noticed_health_turns_503_and_it_recovers(
    api: KubeApi, silent_api: tuple[StallingProxy, Agent]
) -> None:
    proxy, agent = silent_api
    serve_web(api, agent, "10.244.1.1")
    before = table()
    proxy.stall_new = True
    proxy.stall()  # every connection up, and silent: no reset, no event, no bookmark
    fault = time.monotonic()
    api.create(service("api", "shop", API_VIP))
    api.create(endpoint_slice("api-1", "api", ("10.244.2.1",), "shop"))
    # Noticed within the idle limit (plus a read): the view is known stale.
    wait_until(lambda: agent.healthz()[0] == 503, "healthz 503 while the view is stale")
    recovered("silent watch noticed (--api-idle-timeout=3s)", fault)
    assert table() == before  # nothing lost meanwhile
    proxy.stall_new = False  # new connections get through again
    released = time.monotonic()
    wait_until(
        lambda: real_server_lines("-t", f"{API_VIP}:80") == ["10.244.2.1:8080 Masq 1"],
        "the Service created during the silence",
        timeout=30,
    )
    wait_until(lambda: agent.healthz()[0] == 200, "healthz 200 again", timeout=30)
    recovered("silent watch: from release to programmed and healthy", released)
    lines = [json.loads(line) for line in agent.logs().splitlines() if line.startswith("{")]
    silent = [line for line in lines if line.get("msg", "").startswith("watch silent")]
    assert silent, agent.logs()
    # Logged once per watch that went silent (three reflectors), not once per retry.
    assert len(silent) <= 3, silent


def test_a_service_made_invalid_keeps_its_virtual_server_until_fixed(
    api: KubeApi, agent: Agent
) -> None:
    serve_web(api, agent, "10.244.1.1")
    before, operations = table(), agent.operations()
    typo = {"metadata": {"annotations": {"ipvsctl.io/scheduler": "rrr"}}}
    api.patch("Service", "shop", "web", typo)
    wait_until(lambda: agent.metrics().get("ipvsctl_rejected_services") == 1, "rejected gauge")
    assert table() == before and agent.operations() == operations
    # It still follows its endpoints, as its last good version would.
    set_endpoints(api, "10.244.1.1", "10.244.1.2")
    wanted = ["10.244.1.1:8080 Masq 1", "10.244.1.2:8080 Masq 1"]
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == wanted, "its new endpoint")
    fixed = {"metadata": {"annotations": {"ipvsctl.io/scheduler": "lc"}}}
    api.patch("Service", "shop", "web", fixed)
    wait_until(lambda: f"TCP  {VIP}:80 lc" in table(), "the fixed scheduler, edited in place")
    wait_until(lambda: agent.metrics().get("ipvsctl_rejected_services") == 0, "none rejected")


def test_a_slice_with_one_bad_endpoint_loses_that_endpoint_alone(
    api: KubeApi, agent: Agent
) -> None:
    serve_web(api, agent, "10.244.1.1", "10.244.1.2")
    endpoints = [
        {"addresses": ["10.244.1.1"], "conditions": {"ready": True}},
        {"addresses": ["010.244.2.8"], "conditions": {"ready": True}},
        {"addresses": ["10.244.1.3"], "conditions": {"ready": True}},
    ]
    api.patch("EndpointSlice", "shop", "web-1", {"endpoints": endpoints})
    # 10.244.1.2 left the slice (it drains at weight 0, then goes); 010.244.2.8 is refused
    # alone: the slice's other endpoints are served.
    wait_until(
        lambda: (
            [line for line in real_server_lines("-t", f"{VIP}:80") if "1.2:" not in line]
            == ["10.244.1.1:8080 Masq 1", "10.244.1.3:8080 Masq 1"]
        ),
        "the slice's good endpoints",
    )
    assert "244.2.8" not in table()


def test_a_record_that_cannot_be_written_holds_back_nodeports_alone(
    api: KubeApi, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.write_text("")  # a file where the record's directory must be
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    agent = Agent(kubeconfig, tmp_path / "agent.log", env={"IPVSCTL_STATE_DIR": str(state)})
    agent.start()
    try:
        serve_web(api, agent, "10.244.1.1")
        nodeport = service("np", "shop", API_VIP, type="NodePort")
        nodeport["spec"]["ports"][0]["nodePort"] = 30080
        api.create(nodeport)
        api.create(endpoint_slice("np-1", "np", ("10.244.3.1",), "shop"))
        set_endpoints(api, "10.244.1.1", "10.244.1.2")
        wanted = ["10.244.1.1:8080 Masq 1", "10.244.1.2:8080 Masq 1"]
        wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == wanted, "the other Service")
        wait_until(lambda: real_server_lines("-t", f"{API_VIP}:80"), "np's cluster IP")
        assert f"{NODE_ADDRESS}:30080" not in table()  # held back: it could not be recorded
        state.unlink()
        fixed = time.monotonic()
        wait_until(
            lambda: real_server_lines("-t", f"{NODE_ADDRESS}:30080") == ["10.244.3.1:8080 Masq 1"],
            "the NodePort once the record can be written",
        )
        recovered("NodePort record writable again", fixed)
        assert list(state.glob("nodeports-*.json"))
    finally:
        agent.kill()
