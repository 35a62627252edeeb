"""The agent's netfilter table, one Service at a time: which transactions the engine
sends, against a narrow fake of `nft` (what nft and the kernel make of them is the
QEMU lab's to prove: integration/tests/netfilter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipvsctl.agent.cluster_cache import SERVICE, SLICE
from ipvsctl.model import AF_INET
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice
from ipvsctl.netfilter import (
    Element,
    ElementTally,
    NetfilterOptions,
    parse_listing,
    static_ruleset,
)
from ipvsctl.reconcile.netfilter_sync import NetfilterSync
from tests.netfilter.builders import nft_listing
from tests.reconcile.fakes import FakeNft
from tests.reconcile.test_engine import TCP, Node, service

OPTIONS = NetfilterOptions(cluster_cidrs=("10.244.0.0/16",))


def slice_on(name: str, *endpoints: tuple[str, str]) -> EndpointSlice:
    """A slice of (address, node name) endpoints."""
    return EndpointSlice(
        "shop",
        f"{name}-1",
        name,
        AF_INET,
        (EndpointPort("p", TCP, 8080),),
        tuple(Endpoint((address,), node_name=node) for address, node in endpoints),
    )


@pytest.fixture
def node(tmp_path: Path) -> tuple[Node, FakeNft]:
    nft = FakeNft()
    node = Node(tmp_path, nft)
    node.engine.netfilter = NetfilterSync(nft, OPTIONS)
    node.cache.upsert(SERVICE, ("shop", "web"), service("web", "10.96.0.1"))
    web = slice_on("web", ("10.244.1.1", "node-1"), ("10.244.2.1", "node-2"))
    node.cache.upsert(SLICE, ("shop", "web-1"), web)
    return node, nft


def test_the_start_makes_the_table_in_one_transaction(node: tuple[Node, FakeNft]) -> None:
    engine, nft = node
    engine.start()
    [created] = nft.take()
    assert created.startswith("add table inet ipvsctl\ndelete table inet ipvsctl\n")
    elements = [line for line in created.splitlines() if " element " in line]
    assert elements == [
        "add element inet ipvsctl cluster-ips-v4 { 10.96.0.1 . tcp . 80 }",
        # Only the pod on this node can be sent its own packet back.
        "add element inet ipvsctl hairpin-v4 { 10.244.1.1 . 10.244.1.1 }",
        "add element inet ipvsctl service-ips-v4 { 10.96.0.1 }",
    ]
    for line in static_ruleset(OPTIONS).lines():
        assert line in created.splitlines()


def test_an_endpoint_on_another_node_changes_no_element(node: tuple[Node, FakeNft]) -> None:
    engine, nft = node
    engine.start()
    nft.take()
    web = slice_on(
        "web", ("10.244.1.1", "node-1"), ("10.244.2.1", "node-2"), ("10.244.2.2", "node-2")
    )
    engine.cache.upsert(SLICE, ("shop", "web-1"), web)
    assert engine.sync() == ["-a -t 10.96.0.1:80 -r 10.244.2.2:8080 -m -w 1"]
    assert nft.take() == []  # no nft run at all


def test_an_endpoint_on_this_node_is_one_hairpin_element(node: tuple[Node, FakeNft]) -> None:
    engine, nft = node
    engine.start()
    nft.take()
    reads = nft.reads
    web = slice_on(
        "web", ("10.244.1.1", "node-1"), ("10.244.1.7", "node-1"), ("10.244.2.1", "node-2")
    )
    engine.cache.upsert(SLICE, ("shop", "web-1"), web)
    assert engine.sync() == ["-a -t 10.96.0.1:80 -r 10.244.1.7:8080 -m -w 1"]
    assert nft.take() == ["add element inet ipvsctl hairpin-v4 { 10.244.1.7 . 10.244.1.7 }\n"]
    assert nft.reads == reads  # planned against the tally, not a listing


def test_a_pod_behind_two_services_stays_until_both_let_go(node: tuple[Node, FakeNft]) -> None:
    engine, nft = node
    engine.cache.upsert(SERVICE, ("shop", "api"), service("api", "10.96.0.2"))
    engine.cache.upsert(SLICE, ("shop", "api-1"), slice_on("api", ("10.244.1.1", "node-1")))
    engine.start()
    nft.take()
    engine.cache.delete(SERVICE, ("shop", "api"))
    engine.sync()
    assert nft.take() == [
        "delete element inet ipvsctl cluster-ips-v4 { 10.96.0.2 . tcp . 80 }\n"
        "delete element inet ipvsctl service-ips-v4 { 10.96.0.2 }\n"
    ]


def test_a_periodic_full_sync_plans_against_the_tally_without_a_listing(
    node: tuple[Node, FakeNft],
) -> None:
    engine, nft = node
    engine.start()
    nft.take()
    reads = nft.reads
    engine.engine.full_sync(read_netfilter=False)
    assert nft.reads == reads and nft.take() == []
    # A Service that changed unseen by the incremental path is still caught up.
    engine.engine.netfilter.contributed.clear()  # type: ignore[union-attr]
    engine.engine.netfilter.tally = ElementTally()  # type: ignore[union-attr]
    engine.engine.full_sync(read_netfilter=False)
    assert nft.reads == reads
    assert len(nft.take()) == 1


def test_a_refused_transaction_is_repaired_by_the_next_full_sync(
    node: tuple[Node, FakeNft],
) -> None:
    engine, nft = node
    engine.start()
    nft.take()
    nft.refuse = True
    engine.cache.delete(SERVICE, ("shop", "web"))
    changes = engine.cache.take_changes(0)
    report = engine.engine.sync_services(engine.engine.retranslate(changes.services, engine.cache))
    assert report.must_resync and "No buffer space" in report.problems[0]
    # The table still holds the old elements: the full sync reads and deletes them.
    held = [
        Element("cluster-ips-v4", ("10.96.0.1", "tcp", "80")),
        Element("service-ips-v4", ("10.96.0.1",)),
        Element("hairpin-v4", ("10.244.1.1", "10.244.1.1")),
    ]
    nft.state = parse_listing(nft_listing(static_ruleset(OPTIONS), held))
    engine.engine.full_sync()
    assert nft.take() == [
        "delete element inet ipvsctl cluster-ips-v4 { 10.96.0.1 . tcp . 80 }\n"
        "delete element inet ipvsctl hairpin-v4 { 10.244.1.1 . 10.244.1.1 }\n"
        "delete element inet ipvsctl service-ips-v4 { 10.96.0.1 }\n"
    ]
