"""The whole node plan: addresses, sysctls, ownership, the NodePort record, emptiness."""

from __future__ import annotations

import pytest

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.desired import DesiredState
from ipvsctl.model.ipvs import ServiceKey
from ipvsctl.plan import (
    NodeFacts,
    Ownership,
    Plan,
    nodeport_keys_to_record,
    plan_addresses,
    plan_node,
    plan_sysctls,
)
from ipvsctl.render.plan_lines import plan_lines
from tests.plan.builders import fwmark, have, rs, tcp, want

VIP, OLD_VIP, NODE = "10.96.0.10", "10.96.0.99", "192.168.1.5"
A = "10.244.1.5"


def test_addresses_to_add_are_the_wanted_unbound_and_to_delete_the_bound_unwanted() -> None:
    plan = plan_addresses(wanted={"10.96.0.2", "10.96.0.1", "fd00::1"}, bound={"10.96.0.1", "x"})
    assert plan.add == ("10.96.0.2", "fd00::1")
    assert plan.delete == ("x",)


@pytest.mark.parametrize(
    ("wanted", "current", "expected"),
    [
        ({"net.ipv4.vs.conntrack": "1"}, {"net.ipv4.vs.conntrack": "1"}, ()),
        (
            {"net.ipv4.vs.conntrack": "1"},
            {"net.ipv4.vs.conntrack": "0"},
            (("net.ipv4.vs.conntrack", "1"),),
        ),
        (
            {"net.ipv4.vs.conntrack": "1"},
            {"net.ipv4.vs.conntrack": None},
            (("net.ipv4.vs.conntrack", "1"),),
        ),
        ({"net.ipv4.vs.conntrack": "1"}, {}, (("net.ipv4.vs.conntrack", "1"),)),
        (
            {"net.ipv4.vs.expire_nodest_conn": "1", "net.ipv4.vs.conntrack": "1"},
            {"net.ipv4.vs.expire_nodest_conn": "0", "net.ipv4.vs.conntrack": "0"},
            (("net.ipv4.vs.conntrack", "1"), ("net.ipv4.vs.expire_nodest_conn", "1")),
        ),
    ],
    ids=["same", "differs", "unreadable", "unknown", "sorted by name"],
)
def test_a_sysctl_is_planned_when_its_value_differs(
    wanted: dict[str, str], current: dict[str, str | None], expected: tuple[tuple[str, str], ...]
) -> None:
    assert plan_sysctls(wanted, current) == expected


@pytest.mark.parametrize(
    ("key", "owned"),
    [
        (tcp(VIP, 80).key, True),
        (tcp(NODE, 30080).key, False),
        (tcp(NODE, 30081).key, True),
        (fwmark(7).key, False),
        (fwmark(8).key, True),
    ],
    ids=["bound", "node address", "recorded", "fwmark", "recorded fwmark"],
)
def test_ownership_is_a_bound_address_or_a_recorded_key(key: ServiceKey, owned: bool) -> None:
    ownership = Ownership(
        bound_addresses=frozenset({VIP, ""}),  # "" must not make fwmark services ours
        nodeport_keys=frozenset({tcp(NODE, 30081).key, fwmark(8).key}),
    )
    assert ownership.owns(key) is owned


def test_the_record_holds_the_desired_keys_no_address_can_claim() -> None:
    desired = (
        want(tcp(VIP, 80)),
        want(tcp(NODE, 30080), bound=False),
        want(fwmark(7)),
    )
    assert nodeport_keys_to_record(desired) == {tcp(NODE, 30080).key, fwmark(7).key}


def test_the_record_keeps_a_service_whose_delete_failed() -> None:
    failed = [
        IpvsChange(Op.DELETE_SERVICE, tcp(NODE, 30099)),
        IpvsChange(Op.ADD_SERVICE, tcp(NODE, 30098)),  # an add that failed is not ours
    ]
    assert nodeport_keys_to_record((), failed) == {tcp(NODE, 30099).key}


