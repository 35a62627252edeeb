"""External and load-balancer addresses that hold virtual servers ipvsctl did not create.

Binding an address to our interface makes every virtual server on it ours (see
`ownership`), whatever its port. A Service that named, in `externalIPs` or as a
load-balancer ingress IP, an address where someone else's virtual server lives
would so take that server over: edit its scheduler, replace its real servers,
delete it with the Service. Anyone allowed to create a Service could break
another tool's load balancing. So such an address is not bound, and the
Service's virtual servers on it are left out, each one an `AddressConflict`
told to the user; the rest of the Service is served, and the foreign server is
left exactly as it was. Once it is gone, the next plan takes the address.

Only an address not ours yet is judged: one already bound by us holds what we
made. A cluster IP is Kubernetes' own (allocated from the service range), so a
virtual server on it is adopted, as kube-proxy does; an address that is a
cluster IP too is therefore bound whatever else wants it. An external IP that
is one of the node's own addresses is never bound (translate), so it can take
over only the virtual server with its exact key; only that one is judged there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ipvsctl.model.desired import EXTERNAL_IP, LOAD_BALANCER, DesiredState, DesiredVirtualServer
from ipvsctl.model.inputs import ObjectError, ObjectRef
from ipvsctl.model.ipvs import Protocol, ServiceKey
from ipvsctl.plan.ownership import Ownership

__all__ = ["AddressConflict", "withhold_foreign_addresses", "without_foreign_addresses"]

# The kinds of address a Service's author chooses freely.
_CHOSEN_KINDS = frozenset({EXTERNAL_IP, LOAD_BALANCER})
_FIELDS = {EXTERNAL_IP: "spec.externalIPs", LOAD_BALANCER: "status.loadBalancer.ingress"}
_NAMED = 3  # foreign virtual servers named in one message; the rest are counted


class AddressConflict(NamedTuple):
    """A Service's virtual server left out: `foreign` are the virtual servers ipvsctl did
    not create that taking its address would have taken over (sorted)."""

    server: DesiredVirtualServer
    foreign: tuple[ServiceKey, ...]

    @property
    def key(self) -> ServiceKey:
        return self.server.key

    def error(self) -> ObjectError:
        """The line told to the user, naming the Service, its field, the port and why."""
        namespace, _, name = self.server.owner.partition("/")
        ref = ObjectRef("Service", namespace, name)
        named = ", ".join(_describe(key) for key in self.foreign[:_NAMED])
        if len(self.foreign) > _NAMED:
            named += f" and {len(self.foreign) - _NAMED} more"
        message = (
            f"{_describe(self.key)} skipped: {self.key.address} holds a virtual server"
            f" ipvsctl did not create ({named}); it is left as it is"
        )
        return ObjectError(ref, _FIELDS.get(self.server.kind, "spec"), message)

    def __str__(self) -> str:
        return str(self.error())


def withhold_foreign_addresses(
    wanted: Sequence[DesiredVirtualServer],
    present: Iterable[ServiceKey],
    ownership: Ownership,
) -> tuple[tuple[DesiredVirtualServer, ...], tuple[AddressConflict, ...]]:
    """`wanted` less the virtual servers that would take a foreign one over, and why each
    was left out (in `wanted`'s order).

    `present` are the keys in the kernel's table (or the engine's copy of it);
    `ownership` says what is ours now, before anything is bound.
    """
    contested: set[str] = set()  # addresses that binding would make ours
    kubernetes: set[str] = set()  # cluster IPs: bound whatever else is there
    exact: set[ServiceKey] = set()  # keys on node addresses, which are never bound
    for vs in wanted:
        key = vs.key
        if key.is_fwmark:
            continue
        if vs.kind not in _CHOSEN_KINDS:
            if vs.bound:
                kubernetes.add(key.address)
        elif not vs.bound:
            if not ownership.owns(key):
                exact.add(key)
        elif key.address not in ownership.bound_addresses:
            contested.add(key.address)
    contested -= kubernetes
    if not contested and not exact:
        return tuple(wanted), ()  # the usual case: no new external address
    foreign: dict[str, list[ServiceKey]] = {}
    for key in present:
        if key.is_fwmark or ownership.owns(key):
            continue
        if key.address in contested or key in exact:
            foreign.setdefault(key.address, []).append(key)
    if not foreign:
        return tuple(wanted), ()
    kept: list[DesiredVirtualServer] = []
    conflicts: list[AddressConflict] = []
    for vs in wanted:
        key = vs.key
        on_address = foreign.get(key.address) if not key.is_fwmark else None
        if on_address and key.address in contested and vs.kind in _CHOSEN_KINDS:
            conflicts.append(AddressConflict(vs, tuple(sorted(on_address))))
        elif on_address and key in exact and key in on_address:
            conflicts.append(AddressConflict(vs, (key,)))
        else:
            kept.append(vs)
    return tuple(kept), tuple(conflicts)


def without_foreign_addresses(
    desired: DesiredState, present: Iterable[ServiceKey], ownership: Ownership
) -> tuple[DesiredState, tuple[AddressConflict, ...]]:
    """`withhold_foreign_addresses` over a whole desired state: its addresses to bind lose
    those left out too."""
    kept, conflicts = withhold_foreign_addresses(desired.virtual_servers, present, ownership)
    if not conflicts:
        return desired, ()
    left_out = {c.key.address for c in conflicts} - {vs.key.address for vs in kept if vs.bound}
    return desired._replace(virtual_servers=kept, addresses=desired.addresses - left_out), conflicts


def _describe(key: ServiceKey) -> str:
    address = f"[{key.address}]" if ":" in key.address else key.address
    return f"{Protocol(key.protocol).name} {address}:{key.port}"
