"""kube-proxy's IPVS settings in the engine: the connection timeouts (`ipvsadm --set`)
set when given and differing, at every full sync; and --ipvs-exclude-cidrs, whose
virtual servers are never deleted as unwanted."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipvsctl.agent.cluster_cache import SERVICE, ClusterCache
from ipvsctl.model import AF_INET, Protocol, ServiceKey, VirtualServer, VirtualServerEntry
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.model.inputs import Service, ServicePort
from ipvsctl.model.ipvs import Timeouts
from ipvsctl.plan import Ownership, excluded_networks, plan_timeouts
from ipvsctl.reconcile.engine import NodeEngine
from ipvsctl.reconcile.options import EngineOptions, OptionError, check_options
from ipvsctl.reconcile.ports import NodePorts
from ipvsctl.reconcile.wanted_services import WantedServices
from ipvsctl.render.plan_json import plan_document
from ipvsctl.render.plan_lines import change_line, plan_lines
from ipvsctl.state.nodeport_record import NodeportRecord
from tests.reconcile.fakes import FakeIpvs, FakeLinks, FakeSysctls

TCP = int(Protocol.TCP)
CONFIG = TranslateConfig(node_name="node-1")


def engine(
    tmp_path: Path, options: EngineOptions, kernel: FakeIpvs, links: FakeLinks
) -> NodeEngine:
    return NodeEngine(
        NodePorts(kernel, links, FakeSysctls()),
        options,
        WantedServices(CONFIG),
        NodeportRecord(tmp_path / "nodeports.json"),
    )


# --- timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "current", "planned"),
    [
        (Timeouts(0, 0, 0), Timeouts(900, 120, 300), None),  # none given: never read
        (Timeouts(900, 0, 0), Timeouts(900, 120, 300), None),  # as it is
        (Timeouts(3600, 0, 0), Timeouts(900, 120, 300), Timeouts(3600, 0, 0)),
        (Timeouts(0, 30, 60), Timeouts(900, 120, 60), Timeouts(0, 30, 60)),
        (Timeouts(0, 0, 60), None, Timeouts(0, 0, 60)),  # unread: set
    ],
)
def test_timeouts_are_set_only_when_a_given_one_differs(
    wanted: Timeouts, current: Timeouts | None, planned: Timeouts | None
) -> None:
    assert plan_timeouts(wanted, current) == planned


def test_a_full_sync_sets_the_given_timeouts_and_the_next_leaves_them(tmp_path: Path) -> None:
    kernel = FakeIpvs()
    options = EngineOptions(ipvs_timeouts=Timeouts(3600, 0, 60))
    node = engine(tmp_path, options, kernel, FakeLinks())
    full = node.plan_full(False)
    assert plan_lines(full.plan) == ["link add kube-ipvs0 type dummy", "--set 3600 0 60"]
    node.carry_out_full(full)
    assert kernel.current_timeouts == Timeouts(3600, 120, 60)
    node.full_sync(False)
    # Someone sets them back (ipvsadm --set): the next full sync sets them again.
    kernel.current_timeouts = Timeouts(900, 120, 300)
    node.full_sync(False)
    assert kernel.timeouts_set == [Timeouts(3600, 0, 60), Timeouts(3600, 0, 60)]


def test_without_timeout_flags_the_kernels_timeouts_are_neither_read_nor_set(
    tmp_path: Path,
) -> None:
    kernel = FakeIpvs()
    kernel.current_timeouts = Timeouts(1, 2, 3)
    node = engine(tmp_path, EngineOptions(), kernel, FakeLinks())
    assert node.plan_full(False).facts.timeouts is None
    node.full_sync(False)
    assert kernel.timeouts_set == []


def test_the_set_step_reads_as_ipvsadm_and_as_json() -> None:
    from ipvsctl.plan import Plan

    plan = Plan(timeouts=Timeouts(900, 0, 300))
    assert plan_lines(plan) == ["--set 900 0 300"]
    assert plan_document(plan) == [{"op": "--set", "tcp": 900, "tcpfin": 0, "udp": 300}]


def test_a_timeout_out_of_the_kernels_range_names_its_flag() -> None:
    with pytest.raises(OptionError, match="--ipvs-udp-timeout"):
        check_options(EngineOptions(ipvs_timeouts=Timeouts(0, 0, 10**9)), frozenset())


# --- exclude CIDRs ----------------------------------------------------------------------


def vs(address: str, port: int = 80) -> VirtualServerEntry:
    return VirtualServerEntry(VirtualServer(ServiceKey(AF_INET, TCP, address, port)))


def test_ownership_never_claims_an_excluded_address() -> None:
    key = ServiceKey(AF_INET, TCP, "10.96.0.5", 80)
    owned = Ownership(frozenset({"10.96.0.5"}), frozenset({key}))
    assert owned.owns(key)
    assert not owned._replace(excluded=excluded_networks(["10.96.0.0/28"])).owns(key)


def test_an_unwanted_virtual_server_on_an_excluded_address_survives_a_full_sync(
    tmp_path: Path,
) -> None:
    # Both on our bound address: the excluded one stays, the other goes.
    kernel = FakeIpvs([vs("10.96.0.5", 8443), vs("10.96.0.6", 8443)])
    links = FakeLinks()
    links.interface, links.addresses = True, {"10.96.0.5", "10.96.0.6"}
    options = check_options(EngineOptions(exclude_cidrs=("10.96.0.5/32",)), frozenset())
    node = engine(tmp_path, options, kernel, links)
    cache = ClusterCache()
    for name, ip in (("a", "10.96.0.5"), ("b", "10.96.0.6")):
        ports = (ServicePort("p", TCP, 80),)
        cache.upsert(SERVICE, ("shop", name), Service("shop", name, cluster_ips=(ip,), ports=ports))
    node.retranslate_all(cache, CONFIG)
    node.full_sync(False)
    sent = [change_line(change) for change in kernel.take_sent()]
    assert "-D -t 10.96.0.6:8443" in sent
    assert not [line for line in sent if "10.96.0.5:8443" in line]
    # The wanted one on the excluded address is programmed all the same.
    assert "-A -t 10.96.0.5:80 -s rr" in sent


def test_an_exclude_cidr_that_is_not_one_names_the_flag() -> None:
    with pytest.raises(OptionError, match="--ipvs-exclude-cidrs: 'nope' is not a CIDR"):
        check_options(EngineOptions(exclude_cidrs=("nope",)), frozenset())
