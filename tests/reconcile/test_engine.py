"""The engine's logic against narrow fakes of its ports: what it sends for each kind of
change. (That the kernel does what those changes say is the kernel lab's to prove.)"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

import pytest

from ipvsctl.agent.cluster_cache import SERVICE, SLICE, ClusterCache
from ipvsctl.model import AF_INET, Protocol
from ipvsctl.model.changes import ChangeFailure, IpvsChange, Op
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort
from ipvsctl.reconcile.engine import NodeEngine
from ipvsctl.reconcile.options import EngineOptions
from ipvsctl.reconcile.ports import NodePorts
from ipvsctl.reconcile.wanted_services import WantedServices
from ipvsctl.render.plan_lines import change_line
from ipvsctl.state.nodeport_record import NodeportRecord
from tests.reconcile.fakes import FakeClock, FakeIpvs, FakeLinks, FakeNft, FakeSysctls

TCP, UDP = int(Protocol.TCP), int(Protocol.UDP)
CONFIG = TranslateConfig(node_name="node-1", node_addresses=("192.168.0.10",))


def service(name: str, ip: str, protocol: int = TCP, **fields: object) -> Service:
    ports = (ServicePort("p", protocol, 80),)
    return Service("shop", name, cluster_ips=(ip,), ports=ports)._replace(**fields)


def endpoint_slice(name: str, *addresses: str, protocol: int = TCP) -> EndpointSlice:
    endpoints = tuple(Endpoint((address,), node_name="node-1") for address in addresses)
    return EndpointSlice(
        "shop", f"{name}-1", name, AF_INET, (EndpointPort("p", protocol, 8080),), endpoints
    )


class Node:
    def __init__(self, tmp_path: Path, nft: FakeNft | None = None) -> None:
        self.kernel, self.links, self.cache = FakeIpvs(), FakeLinks(), ClusterCache()
        self.clock = FakeClock()
        self.flows: list[object] = []
        self.engine = NodeEngine(
            NodePorts(self.kernel, self.links, FakeSysctls(), nft, self.clock),
            EngineOptions(graceful_period=60.0),
            WantedServices(CONFIG),
            NodeportRecord(tmp_path / "nodeports.json"),
            forget_flow=self.flows.append,
        )

    def start(self) -> list[str]:
        self.engine.retranslate_all(self.cache, CONFIG)
        self.cache.take_changes(0)
        self.engine.full_sync()
        return self.sent()

    def sync(self) -> list[str]:
        changes = self.cache.take_changes(0)
        affected = self.engine.retranslate(changes.services, self.cache)
        report = self.engine.sync_services(affected)
        assert not report.must_resync, report
        return self.sent()

    def sent(self) -> list[str]:
        return [change_line(change) for change in self.kernel.take_sent()]


@pytest.fixture
def node(tmp_path: Path) -> Node:
    node = Node(tmp_path)
    node.cache.upsert(SERVICE, ("shop", "web"), service("web", "10.96.0.1"))
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1", "10.244.1.2"))
    return node


def test_start_adopts_by_planning_against_the_kernel(node: Node) -> None:
    assert node.start() == [
        "-A -t 10.96.0.1:80 -s rr",
        "-a -t 10.96.0.1:80 -r 10.244.1.1:8080 -m -w 1",
        "-a -t 10.96.0.1:80 -r 10.244.1.2:8080 -m -w 1",
    ]
    assert node.links.addresses == {"10.96.0.1"} and node.links.interface
    # A restart finds everything in place: nothing is sent.
    node.engine.table.entries.clear()
    node.engine.full_sync()
    assert node.sent() == []


def test_one_endpoint_added_is_one_operation_without_a_dump(node: Node) -> None:
    node.start()
    dumps = node.kernel.dumps
    node.cache.upsert(
        SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1", "10.244.1.2", "10.244.1.3")
    )
    assert node.sync() == ["-a -t 10.96.0.1:80 -r 10.244.1.3:8080 -m -w 1"]
    assert node.kernel.dumps == dumps


def test_an_unchanged_relist_sends_nothing(node: Node) -> None:
    node.start()
    node.cache.replace(SERVICE, {("shop", "web"): service("web", "10.96.0.1")}, {})
    assert node.cache.take_changes(0).empty


def test_a_tcp_endpoint_that_leaves_drains_then_goes_once_idle(node: Node) -> None:
    node.start()
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1"))
    assert node.sync() == ["-e -t 10.96.0.1:80 -r 10.244.1.2:8080 -m -w 0"]
    key = next(iter(node.engine.by_key))
    node.kernel.set_connections(key, ("10.244.1.2", 8080), active=3)
    node.engine.check_drains()
    assert node.sent() == []  # still busy
    node.kernel.set_connections(key, ("10.244.1.2", 8080), active=0)
    node.engine.check_drains()
    assert node.sent() == ["-d -t 10.96.0.1:80 -r 10.244.1.2:8080"]
    assert not node.engine.drains


def test_a_drain_past_the_grace_period_goes_with_its_connections(node: Node) -> None:
    node.start()
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1"))
    node.sync()
    key = next(iter(node.engine.by_key))
    node.kernel.set_connections(key, ("10.244.1.2", 8080), active=3)
    node.clock.now += 61
    node.engine.check_drains()
    assert node.sent() == ["-d -t 10.96.0.1:80 -r 10.244.1.2:8080"]


def test_a_drained_endpoint_that_comes_back_gets_its_weight_back(node: Node) -> None:
    node.start()
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1"))
    node.sync()
    node.cache.upsert(SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1", "10.244.1.2"))
    assert node.sync() == ["-e -t 10.96.0.1:80 -r 10.244.1.2:8080 -m -w 1"]
    assert not node.engine.drains


def test_a_udp_endpoint_goes_at_once_and_its_flows_are_forgotten(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.cache.upsert(SERVICE, ("shop", "dns"), service("dns", "10.96.0.10", UDP))
    node.cache.upsert(
        SLICE, ("shop", "dns-1"), endpoint_slice("dns", "10.244.1.1", "10.244.1.2", protocol=UDP)
    )
    node.start()
    node.cache.upsert(SLICE, ("shop", "dns-1"), endpoint_slice("dns", "10.244.1.1", protocol=UDP))
    assert node.sync() == ["-d -u 10.96.0.10:80 -r 10.244.1.2:8080"]
    assert [tuple(flow) for flow in node.flows] == [("10.96.0.10", 80, "10.244.1.2", 8080)]  # type: ignore[arg-type]


def test_a_deleted_service_goes_with_its_address(node: Node) -> None:
    node.start()
    node.cache.delete(SERVICE, ("shop", "web"))
    assert node.sync() == ["-D -t 10.96.0.1:80"]
    assert node.links.addresses == set()


def test_a_scheduler_change_is_an_edit_in_place(node: Node) -> None:
    node.start()
    annotated = service("web", "10.96.0.1", annotations=(("ipvsctl.io/scheduler", "lc"),))
    node.cache.upsert(SERVICE, ("shop", "web"), annotated)
    assert node.sync() == ["-E -t 10.96.0.1:80 -s lc"]


def test_a_bad_service_is_rejected_and_the_others_served(node: Node) -> None:
    node.start()
    bad = service("bad", "10.96.0.2", annotations=(("ipvsctl.io/scheduler", "fastest"),))
    node.cache.upsert(SERVICE, ("shop", "bad"), bad)
    assert node.sync() == []
    assert list(node.engine.rejected) == [("shop", "bad")]
    assert "fastest" in str(node.engine.rejected[("shop", "bad")][0])


def test_a_live_service_made_invalid_keeps_its_last_good_virtual_server_until_fixed(
    node: Node,
) -> None:
    node.start()
    typo = service("web", "10.96.0.1", annotations=(("ipvsctl.io/scheduler", "rrr"),))
    node.cache.upsert(SERVICE, ("shop", "web"), typo)
    assert node.sync() == []  # nothing deleted
    assert "rrr" in str(node.engine.rejected[("shop", "web")][0])
    # Its endpoints still follow the slices, as the last good version has them.
    node.cache.upsert(
        SLICE, ("shop", "web-1"), endpoint_slice("web", "10.244.1.1", "10.244.1.2", "10.244.1.3")
    )
    assert node.sync() == ["-a -t 10.96.0.1:80 -r 10.244.1.3:8080 -m -w 1"]
    fixed = service("web", "10.96.0.1", annotations=(("ipvsctl.io/scheduler", "lc"),))
    node.cache.upsert(SERVICE, ("shop", "web"), fixed)
    assert node.sync() == ["-E -t 10.96.0.1:80 -s lc"]
    assert node.engine.rejected == {}


def test_a_service_made_again_under_its_name_is_not_its_last_good_version(node: Node) -> None:
    node.start()
    # Deleted and made again, invalid, in one fold of changes: another Service (uid).
    again = service(
        "web", "10.96.0.99", annotations=(("ipvsctl.io/scheduler", "rrr"),), uid="another"
    )
    node.cache.upsert(SERVICE, ("shop", "web"), again)
    assert node.sync() == ["-D -t 10.96.0.1:80"]
    assert node.engine.by_key == {}


def test_a_deleted_service_forgets_its_last_good_version(node: Node) -> None:
    node.start()
    node.cache.delete(SERVICE, ("shop", "web"))
    node.sync()
    typo = service("web", "10.96.0.1", annotations=(("ipvsctl.io/scheduler", "rrr"),))
    node.cache.upsert(SERVICE, ("shop", "web"), typo)
    assert node.sync() == []
    assert node.engine.by_key == {}
    assert node.engine.rejected


def test_a_key_taken_by_another_service_is_given_when_it_is_freed(node: Node) -> None:
    node.start()
    twin = service("twin", "10.96.0.1")
    node.cache.upsert(SERVICE, ("shop", "twin"), twin)
    node.cache.upsert(SLICE, ("shop", "twin-1"), endpoint_slice("twin", "10.244.9.9"))
    assert node.sync() == []
    assert ("shop", "twin") in node.engine.rejected
    node.cache.delete(SERVICE, ("shop", "web"))
    sent = node.sync()
    # The twin's endpoint first; the web's drain (in the kernel's order, newest first).
    assert sent[0] == "-a -t 10.96.0.1:80 -r 10.244.9.9:8080 -m -w 1"
    assert sorted(sent[1:]) == [
        "-e -t 10.96.0.1:80 -r 10.244.1.1:8080 -m -w 0",
        "-e -t 10.96.0.1:80 -r 10.244.1.2:8080 -m -w 0",
    ]
    assert node.engine.rejected == {}


def test_drift_is_repaired_by_the_full_sync_and_none_costs_nothing(node: Node) -> None:
    node.start()
    node.engine.full_sync()
    assert node.sent() == []
    key = next(iter(node.engine.by_key))
    node.kernel.drop(key)  # someone ran ipvsadm -D
    node.engine.full_sync()
    assert node.sent() == [
        "-A -t 10.96.0.1:80 -s rr",
        "-a -t 10.96.0.1:80 -r 10.244.1.1:8080 -m -w 1",
        "-a -t 10.96.0.1:80 -r 10.244.1.2:8080 -m -w 1",
    ]


def test_a_nodeport_is_recorded_before_it_is_added(node: Node, tmp_path: Path) -> None:
    node.start()
    ports = (ServicePort("p", TCP, 80, 30080),)
    node.cache.upsert(
        SERVICE, ("shop", "web"), service("web", "10.96.0.1", type="NodePort", ports=ports)
    )
    assert "-A -t 192.168.0.10:30080 -s rr" in node.sync()
    assert "30080" in (tmp_path / "nodeports.json").read_text()
    node.cache.delete(SERVICE, ("shop", "web"))
    assert "-D -t 192.168.0.10:30080" in node.sync()
    assert not (tmp_path / "nodeports.json").exists()


def test_a_record_that_cannot_be_written_holds_back_its_nodeports_alone(
    node: Node, tmp_path: Path
) -> None:
    node.start()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    node.engine.record = NodeportRecord(blocked / "nodeports.json")
    ports = (ServicePort("p", TCP, 80, 30080),)
    node.cache.upsert(
        SERVICE, ("shop", "web"), service("web", "10.96.0.1", type="NodePort", ports=ports)
    )
    node.cache.upsert(SERVICE, ("shop", "api"), service("api", "10.96.0.2"))
    node.cache.upsert(SLICE, ("shop", "api-1"), endpoint_slice("api", "10.244.2.1"))
    changes = node.cache.take_changes(0)
    report = node.engine.sync_services(node.engine.retranslate(changes.services, node.cache))
    sent = [change_line(c) for c in report.changes]
    assert sent == ["-A -t 10.96.0.2:80 -s rr", "-a -t 10.96.0.2:80 -r 10.244.2.1:8080 -m -w 1"]
    # No repair needed (the copy of the table is right): the agent stays healthy.
    assert not report.must_resync and report.record_failed
    assert report.problems[0].startswith(f"NodePort record {blocked / 'nodeports.json'}: ")
    # Once it can be written, the repair sync adds the NodePort.
    node.engine.record = NodeportRecord(tmp_path / "nodeports.json")
    node.kernel.take_sent()
    assert "-A -t 192.168.0.10:30080 -s rr" in [
        change_line(c) for c in node.engine.full_sync().changes
    ]


class RefusingDeletes(FakeIpvs):
    """The kernel refusing every -D (EBUSY), as it may for a service in use."""

    def apply(self, changes: Sequence[IpvsChange]) -> list[ChangeFailure]:
        refused = [c for c in changes if c.op is Op.DELETE_SERVICE]
        self.sent.extend(refused)
        failures = super().apply([c for c in changes if c.op is not Op.DELETE_SERVICE])
        return failures + [ChangeFailure(c, errno.EBUSY, "busy") for c in refused]


def test_a_refused_delete_keeps_its_address_and_is_tried_again(node: Node) -> None:
    node.start()
    refusing = RefusingDeletes(node.kernel.table.listing())
    node.engine.ports = node.engine.ports._replace(ipvs=refusing)
    node.kernel = refusing
    node.cache.delete(SERVICE, ("shop", "web"))
    changes = node.cache.take_changes(0)
    report = node.engine.sync_services(node.engine.retranslate(changes.services, node.cache))
    assert [change_line(c) for c in report.changes] == ["-D -t 10.96.0.1:80"]
    # Still ours: the address stays bound, so the next full sync deletes it again.
    assert node.links.addresses == {"10.96.0.1"} and "10.96.0.1" in node.engine.bound
    node.kernel.take_sent()
    node.engine.full_sync()
    assert node.sent() == ["-D -t 10.96.0.1:80"]
