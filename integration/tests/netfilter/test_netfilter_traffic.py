"""Real traffic through ipvsctl's nftables table, in a kernel with netfilter for IP traffic
(Debian's, under QEMU: the UML lab has none).

The test's network namespace is the node. Around it, namespaces joined by veth:

    nf-client    192.168.50.2 / fd00:50::2   an outside client (NodePorts, LB, filter)
    nf-stranger  192.168.60.2                a client outside loadBalancerSourceRanges
    nf-local     10.244.1.2 / fd00:244:1::2  a pod on this node (node-a)
    nf-remote    10.244.2.2 / fd00:244:2::2  a pod "on another node": its default route
                                             leads to nf-router, which goes nowhere, so
                                             only a masqueraded connection is answered

Each pod answers a TCP connection on 8080 with its name and the peer address it
sees, then closes. ipvsctl runs as a user runs it (`ipvsctl apply`, a subprocess);
what the table does is read off the traffic, never off ipvsctl's own code.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.tests.apply_fixtures import fresh_node, ipvsctl, run, sysctl

NODE = "node-a"
CLUSTER_CIDRS = "10.244.0.0/16,fd00:244::/48"
NODE_ADDR, NODE_ADDR6 = "192.168.50.1", "fd00:50::1"
CLIENT, CLIENT6, STRANGER = "192.168.50.2", "fd00:50::2", "192.168.60.2"
LOCAL_POD, LOCAL_POD6 = "10.244.1.2", "fd00:244:1::2"
REMOTE_POD, REMOTE_POD6 = "10.244.2.2", "fd00:244:2::2"
TOWARD_LOCAL, TOWARD_REMOTE = "10.244.1.1", "10.244.2.1"  # the node's side of each pod link
CLUSTER_IP, CLUSTER_IP6 = "10.96.0.20", "fd00:96::20"
LB_IP = "203.0.113.10"
HOST_PORT = 2222  # a host service on 0.0.0.0, as sshd would be
NAMESPACES = ("nf-client", "nf-stranger", "nf-local", "nf-remote", "nf-router")
TIMEOUT = 3.0  # a guard: an unanswered connection is what a missing masquerade looks like

ECHO_PEER = """
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("::", port))
server.listen(64)
while True:
    conn, peer = server.accept()
    host = peer[0].removeprefix("::ffff:")
    conn.sendall(f"{name} {host}".encode())
    conn.close()
"""


# --- the network -------------------------------------------------------------------


def ns(name: str, *argv: str) -> str:
    return run("ip", "netns", "exec", name, *argv)


def wire(name: str, node_side: str, far_side: str, v6: tuple[str, str] | None = None) -> None:
    """Namespace NAME behind a veth pair, its default route through the node."""
    link = f"v-{name}"
    run("ip", "netns", "add", name)
    run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
    run("ip", "addr", "add", f"{node_side}/24", "dev", link)
    run("ip", "link", "set", link, "up")
    ns(name, "ip", "link", "set", "lo", "up")
    ns(name, "ip", "addr", "add", f"{far_side}/24", "dev", "eth0")
    ns(name, "ip", "link", "set", "eth0", "up")
    ns(name, "ip", "route", "add", "default", "via", node_side)
    if v6 is not None:
        run("ip", "-6", "addr", "add", f"{v6[0]}/64", "dev", link, "nodad")
        ns(name, "ip", "-6", "addr", "add", f"{v6[1]}/64", "dev", "eth0", "nodad")
        ns(name, "ip", "-6", "route", "add", "default", "via", v6[0])


def send_remote_replies_elsewhere() -> None:
    """nf-remote's default route leads to nf-router, which forwards nothing: like a pod on
    another node, it can answer only the node's own address (its connected route)."""
    ns("nf-remote", "ip", "route", "del", "default")
    ns("nf-remote", "ip", "-6", "route", "del", "default")
    run("ip", "link", "add", "v-rr", "netns", "nf-remote", "type", "veth", "peer", "name", "eth0")
    run("ip", "link", "set", "eth0", "netns", "nf-router")
    ns("nf-router", "ip", "link", "set", "lo", "up")
    ns("nf-router", "ip", "addr", "add", "172.31.0.1/24", "dev", "eth0")
    ns("nf-router", "ip", "-6", "addr", "add", "fd00:31::1/64", "dev", "eth0", "nodad")
    ns("nf-router", "ip", "link", "set", "eth0", "up")
    ns("nf-remote", "ip", "addr", "add", "172.31.0.2/24", "dev", "v-rr")
    ns("nf-remote", "ip", "-6", "addr", "add", "fd00:31::2/64", "dev", "v-rr", "nodad")
    ns("nf-remote", "ip", "link", "set", "v-rr", "up")
    ns("nf-remote", "ip", "route", "add", "default", "via", "172.31.0.1")
    ns("nf-remote", "ip", "-6", "route", "add", "default", "via", "fd00:31::1")


