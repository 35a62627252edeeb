"""Which virtual servers in the kernel are ipvsctl's (contract: Ownership).

The kernel keeps no owner per virtual server, so ownership is read from two
facts the node keeps for us: the addresses bound to our dummy interface (every
virtual server on one of them is ours) and the record of NodePort keys we
created (NodePorts sit on node addresses, which we never bind, so the
address cannot tell ours from a neighbour's).

`--ipvs-exclude-cidrs` (kube-proxy's flag, same meaning) takes addresses out of
that: a virtual server whose address is in one of those CIDRs is never deleted
as unwanted, whoever made it, so another component may keep virtual servers on
addresses ipvsctl also binds. A wanted one is still programmed as its Service says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.desired import DesiredVirtualServer
from ipvsctl.model.ipvs import ServiceKey

__all__ = ["Network", "Ownership", "excluded_networks", "nodeport_keys_to_record"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Ownership(NamedTuple):
    """What makes a virtual server ours.

    `bound_addresses` holds the addresses on our interface now and those the
    plan is about to bind: a virtual server on an address we are about to bind
    becomes ours the moment it is bound, so judging by the new addresses too
    lets one plan converge instead of the next plan deleting what this one
    left (kube-proxy likewise clears every unwanted virtual server on its bound
    addresses).
    """

    bound_addresses: frozenset[str]
    nodeport_keys: frozenset[ServiceKey]
    excluded: tuple[Network, ...] = ()

    def owns(self, key: ServiceKey) -> bool:
        # A fwmark service has no address; only the record can make it ours.
        if not key.is_fwmark and self.excluded and _in_any(key.address, self.excluded):
            return False
        if not key.is_fwmark and key.address in self.bound_addresses:
            return True
        return key in self.nodeport_keys


def excluded_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """--ipvs-exclude-cidrs (checked CIDRs) as networks, for `Ownership.excluded`."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _in_any(address: str, networks: tuple[Network, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in networks)


def nodeport_keys_to_record(
    desired: Iterable[DesiredVirtualServer], failed: Iterable[IpvsChange] = ()
) -> frozenset[ServiceKey]:
    """The keys the CLI records after applying a plan, for the next plan's `Ownership`.

    Every desired virtual server whose address will not be bound (NodePorts,
    and fwmark services, which have no address). A `-D` the kernel refused
    (`failed`) leaves a virtual server that is still ours and still unwanted;
    its key stays recorded so that a later plan deletes it rather than
    forgetting it as foreign.
    """
    keys = {vs.key for vs in desired if not vs.bound or vs.key.is_fwmark}
    keys.update(change.service.key for change in failed if change.op is Op.DELETE_SERVICE)
    return frozenset(keys)
