"""The static part of ipvsctl's nftables table: its chains, rules and sets (pure).

One `inet` table of our own, `ipvsctl`, as kube-proxy's nftables mode keeps
one table of its own (pkg/proxy/nftables/proxier.go): nothing else's tables,
chains or rules are ever touched, and `cleanup` deletes the table whole. The
chains and rules here depend only on the options (--cluster-cidr,
--masquerade-all); the Services change only the sets' elements (`desired.py`).
When each rule applies follows kube-proxy's IPVS mode (pkg/proxy/ipvs/proxier.go,
writeIptablesRules); each rule's comment names the iptables chain it stands for.

Hooks and priorities, against IPVS's own hooks (net/netfilter/ipvs/ip_vs_core.c):
IPVS schedules incoming connections at LOCAL_IN priority 99 (NF_IP_PRI_NAT_SRC - 1)
and the node's own at LOCAL_OUT -98 (NF_IP_PRI_NAT_DST + 2), rewriting the
destination to the real server there. So:

- the masquerade mark is set in nat prerouting/output (-100), before IPVS has
  rewritten anything, where the destination is still the service address; the
  mark stays on the packet IPVS sends on, and nat postrouting (100) masquerades
  it (kube-proxy: KUBE-SERVICES -> KUBE-MARK-MASQ, KUBE-POSTROUTING). 0x4000 is
  kube-proxy's bit (--iptables-masquerade-bit 14): CNIs leave it alone, and
  if kube-proxy also runs, its bit means the same thing;
- hairpin is matched in postrouting, after IPVS: a packet whose source and
  destination are the same pod was sent by that pod to a Service and handed
  back to it (KUBE-LOOP-BACK). nft cannot compare two packet fields
  (`ip saddr == ip daddr` is refused: the right side must be constant), and
  IPVS sets no `ct status dnat`, so a set of (pod . pod) pairs does it;
- the filters run in the input hook at priority 0, before IPVS (99) sees the
  packet, and for the node's own connections in the output hook at -110,
  before IPVS (-98) rewrites them (kube-proxy needed KUBE-IPVS-OUT-FILTER and
  `-m ipvs --vaddr` for this, kubernetes #119656). Only new connections
  (`ct state new`) are filtered, as kube-proxy does.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import NamedTuple

from ipvsctl.netfilter.desired import (
    CLUSTER_IPS,
    EXTERNAL_IPS,
    FAMILY_SETS,
    HAIRPIN,
    HEALTH_CHECK_PORTS,
    LB_FILTERED,
    LB_SOURCE_RANGES,
    MASQ_SERVICES,
    NO_LOCAL_ENDPOINTS,
    SERVICE_IPS,
    NetfilterOptions,
)

FAMILY = "inet"
TABLE = "ipvsctl"
MASQUERADE_MARK = 0x4000
# The fingerprint of the static part is kept in the comment of the table's first
# rule: `nft -j` prints rule comments on every version we support (table comments
# only from nft 1.0.7), so reading the table tells whether its rules are ours as
# this release and these options make them.
FINGERPRINT_PREFIX = "ipvsctl static "


class SetSpec(NamedTuple):
    name: str
    type: tuple[str, ...]  # nft data types; several: a concatenation
    interval: bool = False

    def declaration(self) -> str:
        flags = " flags interval;" if self.interval else ""
        return f"add set {FAMILY} {TABLE} {self.name} {{ type {' . '.join(self.type)};{flags} }}"


class Rule(NamedTuple):
    text: str  # nft rule syntax
    comment: str  # what it does and which kube-proxy rule it stands for

    def declaration(self, chain: str) -> str:
        return f'add rule {FAMILY} {TABLE} {chain} {self.text} comment "{self.comment}"'


class ChainSpec(NamedTuple):
    """A chain; `hook` empty for a regular chain (reached by `jump`)."""

    name: str
    rules: tuple[Rule, ...]
    type: str = ""
    hook: str = ""
    priority: int = 0

    def declaration(self) -> str:
        head = f"add chain {FAMILY} {TABLE} {self.name}"
        if not self.hook:
            return head
        return (
            f"{head} {{ type {self.type} hook {self.hook} priority {self.priority};"
            " policy accept; }"
        )


class StaticRuleset(NamedTuple):
    chains: tuple[ChainSpec, ...]
    sets: tuple[SetSpec, ...]
    fingerprint: str

    def lines(self) -> list[str]:
        """The nft commands that make the static part in an empty table."""
        lines = [chain.declaration() for chain in self.chains]
        lines.extend(spec.declaration() for spec in self.sets)
        for chain in self.chains:
            lines.extend(rule.declaration(chain.name) for rule in chain.rules)
        return lines


def _set_specs() -> tuple[SetSpec, ...]:
    specs: list[SetSpec] = []
    for suffix, address in (("v4", "ipv4_addr"), ("v6", "ipv6_addr")):
        port = (address, "inet_proto", "inet_service")
        types = {
            SERVICE_IPS: ((address,), False),
            CLUSTER_IPS: (port, False),
            EXTERNAL_IPS: (port, False),
            MASQ_SERVICES: (port, False),
            HAIRPIN: ((address, address), False),
            LB_FILTERED: (port, False),
            LB_SOURCE_RANGES: ((*port, address), True),
            NO_LOCAL_ENDPOINTS: (port, False),
        }
        specs.extend(SetSpec(f"{name}-{suffix}", *types[name]) for name in FAMILY_SETS)
    specs.append(SetSpec(HEALTH_CHECK_PORTS, ("inet_service",)))
    return tuple(specs)


def _services_rules(options: NetfilterOptions) -> list[Rule]:
    """The chain both nat hooks jump to: which new connections to mark for masquerade."""
    rules = [
        # A loopback source never leaves the node: nothing to masquerade (KUBE-SERVICES).
        Rule("ip saddr 127.0.0.0/8 return", "loopback: no masquerade (KUBE-SERVICES)"),
        Rule("ip6 saddr ::1 return", "loopback: no masquerade (KUBE-SERVICES)"),
    ]
    for ip, suffix in (("ip", "v4"), ("ip6", "v6")):
        to = f"{ip} daddr . meta l4proto . th dport"
        rules.append(
            Rule(
                f"{to} @{MASQ_SERVICES}-{suffix} jump mark-for-masquerade",
                "NodePort, external and LB IPs of Cluster-policy Services"
                " (KUBE-NODE-PORT, KUBE-EXTERNAL-IP, KUBE-LOAD-BALANCER)",
            )
        )
        rules.append(_cluster_ip_rule(options, ip, suffix))
    return rules


def _cluster_ip_rule(options: NetfilterOptions, ip: str, suffix: str) -> Rule:
    """ClusterIP masquerade, as KUBE-SERVICES's KUBE-CLUSTER-IP rule in its three forms."""
    cluster_ips = f"@{CLUSTER_IPS}-{suffix}"
    to = f"{ip} daddr . meta l4proto . th dport {cluster_ips}"
    if options.masquerade_all:
        return Rule(f"{to} jump mark-for-masquerade", "all ClusterIP traffic (--masquerade-all)")
    version = 4 if suffix == "v4" else 6
    cidrs = [c for c in options.cluster_cidrs if ipaddress.ip_network(c).version == version]
    if cidrs:
        # Traffic from outside the pod network may have reached this node by a route
        # to the service range and may leave it for a pod on another node: replies
        # must come back here.
        return Rule(
            f"{ip} saddr != {{ {', '.join(cidrs)} }} {to} jump mark-for-masquerade",
            "ClusterIP traffic from outside --cluster-cidr (KUBE-CLUSTER-IP)",
        )
    # Without --cluster-cidr, kube-proxy masquerades only the node's own connections
    # that picked a service IP as their source (the address is local, on the dummy
    # interface): `--match-set KUBE-CLUSTER-IP src,dst`.
    return Rule(
        f"{ip} saddr . meta l4proto . th dport {cluster_ips} jump mark-for-masquerade",
        "node traffic sent from a service IP, no --cluster-cidr (KUBE-CLUSTER-IP)",
    )


