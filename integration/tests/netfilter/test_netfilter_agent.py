"""`ipvsctl run` keeps its nftables table element by element, against an emulated API
server: an endpoint change that moves no pod on or off this node changes no element, one
that does changes one; someone else's table and iptables-nft rules are never touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.tests.agent_fixtures import (
    NODE,
    Agent,
    counter_total,
    real_server_lines,
    wait_until,
)
from integration.tests.apply_fixtures import ipvsctl, run
from integration.tests.netfilter.test_netfilter_ownership import foreign_state, others
from tests.sources.kube_api import KubeApi, endpoint_slice, service

VIP = "10.96.30.1"
# Under QEMU's emulated CPU, importing the API client alone takes many seconds.
STARTUP = 180.0


def elements(set_name: str) -> str:
    return run("nft", "list", "set", "inet", "ipvsctl", set_name)


def element_changes(agent: Agent) -> int:
    """Set elements the agent's nft transactions changed so far (its own metric, counted
    just after the transaction: wait for it, as a count that overshoots never comes back)."""
    return counter_total(agent.metrics(), "ipvsctl_netfilter_element_changes")


def endpoints(api: KubeApi, *pods: tuple[str, str]) -> None:
    api.patch(
        "EndpointSlice",
        "shop",
        "web-1",
        {
            "endpoints": [
                {"addresses": [a], "nodeName": n, "conditions": {"ready": True}} for a, n in pods
            ]
        },
    )


@pytest.fixture
def foreign(api: KubeApi) -> Iterator[dict[str, str]]:
    with foreign_state() as before:
        yield before


def test_run_changes_elements_only_and_touches_nothing_else(
    api: KubeApi, foreign: dict[str, str], tmp_path: Path
) -> None:
    api.create(service("web", "shop", VIP))
    api.create(endpoint_slice("web-1", "web", ("10.244.2.1",), "shop"))
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    agent = Agent(
        kubeconfig, tmp_path / "agent.log", "--cluster-cidr=10.244.0.0/16", netfilter=True
    )
    agent.start(timeout=STARTUP)
    try:
        wait_until(lambda: f"{VIP} . tcp . 80" in elements("cluster-ips-v4"), "the table")
        assert others() == foreign
        made = element_changes(agent)

        # A pod on another node: one IPVS operation, no element.
        endpoints(api, ("10.244.2.1", "node-b"), ("10.244.2.2", "node-b"))
        wait_until(lambda: len(real_server_lines("-t", f"{VIP}:80")) == 2, "the second pod")
        # A pod on this node: one hairpin element.
        endpoints(api, ("10.244.2.1", "node-b"), ("10.244.2.2", "node-b"), ("10.244.1.5", NODE))
        wait_until(lambda: "10.244.1.5 . 10.244.1.5" in elements("hairpin-v4"), "hairpin")
        wait_until(lambda: element_changes(agent) == made + 1, "the count of elements")
        # It goes: one element again.
        endpoints(api, ("10.244.2.1", "node-b"), ("10.244.2.2", "node-b"))
        wait_until(lambda: "10.244.1.5" not in elements("hairpin-v4"), "hairpin to go")
        wait_until(lambda: element_changes(agent) == made + 2, "the count of elements")

        assert others() == foreign
    finally:
        agent.stop()
    assert "table inet ipvsctl" in run("nft", "list", "tables")  # left as it is
    done = ipvsctl("cleanup")
    assert done.returncode == 0, done.stderr
    assert "ipvsctl" not in run("nft", "list", "tables")
    assert others() == foreign