def wait_until_listening(namespace: str, address: str, port: int) -> None:
    for _ in range(300):
        done = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", CONNECT, address, str(port)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{namespace}: nothing listens on {address}:{port}")


@pytest.fixture(scope="module")
def network() -> Iterator[None]:
    servers: list[subprocess.Popen[bytes]] = []
    try:
        with sysctl("net/ipv4/ip_forward", "1"), sysctl("net/ipv6/conf/all/forwarding", "1"):
            wire("nf-client", NODE_ADDR, CLIENT, (NODE_ADDR6, CLIENT6))
            wire("nf-stranger", "192.168.60.1", STRANGER)
            wire("nf-local", TOWARD_LOCAL, LOCAL_POD, ("fd00:244:1::1", LOCAL_POD6))
            wire("nf-remote", TOWARD_REMOTE, REMOTE_POD, ("fd00:244:2::1", REMOTE_POD6))
            run("ip", "netns", "add", "nf-router")
            send_remote_replies_elsewhere()
            for name in ("nf-local", "nf-remote"):
                argv = ["ip", "netns", "exec", name, sys.executable, "-c", ECHO_PEER, name, "8080"]
                servers.append(subprocess.Popen(argv))
            # The node's own service on every address: only its own addresses may reach it.
            host = [sys.executable, "-c", ECHO_PEER, "host", str(HOST_PORT)]
            servers.append(subprocess.Popen(host))
            wait_until_listening("nf-local", LOCAL_POD, 8080)
            wait_until_listening("nf-remote", REMOTE_POD, 8080)
            wait_until_listening("nf-client", NODE_ADDR, HOST_PORT)
            yield
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for name in NAMESPACES:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
def node() -> Iterator[None]:
    """No IPVS state, no netfilter table of ours, before and after each test."""
    with fresh_node():
        subprocess.run(["nft", "delete", "table", "inet", "ipvsctl"], capture_output=True)
        try:
            yield
        finally:
            subprocess.run(["nft", "delete", "table", "inet", "ipvsctl"], capture_output=True)


pytestmark = pytest.mark.usefixtures("network", "node")


# --- connections ------------------------------------------------------------------

CONNECT = """
import socket, sys
address, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in address else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM)
sock.settimeout(float(sys.argv[3]) if len(sys.argv) > 3 else 1.0)
try:
    sock.connect((address, port))
    print(sock.recv(256).decode())
except ConnectionRefusedError:
    print("refused"); sys.exit(3)
except OSError as error:
    print(f"no answer: {error}"); sys.exit(4)
"""


def connect(namespace: str, address: str, port: int) -> str:
    """From NAMESPACE: `NAME PEER` as the pod (or host service) answered, `refused`, or
    `no answer: ...`."""
    argv = [sys.executable, "-c", CONNECT, address, str(port), str(TIMEOUT)]
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT + 30,
    )
    return done.stdout.strip()


# --- manifests --------------------------------------------------------------------


def service(name: str, spec: dict[str, Any], ingress: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "nf"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec},
    }
    if ingress is not None:
        document["status"] = {"loadBalancer": {"ingress": [{"ip": ingress}]}}
    return document


