"""Desired state vs the kernel's IPVS table -> the minimal ordered list of changes.

Order, and why:

1. Desired virtual servers, by key. Each gets `-A` (missing) or `-E` (its
   scheduler, flags, persistence, netmask or pe differ: edited in place,
   since delete and re-add would drop its connections and counters), then its
   real-server edits: `-a` and `-e` before the drains (`-e ... -w 0`) and
   `-d`, so a service never lacks servers it could have had (make before
   break). A real-server edit needs its service to exist, hence `-A` first.
2. `-D` of the owned virtual servers no longer desired, last and by key. IPVS
   keys never collide across objects (a new port on a re-used address is a
   new key, a config change is `-E`), so deletes gain nothing by going first;
   last means that a Service moving to a new port or address is served on the
   new one before the old goes. One `-D` takes its real servers with it.

A hash service (sh, mh, dh) carries its fallback flag and keeps its real
servers in one canonical list order, moving some with `-d` and `-a` pairs
(`hash_order`), so that its table is the same on every node.

The CLI deletes addresses only after all of these (see `node_plan`), so no
virtual server is ever left on an address that is no longer local.

A desired virtual server whose key the kernel already has is reconciled
whoever made it: it is adopted (edited to the desired config, its real
servers made the desired ones), and it is ours from then on, since its
address gets bound or its key recorded. Every other virtual server that is not
ours (see `ownership`) is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from operator import attrgetter, itemgetter

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.desired import DesiredVirtualServer
from ipvsctl.model.ipvs import RealServer, ServiceKey, VirtualServer, VirtualServerEntry
from ipvsctl.plan.hash_order import canonical_order, hash_service, is_hashed
from ipvsctl.plan.ownership import Ownership
from ipvsctl.plan.real_servers import RealServerKey, plan_real_servers

__all__ = ["plan_ipvs_changes"]


def plan_ipvs_changes(
    desired: Iterable[DesiredVirtualServer],
    actual: Iterable[VirtualServerEntry],
    ownership: Ownership,
    expired_drains: Collection[tuple[ServiceKey, RealServerKey]] = frozenset(),
    counts_known: bool = True,
) -> tuple[IpvsChange, ...]:
    """The changes that make the kernel's owned virtual servers exactly `desired`.

    `actual` is the kernel's table (`IpvsKernel.services()`). `expired_drains`
    names (service key, real server key) pairs whose grace period has passed;
    they are deleted even with connections left. `counts_known`: see
    `plan_real_servers`.
    """
    expired = _expired_by_service(expired_drains)
    present = {entry.service.key: entry for entry in actual}
    remaining = dict(present)  # a copy keeps the stored hashes: no key is hashed again
    added: set[ServiceKey] = set()
    groups: list[tuple[_Order, list[IpvsChange]]] = []
    for vs in desired:
        service = vs.service
        servers = vs.real_servers
        if is_hashed(service):
            # Fallback flag and canonical order: see hash_order. Each -a goes to the
            # head, so the last of the list is added first.
            service = hash_service(service)
            servers = tuple(reversed(canonical_order(servers)))
        entry = remaining.pop(service.key, None)
        if entry is None:
            if service.key in present or service.key in added:
                raise ValueError(f"virtual server {service.key} is desired twice ({vs.owner})")
            added.add(service.key)
            group = [IpvsChange(Op.ADD_SERVICE, service)]
            group.extend(IpvsChange(Op.ADD_REAL, service, rs) for rs in servers)
        else:
            leaving = expired.get(service.key, ()) if expired else ()
            group = _edits(service, servers, entry, leaving, counts_known)
        if group:
            groups.append((_SERVICE_ORDER(service), group))
    # Sorting only the services that change keeps a converged plan cheap.
    groups.sort(key=itemgetter(0))
    changes = [change for _, group in groups for change in group]
    unwanted = [entry.service for key, entry in remaining.items() if ownership.owns(key)]
    unwanted.sort(key=_SERVICE_ORDER)
    changes.extend(IpvsChange(Op.DELETE_SERVICE, service) for service in unwanted)
    return tuple(changes)


def _edits(
    service: VirtualServer,
    servers: tuple[RealServer, ...],
    entry: VirtualServerEntry,
    expired: Collection[RealServerKey],
    counts_known: bool,
) -> list[IpvsChange]:
    """`-E` when the config differs, then the real-server edits."""
    changes = []
    if entry.service != service:
        changes.append(IpvsChange(Op.EDIT_SERVICE, service))
    changes.extend(plan_real_servers(service, servers, entry.real_servers, expired, counts_known))
    return changes


# Plain tuples compare in C; ServiceKey's own ordering runs Python code per
# comparison, several times slower.
_Order = tuple[int, int, str, int, int]
_SERVICE_ORDER: Callable[[VirtualServer], _Order] = attrgetter(
    "key.family", "key.protocol", "key.address", "key.port", "key.fwmark"
)


def _expired_by_service(
    expired_drains: Collection[tuple[ServiceKey, RealServerKey]],
) -> dict[ServiceKey, set[RealServerKey]]:
    by_service: dict[ServiceKey, set[RealServerKey]] = {}
    for service_key, server_key in expired_drains:
        by_service.setdefault(service_key, set()).add(server_key)
    return by_service
