"""ipvsctl's nftables table, packet by packet: masquerade, hairpin, loadBalancerSourceRanges
and the service-IP port filter.

The table is what ipvsctl would send nft for a few Services on node-1, from an empty
table: the Services go through translate, `desired_elements`, `plan_table` and
`transaction`, and the fake applies that text. Each case says where IPVS sends the
connection (`via` checks that real server is one the translated virtual server has). The
QEMU suite stays the end-to-end proof against a real kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import pytest

from ipvsctl.model import AF_INET, AF_INET6, Protocol
from ipvsctl.model.desired import DesiredState, TranslateConfig
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort
from ipvsctl.netfilter import (
    ABSENT,
    NetfilterOptions,
    desired_elements,
    parse_listing,
    plan_table,
    static_ruleset,
    transaction,
)
from ipvsctl.translate import translate
from tests.netfilter.builders import nft_listing
from tests.netfilter.nft_fake import Fake
from tests.netfilter.packet_tracer import Packet, Trace, trace

TCP, UDP = int(Protocol.TCP), int(Protocol.UDP)


class Net(NamedTuple):
    """The addresses of one family."""

    name: str
    node: str
    loopback: str
    client: str  # outside every source range and the cluster CIDR
    allowed: str  # in web's loadBalancerSourceRanges
    allowed_range: str
    node_network: str  # internal's loadBalancerSourceRanges: holds the node
    cluster_cidr: str
    web_cluster: str  # web: Cluster policy, source ranges
    web_lb: str
    web_here: str  # web's pod on this node
    web_there: str  # web's pod on node-2
    local_cluster: str  # local: externalTrafficPolicy Local, no source ranges
    local_lb: str
    local_pod: str
    internal_cluster: str  # internal: source ranges that hold the node
    internal_lb: str
    internal_pod: str
    dns_cluster: str  # dns: UDP 53
    dns_pod: str
    away_cluster: str  # away: externalTrafficPolicy Local, its only pod on node-2
    away_lb: str
    away_pod: str


V4 = Net(
    name="v4",
    node="192.168.0.10",
    loopback="127.0.0.1",
    client="203.0.113.50",
    allowed="192.0.2.9",
    allowed_range="192.0.2.0/24",
    node_network="192.168.0.0/24",
    cluster_cidr="10.244.0.0/16",
    web_cluster="10.96.0.20",
    web_lb="198.51.100.1",
    web_here="10.244.1.5",
    web_there="10.244.2.7",
    local_cluster="10.96.0.30",
    local_lb="198.51.100.2",
    local_pod="10.244.1.6",
    internal_cluster="10.96.0.40",
    internal_lb="198.51.100.3",
    internal_pod="10.244.2.8",
    dns_cluster="10.96.0.10",
    dns_pod="10.244.2.9",
    away_cluster="10.96.0.50",
    away_lb="198.51.100.5",
    away_pod="10.244.2.10",
)
V6 = Net(
    name="v6",
    node="2001:db8::10",
    loopback="::1",
    client="2001:db8:99::50",
    allowed="2001:db8:1::9",
    allowed_range="2001:db8:1::/48",
    node_network="2001:db8::/64",
    cluster_cidr="fd00:10:244::/56",
    web_cluster="fd00:10:96::20",
    web_lb="2001:db8:ff::1",
    web_here="fd00:10:244:1::5",
    web_there="fd00:10:244:2::7",
    local_cluster="fd00:10:96::30",
    local_lb="2001:db8:ff::2",
    local_pod="fd00:10:244:1::6",
    internal_cluster="fd00:10:96::40",
    internal_lb="2001:db8:ff::3",
    internal_pod="fd00:10:244:2::8",
    dns_cluster="fd00:10:96::10",
    dns_pod="fd00:10:244:2::9",
    away_cluster="fd00:10:96::50",
    away_lb="2001:db8:ff::5",
    away_pod="fd00:10:244:2::a",
)
NETS = (V4, V6)
WEB_NODE_PORT, LOCAL_NODE_PORT, HEALTH_CHECK_PORT = 30080, 30090, 32000
AWAY_NODE_PORT = 30100


def both(field: str) -> tuple[str, ...]:
    """A Net field of both families: a dual-stack Service's addresses."""
    return tuple(getattr(net, field) for net in NETS)


def slices(
    name: str, port: EndpointPort, here: tuple[str, ...] = (), there: tuple[str, ...] = ()
) -> list[EndpointSlice]:
    """`name`'s endpoints, a slice per family: `here` on node-1 (this node), `there` on
    node-2."""
    found = []
    for family in (AF_INET, AF_INET6):
        endpoints = tuple(
            Endpoint((address,), node_name=node)
            for addresses, node in ((here, "node-1"), (there, "node-2"))
            for address in addresses
            if (":" in address) == (family == AF_INET6)
        )
        found.append(EndpointSlice("shop", f"{name}-{family}", name, family, (port,), endpoints))
    return found


