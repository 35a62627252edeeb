"""`ipvsctl run` against an emulated API server: the kernel follows the cluster.

Each test starts an agent on a node ipvsctl never ran on, changes Services and
EndpointSlices through the official client, and watches the IPVS table and the
bound addresses follow (ipvsadm and ip as witnesses). The agent's own metrics
count the netlink operations it sent.
"""

from __future__ import annotations

import signal
from pathlib import Path

from integration.tests.agent_fixtures import (
    NODE_ADDRESS,
    Agent,
    bound_addresses,
    real_server_lines,
    table,
    wait_until,
)
from integration.tests.apply_fixtures import run
from tests.sources.kube_api import KubeApi, endpoint_slice, service

VIP = "10.96.20.1"


def web(api: KubeApi, *addresses: str, **spec: object) -> None:
    api.create(service("web", "shop", VIP, **spec))
    api.create(endpoint_slice("web-1", "web", addresses, "shop"))


def rows(*addresses: str, weight: int = 1) -> list[str]:
    return sorted(f"{address}:8080 Masq {weight}" for address in addresses)


def test_services_and_slices_become_virtual_and_real_servers(api: KubeApi, agent: Agent) -> None:
    web(api, "10.244.1.1", "10.244.1.2")
    wait_until(
        lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1", "10.244.1.2"),
        "the real servers",
    )
    assert VIP in bound_addresses()
    api.delete("Service", "shop", "web")
    wait_until(lambda: f"{VIP}:80" not in table(), "the virtual server to go")
    wait_until(lambda: VIP not in bound_addresses(), "the address to go")


def test_one_endpoint_change_is_one_netlink_operation(api: KubeApi, agent: Agent) -> None:
    web(api, "10.244.1.1")
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1"), "the service")
    before = agent.operations()
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
    wait_until(
        lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1", "10.244.1.2"),
        "the new endpoint",
    )
    wait_until(lambda: agent.operations() == before + 1, "the count of operations")
    # And nothing more at the next full syncs: no drift, no operation.
    wait_until(
        lambda: agent.metrics()['ipvsctl_reconcile_duration_seconds_count{kind="full"}'] >= 3,
        "two more full syncs",
    )
    assert agent.operations() == before + 1


def test_a_scheduler_annotation_change_edits_in_place(api: KubeApi, agent: Agent) -> None:
    web(api, "10.244.1.1")
    wait_until(lambda: f"TCP  {VIP}:80 rr" in table(), "the service")
    before = agent.operations()
    api.patch(
        "Service", "shop", "web", {"metadata": {"annotations": {"ipvsctl.io/scheduler": "lc"}}}
    )
    wait_until(lambda: f"TCP  {VIP}:80 lc" in table(), "the edit")
    wait_until(lambda: agent.operations() == before + 1, "one operation (-E)")


def test_nodeports_sit_on_the_nodes_address_unbound(api: KubeApi, agent: Agent) -> None:
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}]
    web(api, "10.244.1.1", type="NodePort", ports=ports)
    wait_until(
        lambda: real_server_lines("-t", f"{NODE_ADDRESS}:30080") == rows("10.244.1.1"),
        "the NodePort",
    )
    assert NODE_ADDRESS not in bound_addresses()
    # The Node's address changes: the NodePort follows.
    run("ip", "addr", "add", "10.250.0.11/24", "dev", "node0")
    api.patch(
        "Node",
        "",
        "node-1",
        {"status": {"addresses": [{"type": "InternalIP", "address": "10.250.0.11"}]}},
    )
    wait_until(
        lambda: real_server_lines("-t", "10.250.0.11:30080") == rows("10.244.1.1"),
        "the moved NodePort",
    )
    wait_until(lambda: f"{NODE_ADDRESS}:30080" not in table(), "the old NodePort to go")


def test_a_foreign_virtual_server_is_never_touched(api: KubeApi, agent: Agent) -> None:
    run("ipvsadm", "-A", "-t", f"{NODE_ADDRESS}:9999", "-s", "wlc")
    run("ipvsadm", "-A", "-t", "10.199.0.1:80", "-s", "sh")
    web(api, "10.244.1.1")
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1"), "the service")
    wait_until(
        lambda: agent.metrics()['ipvsctl_reconcile_duration_seconds_count{kind="full"}'] >= 2,
        "a full sync",
    )
    listing = table()
    assert f"TCP  {NODE_ADDRESS}:9999 wlc" in listing and "TCP  10.199.0.1:80 sh" in listing


def test_drift_is_repaired_within_a_sync_period(api: KubeApi, agent: Agent) -> None:
    web(api, "10.244.1.1")
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1"), "the service")
    run("ipvsadm", "-D", "-t", f"{VIP}:80")
    run("ip", "addr", "del", f"{VIP}/32", "dev", "kube-ipvs0")
    wait_until(
        lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1"),
        "the repair",
        timeout=3 * 2.0 + 5,
    )
    assert VIP in bound_addresses()


def test_sigterm_exits_at_once_and_leaves_the_kernel_as_it_is(api: KubeApi, agent: Agent) -> None:
    web(api, "10.244.1.1")
    wait_until(lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1"), "the service")
    before = table(), bound_addresses()
    # "Within a second or two": the guard is generous, the measured time is ~0.3 s.
    assert agent.stop(signal.SIGTERM) < 3.0
    assert (table(), bound_addresses()) == before


def test_a_restart_adopts_the_table_with_zero_operations(
    api: KubeApi, agent: Agent, tmp_path: Path
) -> None:
    web(api, "10.244.1.1", "10.244.1.2")
    wait_until(
        lambda: real_server_lines("-t", f"{VIP}:80") == rows("10.244.1.1", "10.244.1.2"),
        "the service",
    )
    agent.stop(signal.SIGKILL)
    again = Agent(tmp_path / "kubeconfig", tmp_path / "agent2.log").start()
    try:
        wait_until(
            lambda: again.metrics()['ipvsctl_reconcile_duration_seconds_count{kind="full"}'] >= 2,
            "a full sync",
        )
        assert again.operations() == 0
    finally:
        again.kill()
