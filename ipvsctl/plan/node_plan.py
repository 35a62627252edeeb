"""Everything one reconcile does to the node, in the order the CLI carries it out.

    link add (the dummy interface, when missing)
    addr add (service IPs not yet bound)
    sysctl   (values that differ)
    --set    (IPVS connection timeouts given that differ: `plan_timeouts`)
    IPVS     (`plan_ipvs_changes`)
    addr del (addresses no longer wanted)
    link del (the interface: `cleanup` only)

Addresses are deleted last, after the virtual servers on them: an address
that goes first would leave them briefly on an address that is not local, and
would drop it from `Ownership` before its virtual servers are gone (were the
`-D` to fail, the next plan would take them for foreign and keep them).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import NamedTuple

from ipvsctl.model.changes import IpvsChange
from ipvsctl.model.desired import DesiredState
from ipvsctl.model.ipvs import ServiceKey, Timeouts, VirtualServerEntry
from ipvsctl.plan.ipvs_changes import plan_ipvs_changes
from ipvsctl.plan.ownership import Network, Ownership
from ipvsctl.plan.real_servers import RealServerKey

__all__ = [
    "DEFAULT_INTERFACE",
    "AddressPlan",
    "NodeFacts",
    "Plan",
    "plan_addresses",
    "plan_node",
    "plan_sysctls",
    "plan_timeouts",
]

NO_TIMEOUTS = Timeouts(0, 0, 0)

DEFAULT_INTERFACE = "kube-ipvs0"  # contract: --interface default


class AddressPlan(NamedTuple):
    """Addresses to bind to the dummy interface and to remove from it, each sorted."""

    add: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()


def plan_addresses(wanted: Collection[str], bound: Collection[str]) -> AddressPlan:
    return AddressPlan(
        add=tuple(sorted(a for a in wanted if a not in bound)),
        delete=tuple(sorted(a for a in bound if a not in wanted)),
    )


def plan_sysctls(
    wanted: Mapping[str, str], current: Mapping[str, str | None]
) -> tuple[tuple[str, str], ...]:
    """(name, value) for each wanted sysctl whose current value differs or is unknown (None)."""
    return tuple(
        (name, value) for name, value in sorted(wanted.items()) if current.get(name) != value
    )


def plan_timeouts(wanted: Timeouts, current: Timeouts | None) -> Timeouts | None:
    """The `ipvsadm --set` to send, or None: `wanted` (0: leave that one as it is, as
    kube-proxy's --ipvs-*-timeout 0 does) when a given value differs from `current`
    (None: unread)."""
    if wanted == NO_TIMEOUTS:
        return None
    if current is not None and all(
        want in (0, have) for want, have in zip(wanted, current, strict=True)
    ):
        return None
    return wanted


class Plan(NamedTuple):
    """What one reconcile changes; see the module docstring for the order."""

    interface: str = DEFAULT_INTERFACE
    create_interface: bool = False
    addresses_add: tuple[str, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    timeouts: Timeouts | None = None  # `ipvsadm --set tcp tcpfin udp`; 0 leaves one as is
    ipvs: tuple[IpvsChange, ...] = ()
    addresses_del: tuple[str, ...] = ()
    delete_interface: bool = False  # set by cleanup, which removes everything ours

    @property
    def is_empty(self) -> bool:
        return not (
            self.create_interface
            or self.addresses_add
            or self.sysctls
            or self.timeouts is not None
            or self.ipvs
            or self.addresses_del
            or self.delete_interface
        )


class NodeFacts(NamedTuple):
    """What the CLI read from the node before planning.

    `nodeport_keys` is the record written after the previous apply
    (`nodeport_keys_to_record`); `sysctls` maps each wanted sysctl to its
    current value (None when unreadable); `timeouts` the IPVS connection timeouts (None
    when not read: no --ipvs-*-timeout given).
    """

    virtual_servers: tuple[VirtualServerEntry, ...] = ()
    bound_addresses: frozenset[str] = frozenset()
    nodeport_keys: frozenset[ServiceKey] = frozenset()
    interface_exists: bool = True
    sysctls: Mapping[str, str | None] = MappingProxyType({})
    timeouts: Timeouts | None = None


def plan_node(
    desired: DesiredState,
    facts: NodeFacts,
    *,
    interface: str = DEFAULT_INTERFACE,
    wanted_sysctls: Mapping[str, str] | None = None,
    wanted_timeouts: Timeouts = NO_TIMEOUTS,
    excluded: tuple[Network, ...] = (),
    expired_drains: Collection[tuple[ServiceKey, RealServerKey]] = frozenset(),
) -> Plan:
    """The whole plan for this node. Ownership counts the addresses about to be
    bound as well as those bound now (see `Ownership`), so that one plan
    converges and planning again against its result plans nothing."""
    addresses = plan_addresses(desired.addresses, facts.bound_addresses)
    ownership = Ownership(
        bound_addresses=facts.bound_addresses | desired.addresses,
        nodeport_keys=facts.nodeport_keys,
        excluded=excluded,
    )
    changes = plan_ipvs_changes(
        desired.virtual_servers, facts.virtual_servers, ownership, expired_drains
    )
    return Plan(
        interface=interface,
        create_interface=not facts.interface_exists,
        addresses_add=addresses.add,
        sysctls=plan_sysctls(wanted_sysctls or {}, facts.sysctls),
        timeouts=plan_timeouts(wanted_timeouts, facts.timeouts),
        ipvs=changes,
        addresses_del=addresses.delete,
    )