SERVICES = (
    Service(
        "shop",
        "web",
        "LoadBalancer",
        cluster_ips=both("web_cluster"),
        load_balancer_ips=both("web_lb"),
        ports=(ServicePort("http", TCP, 80, WEB_NODE_PORT),),
        load_balancer_source_ranges=both("allowed_range"),
    ),
    Service(
        "shop",
        "local",
        "LoadBalancer",
        cluster_ips=both("local_cluster"),
        load_balancer_ips=both("local_lb"),
        ports=(ServicePort("http", TCP, 80, LOCAL_NODE_PORT),),
        external_traffic_local=True,
        health_check_node_port=HEALTH_CHECK_PORT,
    ),
    Service(
        "shop",
        "internal",
        "LoadBalancer",
        cluster_ips=both("internal_cluster"),
        load_balancer_ips=both("internal_lb"),
        ports=(ServicePort("http", TCP, 80),),
        load_balancer_source_ranges=both("node_network"),
    ),
    Service("shop", "dns", cluster_ips=both("dns_cluster"), ports=(ServicePort("dns", UDP, 53),)),
    Service(
        "shop",
        "away",
        "LoadBalancer",
        cluster_ips=both("away_cluster"),
        load_balancer_ips=both("away_lb"),
        ports=(ServicePort("http", TCP, 80, AWAY_NODE_PORT),),
        external_traffic_local=True,
        health_check_node_port=HEALTH_CHECK_PORT + 1,
    ),
)
HTTP = EndpointPort("http", TCP, 8080)
SLICES = (
    *slices("web", HTTP, here=both("web_here"), there=both("web_there")),
    *slices("local", HTTP, here=both("local_pod")),
    *slices("internal", HTTP, there=both("internal_pod")),
    *slices("dns", EndpointPort("dns", UDP, 5353), there=both("dns_pod")),
    *slices("away", HTTP, there=both("away_pod")),
)
NODE_ADDRESSES = (V4.node, V6.node)
CONFIG = TranslateConfig(node_name="node-1", node_addresses=NODE_ADDRESSES)
CIDRS = (V4.cluster_cidr, V6.cluster_cidr)
OPTIONS = {
    "cluster-cidr": NetfilterOptions(CIDRS, False, frozenset(NODE_ADDRESSES)),
    "masquerade-all": NetfilterOptions(CIDRS, True, frozenset(NODE_ADDRESSES)),
    "no-cidr": NetfilterOptions((), False, frozenset(NODE_ADDRESSES)),
}


def translated(services: tuple[Service, ...] = SERVICES) -> DesiredState:
    desired = translate(services, SLICES, CONFIG)
    assert desired.errors == ()
    return desired


DESIRED = translated()


@cache
def table(options: str) -> Fake:
    """The table as ipvsctl makes it from none: the transaction text it sends nft."""
    netfilter = OPTIONS[options]
    elements = desired_elements(DESIRED.virtual_servers, netfilter)
    fake = Fake()
    fake.apply(transaction(plan_table(ABSENT, static_ruleset(netfilter), elements)))
    return fake


def via(address: str, port: int, pod: str) -> tuple[str, int]:
    """Where IPVS sends a connection to `address`:`port` when it picks `pod`."""
    for vs in DESIRED.virtual_servers:
        if (vs.key.address, vs.key.port) == (address, port):
            for real in vs.real_servers:
                if real.address == pod:
                    return real.address, real.port
    raise AssertionError(f"no virtual server {address}:{port} with real server {pod}")


class Case(NamedTuple):
    packet: Packet
    verdict: str = "accept"
    masqueraded: bool = False
    options: str = "cluster-cidr"


def web(n: Net, source: str, pod: str = "", *, from_node: bool = False) -> Packet:
    """A new connection from `source` to web's cluster IP, port 80."""
    to = via(n.web_cluster, 80, pod or n.web_there)
    return Packet(source, n.web_cluster, 80, ipvs_to=to, from_node=from_node)


def to_lb(
    source: str, lb: str, pod: str, *, from_node: bool = False, ct_state: str = "new"
) -> Packet:
    to = via(lb, 80, pod)
    return Packet(source, lb, 80, ipvs_to=to, from_node=from_node, ct_state=ct_state)


def node_port(n: Net, source: str, port: int, pod: str) -> Packet:
    return Packet(source, n.node, port, ipvs_to=via(n.node, port, pod))


