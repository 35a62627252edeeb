"""No takeover through an external address: a Service whose external or load-balancer IP
holds a virtual server someone made with ipvsadm leaves it exactly as it was.

`apply`, `run` and `cleanup` as users run them; `ipvsadm -Sn` is the witness that the
foreign virtual server (a direct-routing one, as another load balancer would make)
is unchanged to the byte, and `ip` that its address was never bound. The agent tells
the conflict as a Warning Event on the Service; its cluster IP is served all along.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.tests.agent_fixtures import (
    Agent,
    bound_addresses,
    real_server_lines,
    table,
    wait_until,
)
from integration.tests.apply_fixtures import (
    Port,
    endpoint_slice,
    fresh_node,
    ipvsctl,
    run,
    service,
    write_manifest,
)
from tests.sources.kube_api import KubeApi
from tests.sources.kube_api import endpoint_slice as api_slice
from tests.sources.kube_api import service as api_service

TAKEN = "192.0.2.10"  # TEST-NET-1: another load balancer's address on this node
VIP = "10.96.30.10"
PODS = ("10.250.0.21", "10.250.0.22")  # on node0 (agent_fixtures.node_link)
FULL_SYNCS = 'ipvsctl_reconcile_duration_seconds_count{kind="full"}'


def add_foreign() -> list[str]:
    """Someone's direct-routing virtual server on TAKEN:80, and another on TAKEN:8443 (a port
    no Service names: binding the address would take it too); their `ipvsadm -Sn` lines."""
    run("ipvsadm", "-A", "-t", f"{TAKEN}:80", "-s", "wlc")
    run("ipvsadm", "-a", "-t", f"{TAKEN}:80", "-r", "10.250.0.99:80", "-g", "-w", "3")
    run("ipvsadm", "-A", "-t", f"{TAKEN}:8443", "-s", "sh")
    run("ipvsadm", "-a", "-t", f"{TAKEN}:8443", "-r", "10.250.0.98:8443", "-g", "-w", "2")
    lines = foreign_lines()
    assert len(lines) == 4, lines
    return lines


def foreign_lines() -> list[str]:
    return [line for line in run("ipvsadm", "-Sn").splitlines() if TAKEN in line]


# --- apply, diff, cleanup --------------------------------------------------------------


@pytest.fixture
def clean_node(node_link: None) -> Iterator[None]:
    with fresh_node():
        yield


def manifest(tmp_path: Path, where: str) -> str:
    """Service ap/web on VIP, ports 80 and 443, with TAKEN as an external or load-balancer
    IP."""
    ports = (Port("http", 80, 8080), Port("https", 443, 8443))
    web = service("web", VIP, ports, service_type="LoadBalancer" if where == "lb" else "ClusterIP")
    if where == "lb":
        web["status"] = {"loadBalancer": {"ingress": [{"ip": TAKEN}]}}
    else:
        web["spec"]["externalIPs"] = [TAKEN]
    return write_manifest(tmp_path / "web.yaml", web, endpoint_slice("web", PODS, ports))


@pytest.mark.usefixtures("clean_node")
@pytest.mark.parametrize(
    ("where", "field"), [("external", "spec.externalIPs"), ("lb", "status.loadBalancer.ingress")]
)
def test_apply_diff_and_cleanup_leave_the_foreign_server_and_serve_the_rest(
    tmp_path: Path, where: str, field: str
) -> None:
    before = add_foreign()
    path = manifest(tmp_path, where)
    applied = ipvsctl("apply", "-f", path)
    assert applied.returncode == 0, applied.stderr
    warned = (
        f"ipvsctl: warning: Service ap/web: {field}: TCP {TAKEN}:{{port}} skipped: {TAKEN}"
        f" holds a virtual server ipvsctl did not create (TCP {TAKEN}:80, TCP {TAKEN}:8443);"
        " it is left as it is"
    )
    assert applied.stderr.splitlines() == [warned.format(port=80), warned.format(port=443)]
    assert f"-A -t {VIP}:80 -s rr" in applied.stdout and TAKEN not in applied.stdout
    assert foreign_lines() == before
    assert TAKEN not in bound_addresses() and VIP in bound_addresses()
    assert real_server_lines("-t", f"{VIP}:443") == [f"{pod}:8443 Masq 1" for pod in PODS]

    again = ipvsctl("diff", "-f", path)
    assert (again.returncode, again.stdout) == (0, ""), again.stderr
    assert again.stderr == applied.stderr  # still told, still nothing to change

    cleanup = ipvsctl("cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert foreign_lines() == before
    assert VIP not in table()


# --- the agent ---------------------------------------------------------------------------


def full_syncs(agent: Agent) -> float:
    return agent.metrics().get(FULL_SYNCS, 0.0)


def events_about(api: KubeApi, name: str) -> list[tuple[str, str]]:
    """(reason, message) of each Event the agent posted about Service shop/NAME."""
    found = []
    for request in api.requests():
        data: Any = request.data
        if "/events" in request.url.path and isinstance(data, dict):
            involved = data.get("involvedObject") or {}
            if involved.get("name") == name and involved.get("kind") == "Service":
                found.append((data.get("reason", ""), data.get("message", "")))
    return found


def told_the_conflict(api: KubeApi, port: int) -> bool:
    return any(
        reason == "ForeignVirtualServer"
        and f"TCP {TAKEN}:{port} skipped" in message
        and "ipvsctl did not create" in message
        for reason, message in events_about(api, "web")
    )


def served(api: KubeApi) -> bool:
    return real_server_lines("-t", f"{VIP}:80") == [f"{pod}:8080 Masq 1" for pod in PODS]


def test_the_agent_warns_serves_the_cluster_ip_and_leaves_the_foreign_server(
    api: KubeApi, agent: Agent
) -> None:
    before = add_foreign()
    # Seen by a full sync, so the Service's own (incremental) sync knows it is there.
    seen = full_syncs(agent) + 2
    wait_until(lambda: full_syncs(agent) >= seen, "a full sync after the foreign server")
    api.create(api_service("web", "shop", VIP, externalIPs=[TAKEN]))
    api.create(api_slice("web-1", "web", PODS, "shop"))
    wait_until(lambda: served(api), "the cluster IP served")
    wait_until(lambda: told_the_conflict(api, 80), "a Warning Event naming the conflict")
    later = full_syncs(agent) + 2
    wait_until(lambda: full_syncs(agent) >= later, "two more full syncs")
    assert foreign_lines() == before
    assert TAKEN not in bound_addresses()
    assert agent.metrics().get("ipvsctl_rejected_services") == 0  # warned, not refused

    api.delete("Service", "shop", "web")
    wait_until(lambda: f"{VIP}:80" not in table(), "the Service's virtual server to go")
    later = full_syncs(agent) + 2
    wait_until(lambda: full_syncs(agent) >= later, "two more full syncs")
    assert foreign_lines() == before

    agent.stop(signal.SIGTERM)
    cleanup = ipvsctl("cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert foreign_lines() == before


def test_a_load_balancer_ip_is_left_at_start_and_taken_once_the_foreign_server_goes(
    api: KubeApi, tmp_path: Path
) -> None:
    before = add_foreign()
    lb = api_service("web", "shop", VIP, type="LoadBalancer")
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": TAKEN}]}}
    api.create(lb)
    api.patch("Service", "shop", "web", {"status": lb["status"]})
    api.create(api_slice("web-1", "web", PODS, "shop"))
    # Started now, its first (full) sync finds both the Service and the foreign server.
    agent = Agent(api.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "agent.log").start()
    try:
        wait_until(lambda: served(api), "the cluster IP served")
        wait_until(lambda: told_the_conflict(api, 80), "a Warning Event naming the conflict")
        assert foreign_lines() == before and TAKEN not in bound_addresses()
        assert any(
            "status.loadBalancer.ingress" in message for _, message in events_about(api, "web")
        )

        run("ipvsadm", "-D", "-t", f"{TAKEN}:80")
        run("ipvsadm", "-D", "-t", f"{TAKEN}:8443")
        wait_until(lambda: TAKEN in bound_addresses(), "the free address taken")
        wait_until(
            lambda: real_server_lines("-t", f"{TAKEN}:80") == [f"{p}:8080 Masq 1" for p in PODS],
            "the load-balancer IP served",
        )
    finally:
        agent.kill()
