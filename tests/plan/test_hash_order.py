"""Hash schedulers: one canonical list order on every node, fallback, and no dh drain."""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import RealServer, RealServerEntry, ServiceFlag, VirtualServerEntry
from ipvsctl.plan import Ownership, plan_ipvs_changes
from ipvsctl.plan.hash_order import canonical_order, hash_service, plan_hash_order
from ipvsctl.reconcile.graceful import forgotten_udp_flows
from ipvsctl.reconcile.table_copy import TableCopy
from ipvsctl.render.plan_lines import change_line
from tests.plan.builders import conns, have, rs, tcp, udp, want

VIP = "10.96.0.10"
OURS = Ownership(frozenset({VIP}), frozenset())
POOL = [rs(f"10.244.{n % 3}.{n}") for n in (2, 9, 10, 33, 100, 250)]


def _listing(table: TableCopy, service_key: object) -> list[str]:
    entry = table.entries[service_key]  # type: ignore[index]
    return [f"{e.server.address}:{e.server.port}" for e in entry.real_servers]


def _sync(table: TableCopy, servers: list[RealServer], scheduler: str = "sh") -> int:
    """Plan the service with `servers` against `table`, apply it; the number of changes."""
    service = tcp(VIP, 80, scheduler=scheduler)
    changes = plan_ipvs_changes([want(service, *servers)], table.listing(), OURS)
    for change in changes:
        assert table.apply(change) == 0
    return len(changes)


@pytest.mark.parametrize(("scheduler", "name"), [("sh", "sh-fallback"), ("mh", "mh-fallback")])
def test_sh_and_mh_services_always_carry_their_fallback_flag(scheduler: str, name: str) -> None:
    fresh = plan_ipvs_changes([want(tcp(VIP, 80, scheduler=scheduler), rs("10.244.0.1"))], (), OURS)
    assert change_line(fresh[0]) == f"-A -t 10.96.0.10:80 -s {scheduler} -b {name}"
    present = (have(tcp(VIP, 80, scheduler=scheduler), rs("10.244.0.1")),)
    edit = plan_ipvs_changes(
        [want(tcp(VIP, 80, scheduler=scheduler), rs("10.244.0.1"))], present, OURS
    )
    assert [change_line(c) for c in edit] == [f"-E -t 10.96.0.10:80 -s {scheduler} -b {name}"]


def test_fallback_leaves_the_other_flags_and_other_schedulers_alone() -> None:
    port = tcp(VIP, 80, scheduler="mh", flags=ServiceFlag.SCHED2)
    assert hash_service(port).flags == ServiceFlag.SCHED1 | ServiceFlag.SCHED2
    assert hash_service(tcp(VIP, 80, scheduler="dh")).flags == 0
    assert hash_service(tcp(VIP, 80, scheduler="rr")).flags == 0


def test_canonical_order_is_by_address_value_highest_first_ipv6_before_ipv4() -> None:
    servers = [rs("10.244.0.9"), rs("10.244.0.10", 80), rs("10.244.0.10", 443), rs("fd00::2")]
    assert [(s.address, s.port) for s in canonical_order(servers)] == [
        ("fd00::2", 8080),
        ("10.244.0.10", 443),
        ("10.244.0.10", 80),
        ("10.244.0.9", 8080),
    ]


def test_a_new_hash_service_lists_canonically_with_one_add_per_server() -> None:
    table = TableCopy()
    assert _sync(table, POOL) == 1 + len(POOL)
    listing = [e.server for e in table.entries[tcp(VIP, 80).key].real_servers]
    assert listing == canonical_order(POOL)


def test_a_newcomer_with_the_highest_address_is_one_add() -> None:
    table = TableCopy()
    _sync(table, POOL)
    assert _sync(table, [*POOL, rs("10.244.3.1")]) == 1


def test_a_newcomer_below_k_servers_moves_those_k_each_delete_then_add() -> None:
    table = TableCopy()
    higher = [rs("10.244.9.1"), rs("10.244.9.2")]
    _sync(table, [rs("10.244.0.1"), *higher])
    service = tcp(VIP, 80, scheduler="sh")
    present = table.listing()
    changes = plan_ipvs_changes(
        [want(service, rs("10.244.0.1"), rs("10.244.5.5"), *higher)], present, OURS
    )
    assert [change_line(c).split(" -m")[0] for c in changes] == [
        "-a -t 10.96.0.10:80 -r 10.244.5.5:8080",
        "-d -t 10.96.0.10:80 -r 10.244.9.1:8080",
        "-a -t 10.96.0.10:80 -r 10.244.9.1:8080",
        "-d -t 10.96.0.10:80 -r 10.244.9.2:8080",
        "-a -t 10.96.0.10:80 -r 10.244.9.2:8080",
    ]


def test_removing_a_server_is_one_delete_since_the_others_keep_their_order() -> None:
    table = TableCopy()
    _sync(table, POOL)
    assert _sync(table, POOL[:2] + POOL[3:]) == 1


def test_an_rr_service_in_any_order_gains_a_server_in_one_add() -> None:
    present = (have(tcp(VIP, 80), POOL[3], POOL[0], POOL[5]),)
    wanted = [want(tcp(VIP, 80), POOL[0], POOL[3], POOL[5], POOL[1])]
    assert len(plan_ipvs_changes(wanted, present, OURS)) == 1