CASES: dict[str, Callable[[Net], Case]] = {
    # Masquerade
    "nodeport_of_a_cluster_policy_service_is_masqueraded": lambda n: Case(
        node_port(n, n.client, WEB_NODE_PORT, n.web_there), masqueraded=True
    ),
    "nodeport_of_a_local_policy_service_keeps_the_client_address": lambda n: Case(
        node_port(n, n.client, LOCAL_NODE_PORT, n.local_pod)
    ),
    "load_balancer_ip_of_a_cluster_policy_service_is_masqueraded": lambda n: Case(
        to_lb(n.allowed, n.web_lb, n.web_there), masqueraded=True
    ),
    "load_balancer_ip_of_a_local_policy_service_keeps_the_client_address": lambda n: Case(
        to_lb(n.client, n.local_lb, n.local_pod)
    ),
    "cluster_ip_from_outside_the_cluster_cidr_is_masqueraded": lambda n: Case(
        web(n, n.client), masqueraded=True
    ),
    "cluster_ip_from_a_pod_is_not_masqueraded": lambda n: Case(web(n, n.local_pod)),
    "masquerade_all_masquerades_cluster_ip_traffic_from_a_pod": lambda n: Case(
        web(n, n.local_pod), masqueraded=True, options="masquerade-all"
    ),
    "the_nodes_own_connection_to_a_cluster_ip_is_masqueraded": lambda n: Case(
        web(n, n.node, from_node=True), masqueraded=True
    ),
    "a_loopback_source_is_not_masqueraded": lambda n: Case(web(n, n.loopback, from_node=True)),
    "without_a_cluster_cidr_a_pods_cluster_ip_traffic_is_not_masqueraded": lambda n: Case(
        web(n, n.local_pod), options="no-cidr"
    ),
    "without_a_cluster_cidr_node_traffic_from_a_service_ip_is_masqueraded": lambda n: Case(
        web(n, n.web_cluster, from_node=True), masqueraded=True, options="no-cidr"
    ),
    # Hairpin
    "a_pod_reaching_itself_through_its_service_is_masqueraded": lambda n: Case(
        web(n, n.web_here, n.web_here), masqueraded=True
    ),
    "a_pod_reaching_another_pod_through_its_service_is_not_masqueraded": lambda n: Case(
        web(n, n.web_here, n.web_there)
    ),
    "a_pod_reaching_itself_through_a_local_policy_nodeport_is_masqueraded": lambda n: Case(
        node_port(n, n.local_pod, LOCAL_NODE_PORT, n.local_pod), masqueraded=True
    ),
    # loadBalancerSourceRanges
    "a_load_balancer_accepts_a_source_in_its_ranges": lambda n: Case(
        to_lb(n.allowed, n.web_lb, n.web_here), masqueraded=True
    ),
    "a_load_balancer_drops_a_source_outside_its_ranges": lambda n: Case(
        to_lb(n.client, n.web_lb, n.web_here), "drop"
    ),
    "a_load_balancer_without_ranges_is_open_to_all": lambda n: Case(
        to_lb(n.client, n.local_lb, n.local_pod)
    ),
    "an_established_connection_from_outside_the_ranges_is_not_filtered": lambda n: Case(
        to_lb(n.client, n.web_lb, n.web_here, ct_state="established")
    ),
    "the_ranges_filter_the_load_balancer_ip_not_the_cluster_ip": lambda n: Case(
        web(n, n.client), masqueraded=True
    ),
    "the_ranges_filter_the_load_balancer_ip_not_the_nodeport": lambda n: Case(
        node_port(n, n.client, WEB_NODE_PORT, n.web_there), masqueraded=True
    ),
    "the_node_reaches_a_load_balancer_whose_ranges_hold_a_node_address": lambda n: Case(
        to_lb(n.internal_lb, n.internal_lb, n.internal_pod, from_node=True), masqueraded=True
    ),
    "the_node_cannot_reach_a_load_balancer_whose_ranges_do_not_hold_it": lambda n: Case(
        to_lb(n.web_lb, n.web_lb, n.web_there, from_node=True), "drop"
    ),
    # The service-IP port filter
    "a_cluster_ip_rejects_a_new_connection_on_no_services_port": lambda n: Case(
        Packet(n.client, n.web_cluster, 22), "reject"
    ),
    "a_load_balancer_ip_rejects_a_new_connection_on_no_services_port": lambda n: Case(
        Packet(n.client, n.local_lb, 22), "reject"
    ),
    "a_cluster_ip_accepts_a_new_connection_on_its_services_port": lambda n: Case(
        web(n, n.local_pod)
    ),
    "a_udp_services_port_is_accepted": lambda n: Case(
        Packet(n.client, n.dns_cluster, 53, "udp", ipvs_to=via(n.dns_cluster, 53, n.dns_pod)),
        masqueraded=True,
    ),
    "a_udp_services_port_over_tcp_is_rejected": lambda n: Case(
        Packet(n.client, n.dns_cluster, 53, "tcp"), "reject"
    ),
    "the_health_check_port_of_a_local_policy_load_balancer_is_accepted": lambda n: Case(
        Packet(n.client, n.local_lb, HEALTH_CHECK_PORT)
    ),
    "established_traffic_to_a_service_ip_is_not_filtered": lambda n: Case(
        Packet(n.client, n.web_cluster, 22, ct_state="established")
    ),
    "a_node_address_is_not_filtered": lambda n: Case(Packet(n.client, n.node, 22)),
    "the_nodes_own_connection_to_a_service_ip_on_no_services_port_is_rejected": lambda n: Case(
        Packet(n.node, n.web_cluster, 22, from_node=True), "reject"
    ),
    "traffic_forwarded_to_a_pod_is_not_filtered": lambda n: Case(
        Packet(n.client, n.web_here, 22, to_node=False)
    ),
    # externalTrafficPolicy Local with no endpoint on this node: IPVS has the cluster's
    # endpoints, for pods and the node only (kube-proxy's nftables mode drops the rest).
    "an_external_client_of_a_local_policy_lb_with_no_endpoint_here_is_dropped": lambda n: Case(
        to_lb(n.client, n.away_lb, n.away_pod), "drop"
    ),
    "an_external_client_of_a_local_policy_nodeport_with_no_endpoint_here_is_dropped": (
        lambda n: Case(node_port(n, n.client, AWAY_NODE_PORT, n.away_pod), "drop")
    ),
    "a_pod_here_reaches_a_local_policy_lb_with_no_endpoint_here_unmasqueraded": lambda n: Case(
        to_lb(n.local_pod, n.away_lb, n.away_pod)
    ),
    "the_node_reaches_a_local_policy_lb_with_no_endpoint_here_masqueraded": lambda n: Case(
        to_lb(n.away_lb, n.away_lb, n.away_pod, from_node=True), masqueraded=True
    ),
    "without_a_cluster_cidr_an_external_client_of_it_is_not_dropped": lambda n: Case(
        to_lb(n.client, n.away_lb, n.away_pod), options="no-cidr"
    ),
    "a_local_policy_lb_with_no_endpoint_here_drops_no_established_connection": lambda n: Case(
        to_lb(n.client, n.away_lb, n.away_pod, ct_state="established")
    ),
    "its_cluster_ip_is_not_filtered": lambda n: Case(
        Packet(n.client, n.away_cluster, 80, ipvs_to=via(n.away_cluster, 80, n.away_pod)),
        masqueraded=True,
    ),
}
PARAMS = [
    pytest.param(net, build, id=f"{name}-{net.name}")
    for name, build in CASES.items()
    for net in NETS
]