def endpoints(name: str, pods: list[tuple[str, str]]) -> dict[str, Any]:
    """An EndpointSlice of (address, node name) pods, of the first one's family."""
    family = "IPv6" if ":" in pods[0][0] else "IPv4"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-{family.lower()}",
            "namespace": "nf",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": family,
        "endpoints": [
            {"addresses": [address], "nodeName": node, "conditions": {"ready": True}}
            for address, node in pods
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def dual_stack(ipv4: str, ipv6: str) -> dict[str, Any]:
    return {
        "clusterIP": ipv4,
        "clusterIPs": [ipv4, ipv6],
        "ipFamilies": ["IPv4", "IPv6"],
        "ipFamilyPolicy": "RequireDualStack",
    }


def node_port(port: int, policy: str = "Cluster") -> dict[str, Any]:
    return {
        "type": "NodePort",
        "externalTrafficPolicy": policy,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": port}],
    }


CLUSTER = [
    # A NodePort served by a pod on another node (Cluster policy: masqueraded).
    service("remote", {**node_port(30080), **dual_stack("10.96.0.40", "fd00:96::40")}),
    endpoints("remote", [(REMOTE_POD, "node-b")]),
    endpoints("remote", [(REMOTE_POD6, "node-b")]),
    # The same pod on this node, reached by a Local and by a Cluster NodePort.
    service("keep-client", {**node_port(30081, "Local"), "clusterIP": "10.96.0.41"}),
    endpoints("keep-client", [(LOCAL_POD, NODE)]),
    service("masq-client", {**node_port(30082), "clusterIP": "10.96.0.42"}),
    endpoints("masq-client", [(LOCAL_POD, NODE)]),
    # A ClusterIP (both families) whose only endpoint is the pod on this node: hairpin.
    service("self", dual_stack(CLUSTER_IP, CLUSTER_IP6)),
    endpoints("self", [(LOCAL_POD, NODE)]),
    endpoints("self", [(LOCAL_POD6, NODE)]),
    # A load balancer open to nf-client's network only.
    service(
        "lb",
        {
            "type": "LoadBalancer",
            "clusterIP": "10.96.0.30",
            "loadBalancerSourceRanges": ["192.168.50.0/24"],
        },
        ingress=LB_IP,
    ),
    endpoints("lb", [(LOCAL_POD, NODE)]),
]


def manifest(tmp_path: Path) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump_all(CLUSTER, sort_keys=False))
    return str(path)


FLAGS = (
    f"--node-name={NODE}",
    "--nodeport-addresses=192.168.50.0/24,fd00:50::/64",
    f"--cluster-cidr={CLUSTER_CIDRS}",
)


