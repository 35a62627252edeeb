"""The in-test IPVS table refuses what the kernel refuses (so the properties mean something)."""

from __future__ import annotations

import pytest

from ipvsctl.model.changes import IpvsChange, Op

from .builders import conns, have, rs, tcp
from .ipvs_table import IpvsTable, RefusedChange

SERVICE = tcp("10.96.0.10", 80)
OTHER = tcp("10.96.0.10", 443)


@pytest.mark.parametrize(
    "change",
    [
        IpvsChange(Op.ADD_SERVICE, SERVICE),
        IpvsChange(Op.EDIT_SERVICE, OTHER),
        IpvsChange(Op.DELETE_SERVICE, OTHER),
        IpvsChange(Op.ADD_REAL, SERVICE, rs("10.244.1.5")),
        IpvsChange(Op.ADD_REAL, OTHER, rs("10.244.9.9")),
        IpvsChange(Op.EDIT_REAL, SERVICE, rs("10.244.9.9")),
        IpvsChange(Op.DELETE_REAL, SERVICE, rs("10.244.9.9")),
    ],
    ids=lambda change: change.op.name,
)
def test_the_table_refuses_what_the_kernel_refuses(change: IpvsChange) -> None:
    table = IpvsTable((have(SERVICE, rs("10.244.1.5")),))
    with pytest.raises(RefusedChange):
        table.apply(change)


def test_an_edit_keeps_the_connection_counts() -> None:
    table = IpvsTable((have(SERVICE, conns(rs("10.244.1.5"), active=2, inactive=3)),))
    table.apply(IpvsChange(Op.EDIT_REAL, SERVICE, rs("10.244.1.5", weight=0)))
    (entry,) = table.entries()[0].real_servers
    assert (entry.server.weight, entry.active_conns, entry.inactive_conns) == (0, 2, 3)


def test_deleting_a_service_takes_its_real_servers() -> None:
    table = IpvsTable((have(SERVICE, rs("10.244.1.5")),))
    table.apply(IpvsChange(Op.DELETE_SERVICE, SERVICE))
    table.apply(IpvsChange(Op.ADD_SERVICE, SERVICE))
    assert table.entries()[0].real_servers == ()