def run(case: Case) -> Trace:
    return trace(table(case.options), case.packet)


@pytest.mark.parametrize(("net", "build"), PARAMS)
def test_each_packet_meets_the_fate_its_case_names(net: Net, build: Callable[[Net], Case]) -> None:
    case = build(net)
    result = run(case)
    assert (result.verdict, result.masqueraded) == (case.verdict, case.masqueraded), result


@pytest.mark.parametrize("options", sorted(OPTIONS))
def test_the_cases_match_every_rule_of_the_table(options: str) -> None:
    # A rule no case matches is a rule no case tests; under the other options, the rules
    # that differ from --cluster-cidr's (the ClusterIP rule) must each be matched.
    def rules(name: str) -> set[str]:
        chains = table(name).tables["inet", "ipvsctl"].chains.values()
        return {f"{chain.name}: {rule.text}" for chain in chains for rule in chain.rules}

    wanted = rules(options) if options == "cluster-cidr" else rules(options) - rules("cluster-cidr")
    matched = {
        rule
        for build in CASES.values()
        for net in NETS
        if (case := build(net)).options == options
        for rule in run(case).matched
    }
    assert wanted - matched == set()


def test_a_load_balancer_that_gains_source_ranges_drops_others_after_the_update() -> None:
    # The element-only transaction, from the table as `nft -j list` reads it.
    netfilter = OPTIONS["cluster-cidr"]
    ruleset = static_ruleset(netfilter)
    before = desired_elements(DESIRED.virtual_servers, netfilter)
    fake = Fake()
    fake.apply(transaction(plan_table(ABSENT, ruleset, before)))
    ranged = SERVICES[1]._replace(load_balancer_source_ranges=(V4.allowed + "/32",))
    after = desired_elements(
        translated((SERVICES[0], ranged, *SERVICES[2:])).virtual_servers, netfilter
    )
    plan = plan_table(parse_listing(nft_listing(ruleset, before)), ruleset, after)
    assert not plan.create
    fake.apply(transaction(plan))
    blocked = to_lb(V4.client, V4.local_lb, V4.local_pod)
    allowed = to_lb(V4.allowed, V4.local_lb, V4.local_pod)
    assert (trace(fake, blocked).verdict, trace(fake, allowed).verdict) == ("drop", "accept")