def apply(path: str, *flags: str) -> list[str]:
    done = ipvsctl("apply", "-f", path, *FLAGS, *flags, netfilter=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def answered(result: str) -> bool:
    """Whether a pod answered (not: refused, or no answer at all)."""
    return result.startswith("nf-")


# --- the tests --------------------------------------------------------------------


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
def test_a_nodeport_on_another_node_is_answered_only_through_masquerade(
    tmp_path: Path, family: str
) -> None:
    node_address = NODE_ADDR if family == "IPv4" else NODE_ADDR6
    path = manifest(tmp_path)
    apply(path, "--no-netfilter")  # IPVS alone: the reply leaves by the pod's own route
    assert not answered(connect("nf-client", node_address, 30080))
    apply(path)
    toward_remote = TOWARD_REMOTE if family == "IPv4" else "fd00:244:2::1"
    assert connect("nf-client", node_address, 30080) == f"nf-remote {toward_remote}"


def test_external_traffic_policy_local_keeps_the_client_address(tmp_path: Path) -> None:
    apply(manifest(tmp_path))
    assert connect("nf-client", NODE_ADDR, 30081) == f"nf-local {CLIENT}"
    # The same pod behind a Cluster-policy NodePort sees the node instead.
    assert connect("nf-client", NODE_ADDR, 30082) == f"nf-local {TOWARD_LOCAL}"


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
def test_a_pod_reaching_itself_through_its_service_is_hairpinned(
    tmp_path: Path, family: str
) -> None:
    cluster_ip = CLUSTER_IP if family == "IPv4" else CLUSTER_IP6
    path = manifest(tmp_path)
    apply(path, "--no-netfilter")
    assert not answered(connect("nf-local", cluster_ip, 80))
    apply(path)
    toward_local = TOWARD_LOCAL if family == "IPv4" else "fd00:244:1::1"
    assert connect("nf-local", cluster_ip, 80) == f"nf-local {toward_local}"


def test_load_balancer_source_ranges_let_in_only_their_sources(tmp_path: Path) -> None:
    apply(manifest(tmp_path))
    assert connect("nf-client", LB_IP, 80) == f"nf-local {TOWARD_LOCAL}"
    assert connect("nf-stranger", LB_IP, 80).startswith("no answer")  # dropped
    # Its cluster IP is not source-ranged (kube-proxy filters only the LB IP).
    assert connect("nf-stranger", "10.96.0.30", 80) == f"nf-local {TOWARD_LOCAL}"


@pytest.mark.parametrize("family", ["IPv4", "IPv6"])
def test_a_host_service_is_off_service_ips_but_on_the_node_address(
    tmp_path: Path, family: str
) -> None:
    cluster_ip, node_address = (
        (CLUSTER_IP, NODE_ADDR) if family == "IPv4" else (CLUSTER_IP6, NODE_ADDR6)
    )
    path = manifest(tmp_path)
    apply(path, "--no-netfilter")
    # kubernetes #72236: every bound service IP is local, so the host service answers.
    assert connect("nf-client", cluster_ip, HOST_PORT).startswith("host ")
    apply(path)
    assert connect("nf-client", cluster_ip, HOST_PORT) == "refused"
    assert connect("nf-client", node_address, HOST_PORT).startswith("host ")
    assert connect("nf-client", cluster_ip, 80).startswith("nf-local ")


def test_apply_again_and_diff_change_nothing_and_cleanup_deletes_the_table(
    tmp_path: Path,
) -> None:
    path = manifest(tmp_path)
    first = apply(path)
    assert first[0] == "nft add table inet ipvsctl"
    assert "-A -t 10.96.0.20:80 -s rr" in first
    assert apply(path) == []
    diff = ipvsctl("diff", "-f", path, *FLAGS, netfilter=True)
    assert diff.returncode == 0 and diff.stdout == "", diff.stdout + diff.stderr
    cleanup = ipvsctl("cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert cleanup.stdout.splitlines()[0] == "nft delete table inet ipvsctl"
    listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    assert "ipvsctl" not in listed.stdout


# externalTrafficPolicy Local, its only pod on another node: IPVS serves the external
# addresses with the cluster's endpoints (kubernetes #97081) for pods here and for the
# node; the table drops other sources, as kube-proxy's nftables mode does.
AWAY_LB = "203.0.113.11"


def away(path: Path, *pods: tuple[str, str]) -> str:
    """The manifest of Service `away` with these pods, written to `path`."""
    documents = [
        service(
            "away",
            {**node_port(30083, "Local"), "type": "LoadBalancer", "clusterIP": "10.96.0.43"},
            ingress=AWAY_LB,
        ),
        endpoints("away", list(pods)),
    ]
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return str(path)


def connect_from_node(address: str, port: int) -> str:
    argv = [sys.executable, "-c", CONNECT, address, str(port), str(TIMEOUT)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=TIMEOUT + 30)
    return done.stdout.strip()


@pytest.fixture
def pod_network_route() -> Iterator[None]:
    """The pod network's route back to this node's pods, as another node has it."""
    ns("nf-remote", "ip", "route", "add", "10.244.1.0/24", "via", TOWARD_REMOTE)
    try:
        yield
    finally:
        ns("nf-remote", "ip", "route", "del", "10.244.1.0/24", "via", TOWARD_REMOTE)


@pytest.mark.usefixtures("pod_network_route")
def test_a_local_policy_service_with_no_endpoint_here_serves_pods_and_the_node_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "away.yaml"
    applied = apply(away(path, (REMOTE_POD, "node-b")))
    assert f"-a -t {AWAY_LB}:80 -r {REMOTE_POD}:8080 -m -w 1" in applied
    # A pod here reaches its Service's load-balancer IP, keeping its address.
    assert connect("nf-local", AWAY_LB, 80) == f"nf-remote {LOCAL_POD}"
    # The node does too, masqueraded: its source would be the load-balancer IP itself.
    assert connect_from_node(AWAY_LB, 80) == f"nf-remote {TOWARD_REMOTE}"
    # An external client is dropped, on the load-balancer IP and on the NodePort.
    assert connect("nf-client", AWAY_LB, 80).startswith("no answer")
    assert connect("nf-client", NODE_ADDR, 30083).startswith("no answer")
    # Once a pod runs here, external clients are served by it alone, keeping their address.
    apply(away(path, (REMOTE_POD, "node-b"), (LOCAL_POD, NODE)))
    assert connect("nf-client", AWAY_LB, 80) == f"nf-local {CLIENT}"