def _filter_rules() -> tuple[list[Rule], list[Rule]]:
    """(lb-source-filter, service-ip-filter) rules."""
    lb_rules: list[Rule] = []
    port_rules: list[Rule] = []
    for ip, suffix in (("ip", "v4"), ("ip6", "v6")):
        to = f"{ip} daddr . meta l4proto . th dport"
        lb_rules.append(
            Rule(
                f"{to} . {ip} saddr @{LB_SOURCE_RANGES}-{suffix} return",
                "a loadBalancerSourceRanges source (KUBE-LOAD-BALANCER-SOURCE-CIDR)",
            )
        )
        lb_rules.append(
            Rule(
                f"{to} @{LB_FILTERED}-{suffix} drop",
                "any other source of a source-ranged LB (KUBE-SOURCE-RANGES-FIREWALL)",
            )
        )
        port_rules.append(Rule(f"{to} @{CLUSTER_IPS}-{suffix} return", "a ClusterIP port"))
        port_rules.append(
            Rule(f"{to} @{EXTERNAL_IPS}-{suffix} return", "an external or LB IP port")
        )
    port_rules.append(
        Rule(f"tcp dport @{HEALTH_CHECK_PORTS} return", "LB health checks (KUBE-IPVS-FILTER)")
    )
    # Every service IP is local (on the dummy interface), so any host service on
    # 0.0.0.0 would answer on it: kubernetes #72236.
    for ip, suffix in (("ip", "v4"), ("ip6", "v6")):
        port_rules.append(
            Rule(
                f"{ip} daddr @{SERVICE_IPS}-{suffix} reject",
                "no Service's port on a service IP (KUBE-IPVS-FILTER)",
            )
        )
    return lb_rules, port_rules


