"""Which node addresses NodePorts listen on: pure filtering, as kube-proxy decides it.

kube-proxy (`pkg/proxy/util/nodeport_addresses.go`, `NewNodePortAddresses`)
treats `--nodeport-addresses` per IP family: a family with no CIDR in the list,
or with its zero CIDR (`0.0.0.0/0`, `::/0`), matches every address of that
family. So `--nodeport-addresses=10.0.0.0/8` on a dual-stack node still opens
NodePorts on every IPv6 address. CIDRs may have host bits set (Go's
`ParseCIDRSloppy` accepts `10.0.0.1/8`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_node_address(address: str) -> bool:
    """Whether an interface address can carry NodePorts.

    As kube-proxy's `isValidForSet` (`pkg/proxy/ipvs/netlink_linux.go`):
    loopback never, and IPv6 link-local never (it needs a zone, which an IPVS
    virtual server cannot have). IPv4 link-local (169.254/16) is kept, as
    kube-proxy keeps it: node-local DNS caches bind such addresses on purpose.
    """
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return False
    return not (ip.version == 6 and ip.is_link_local)


def addresses_in_cidrs(addresses: Iterable[str], cidrs: Iterable[str]) -> tuple[str, ...]:
    """The addresses `--nodeport-addresses` CIDRs select, in the order given, without repeats.

    Raises ValueError naming the first CIDR or address that does not parse.
    """
    by_family: dict[int, list[IPNetwork]] = {4: [], 6: []}
    match_all: set[int] = set()
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise ValueError(f"--nodeport-addresses: {cidr!r} is not a CIDR") from None
        if network.prefixlen == 0:
            match_all.add(network.version)
        by_family[network.version].append(network)
    for version, networks in by_family.items():
        if not networks:
            match_all.add(version)

    chosen: list[str] = []
    for address in addresses:
        try:
            ip: IPAddress = ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"node address {address!r} is not an IP address") from None
        text = str(ip)
        if text in chosen:
            continue
        if ip.version in match_all or any(ip in net for net in by_family[ip.version]):
            chosen.append(text)
    return tuple(chosen)
