"""Properties of the planner on random tables, checked against the in-test IPVS table.

Small pools of addresses, ports and configs make keys collide: the same
service desired and present with another config, real servers coming,
going and draining, foreign services beside ours.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.desired import DesiredState, DesiredVirtualServer
from ipvsctl.model.ipvs import (
    AF_INET6,
    ForwardMethod,
    Protocol,
    RealServer,
    RealServerEntry,
    ServiceFlag,
    ServiceKey,
    VirtualServer,
    VirtualServerEntry,
    address_family,
)
from ipvsctl.plan import NodeFacts, Ownership, nodeport_keys_to_record, plan_node
from ipvsctl.plan.hash_order import canonical_order, hash_service, is_hashed
from ipvsctl.reconcile.table_copy import TableCopy

SERVICE_ADDRESSES = ("10.96.0.1", "10.96.0.2", "192.168.1.5", "fd00::1")
SERVICE_KEYS = (
    *(
        ServiceKey(address_family(address), protocol, address, port)
        for address in SERVICE_ADDRESSES
        for protocol in (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
        for port in (80, 443)
    ),
    ServiceKey.for_fwmark(address_family("10.0.0.1"), 1),
    ServiceKey.for_fwmark(AF_INET6, 2),
)
REAL_ADDRESSES = {
    4: ("10.244.0.1", "10.244.0.2", "10.244.0.3"),
    6: ("fd00:244::1", "fd00:244::2", "fd00:244::3"),
}
IMMEDIATE = (Protocol.UDP, Protocol.SCTP)
# (scheduler, flags, persistence timeout, a netmask wider than the host, pe)
SERVICE_CONFIGS = [
    (scheduler, flags, timeout, small_mask, pe)
    for scheduler in ("rr", "wrr", "sh", "mh", "dh")
    for flags in (0, ServiceFlag.PERSISTENT, ServiceFlag.SCHED1)
    for timeout in (0, 60)
    for small_mask in (False, True)
    for pe in ("", "sip")
]


# (forward, weight, upper threshold) of a real server
REAL_CONFIGS = [
    (forward, weight, upper)
    for forward in (ForwardMethod.MASQ, ForwardMethod.ROUTE)
    for weight in (0, 1, 2)
    for upper in (0, 5)
]
# (active, inactive) connections: idle half the time
CONNECTIONS = [(0, 0), (0, 0), (0, 0), (3, 0), (0, 1), (3, 1)]

# Strategies are built once: building one per draw costs more than the draw.
SERVICE_CONFIG = st.sampled_from(SERVICE_CONFIGS)
REAL_CONFIG = st.sampled_from(REAL_CONFIGS)
CONNECTION_COUNTS = st.sampled_from(CONNECTIONS)
REAL_KEYS = {
    family: st.sets(st.sampled_from([(a, p) for a in addresses for p in (8080, 9090)]))
    for family, addresses in REAL_ADDRESSES.items()
}
SHUFFLER = st.randoms(use_true_random=False)
SERVICE_KEY_SETS = st.sets(st.sampled_from(SERVICE_KEYS))
ADDRESS_SETS = st.sets(st.sampled_from(SERVICE_ADDRESSES))
EXTRA_ADDRESSES = st.sets(st.sampled_from(SERVICE_ADDRESSES), max_size=1)


@st.composite
def virtual_servers(draw: st.DrawFn, key: ServiceKey) -> VirtualServer:
    scheduler, flags, timeout, small_mask, pe_name = draw(SERVICE_CONFIG)
    netmask = (0xFFFFFF00 if key.family != AF_INET6 else 64) if small_mask else -1
    return VirtualServer(key, scheduler, flags, timeout, netmask, pe_name)


@st.composite
def real_server_sets(draw: st.DrawFn, key: ServiceKey) -> list[RealServer]:
    keys = draw(REAL_KEYS[6 if key.family == AF_INET6 else 4])
    servers = []
    for address, port in sorted(keys):
        forward, weight, upper = draw(REAL_CONFIG)
        servers.append(
            RealServer(address, port, forward=forward, weight=weight, upper_threshold=upper)
        )
    return servers


@st.composite
def actual_tables(draw: st.DrawFn) -> tuple[VirtualServerEntry, ...]:
    keys = draw(SERVICE_KEY_SETS)
    entries = []
    for key in sorted(keys):
        counted = []
        for server in draw(real_server_sets(key)):
            active, inactive = draw(CONNECTION_COUNTS)
            counted.append(RealServerEntry(server, active_conns=active, inactive_conns=inactive))
        # any dump order: the planner must not rely on one
        draw(SHUFFLER).shuffle(counted)
        entries.append(VirtualServerEntry(draw(virtual_servers(key)), real_servers=tuple(counted)))
    return tuple(entries)


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    keys = draw(SERVICE_KEY_SETS)
    wanted = []
    for key in sorted(keys):
        servers = tuple(draw(real_server_sets(key)))
        bound = draw(st.booleans()) and not key.is_fwmark
        wanted.append(DesiredVirtualServer(draw(virtual_servers(key)), servers, "ns/svc", bound))
    addresses = {vs.key.address for vs in wanted if vs.bound}
    extra = draw(EXTRA_ADDRESSES)
    return DesiredState(tuple(wanted), frozenset(addresses | extra))


@st.composite
def node_facts(draw: st.DrawFn) -> NodeFacts:
    return NodeFacts(
        virtual_servers=draw(actual_tables()),
        bound_addresses=frozenset(draw(ADDRESS_SETS)),
        nodeport_keys=frozenset(draw(SERVICE_KEY_SETS)),
    )


def _servers(entry: VirtualServerEntry) -> dict[tuple[str, int], RealServerEntry]:
    return {rs.server.key: rs for rs in entry.real_servers}


def _ownership(desired: DesiredState, facts: NodeFacts) -> Ownership:
    # What the contract makes ours once the plan has bound its addresses.
    return Ownership(facts.bound_addresses | desired.addresses, facts.nodeport_keys)


def _assert_minimal(changes: tuple[IpvsChange, ...]) -> None:
    """One change per object at most (a hash service's real server may move: a -d
    right before its -a), and no -D of a service the plan also edits."""
    per_service = Counter(c.service.key for c in changes if not c.op.needs_real_server)
    per_real = Counter(
        (c.service.key, c.real_server.key)
        for index, c in enumerate(changes)
        if c.real_server is not None and not _moves(changes, index)
    )
    assert max(per_service.values(), default=0) <= 1
    assert max(per_real.values(), default=0) <= 1
    deleted = {c.service.key for c in changes if c.op is Op.DELETE_SERVICE}
    assert not [c for c in changes if c.service.key in deleted and c.op is not Op.DELETE_SERVICE]


def _moves(changes: tuple[IpvsChange, ...], index: int) -> bool:
    """Whether changes[index] is the -d of a hash service's real server the next change
    adds again (a move within its list)."""
    change = changes[index]
    if change.op is not Op.DELETE_REAL or index + 1 == len(changes):
        return False
    following = changes[index + 1]
    return (
        is_hashed(change.service)
        and following.op is Op.ADD_REAL
        and following.service.key == change.service.key
        and following.real_server is not None
        and change.real_server is not None
        and following.real_server.key == change.real_server.key
    )


def _expected_servers(
    wanted: DesiredVirtualServer, before: VirtualServerEntry | None
) -> dict[tuple[str, int], RealServer]:
    """The desired real servers, plus the leaving ones still draining at weight 0."""
    expected = {server.key: server for server in wanted.real_servers}
    immediate = wanted.key.protocol in IMMEDIATE or wanted.service.scheduler == "dh"
    if before is None or immediate:
        return expected
    for key, entry in _servers(before).items():
        if key not in expected and entry.active_conns + entry.inactive_conns > 0:
            expected[key] = entry.server._replace(weight=0)
    return expected


@settings(max_examples=200, deadline=None)
@given(desired=desired_states(), facts=node_facts())
def test_applying_the_plan_gives_the_desired_owned_table_and_nothing_else(
    desired: DesiredState, facts: NodeFacts
) -> None:
    plan = plan_node(desired, facts)
    _assert_minimal(plan.ipvs)
    table = TableCopy(facts.virtual_servers)
    for change in plan.ipvs:
        # no edit that changes nothing
        held = table.get(change.service.key)
        if change.op is Op.EDIT_SERVICE and held is not None:
            assert held.service != change.service
        if change.op is Op.EDIT_REAL and held is not None and change.real_server is not None:
            (present,) = (e for e in held.real_servers if e.server.key == change.real_server.key)
            assert present.server != change.real_server
        assert table.apply(change) == 0, f"the kernel would refuse {change}"

    after = dict(table.entries)
    before = {entry.service.key: entry for entry in facts.virtual_servers}
    wanted = {vs.key: vs for vs in desired.virtual_servers}
    ownership = _ownership(desired, facts)
    for key, vs in wanted.items():
        assert after[key].service == hash_service(vs.service)
        got = {k: rs.server for k, rs in _servers(after[key]).items()}
        assert got == _expected_servers(vs, before.get(key))
        if is_hashed(vs.service):  # the canonical list order, whatever the history
            listing = [rs.server for rs in after[key].real_servers]
            assert listing == canonical_order(listing)
    for key, entry in before.items():
        if key in wanted:
            continue
        if ownership.owns(key):
            assert key not in after, "an owned, unwanted service survived"
        else:  # foreign: untouched, counters and all
            assert after[key].service == entry.service
            assert _servers(after[key]) == _servers(entry)
    assert set(after) <= set(wanted) | set(before)


@settings(max_examples=200, deadline=None)
@given(desired=desired_states(), facts=node_facts())
def test_planning_again_after_applying_plans_nothing(
    desired: DesiredState, facts: NodeFacts
) -> None:
    plan = plan_node(desired, facts)
    table = TableCopy(facts.virtual_servers)
    for change in plan.ipvs:
        assert table.apply(change) == 0, f"the kernel would refuse {change}"
    bound = (facts.bound_addresses | set(plan.addresses_add)) - set(plan.addresses_del)
    again = NodeFacts(
        virtual_servers=table.listing(),
        bound_addresses=frozenset(bound),
        nodeport_keys=nodeport_keys_to_record(desired.virtual_servers),
    )
    replan = plan_node(desired, again)
    assert replan.ipvs == ()
    assert replan.is_empty


@settings(max_examples=100, deadline=None)
@given(desired=desired_states(), facts=node_facts())
def test_addresses_are_bound_before_and_removed_after_the_ipvs_changes(
    desired: DesiredState, facts: NodeFacts
) -> None:
    plan = plan_node(desired, facts)
    assert set(plan.addresses_add) == desired.addresses - facts.bound_addresses
    assert set(plan.addresses_del) == facts.bound_addresses - desired.addresses
    # every owned virtual server on an address being removed is deleted by the plan
    removed = set(plan.addresses_del)
    deleted = {c.service.key for c in plan.ipvs if c.op is Op.DELETE_SERVICE}
    wanted = {vs.key for vs in desired.virtual_servers}
    for entry in facts.virtual_servers:
        key = entry.service.key
        if not key.is_fwmark and key.address in removed and key not in wanted:
            assert key in deleted


@settings(max_examples=100, deadline=None)
@given(desired=desired_states(), facts=node_facts())
def test_within_a_plan_services_come_before_their_real_servers_and_deletes_last(
    desired: DesiredState, facts: NodeFacts
) -> None:
    changes = plan_node(desired, facts).ipvs
    added_at = {c.service.key: i for i, c in enumerate(changes) if c.op is Op.ADD_SERVICE}
    for index, change in enumerate(changes):
        if change.real_server is not None and change.service.key in added_at:
            assert added_at[change.service.key] < index
    ops = [c.op for c in changes]
    if Op.DELETE_SERVICE in ops:
        first_delete = ops.index(Op.DELETE_SERVICE)
        assert all(op is Op.DELETE_SERVICE for op in ops[first_delete:])
