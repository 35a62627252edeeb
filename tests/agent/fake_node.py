"""A narrow fake of the kernel and links interfaces the engine calls, for its logic only.

The IPVS table applies changes as tests/plan/ipvs_table.py does (the kernel's
semantics are proven in the kernel lab, not here); it counts every netlink
operation the engine would send, so tests can say "one endpoint change is one
operation".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from plan.ipvs_table import IpvsTable, RefusedChange

from ipvsctl.model.changes import ChangeFailure, IpvsChange
from ipvsctl.model.ipvs import RealServerEntry, ServiceKey, VirtualServerEntry


class FakeKernel:
    def __init__(self) -> None:
        self.table = IpvsTable()
        self.sent: list[IpvsChange] = []
        self.dumps = 0

    def services(self) -> tuple[VirtualServerEntry, ...]:
        self.dumps += 1
        return self.table.entries()

    def real_servers(self, key: ServiceKey) -> tuple[RealServerEntry, ...]:
        self.dumps += 1
        held = self.table.services.get(key)
        return tuple(held.real_servers.values()) if held else ()

    def apply(self, changes: Sequence[IpvsChange]) -> list[ChangeFailure]:
        failures = []
        for change in changes:
            self.sent.append(change)
            try:
                self.table.apply(change)
            except RefusedChange as refused:
                failures.append(ChangeFailure(change, 17, str(refused)))
        return failures

    @classmethod
    def from_fake(cls, other: FakeKernel) -> FakeKernel:
        """A kernel of this kind holding `other`'s table."""
        kernel = cls()
        kernel.table = other.table
        return kernel

    def take_sent(self) -> list[IpvsChange]:
        sent, self.sent = self.sent, []
        return sent


class FakeLinks:
    def __init__(self) -> None:
        self.addresses: set[str] = set()
        self.interface = False

    def kind(self, name: str) -> str | None:
        return "dummy" if self.interface else None

    def create(self, name: str) -> bool:
        self.interface = True
        return True

    def bound_addresses(self, name: str) -> frozenset[str]:
        return frozenset(self.addresses)

    def add_addresses(self, name: str, addresses: Iterable[str]) -> None:
        self.addresses |= set(addresses)

    def delete_addresses(self, name: str, addresses: Iterable[str]) -> None:
        self.addresses -= set(addresses)
