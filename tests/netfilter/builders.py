"""Values for the netfilter tests: desired virtual servers, and `nft -j list` output as
nft prints it (libnftables-json: table, chains, sets, then rules)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from ipvsctl.model import (
    ForwardMethod,
    Protocol,
    RealServer,
    ServiceKey,
    VirtualServer,
    address_family,
)
from ipvsctl.model.desired import CLUSTER_IP, DesiredVirtualServer
from ipvsctl.netfilter import Element, StaticRuleset

TCP, UDP = int(Protocol.TCP), int(Protocol.UDP)


def desired_vs(
    address: str,
    port: int = 80,
    protocol: int = TCP,
    *,
    kind: str = CLUSTER_IP,
    bound: bool = True,
    local: bool = False,
    source_ranges: tuple[str, ...] = (),
    local_endpoints: tuple[str, ...] = (),
    health_check_port: int = 0,
    local_fallback: bool = False,
    servers: Iterable[str] = ("10.244.1.5",),
    forward: ForwardMethod = ForwardMethod.MASQ,
) -> DesiredVirtualServer:
    key = ServiceKey(address_family(address), protocol, address, port)
    real = tuple(RealServer(a, 8080, forward=forward) for a in sorted(servers))
    return DesiredVirtualServer(
        VirtualServer(key),
        real,
        "shop/web",
        bound,
        kind,
        local,
        source_ranges,
        local_endpoints,
        health_check_port,
        local_fallback,
    )


def nft_listing(
    ruleset: StaticRuleset,
    elements: Iterable[Element] = (),
    *,
    extra: Iterable[dict[str, Any]] = (),
    single_flag_as_string: bool = False,
) -> str:
    """`nft -j list table inet ipvsctl` of a table made from `ruleset` holding `elements`."""
    by_set: dict[str, list[Element]] = {}
    for element in elements:
        by_set.setdefault(element.set, []).append(element)
    items: list[dict[str, Any]] = [
        {
            "metainfo": {
                "version": "1.0.6",
                "release_name": "Lester Gooch #5",
                "json_schema_version": 1,
            }
        },
        {"table": {"family": "inet", "name": "ipvsctl", "handle": 7}},
    ]
    handle = 1
    for chain in ruleset.chains:
        body: dict[str, Any] = {"family": "inet", "table": "ipvsctl", "name": chain.name}
        body["handle"] = handle
        if chain.hook:
            body.update(type=chain.type, hook=chain.hook, prio=chain.priority, policy="accept")
        items.append({"chain": body})
        handle += 1
    for spec in ruleset.sets:
        set_body: dict[str, Any] = {"family": "inet", "name": spec.name, "table": "ipvsctl"}
        set_body["type"] = spec.type[0] if len(spec.type) == 1 else list(spec.type)
        set_body["handle"] = handle
        if spec.interval:
            set_body["flags"] = "interval" if single_flag_as_string else ["interval"]
        members = sorted(by_set.get(spec.name, []))
        if members:
            set_body["elem"] = [nft_element(e, spec.type, spec.interval) for e in members]
        items.append({"set": set_body})
        handle += 1
    for chain in ruleset.chains:
        for rule in chain.rules:
            items.append(
                {
                    "rule": {
                        "family": "inet",
                        "table": "ipvsctl",
                        "chain": chain.name,
                        "handle": handle,
                        "comment": rule.comment,
                        "expr": [{"accept": None}],  # never read: stands for the real ones
                    }
                }
            )
            handle += 1
    items.extend(extra)
    return json.dumps({"nftables": items})


def nft_element(element: Element, types: tuple[str, ...], interval: bool) -> Any:
    """An element as `nft -j -p` prints it: ports and protocols as numbers, a CIDR as a
    prefix, a host CIDR as a plain address."""
    fields: list[Any] = []
    for index, (text, kind) in enumerate(zip(element.value, types, strict=True)):
        if kind == "inet_service":
            fields.append(int(text))
        elif kind == "inet_proto":
            fields.append({"tcp": 6, "udp": 17, "sctp": 132}[text])
        elif interval and index == len(types) - 1:
            network = ipaddress.ip_network(text)
            if network.prefixlen == network.max_prefixlen:
                fields.append(str(network.network_address))
            else:
                fields.append(
                    {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}
                )
        else:
            fields.append(text)
    return fields[0] if len(fields) == 1 else {"concat": fields}
