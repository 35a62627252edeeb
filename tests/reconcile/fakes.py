"""One narrow fake per port the engine drives (ipvsctl.reconcile.ports), for its logic.

The IPVS fake holds the same `TableCopy` the engine keeps, which answers each
change as the kernel does (EEXIST, ESRCH, ENOENT); that the kernel really does
is the kernel lab's to prove, not these fakes'. Each fake counts what the engine
sent, so tests can say "one endpoint change is one operation". mypy checks every
fake against its protocol (the end of this module; .ci/run type-checks it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING

from ipvsctl.links import DUMMY_KIND
from ipvsctl.model.changes import ChangeFailure, IpvsChange
from ipvsctl.model.ipvs import RealServerEntry, ServiceKey, Timeouts, VirtualServerEntry
from ipvsctl.netfilter import ABSENT, NetfilterError, Support, TableState
from ipvsctl.reconcile.ports import NodeAccess, NodePorts
from ipvsctl.reconcile.table_copy import TableCopy


class FakeIpvs:
    """The IPVS table: applies what it is sent, refusing what the kernel would refuse."""

    def __init__(self, entries: Iterable[VirtualServerEntry] = ()) -> None:
        self.table = TableCopy(entries)
        self.sent: list[IpvsChange] = []
        self.dumps = 0
        self.current_timeouts = Timeouts(900, 120, 300)  # the kernel's defaults
        self.timeouts_set: list[Timeouts] = []

    def services(self) -> tuple[VirtualServerEntry, ...]:
        self.dumps += 1
        return self.table.listing()

    def real_servers(self, key: ServiceKey) -> tuple[RealServerEntry, ...]:
        self.dumps += 1
        entry = self.table.get(key)
        return entry.real_servers if entry is not None else ()

    def apply(self, changes: Sequence[IpvsChange]) -> list[ChangeFailure]:
        failures = []
        for change in changes:
            self.sent.append(change)
            if code := self.table.apply(change):
                failures.append(ChangeFailure(change, code, os.strerror(code)))
        return failures

    def timeouts(self) -> Timeouts:
        return self.current_timeouts

    def set_timeouts(self, timeouts: Timeouts) -> None:
        """As IPVS_CMD_SET_CONFIG: a 0 leaves that value as it is."""
        self.timeouts_set.append(timeouts)
        self.current_timeouts = Timeouts(
            *(new or old for new, old in zip(timeouts, self.current_timeouts, strict=True))
        )

    def take_sent(self) -> list[IpvsChange]:
        sent, self.sent = self.sent, []
        return sent

    def set_connections(
        self, key: ServiceKey, real: tuple[str, int], active: int, inactive: int = 0
    ) -> None:
        """Traffic: the real server `real` of `key` now holds these connections."""
        entry = self.table.entries[key]
        self.table.entries[key] = entry._replace(
            real_servers=tuple(
                rs._replace(active_conns=active, inactive_conns=inactive)
                if rs.server.key == real
                else rs
                for rs in entry.real_servers
            )
        )

    def drop(self, key: ServiceKey) -> None:
        """Someone else's `ipvsadm -D`."""
        del self.table.entries[key]


class FakeLinks:
    """The dummy interface and its addresses."""

    def __init__(self) -> None:
        self.addresses: set[str] = set()
        self.interface = False

    def kind(self, name: str) -> str | None:
        return DUMMY_KIND if self.interface else None

    def create(self, name: str) -> bool:
        self.interface = True
        return True

    def delete(self, name: str) -> bool:
        existed, self.interface = self.interface, False
        return existed

    def bound_addresses(self, name: str) -> frozenset[str]:
        return frozenset(self.addresses)

    def add_addresses(self, name: str, addresses: Iterable[str]) -> None:
        self.addresses |= set(addresses)

    def delete_addresses(self, name: str, addresses: Iterable[str]) -> None:
        self.addresses -= set(addresses)


class FakeSysctls:
    """Sysctls held in a dict; `want` is what the engine is to set (none by default, so
    the engine's tests need not spell the host's set)."""

    def __init__(self, want: Mapping[str, str] | None = None) -> None:
        self.want = dict(want or {})
        self.values: dict[str, str] = {}
        self.written: list[tuple[str, str]] = []

    def wanted(self, strict_arp: bool) -> dict[str, str]:
        return dict(self.want)

    def read(self, names: Iterable[str]) -> dict[str, str | None]:
        return {name: self.values.get(name) for name in names}

    def write(self, name: str, value: str) -> None:
        self.values[name] = value
        self.written.append((name, value))


class FakeNft:
    """Records each transaction; `read` gives `state`; `refuse` makes the next apply fail."""

    def __init__(self, state: TableState = ABSENT) -> None:
        self.state = state
        self.sent: list[str] = []
        self.reads = 0
        self.refuse = False
        self.support = Support(True)

    def installed(self) -> bool:
        return True

    def read(self) -> TableState:
        self.reads += 1
        return self.state

    def apply(self, transaction: str) -> None:
        if self.refuse:
            self.refuse = False
            raise NetfilterError("nft -f -: Error: Could not process rule: No buffer space")
        self.sent.append(transaction)

    def supported(self) -> Support:
        return self.support

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


class FakeClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fake_ports(nft: FakeNft | None = None, clock: FakeClock | None = None) -> NodePorts:
    return NodePorts(FakeIpvs(), FakeLinks(), FakeSysctls(), nft, clock or FakeClock())


def fake_node(ports: NodePorts, addresses: tuple[str, ...] = ()) -> NodeAccess:
    """A node reached through `ports` alone: every way a command has to the host's
    kernel is a fake (schedulers unknown, so none is refused; any loads)."""
    return NodeAccess(
        schedulers=lambda: None,
        addresses=lambda interface: addresses,
        open_ports=lambda netfilter: nullcontext(ports),
        nft=lambda: ports.nft or FakeNft(),
        load_scheduler=lambda name: None,
    )


if TYPE_CHECKING:
    from ipvsctl.reconcile.ports import Clock, IpvsTable, Links, Nft, Sysctls

    def _the_fakes_fit(
        ipvs: FakeIpvs, links: FakeLinks, sysctls: FakeSysctls, nft: FakeNft, clock: FakeClock
    ) -> tuple[IpvsTable, Links, Sysctls, Nft, Clock]:
        return ipvs, links, sysctls, nft, clock
