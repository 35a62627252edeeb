"""The table copy answers each change as the kernel does, so planning against the copy
converges, and a plan the tests' fake kernel accepts means something."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import RealServerEntry, VirtualServerEntry
from ipvsctl.plan import Ownership, plan_ipvs_changes
from ipvsctl.reconcile.table_copy import TableCopy
from tests.plan.builders import conns, have, rs, tcp, want

VIP = "10.96.0.10"
A, B, C = "10.244.1.5", "10.244.2.6", "10.244.3.7"
SERVICE = tcp(VIP, 80)
OTHER = tcp(VIP, 443)


def test_each_op_changes_the_copy_as_the_kernel_does() -> None:
    table = TableCopy([have(SERVICE, RealServerEntry(rs(A), active_conns=2), rs(B))])
    for change in [
        IpvsChange(Op.ADD_REAL, SERVICE, rs(C)),
        IpvsChange(Op.EDIT_REAL, SERVICE, rs(A, weight=0)),
        IpvsChange(Op.DELETE_REAL, SERVICE, rs(B)),
        IpvsChange(Op.EDIT_SERVICE, SERVICE._replace(scheduler="wlc")),
    ]:
        assert table.apply(change) == 0
    entry = table.entries[SERVICE.key]
    assert entry.service.scheduler == "wlc"
    # The newest first, as the kernel lists them.
    assert [(e.server.address, e.server.weight, e.active_conns) for e in entry.real_servers] == [
        (C, 1, 0),
        (A, 0, 2),
    ]
    assert table.apply(IpvsChange(Op.DELETE_SERVICE, SERVICE)) == 0
    assert table.listing() == ()


@pytest.mark.parametrize(
    ("change", "answer"),
    [
        (IpvsChange(Op.ADD_SERVICE, SERVICE), errno.EEXIST),
        (IpvsChange(Op.EDIT_SERVICE, OTHER), errno.ESRCH),
        (IpvsChange(Op.DELETE_SERVICE, OTHER), errno.ESRCH),
        (IpvsChange(Op.ADD_REAL, SERVICE, rs(A)), errno.EEXIST),
        (IpvsChange(Op.ADD_REAL, OTHER, rs(C)), errno.ESRCH),
        (IpvsChange(Op.EDIT_REAL, SERVICE, rs(C)), errno.ENOENT),
        (IpvsChange(Op.DELETE_REAL, SERVICE, rs(C)), errno.ENOENT),
    ],
    ids=lambda value: value.op.name if isinstance(value, IpvsChange) else errno.errorcode[value],
)
def test_the_copy_refuses_what_the_kernel_refuses_and_changes_nothing(
    change: IpvsChange, answer: int
) -> None:
    table = TableCopy([have(SERVICE, rs(A))])
    before = table.listing()
    assert table.apply(change) == answer
    assert table.listing() == before


def test_an_edit_keeps_the_connection_counts() -> None:
    table = TableCopy([have(SERVICE, conns(rs(A), active=2, inactive=3))])
    table.apply(IpvsChange(Op.EDIT_REAL, SERVICE, rs(A, weight=0)))
    (entry,) = table.entries[SERVICE.key].real_servers
    assert (entry.server.weight, entry.active_conns, entry.inactive_conns) == (0, 2, 3)


def test_deleting_a_service_takes_its_real_servers() -> None:
    table = TableCopy([have(SERVICE, rs(A))])
    table.apply(IpvsChange(Op.DELETE_SERVICE, SERVICE))
    table.apply(IpvsChange(Op.ADD_SERVICE, SERVICE))
    assert table.entries[SERVICE.key].real_servers == ()


@given(
    before=st.sets(st.sampled_from([A, B, C])),
    after=st.sets(st.sampled_from([A, B, C])),
    port=st.sampled_from([80, 443]),
)
def test_a_plan_carried_out_on_the_copy_plans_nothing_more(
    before: set[str], after: set[str], port: int
) -> None:
    service = tcp(VIP, port)
    table = TableCopy([have(tcp(VIP, 80), *(rs(a) for a in sorted(before)))])
    desired = [want(service, *(rs(a) for a in sorted(after)))]
    ownership = Ownership(frozenset({VIP}), frozenset())
    table.apply_accepted(plan_ipvs_changes(desired, table.listing(), ownership))
    assert plan_ipvs_changes(desired, table.listing(), ownership) == ()
    assert isinstance(table.entries[service.key], VirtualServerEntry)