def test_a_node_plan_runs_link_addresses_sysctls_ipvs_then_address_deletes() -> None:
    desired = DesiredState((want(tcp(VIP, 80), rs(A)),), addresses=frozenset({VIP}))
    facts = NodeFacts(
        virtual_servers=(have(tcp(OLD_VIP, 80), rs(A)),),
        bound_addresses=frozenset({OLD_VIP}),
        interface_exists=False,
        sysctls={"net.ipv4.vs.conntrack": "0"},
    )
    plan = plan_node(desired, facts, wanted_sysctls={"net.ipv4.vs.conntrack": "1"})
    assert plan_lines(plan) == [
        "link add kube-ipvs0 type dummy",
        "addr add 10.96.0.10/32 dev kube-ipvs0",
        "sysctl net.ipv4.vs.conntrack=1",
        "-A -t 10.96.0.10:80 -s rr",
        "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",
        "-D -t 10.96.0.99:80",
        "addr del 10.96.0.99/32 dev kube-ipvs0",
    ]


def test_a_foreign_service_on_an_address_about_to_be_bound_is_cleared_in_the_same_plan() -> None:
    # Once VIP is bound the service is ours; leaving it would make the next plan delete it.
    desired = DesiredState((want(tcp(VIP, 80)),), addresses=frozenset({VIP}))
    facts = NodeFacts(virtual_servers=(have(tcp(VIP, 443), rs(A)),))
    assert plan_lines(plan_node(desired, facts)) == [
        "addr add 10.96.0.10/32 dev kube-ipvs0",
        "-A -t 10.96.0.10:80 -s rr",
        "-D -t 10.96.0.10:443",
    ]


def test_cleanup_plans_every_owned_service_and_address_away_and_nothing_else() -> None:
    facts = NodeFacts(
        virtual_servers=(
            have(tcp(VIP, 80), rs(A)),
            have(tcp(NODE, 30080), rs(A)),
            have(tcp(NODE, 30081), rs(A)),
            have(tcp("172.16.0.1", 80), rs(A)),
        ),
        bound_addresses=frozenset({VIP}),
        nodeport_keys=frozenset({tcp(NODE, 30080).key}),
    )
    plan = plan_node(DesiredState(), facts, interface="ipvs-test")
    assert plan_lines(plan) == [
        "-D -t 10.96.0.10:80",
        "-D -t 192.168.1.5:30080",
        "addr del 10.96.0.10/32 dev ipvs-test",
    ]


def test_a_converged_node_has_an_empty_plan() -> None:
    desired = DesiredState((want(tcp(VIP, 80), rs(A)),), addresses=frozenset({VIP}))
    facts = NodeFacts(
        virtual_servers=(have(tcp(VIP, 80), rs(A)),),
        bound_addresses=frozenset({VIP}),
        sysctls={"net.ipv4.vs.conntrack": "1"},
    )
    plan = plan_node(desired, facts, wanted_sysctls={"net.ipv4.vs.conntrack": "1"})
    assert plan.is_empty
    assert plan_lines(plan) == []


@pytest.mark.parametrize(
    "plan",
    [
        Plan(create_interface=True),
        Plan(addresses_add=("10.96.0.1",)),
        Plan(sysctls=(("net.ipv4.vs.conntrack", "1"),)),
        Plan(ipvs=(IpvsChange(Op.DELETE_SERVICE, tcp(VIP, 80)),)),
        Plan(addresses_del=("10.96.0.1",)),
        Plan(delete_interface=True),
    ],
    ids=["link add", "addr add", "sysctl", "ipvs", "addr del", "link del"],
)
def test_a_plan_with_any_step_is_not_empty(plan: Plan) -> None:
    assert not plan.is_empty


def test_the_default_plan_is_empty() -> None:
    assert Plan().is_empty


def test_ten_thousand_converged_services_in_kernel_order_plan_nothing() -> None:
    # Speed is measured by integration/benchmarks/bench_plan.py, not asserted here.
    desired, actual = [], []
    for index in range(10_000):
        address = f"10.96.{index // 250}.{index % 250}"
        servers = [rs(f"10.244.{index % 200}.{n}") for n in range(10)]
        desired.append(want(tcp(address, 80), *servers))
        actual.append(have(tcp(address, 80), *reversed(servers)))  # the kernel's order
    state = DesiredState(tuple(desired), frozenset(vs.key.address for vs in desired))
    facts = NodeFacts(tuple(actual), bound_addresses=state.addresses)
    assert plan_node(state, facts).is_empty
