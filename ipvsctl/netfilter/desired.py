"""The elements ipvsctl's nftables table should hold, from the desired IPVS state (pure).

The table's chains and rules never change with the Services (`ruleset.py`);
what changes is which elements its sets hold, and each virtual server
contributes its own (`virtual_server_elements`), so one endpoint change is
one or two elements, never a rewrite. kube-proxy's IPVS mode keeps the same
facts in ipsets (pkg/proxy/ipvs/proxier.go, syncProxyRules); each set below
names the ipsets it stands for.

An element is a set name and its value as nft spells it, field by field:
`Element("masq-services-v4", ("203.0.113.7", "tcp", "80"))` is
`203.0.113.7 . tcp . 80` in set `masq-services-v4`. Sets come in pairs, one
per address family (an `inet` table's set holds one type of address), except
`health-check-ports`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from ipvsctl.model import AF_INET, ForwardMethod, address_family
from ipvsctl.model.desired import CLUSTER_IP, LOAD_BALANCER, DesiredVirtualServer
from ipvsctl.model.names import PROTOCOL_KEYWORDS

# The sets, by what they hold (each name takes a family suffix: `family_set`).
SERVICE_IPS = "service-ips"  # addresses bound to the dummy interface (KUBE-IPVS-IPS)
CLUSTER_IPS = "cluster-ips"  # addr . proto . port of cluster IPs (KUBE-CLUSTER-IP)
# addr . proto . port of external and load-balancer IPs bound to the dummy interface
# (KUBE-EXTERNAL-IP, KUBE-EXTERNAL-IP-LOCAL, KUBE-LOAD-BALANCER): with CLUSTER_IPS, the
# ports the service-IP filter lets through.
EXTERNAL_IPS = "external-ips"
# addr . proto . port of NodePorts, external and load-balancer IPs of Cluster-policy
# Services: marked for masquerade (KUBE-NODE-PORT-*, KUBE-EXTERNAL-IP, KUBE-LOAD-BALANCER
# less their -LOCAL sets).
MASQ_SERVICES = "masq-services"
HAIRPIN = "hairpin"  # addr . addr of this node's endpoints (KUBE-LOOP-BACK)
LB_FILTERED = "lb-filtered"  # addr . proto . port of source-ranged LBs (KUBE-LOAD-BALANCER-FW)
# addr . proto . port . source CIDR each such LB accepts (KUBE-LOAD-BALANCER-SOURCE-CIDR,
# and -SOURCE-IP for the node's own connections).
LB_SOURCE_RANGES = "lb-source-ranges"
HEALTH_CHECK_PORTS = "health-check-ports"  # port (KUBE-HEALTH-CHECK-NODE-PORT); no family
# addr . proto . port of NodePorts, external and LB IPs of externalTrafficPolicy Local
# Services with no endpoint on this node, which IPVS serves with the cluster's endpoints
# (`DesiredVirtualServer.local_fallback`): only pods (--cluster-cidr) and this node may
# use them; other sources are dropped, as kube-proxy's nftables mode drops them.
NO_LOCAL_ENDPOINTS = "no-local-endpoints"

FAMILY_SETS = (
    SERVICE_IPS,
    CLUSTER_IPS,
    EXTERNAL_IPS,
    MASQ_SERVICES,
    HAIRPIN,
    LB_FILTERED,
    LB_SOURCE_RANGES,
    NO_LOCAL_ENDPOINTS,
)


def family_set(name: str, family: int) -> str:
    """`cluster-ips-v4` / `cluster-ips-v6`."""
    return f"{name}-v4" if family == AF_INET else f"{name}-v6"


class Element(NamedTuple):
    """One element of one of our sets: the set's name and the element's fields as nft
    spells them (addresses canonical, CIDRs as `net/len`, ports in decimal)."""

    set: str
    value: tuple[str, ...]

    @property
    def text(self) -> str:
        """The element in nft syntax: `203.0.113.7 . tcp . 80`."""
        return " . ".join(self.value)


class NetfilterOptions(NamedTuple):
    """The command line's netfilter options, and the node facts the table needs.

    `cluster_cidrs`: --cluster-cidr, canonical CIDRs of either family
    (`reconcile.options.check_options` makes them so); ClusterIP traffic from outside
    them is masqueraded.
    `masquerade_all`: --masquerade-all, masquerade all ClusterIP traffic.
    `node_addresses`: this node's own addresses; a loadBalancerSourceRanges CIDR
    holding one lets the node itself reach that load balancer.
    """

    cluster_cidrs: tuple[str, ...] = ()
    masquerade_all: bool = False
    node_addresses: frozenset[str] = frozenset()


def virtual_server_elements(
    vs: DesiredVirtualServer, options: NetfilterOptions
) -> tuple[Element, ...]:
    """The elements one virtual server needs (the same element may come from several)."""
    key = vs.key
    if key.is_fwmark:
        return ()  # translate makes none; a fwmark service has no address to match
    family, address = key.family, key.address
    port = (address, PROTOCOL_KEYWORDS.get(key.protocol, str(key.protocol)), str(key.port))
    masquerading = all(server.forward == ForwardMethod.MASQ for server in vs.real_servers)
    found: list[Element] = []
    if vs.bound:
        found.append(Element(family_set(SERVICE_IPS, family), (address,)))
    if vs.kind == CLUSTER_IP:
        found.append(Element(family_set(CLUSTER_IPS, family), port))
    else:
        if vs.bound:
            found.append(Element(family_set(EXTERNAL_IPS, family), port))
        # externalTrafficPolicy Local keeps the client's address: the pod must see it.
        # Routed and tunnelled real servers answer the client themselves (direct
        # return): a masqueraded source would break that.
        if not vs.local and masquerading:
            found.append(Element(family_set(MASQ_SERVICES, family), port))
    if vs.local_fallback:
        found.append(Element(family_set(NO_LOCAL_ENDPOINTS, family), port))
    if vs.kind == LOAD_BALANCER and vs.source_ranges:
        sources = allowed_sources(vs.source_ranges, address, options.node_addresses)
        if sources:
            found.append(Element(family_set(LB_FILTERED, family), port))
            lb_ranges = family_set(LB_SOURCE_RANGES, family)
            found.extend(Element(lb_ranges, (*port, cidr)) for cidr in sources)
    if vs.health_check_port:
        found.append(Element(HEALTH_CHECK_PORTS, (str(vs.health_check_port),)))
    # Only masquerading IPVS rewrites the destination and so can send a pod its own
    # packet; tunnelled and routed real servers see the service address.
    if vs.local_endpoints and masquerading:
        hairpin = family_set(HAIRPIN, family)
        found.extend(Element(hairpin, (pod, pod)) for pod in vs.local_endpoints)
    return tuple(found)


def allowed_sources(
    source_ranges: Iterable[str], address: str, node_addresses: Iterable[str]
) -> tuple[str, ...]:
    """The source CIDRs a load-balancer IP accepts new connections from; empty: any.

    As kube-proxy: only the ranges of the address's family count (a family with
    none is not filtered: its proxier sees no ranges), and when one of them holds
    a node address, the load-balancer IP itself is allowed too, since the node
    reaches a locally bound IP from that IP (KUBE-LOAD-BALANCER-SOURCE-IP). The
    CIDRs are merged (`collapse_addresses`): nft refuses overlapping intervals.
    """
    family = address_family(address)
    networks = [
        network
        for network in (ipaddress.ip_network(text, strict=False) for text in source_ranges)
        if (network.version == 4) == (family == AF_INET)
    ]
    if not networks:
        return ()
    own = [ipaddress.ip_address(a) for a in node_addresses if address_family(a) == family]
    if any(node in network for node in own for network in networks):
        networks.append(ipaddress.ip_network(address))
    merged = ipaddress.collapse_addresses(networks)  # type: ignore[type-var]
    return tuple(str(network) for network in merged)


def desired_elements(
    virtual_servers: Iterable[DesiredVirtualServer], options: NetfilterOptions
) -> frozenset[Element]:
    """Every element the virtual servers need (`DesiredState.virtual_servers`)."""
    return frozenset(
        element for vs in virtual_servers for element in virtual_server_elements(vs, options)
    )


class ElementTally:
    """How many virtual servers need each element, for the agent's one-Service updates:
    an element shared by two Services (a bound address, a pod behind both) stays until
    the last one lets go of it."""

    def __init__(self) -> None:
        self.counts: Counter[Element] = Counter()

    @property
    def elements(self) -> frozenset[Element]:
        return frozenset(self.counts)

    def replace(
        self, old: Iterable[Element], new: Iterable[Element]
    ) -> tuple[frozenset[Element], frozenset[Element]]:
        """Let go of `old` and take `new` (with repeats: one per virtual server); the
        (added, removed) elements: needed by no one before and by someone now, and the
        reverse. An element both let go of and taken again is neither."""
        old, new = list(old), list(new)
        touched = set(old) | set(new)
        before = {element for element in touched if self.counts[element] > 0}
        self.counts.subtract(old)
        self.counts.update(new)
        after = {element for element in touched if self.counts[element] > 0}
        for element in touched - after:
            del self.counts[element]
        return frozenset(after - before), frozenset(before - after)