HISTORIES = st.lists(st.sets(st.sampled_from(range(len(POOL)))), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(first=HISTORIES, second=HISTORIES, scheduler=st.sampled_from(["sh", "mh", "dh"]))
def test_two_nodes_with_different_histories_list_the_same_servers_the_same_way(
    first: list[set[int]], second: list[set[int]], scheduler: str
) -> None:
    final = set(range(len(POOL)))
    nodes = []
    for history in (first, second):
        table = TableCopy()
        for step in [*history, final]:
            _sync(table, [POOL[i] for i in sorted(step)], scheduler)
        nodes.append(_listing(table, tcp(VIP, 80).key))
    assert nodes[0] == nodes[1]


def _fewest_operations(present: tuple[str, ...], final: tuple[str, ...]) -> int:
    """Breadth-first search over lists: delete any member, or add a missing one at the head."""
    seen, queue = {present}, deque([(present, 0)])
    while queue:
        state, cost = queue.popleft()
        if state == final:
            return cost
        moves = [tuple(x for x in state if x != gone) for gone in state]
        moves += [(new, *state) for new in final if new not in state]
        for move in moves:
            if move not in seen:
                seen.add(move)
                queue.append((move, cost + 1))
    raise AssertionError("unreachable")


ADDRESSES = ["10.244.0.1", "10.244.0.2", "10.244.0.3", "10.244.0.4", "10.244.0.5"]


@settings(max_examples=150, deadline=None)
@given(
    present=st.lists(st.sampled_from(ADDRESSES), unique=True, max_size=5),
    final=st.sets(st.sampled_from(ADDRESSES), max_size=5),
)
def test_the_reorder_takes_the_fewest_operations_the_kernel_allows(
    present: list[str], final: set[str]
) -> None:
    target = canonical_order(rs(address) for address in final)
    # Servers present but not in the final set are the caller's deletes: one each.
    kept = [address for address in present if address in final]
    entries = [RealServerEntry(rs(address)) for address in kept]
    changes = plan_hash_order(tcp(VIP, 80, scheduler="sh"), target, entries)
    best = _fewest_operations(tuple(kept), tuple(s.address for s in target))
    assert len(changes) == best


def test_a_leaving_dh_server_goes_at_once_and_an_sh_server_drains_in_place() -> None:
    a, b, c = rs("10.244.0.1"), rs("10.244.0.2"), rs("10.244.0.3")
    for scheduler, expected in (
        ("dh", ["-d -t 10.96.0.10:80 -r 10.244.0.2:8080"]),
        ("sh", ["-e -t 10.96.0.10:80 -r 10.244.0.2:8080 -m -w 0"]),
    ):
        service = hash_service(tcp(VIP, 80, scheduler=scheduler))
        present = (have(service, c, conns(b, active=4), a),)
        changes = plan_ipvs_changes([want(service, a, c)], present, OURS)
        assert [change_line(x) for x in changes] == expected


def test_a_draining_server_that_must_move_is_added_back_at_weight_0() -> None:
    service = hash_service(tcp(VIP, 80, scheduler="sh"))
    drained = rs("10.244.0.5", weight=0)
    present = (have(service, conns(drained, active=2), rs("10.244.0.1")),)
    changes = plan_ipvs_changes([want(service, rs("10.244.0.1"), rs("10.244.0.3"))], present, OURS)
    assert [change_line(c) for c in changes] == [
        "-a -t 10.96.0.10:80 -r 10.244.0.3:8080 -m -w 1",
        "-d -t 10.96.0.10:80 -r 10.244.0.5:8080",
        "-a -t 10.96.0.10:80 -r 10.244.0.5:8080 -m -w 0",
    ]


def test_a_move_keeps_the_servers_connection_counts_in_the_table_copy() -> None:
    service = hash_service(tcp(VIP, 80, scheduler="sh"))
    server = rs("10.244.0.1")
    table = TableCopy([VirtualServerEntry(service, real_servers=(conns(server, active=3),))])
    for op in (Op.DELETE_REAL, Op.ADD_REAL):
        assert table.apply(IpvsChange(op, service, server)) == 0
    assert table.entries[service.key].real_servers[0].active_conns == 3
    # a delete and a later add (not a move) starts afresh, as a new real server
    table.apply(IpvsChange(Op.DELETE_REAL, service, server))
    table.apply(IpvsChange(Op.EDIT_SERVICE, service))
    table.apply(IpvsChange(Op.ADD_REAL, service, server))
    assert table.entries[service.key].real_servers[0].active_conns == 0


def test_a_moved_udp_server_keeps_its_flows_and_a_deleted_one_loses_them() -> None:
    service = udp(VIP, 53, scheduler="sh")
    moved, gone = rs("10.244.0.1", 53), rs("10.244.0.2", 53)
    changes = [
        IpvsChange(Op.DELETE_REAL, service, moved),
        IpvsChange(Op.ADD_REAL, service, moved),
        IpvsChange(Op.DELETE_REAL, service, gone),
    ]
    flows = forgotten_udp_flows(changes, {})
    assert [(f.real_address, f.real_port) for f in flows] == [("10.244.0.2", 53)]


def test_every_permutation_of_three_present_servers_converges_to_one_listing() -> None:
    servers = POOL[:3]
    listings = set()
    for order in itertools.permutations(servers):
        service = hash_service(tcp(VIP, 80, scheduler="sh"))
        table = TableCopy([have(service, *order)])
        _sync(table, servers)
        listings.add(tuple(_listing(table, service.key)))
    assert len(listings) == 1
