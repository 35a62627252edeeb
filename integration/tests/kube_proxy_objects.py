"""The vocabulary of the kube-proxy parity table (kube_proxy_cases*.py).

A case is one test of kube-proxy's `pkg/proxy/ipvs/proxier_test.go`: its
Services and EndpointSlices written as the API server would store them, the
node it runs on (node name, addresses, `nodePortAddresses`) and the IPVS
table kube-proxy's fake IPVS holds afterwards, as the lines `ipvsadm -Sn`
prints for it. kube-proxy's defaults stand throughout: scheduler rr, weight 1,
masquerading, and its test node is called "test-hostname".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]

# kube-proxy's proxier_test.go: `const testHostname = "test-hostname"`.
TEST_HOSTNAME = "test-hostname"
OTHER_HOST = "other-hostname"
# kube-proxy's nodePortAddresses left empty: every node address of every family.
EVERY_NODE_ADDRESS = ("0.0.0.0/0", "::/0")

_IPVSADM_PROTOCOL = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}


@dataclass(frozen=True)
class Case:
    """One kube-proxy test (or one `t.Run` of it) and the table it expects.

    `node_addresses` are CIDR-style (`100.101.102.103/24`) and go on a dummy
    link of the test's own; `nodeport_addresses` is kube-proxy's
    `nodePortAddresses` as ipvsctl's `--nodeport-addresses`; `before` are
    commands (`ip`, `ipvsadm`) that make the table the test starts from;
    `flags` are more `apply` flags. `differs` names a known difference (a
    reason in kube_proxy_cases.DIFFERENCES) when ipvsctl does not yet, or
    never will, make this table; `adapted` says where the input differs from
    the Go test's and why.
    """

    test: str
    subtest: str
    objects: tuple[Manifest, ...]
    expected: tuple[str, ...]
    node_addresses: tuple[str, ...] = ()
    nodeport_addresses: tuple[str, ...] = EVERY_NODE_ADDRESS
    before: tuple[tuple[str, ...], ...] = ()
    flags: tuple[str, ...] = ()
    differs: str | None = None
    adapted: str = ""

    @property
    def id(self) -> str:
        """`go test -run`'s name for it: subtests joined by `/`, spaces as `_`."""
        name = f"{self.test}/{self.subtest}" if self.subtest else self.test
        return name.replace(" ", "_")


# --- the expected table, as `ipvsadm -Sn` prints it --------------------------


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _real_endpoint(real: str) -> str:
    """`10.180.0.1:80` or `1002:ab8::2:10:80` (the last colon splits) as ipvsadm prints it."""
    address, _, port = real.rpartition(":")
    return _endpoint(address, int(port))


def vs(
    protocol: str,
    address: str,
    port: int,
    reals: Sequence[str] = (),
    *,
    persistent: int | None = None,
    weight: int = 1,
) -> tuple[str, ...]:
    """The `-A` line of one virtual server and the `-a` lines of its real servers
    (`ADDRESS:PORT`), masquerading with `weight`, as `ipvsadm -Sn` prints them."""
    service = f"{_IPVSADM_PROTOCOL[protocol]} {_endpoint(address, port)}"
    line = f"-A {service} -s rr"
    if persistent is not None:
        line += f" -p {persistent}"
    return (line, *(f"-a {service} -r {_real_endpoint(r)} -m -w {weight}" for r in reals))


def table(*servers: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(line for server in servers for line in server)


# --- the objects, as the API server stores them ------------------------------


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: str = "TCP"
    node_port: int | None = None
    target: int | None = None


P80 = Port("p80", 80)


def service(
    namespace: str,
    name: str,
    cluster_ips: Sequence[str],
    ports: Sequence[Port] = (P80,),
    *,
    kind: str = "ClusterIP",
    external_ips: Sequence[str] = (),
    ingress: Sequence[Manifest] = (),
    external_local: bool = False,
    internal_local: bool = False,
    affinity_timeout: int | None = None,
    spec: Manifest | None = None,
) -> Manifest:
    """A v1 Service of type `kind`; `cluster_ips` ["None"] is headless."""
    body: Manifest = {"type": kind}
    if cluster_ips:
        body["clusterIP"] = cluster_ips[0]
        body["clusterIPs"] = list(cluster_ips)
        if list(cluster_ips) != ["None"]:
            body["ipFamilies"] = ["IPv6" if ":" in ip else "IPv4" for ip in cluster_ips]
    body["ports"] = [
        {
            "name": p.name,
            "port": p.port,
            "protocol": p.protocol,
            "targetPort": p.target if p.target is not None else p.port,
            **({"nodePort": p.node_port} if p.node_port is not None else {}),
        }
        for p in ports
    ]
    if external_ips:
        body["externalIPs"] = list(external_ips)
    if kind in ("NodePort", "LoadBalancer"):
        body["externalTrafficPolicy"] = "Local" if external_local else "Cluster"
    body["internalTrafficPolicy"] = "Local" if internal_local else "Cluster"
    if affinity_timeout is not None:
        body["sessionAffinity"] = "ClientIP"
        body["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity_timeout}}
    body.update(spec or {})
    manifest: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }
    if ingress:
        manifest["status"] = {"loadBalancer": {"ingress": list(ingress)}}
    return manifest


@dataclass(frozen=True)
class Endpoint:
    """One endpoint; conditions left None are absent from the object, as in the Go
    tests (absent `ready` and `serving` mean true, absent `terminating` false)."""

    address: str
    node: str | None = None
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


def endpoints(*addresses: str, node: str | None = None) -> tuple[Endpoint, ...]:
    return tuple(Endpoint(address, node) for address in addresses)


@dataclass(frozen=True)
class Slice:
    endpoints: tuple[Endpoint, ...]
    ports: tuple[Port, ...] = (P80,)
    family: str = "IPv4"
    number: int = 1


def endpoint_slice(namespace: str, service_name: str, shape: Slice) -> Manifest:
    """kube-proxy's makeTestEndpointSlice: named SERVICE-NUMBER, labelled for the Service."""
    items: list[Manifest] = []
    for e in shape.endpoints:
        conditions = {
            key: value
            for key, value in (
                ("ready", e.ready),
                ("serving", e.serving),
                ("terminating", e.terminating),
            )
            if value is not None
        }
        item: Manifest = {"addresses": [e.address]}
        if conditions:
            item["conditions"] = conditions
        if e.node is not None:
            item["nodeName"] = e.node
        items.append(item)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{shape.number}",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": shape.family,
        "endpoints": items,
        "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in shape.ports],
    }
