"""apply_to_copy follows the kernel's semantics, so planning against the copy converges."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import RealServerEntry, VirtualServerEntry
from ipvsctl.plan import Ownership, plan_ipvs_changes
from ipvsctl.plan.table_copy import apply_to_copy

from .builders import have, rs, tcp, want

VIP = "10.96.0.10"
A, B, C = "10.244.1.5", "10.244.2.6", "10.244.3.7"


def test_each_op_changes_the_copy_as_the_kernel_does() -> None:
    service = tcp(VIP, 80)
    table = {service.key: have(service, RealServerEntry(rs(A), active_conns=2), rs(B))}
    apply_to_copy(
        table,
        [
            IpvsChange(Op.ADD_REAL, service, rs(C)),
            IpvsChange(Op.EDIT_REAL, service, rs(A, weight=0)),
            IpvsChange(Op.DELETE_REAL, service, rs(B)),
            IpvsChange(Op.EDIT_SERVICE, service._replace(scheduler="wlc")),
        ],
    )
    entry = table[service.key]
    assert entry.service.scheduler == "wlc"
    assert [(e.server.address, e.server.weight, e.active_conns) for e in entry.real_servers] == [
        (C, 1, 0),
        (A, 0, 2),
    ]
    apply_to_copy(table, [IpvsChange(Op.DELETE_SERVICE, service)])
    assert table == {}


def test_a_change_to_something_missing_is_skipped() -> None:
    table: dict = {}
    apply_to_copy(table, [IpvsChange(Op.ADD_REAL, tcp(VIP, 80), rs(A))])
    assert table == {}


@given(
    before=st.sets(st.sampled_from([A, B, C])),
    after=st.sets(st.sampled_from([A, B, C])),
    port=st.sampled_from([80, 443]),
)
def test_a_plan_carried_out_on_the_copy_plans_nothing_more(
    before: set[str], after: set[str], port: int
) -> None:
    service = tcp(VIP, port)
    table: dict = {tcp(VIP, 80).key: have(tcp(VIP, 80), *(rs(a) for a in sorted(before)))}
    desired = [want(service, *(rs(a) for a in sorted(after)))]
    ownership = Ownership(frozenset({VIP}), frozenset())
    apply_to_copy(table, plan_ipvs_changes(desired, list(table.values()), ownership))
    assert plan_ipvs_changes(desired, list(table.values()), ownership) == ()
    assert isinstance(table[service.key], VirtualServerEntry)
