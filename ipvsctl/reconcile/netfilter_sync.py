"""The netfilter table, kept one Service at a time, as the IPVS table is.

Each virtual server contributes its own set elements (`virtual_server_elements`);
the engine remembers which, and a tally counts how many virtual servers need
each element. A changed Service then changes exactly the elements no one
needed before, or no one needs now: an endpoint change that moves no pod on
or off this node changes none, and runs no nft at all.

A full sync plans every element anew. It reads the table (`plan_table`, which
also repairs drift: someone's edit, a refused transaction) at start, after a
failure, and once per `READ_PERIOD`; in between, it plans against what the
table was last planned to hold. Listing tens of thousands of elements is the
costliest thing nft does (`nft -j list` is much slower than the transaction
that made them), and kube-proxy's nftables mode likewise trusts its own record
between hourly full syncs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ipvsctl.model.desired import DesiredVirtualServer
from ipvsctl.model.ipvs import ServiceKey
from ipvsctl.netfilter import (
    Element,
    ElementChanges,
    ElementTally,
    NetfilterError,
    NetfilterOptions,
    NetfilterPlan,
    TableState,
    element_changes,
    plan_table,
    static_ruleset,
    virtual_server_elements,
)
from ipvsctl.reconcile.options import OptionError, unsupported_netfilter
from ipvsctl.reconcile.ports import Nft

READ_PERIOD = 3600.0  # seconds between full syncs that read the table


class NetfilterSync:
    """Not thread-safe: one thread (the engine's caller) calls it."""

    def __init__(self, nft: Nft, options: NetfilterOptions) -> None:
        self.nft, self.options = nft, options
        self.ruleset = static_ruleset(options)  # only --cluster-cidr and --masquerade-all
        self.tally = ElementTally()
        self.contributed: dict[ServiceKey, tuple[Element, ...]] = {}

    def set_node_addresses(self, addresses: frozenset[str]) -> None:
        """This node's addresses changed (the next full sync plans every element anew)."""
        self.options = self.options._replace(node_addresses=addresses)

    def check(self) -> TableState:
        """The table as it is, read before anything changes; OptionError when this kernel
        (or this node's nft) cannot hold it. A table that exists needs no probe: it was
        made here."""
        try:
            state = self.nft.read()
            if not state.exists:
                support = self.nft.supported()
                if not support.ok:
                    raise OptionError(unsupported_netfilter(support.reason))
        except NetfilterError as error:
            raise OptionError(unsupported_netfilter(error.first)) from None
        return state

    def plan_all(
        self, wanted: Iterable[DesiredVirtualServer], read: bool | TableState = True
    ) -> NetfilterPlan:
        """Every element anew, planned against the table: as read now (NetfilterError when
        it cannot be), as given (a listing `check` just read), or, when `read` is False,
        as last planned (the caller reads after any refused transaction)."""
        if isinstance(read, TableState):
            state: TableState | None = read
        else:
            state = self.nft.read() if read else None
        planned = self.tally.elements
        self.contributed = {vs.key: virtual_server_elements(vs, self.options) for vs in wanted}
        self.tally = ElementTally()
        self.tally.replace((), (e for elements in self.contributed.values() for e in elements))
        if state is None:
            return NetfilterPlan(changes=element_changes(planned, self.tally.elements))
        return plan_table(state, self.ruleset, self.tally.elements)

    def plan_changed(
        self, keys: Iterable[ServiceKey], wanted: Mapping[ServiceKey, DesiredVirtualServer]
    ) -> NetfilterPlan:
        """The element changes of the virtual servers `keys` (now as in `wanted`), planned
        against what the table was last planned to hold: no read."""
        old: list[Element] = []
        new: list[Element] = []
        for key in keys:
            old.extend(self.contributed.pop(key, ()))
            vs = wanted.get(key)
            if vs is not None:
                elements = self.contributed[key] = virtual_server_elements(vs, self.options)
                new.extend(elements)
        added, removed = self.tally.replace(old, new)
        return NetfilterPlan(changes=ElementChanges(tuple(sorted(removed)), tuple(sorted(added))))


def table_left_in_force(nft: Nft) -> bool:
    """Whether a table of ours is in the kernel (an earlier run's, when --no-netfilter
    writes none); False when nft is missing or cannot tell."""
    try:
        return nft.installed() and nft.read().exists
    except NetfilterError:
        return False
