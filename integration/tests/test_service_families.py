"""kube-proxy parity, proven in the kernel with ipvsadm and ip as witnesses: a Service is
served only in its own IP families, and externalTrafficPolicy Local with no endpoint on
this node serves the cluster's endpoints on the external addresses (kubernetes #97081).

The node is a dummy link with an IPv4 and an IPv6 address (a dual-stack node); the
real servers are addresses nothing answers on, as only the table is looked at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.tests.apply_fixtures import (
    INTERFACE,
    NAMESPACE,
    Port,
    fresh_node,
    ipvsctl,
    real_servers,
    run,
    service,
    write_manifest,
)

NODE_LINK = "fam-node0"
NODE_V4, NODE_V6 = "192.0.2.1", "2001:db8::1:1"
NODEPORT_CIDRS = "192.0.2.0/24,2001:db8::/64"
THIS_NODE = "fam-this-node"


@pytest.fixture
def node() -> Iterator[None]:
    with fresh_node():
        run("ip", "link", "add", NODE_LINK, "type", "dummy")
        try:
            run("ip", "addr", "add", f"{NODE_V4}/24", "dev", NODE_LINK)
            run("ip", "-6", "addr", "add", f"{NODE_V6}/64", "dev", NODE_LINK, "nodad")
            run("ip", "link", "set", NODE_LINK, "up")
            yield
        finally:
            run("ip", "link", "del", NODE_LINK)


pytestmark = pytest.mark.usefixtures("node")


def slice_on_nodes(name: str, pods: list[tuple[str, str]], port: Port) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-ipv4",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [address], "nodeName": node, "conditions": {"ready": True}}
            for address, node in pods
        ],
        "ports": [{"name": port.name, "port": port.target, "protocol": port.protocol}],
    }


def apply(path: str) -> Any:
    done = ipvsctl(
        "apply", "-f", path, "--nodeport-addresses", NODEPORT_CIDRS, "--node-name", THIS_NODE
    )
    assert done.returncode == 0, done.stderr
    return done


def test_an_ipv4_only_sctp_nodeport_gets_no_virtual_server_on_the_nodes_ipv6_address(
    tmp_path: Path,
) -> None:
    sig = Port("sig", 3000, 3868, "SCTP", node_port=3001)
    manifest = write_manifest(
        tmp_path / "m.yaml",
        service("signal", "10.96.7.1", (sig,), service_type="NodePort"),
        slice_on_nodes("signal", [("10.246.7.2", THIS_NODE)], sig),
    )
    apply(manifest)
    services = [line.split()[:2] for line in run("ipvsadm", "-Ln").splitlines()[3:]]
    services = [fields for fields in services if fields[0] != "->"]
    # ipvsadm spells SCTP with one space after it, TCP with two: compare fields.
    assert sorted(services) == [["SCTP", "10.96.7.1:3000"], ["SCTP", f"{NODE_V4}:3001"]]


def test_an_ipv6_external_ip_of_an_ipv4_only_service_is_neither_bound_nor_served(
    tmp_path: Path,
) -> None:
    document = service("web", "10.96.7.2")
    document["spec"]["externalIPs"] = ["203.0.113.7", "2001:db8:77::7"]
    manifest = write_manifest(
        tmp_path / "m.yaml",
        document,
        slice_on_nodes("web", [("10.246.7.3", THIS_NODE)], Port("http", 80, 8080)),
    )
    done = apply(manifest)
    assert done.stderr == (
        "ipvsctl: warning: Service ap/web: spec.externalIPs: 2001:db8:77::7 is IPv6, not a"
        " family of the Service (IPv4): skipped\n"
    )
    bound = run("ip", "-o", "addr", "show", "dev", INTERFACE)
    assert "203.0.113.7/32" in bound
    assert "2001:db8:77::7" not in bound
    table = run("ipvsadm", "-Ln")
    assert "TCP  203.0.113.7:80 rr" in table
    assert "2001:db8:77::7" not in table


def test_a_cluster_ip_contradicting_ip_families_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    document = service("web", "fd00::20")
    document["spec"]["ipFamilies"] = ["IPv4"]
    before = run("ipvsadm", "-Ln")
    done = ipvsctl("apply", "-f", write_manifest(tmp_path / "m.yaml", document))
    assert done.returncode == 2
    assert (
        "Service ap/web: spec.clusterIPs[0]: fd00::20 is IPv6, but spec.ipFamilies[0] is IPv4"
        in done.stderr
    )
    assert run("ipvsadm", "-Ln") == before


def test_local_policy_with_no_endpoint_here_serves_the_clusters_endpoints_externally(
    tmp_path: Path,
) -> None:
    http = Port("http", 80, 8080, node_port=30090)
    document = service("away", "10.96.7.4", (http,), service_type="LoadBalancer")
    document["spec"]["externalTrafficPolicy"] = "Local"
    document["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}]}}
    pods = [("10.246.7.5", "fam-other-node"), ("10.246.7.6", "fam-third-node")]
    apply(write_manifest(tmp_path / "m.yaml", document, slice_on_nodes("away", pods, http)))
    cluster = {"10.246.7.5:8080", "10.246.7.6:8080"}
    assert set(real_servers("-t", "198.51.100.9:80")) == cluster
    assert set(real_servers("-t", f"{NODE_V4}:30090")) == cluster
    assert set(real_servers("-t", "10.96.7.4:80")) == cluster
    # With internalTrafficPolicy Local too, the Service uses no cluster endpoints at
    # all (kube-proxy's UsesClusterEndpoints): nothing to fall back on, and the cluster
    # IP stays empty as well.
    document["spec"]["internalTrafficPolicy"] = "Local"
    apply(write_manifest(tmp_path / "m.yaml", document, slice_on_nodes("away", pods, http)))
    for address in ("198.51.100.9:80", f"{NODE_V4}:30090", "10.96.7.4:80"):
        assert real_servers("-t", address) == {}, address
    # Once a pod runs here, the external addresses and the cluster IP have it alone.
    pods.append(("10.246.7.7", THIS_NODE))
    apply(write_manifest(tmp_path / "m.yaml", document, slice_on_nodes("away", pods, http)))
    assert set(real_servers("-t", "198.51.100.9:80")) == {"10.246.7.7:8080"}
    assert set(real_servers("-t", "10.96.7.4:80")) == {"10.246.7.7:8080"}