def _no_local_endpoint_rules(options: NetfilterOptions) -> list[Rule]:
    """Drop other sources' new connections to the external addresses of Local-policy
    Services with no endpoint on this node (set `no-local-endpoints`).

    IPVS serves those with the cluster's endpoints, as kube-proxy's IPVS mode does, so
    that a pod here reaches its Service's load-balancer IP (kubernetes #97081). An
    external client would be sent, unmasqueraded (Local keeps its address), to a pod
    on another node that answers it directly: a broken connection. kube-proxy's
    nftables mode drops such clients; so do we: what comes in from outside
    --cluster-cidr is dropped. Without --cluster-cidr of a family nothing tells a pod
    from an external client, and that family is left as kube-proxy's IPVS mode leaves
    it (the health check node port's 503 keeps load balancers away). The node's own
    connections are scheduled by IPVS in the output hook and never come here.
    """
    rules: list[Rule] = []
    for ip, suffix, version in (("ip", "v4", 4), ("ip6", "v6", 6)):
        cidrs = [c for c in options.cluster_cidrs if ipaddress.ip_network(c).version == version]
        if cidrs:
            rules.append(
                Rule(
                    f"ct state new {ip} daddr . meta l4proto . th dport"
                    f" @{NO_LOCAL_ENDPOINTS}-{suffix} {ip} saddr != {{ {', '.join(cidrs)} }}"
                    " drop",
                    "externalTrafficPolicy Local, no endpoint here: only pods may use"
                    " the cluster's (kube-proxy nftables: no local endpoints)",
                )
            )
    return rules


def _no_local_endpoint_masquerade() -> list[Rule]:
    """The node's own connections to those addresses: their source is a local address
    (the load-balancer IP itself, for its own), which a pod on another node cannot
    answer; masqueraded, as kube-proxy's nftables mode does ("masquerade local traffic")."""
    return [
        Rule(
            f"{ip} daddr . meta l4proto . th dport @{NO_LOCAL_ENDPOINTS}-{suffix}"
            " jump mark-for-masquerade",
            "the node to a Local-policy address served by other nodes' endpoints",
        )
        for ip, suffix in (("ip", "v4"), ("ip6", "v6"))
    ]


def static_ruleset(options: NetfilterOptions) -> StaticRuleset:
    """The chains, rules and sets of the table for these options."""
    lb_rules, port_rules = _filter_rules()
    mark = f"0x{MASQUERADE_MARK:08x}"
    chains = [
        ChainSpec(
            "nat-prerouting",
            (Rule("jump services", "connections coming in"),),
            "nat",
            "prerouting",
            -100,
        ),
        ChainSpec(
            "nat-output",
            (
                *_no_local_endpoint_masquerade(),
                Rule("jump services", "this node's connections"),
            ),
            "nat",
            "output",
            -100,
        ),
        ChainSpec("services", tuple(_services_rules(options))),
        ChainSpec(
            "mark-for-masquerade",
            (Rule(f"meta mark set meta mark | {mark}", "KUBE-MARK-MASQ"),),
        ),
        ChainSpec(
            "nat-postrouting",
            (
                Rule("ip saddr . ip daddr @hairpin-v4 masquerade", "hairpin (KUBE-LOOP-BACK)"),
                Rule("ip6 saddr . ip6 daddr @hairpin-v6 masquerade", "hairpin (KUBE-LOOP-BACK)"),
                # The mark is cleared first so that a packet that goes through the
                # stack again is not masqueraded twice (KUBE-POSTROUTING).
                Rule(
                    f"meta mark & {mark} == {mark} meta mark set meta mark ^ {mark}"
                    " masquerade fully-random",
                    "marked service traffic (KUBE-POSTROUTING)",
                ),
            ),
            "nat",
            "postrouting",
            100,
        ),
        ChainSpec(
            "filter-input",
            (
                Rule("ct state new jump lb-source-filter", "loadBalancerSourceRanges"),
                *_no_local_endpoint_rules(options),
                Rule("ct state new jump service-ip-filter", "the service-IP port filter"),
            ),
            "filter",
            "input",
            0,
        ),
        ChainSpec(
            "filter-output",
            (Rule("ct state new jump lb-source-filter", "this node's own LB connections"),),
            "filter",
            "output",
            -110,
        ),
        ChainSpec("lb-source-filter", tuple(lb_rules)),
        ChainSpec("service-ip-filter", tuple(port_rules)),
    ]
    sets = _set_specs()
    unsigned = StaticRuleset(tuple(chains), sets, "").lines()
    fingerprint = hashlib.sha256("\n".join(unsigned).encode()).hexdigest()[:16]
    first = chains[0]
    rule = first.rules[0]
    signed = rule._replace(comment=f"{rule.comment} ({FINGERPRINT_PREFIX}{fingerprint})")
    chains[0] = first._replace(rules=(signed, *first.rules[1:]))
    return StaticRuleset(tuple(chains), sets, fingerprint)
