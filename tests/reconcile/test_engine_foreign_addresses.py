"""A Service's external or load-balancer address that holds a virtual server ipvsctl did
not create: never bound, the foreign server never touched, the rest of the Service
served, and a warning (not a refusal) for each port left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipvsctl.agent.cluster_cache import SERVICE, SLICE
from ipvsctl.model.ipvs import (
    ForwardMethod,
    RealServer,
    RealServerEntry,
    VirtualServerEntry,
)
from ipvsctl.netfilter import NetfilterOptions
from ipvsctl.reconcile.netfilter_sync import NetfilterSync
from tests.plan.builders import tcp
from tests.reconcile.fakes import FakeNft
from tests.reconcile.test_engine import Node, endpoint_slice, service

CLUSTER, EXTERNAL = "10.96.0.1", "192.0.2.10"
FOREIGN = VirtualServerEntry(
    tcp(EXTERNAL, 80, scheduler="wlc"),
    real_servers=tuple(
        RealServerEntry(RealServer(address, 80, forward=ForwardMethod.ROUTE, weight=3))
        for address in ("198.51.100.7", "198.51.100.8")
    ),
)
WARNING = (
    "Service shop/web: spec.externalIPs: TCP 192.0.2.10:80 skipped: 192.0.2.10 holds a"
    " virtual server ipvsctl did not create (TCP 192.0.2.10:80); it is left as it is"
)


def foreign_left_alone(node: Node) -> bool:
    return node.kernel.table.get(FOREIGN.service.key) == FOREIGN


def with_external(node: Node, *addresses: str, **fields: object) -> None:
    node.cache.upsert(
        SERVICE, ("shop", "web"), service("web", CLUSTER, external_ips=addresses, **fields)
    )


@pytest.fixture
def node(tmp_path: Path) -> Node:
    node = Node(tmp_path)
    node.kernel.table.entries[FOREIGN.service.key] = FOREIGN  # someone's ipvsadm -A -g
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1"))
    return node


def test_a_full_sync_serves_the_cluster_ip_and_leaves_the_foreign_server(node: Node) -> None:
    with_external(node, EXTERNAL)
    assert node.start() == [
        "-A -t 10.96.0.1:80 -s rr",
        "-a -t 10.96.0.1:80 -r 10.244.1.1:8080 -m -w 1",
    ]
    assert node.links.addresses == {CLUSTER}
    assert foreign_left_alone(node)
    assert [str(e) for e in node.engine.conflicts[("shop", "web")]] == [WARNING]
    assert node.engine.rejected == {}  # a warning: the Service is not refused


def test_an_external_ip_added_later_is_withheld_by_the_incremental_sync(node: Node) -> None:
    with_external(node)
    node.start()
    with_external(node, EXTERNAL)
    assert node.sync() == []
    assert node.links.addresses == {CLUSTER} and foreign_left_alone(node)
    assert [str(e) for e in node.engine.conflicts[("shop", "web")]] == [WARNING]
    # An endpoint change of the Service serves its cluster IP and still leaves the address.
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1", "10.244.1.2"))
    assert node.sync() == ["-a -t 10.96.0.1:80 -r 10.244.1.2:8080 -m -w 1"]
    assert foreign_left_alone(node)
    node.engine.check_drains()
    node.engine.full_sync()
    assert node.sent() == [] and foreign_left_alone(node)


def test_deleting_the_service_leaves_the_foreign_server(node: Node) -> None:
    with_external(node, EXTERNAL)
    node.start()
    node.cache.delete(SERVICE, ("shop", "web"))
    assert node.sync() == ["-D -t 10.96.0.1:80"]
    assert foreign_left_alone(node) and node.links.addresses == set()
    assert node.engine.conflicts == {}
    node.engine.full_sync()
    assert node.sent() == [] and foreign_left_alone(node)


def test_once_the_foreign_server_is_gone_the_next_full_sync_takes_the_address(
    node: Node,
) -> None:
    with_external(node, EXTERNAL)
    node.start()
    node.kernel.drop(FOREIGN.service.key)  # its owner's ipvsadm -D
    node.engine.full_sync()
    assert node.sent() == [
        "-A -t 192.0.2.10:80 -s rr",
        "-a -t 192.0.2.10:80 -r 10.244.1.1:8080 -m -w 1",
    ]
    assert node.links.addresses == {CLUSTER, EXTERNAL}
    assert node.engine.conflicts == {}


def test_a_foreign_server_on_another_port_of_the_address_withholds_it_too(node: Node) -> None:
    other = VirtualServerEntry(tcp(EXTERNAL, 8443))
    node.kernel.drop(FOREIGN.service.key)
    node.kernel.table.entries[other.service.key] = other
    with_external(node, EXTERNAL)
    node.start()
    assert EXTERNAL not in node.links.addresses
    assert node.kernel.table.get(other.service.key) == other
    (error,) = node.engine.conflicts[("shop", "web")]
    assert "(TCP 192.0.2.10:8443)" in error.message


def test_a_load_balancer_ip_is_withheld_the_same_way(node: Node) -> None:
    node.cache.upsert(
        SERVICE,
        ("shop", "web"),
        service("web", CLUSTER, type="LoadBalancer", load_balancer_ips=(EXTERNAL,)),
    )
    node.start()
    assert foreign_left_alone(node) and EXTERNAL not in node.links.addresses
    (error,) = node.engine.conflicts[("shop", "web")]
    assert error.field == "status.loadBalancer.ingress"


def test_our_own_address_unbound_by_someone_is_bound_again_not_judged_foreign(
    node: Node,
) -> None:
    node.kernel.drop(FOREIGN.service.key)
    with_external(node, EXTERNAL)
    node.start()
    node.links.addresses.discard(EXTERNAL)  # someone's `ip addr del`
    node.engine.full_sync()
    assert node.links.addresses == {CLUSTER, EXTERNAL}
    assert node.engine.conflicts == {}
    assert tcp(EXTERNAL, 80).key in node.kernel.table


def test_the_netfilter_table_gets_nothing_for_a_withheld_address(tmp_path: Path) -> None:
    nft = FakeNft()
    node = Node(tmp_path, nft)
    node.engine.netfilter = NetfilterSync(nft, NetfilterOptions())
    node.kernel.table.entries[FOREIGN.service.key] = FOREIGN
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1"))
    with_external(node, EXTERNAL)
    node.start()
    sent = "\n".join(nft.take())
    assert CLUSTER in sent and EXTERNAL not in sent
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1", "10.244.1.2"))
    node.sync()
    assert EXTERNAL not in "\n".join(nft.take())
