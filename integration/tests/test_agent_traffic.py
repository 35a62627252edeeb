"""`ipvsctl run` with real traffic: a TCP backend that leaves keeps its open connections
and gets no new ones, then goes; a UDP flow moves at once; a scheduler change and
a restart of the agent keep the connection counters.

The backends and the client namespace are those of test_apply_traffic (each
backend answers with its name); the agent runs against the emulated API.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from integration.tests.agent_fixtures import Agent, real_server_lines, table, wait_until
from integration.tests.apply_fixtures import connections_counted
from integration.tests.test_apply_traffic import (  # the namespaces and backends of that module
    BACKENDS,
    HTTP_PORT,
    UDP_PORT,
    HttpConnection,
    ask_once,
    backend_addr,
    client_socket,
    network,  # noqa: F401  (the fixture, set up again for this module)
)
from tests.sources.kube_api import KubeApi

pytestmark = pytest.mark.usefixtures("network")

VIP = "10.96.24.1"


def web(api: KubeApi, backends: tuple[int, ...], protocol: str = "TCP") -> None:
    port, target = (80, HTTP_PORT) if protocol == "TCP" else (53, UDP_PORT)
    ports = [{"name": "p", "port": port, "protocol": protocol, "targetPort": target}]
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"clusterIP": VIP, "clusterIPs": [VIP], "ports": ports},
        }
    )
    api.create(web_slice(backends, protocol))


def web_slice(backends: tuple[int, ...], protocol: str = "TCP") -> dict[str, object]:
    target = HTTP_PORT if protocol == "TCP" else UDP_PORT
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-1",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "p", "port": target, "protocol": protocol}],
        "endpoints": [
            {"addresses": [backend_addr(i)], "conditions": {"ready": True}} for i in backends
        ],
    }


def keep_only(api: KubeApi, backends: tuple[int, ...], protocol: str = "TCP") -> None:
    api.patch(
        "EndpointSlice", "shop", "web-1", {"endpoints": web_slice(backends, protocol)["endpoints"]}
    )


def test_a_leaving_tcp_backend_drains_then_goes(api: KubeApi, agent: Agent) -> None:
    web(api, (0, 1))
    wait_until(lambda: len(real_server_lines("-t", f"{VIP}:80")) == 2, "two real servers")
    held = HttpConnection(VIP)
    leaving = held.ask()
    staying = BACKENDS[1] if leaving == BACKENDS[0] else BACKENDS[0]
    keep_only(api, (BACKENDS.index(staying),))
    gone = backend_addr(BACKENDS.index(leaving))
    wait_until(
        lambda: f"{gone}:{HTTP_PORT} Masq 0" in real_server_lines("-t", f"{VIP}:80"),
        "the leaving backend at weight 0",
    )
    # The open connection still reaches it; new ones go to the other backend only.
    assert held.ask() == leaving
    assert {ask_once(VIP) for _ in range(6)} == {staying}
    assert held.ask() == leaving
    # Closed (by RST: the entry ends in seconds, not TIME_WAIT's two minutes), it goes.
    held.close(reset=True)
    wait_until(
        lambda: (
            real_server_lines("-t", f"{VIP}:80")
            == [f"{backend_addr(BACKENDS.index(staying))}:{HTTP_PORT} Masq 1"]
        ),
        "the drained backend to be deleted",
        timeout=40,
    )


def test_a_udp_flow_moves_at_once_when_its_backend_leaves(api: KubeApi, agent: Agent) -> None:
    web(api, (0, 1), "UDP")
    wait_until(lambda: len(real_server_lines("-u", f"{VIP}:53")) == 2, "two real servers")
    flow = client_socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        flow.sendto(b"who", (VIP, 53))
        first = flow.recv(512).decode()
        assert all(
            flow.sendto(b"who", (VIP, 53)) and flow.recv(512).decode() == first for _ in range(3)
        )
        staying = BACKENDS[1] if first == BACKENDS[0] else BACKENDS[0]
        keep_only(api, (BACKENDS.index(staying),), "UDP")
        wait_until(lambda: len(real_server_lines("-u", f"{VIP}:53")) == 1, "the leaver deleted")
        # The same socket (the same flow): its next datagram is answered by the other backend.
        flow.sendto(b"who", (VIP, 53))
        assert flow.recv(512).decode() == staying
    finally:
        flow.close()


def counted_after_traffic(api: KubeApi) -> int:
    web(api, (0, 1, 2))
    wait_until(lambda: len(real_server_lines("-t", f"{VIP}:80")) == 3, "three real servers")
    for _ in range(5):
        ask_once(VIP)
    # The kernel sums its per-CPU counters every 2 s.
    return int(
        wait_until(
            lambda: connections_counted(f"{VIP}:80") >= 5 and connections_counted(f"{VIP}:80"),
            "the five connections counted",
        )
    )


def test_a_scheduler_change_keeps_the_services_counters(api: KubeApi, agent: Agent) -> None:
    counted = counted_after_traffic(api)
    api.patch(
        "Service", "shop", "web", {"metadata": {"annotations": {"ipvsctl.io/scheduler": "lc"}}}
    )
    wait_until(lambda: f"TCP  {VIP}:80 lc" in table(), "the edit in place")
    assert connections_counted(f"{VIP}:80") == counted


def test_a_killed_agent_restarts_with_zero_operations_and_the_counters_intact(
    api: KubeApi, agent: Agent, tmp_path: Path
) -> None:
    counted = counted_after_traffic(api)
    agent.stop(signal.SIGKILL)
    again = Agent(tmp_path / "kubeconfig", tmp_path / "again.log").start()
    try:
        full = 'ipvsctl_reconcile_duration_seconds_count{kind="full"}'
        wait_until(lambda: again.metrics()[full] >= 2, "a full sync after the start")
        assert again.operations() == 0
        assert connections_counted(f"{VIP}:80") == counted
        assert ask_once(VIP) in BACKENDS
    finally:
        again.kill()
