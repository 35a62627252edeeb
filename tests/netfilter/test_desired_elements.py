"""desired_elements: the set elements each kind of virtual server needs, as kube-proxy's
IPVS mode fills its ipsets."""

from __future__ import annotations

import pytest

from ipvsctl.model import ForwardMethod, ServiceKey, VirtualServer
from ipvsctl.model.desired import (
    EXTERNAL_IP,
    LOAD_BALANCER,
    NODE_PORT,
    DesiredVirtualServer,
    TranslateConfig,
)
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort
from ipvsctl.netfilter import (
    Element,
    ElementTally,
    NetfilterOptions,
    desired_elements,
    static_ruleset,
    virtual_server_elements,
)
from ipvsctl.translate import translate
from tests.netfilter.builders import TCP, UDP, desired_vs

OPTIONS = NetfilterOptions(cluster_cidrs=("10.244.0.0/16",))


def elements(*servers: DesiredVirtualServer, options: NetfilterOptions = OPTIONS) -> set[Element]:
    return set(desired_elements(servers, options))


def E(set_name: str, *value: str) -> Element:
    return Element(set_name, value)


# --- which sets each virtual server is in ----------------------------------------------


def test_a_cluster_ip_is_a_bound_address_and_an_allowed_port() -> None:
    assert elements(desired_vs("10.96.0.10", 53, UDP)) == {
        E("service-ips-v4", "10.96.0.10"),
        E("cluster-ips-v4", "10.96.0.10", "udp", "53"),
    }


def test_a_cluster_ip_is_never_marked_for_masquerade_by_its_own_set() -> None:
    # ClusterIP masquerade is by source (--cluster-cidr), a rule, not an element.
    found = elements(desired_vs("10.96.0.10", local=True), desired_vs("10.96.0.11"))
    assert not [e for e in found if e.set.startswith("masq-services")]


@pytest.mark.parametrize("kind", [EXTERNAL_IP, LOAD_BALANCER])
def test_cluster_policy_external_and_lb_ips_are_masqueraded(kind: str) -> None:
    assert elements(desired_vs("203.0.113.7", kind=kind)) == {
        E("service-ips-v4", "203.0.113.7"),
        E("external-ips-v4", "203.0.113.7", "tcp", "80"),
        E("masq-services-v4", "203.0.113.7", "tcp", "80"),
    }


@pytest.mark.parametrize("kind", [EXTERNAL_IP, LOAD_BALANCER, NODE_PORT])
def test_local_policy_traffic_keeps_the_client_address(kind: str) -> None:
    found = elements(desired_vs("203.0.113.7", kind=kind, bound=kind != NODE_PORT, local=True))
    assert not [e for e in found if e.set.startswith("masq-services")]


@pytest.mark.parametrize("forward", [ForwardMethod.TUNNEL, ForwardMethod.ROUTE])
def test_direct_return_forwarding_is_never_masqueraded(forward: ForwardMethod) -> None:
    # A routed or tunnelled real server answers the client itself: it must see it.
    found = elements(desired_vs("203.0.113.7", kind=LOAD_BALANCER, forward=forward))
    assert not [e for e in found if e.set.startswith("masq-services")]


def test_a_cluster_policy_node_port_is_masqueraded_and_not_filtered() -> None:
    # A node address: not on the dummy interface, so not the port filter's business.
    assert elements(desired_vs("192.168.0.10", 30080, kind=NODE_PORT, bound=False)) == {
        E("masq-services-v4", "192.168.0.10", "tcp", "30080"),
    }


def test_an_external_ip_the_node_has_is_masqueraded_but_not_filtered() -> None:
    assert elements(desired_vs("192.168.0.10", kind=EXTERNAL_IP, bound=False)) == {
        E("masq-services-v4", "192.168.0.10", "tcp", "80"),
    }


def test_ipv6_virtual_servers_fill_the_v6_sets() -> None:
    found = elements(
        desired_vs("fd00:10:96::a"),
        desired_vs("2001:db8::7", kind=LOAD_BALANCER, local_endpoints=("fd00:10:244::5",)),
    )
    assert found == {
        E("service-ips-v6", "fd00:10:96::a"),
        E("cluster-ips-v6", "fd00:10:96::a", "tcp", "80"),
        E("service-ips-v6", "2001:db8::7"),
        E("external-ips-v6", "2001:db8::7", "tcp", "80"),
        E("masq-services-v6", "2001:db8::7", "tcp", "80"),
        E("hairpin-v6", "fd00:10:244::5", "fd00:10:244::5"),
    }


def test_a_fwmark_virtual_server_has_no_elements() -> None:
    vs = DesiredVirtualServer(VirtualServer(ServiceKey.for_fwmark(2, 7)), (), "shop/web")
    assert virtual_server_elements(vs, OPTIONS) == ()


# --- hairpin ------------------------------------------------------------------------------


def test_each_endpoint_on_this_node_is_a_hairpin_pair() -> None:
    vs = desired_vs("10.96.0.10", local_endpoints=("10.244.1.5", "10.244.1.9"))
    hairpin = {e for e in elements(vs) if e.set == "hairpin-v4"}
    assert hairpin == {
        E("hairpin-v4", "10.244.1.5", "10.244.1.5"),
        E("hairpin-v4", "10.244.1.9", "10.244.1.9"),
    }


@pytest.mark.parametrize("forward", [ForwardMethod.TUNNEL, ForwardMethod.ROUTE])
def test_unmasqueraded_forwarding_needs_no_hairpin(forward: ForwardMethod) -> None:
    vs = desired_vs("10.96.0.10", local_endpoints=("10.244.1.5",), forward=forward)
    assert not [e for e in elements(vs) if e.set == "hairpin-v4"]


# --- loadBalancerSourceRanges -------------------------------------------------------------


def lb(*ranges: str, address: str = "198.51.100.1") -> DesiredVirtualServer:
    return desired_vs(address, kind=LOAD_BALANCER, source_ranges=ranges)


def source_ranges(found: set[Element]) -> list[tuple[str, ...]]:
    return sorted(e.value for e in found if e.set.startswith("lb-source-ranges"))


def test_source_ranges_filter_the_lb_port_and_list_each_range() -> None:
    found = elements(lb("192.0.2.0/24", "203.0.113.0/25"))
    assert E("lb-filtered-v4", "198.51.100.1", "tcp", "80") in found
    assert source_ranges(found) == [
        ("198.51.100.1", "tcp", "80", "192.0.2.0/24"),
        ("198.51.100.1", "tcp", "80", "203.0.113.0/25"),
    ]


def test_overlapping_source_ranges_are_merged_since_nft_refuses_overlaps() -> None:
    found = elements(lb("10.0.0.0/8", "10.1.0.0/16", "192.0.2.7/32"))
    assert source_ranges(found) == [
        ("198.51.100.1", "tcp", "80", "10.0.0.0/8"),
        ("198.51.100.1", "tcp", "80", "192.0.2.7/32"),
    ]


def test_a_range_holding_a_node_address_lets_the_node_reach_the_lb_from_its_ip() -> None:
    # The node reaches a locally bound LB IP from that IP (KUBE-LOAD-BALANCER-SOURCE-IP).
    options = OPTIONS._replace(node_addresses=frozenset({"192.168.0.10"}))
    found = elements(lb("192.168.0.0/24"), options=options)
    assert source_ranges(found) == [
        ("198.51.100.1", "tcp", "80", "192.168.0.0/24"),
        ("198.51.100.1", "tcp", "80", "198.51.100.1/32"),
    ]


def test_a_range_without_a_node_address_keeps_the_node_out() -> None:
    options = OPTIONS._replace(node_addresses=frozenset({"192.168.0.10"}))
    assert len(source_ranges(elements(lb("192.0.2.0/24"), options=options))) == 1


def test_only_ranges_of_the_lb_ips_family_apply() -> None:
    found = elements(lb("192.0.2.0/24", "2001:db8:1::/48", address="2001:db8::7"))
    assert source_ranges(found) == [("2001:db8::7", "tcp", "80", "2001:db8:1::/48")]


def test_an_lb_ip_with_no_range_of_its_family_is_not_filtered() -> None:
    # As kube-proxy: each family's proxier sees only its own family's ranges.
    found = elements(lb("192.0.2.0/24", address="2001:db8::7"))
    assert not [e for e in found if e.set.startswith("lb-")]


def test_source_ranges_of_other_kinds_are_ignored() -> None:
    vs = desired_vs("203.0.113.7", kind=EXTERNAL_IP, source_ranges=("192.0.2.0/24",))
    assert not [e for e in elements(vs) if e.set.startswith("lb-")]


def test_the_health_check_port_is_allowed_on_service_ips() -> None:
    vs = desired_vs("198.51.100.1", kind=LOAD_BALANCER, local=True, health_check_port=32000)
    assert E("health-check-ports", "32000") in elements(vs)


@pytest.mark.parametrize("kind", [NODE_PORT, EXTERNAL_IP, LOAD_BALANCER])
def test_a_local_policy_address_with_no_endpoint_here_is_in_no_local_endpoints(kind: str) -> None:
    vs = desired_vs("203.0.113.7", kind=kind, local=True, local_fallback=True)
    assert E("no-local-endpoints-v4", "203.0.113.7", "tcp", "80") in elements(vs)
    with_endpoint_here = desired_vs("203.0.113.7", kind=kind, local=True)
    assert not [e for e in elements(with_endpoint_here) if e.set.startswith("no-local")]


# --- the whole state ----------------------------------------------------------------------


def test_a_shared_element_appears_once() -> None:
    found = desired_elements([desired_vs("10.96.0.10", 80), desired_vs("10.96.0.10", 443)], OPTIONS)
    assert sorted(e for e in found if e.set == "service-ips-v4") == [
        E("service-ips-v4", "10.96.0.10")
    ]


def test_every_element_is_in_a_set_the_table_declares() -> None:
    servers = [
        desired_vs("10.96.0.10", local_endpoints=("10.244.1.5",)),
        desired_vs("fd00::a", local_endpoints=("fd00:10:244::5",)),
        desired_vs("192.168.0.10", kind=NODE_PORT, bound=False),
        lb("192.0.2.0/24", address="198.51.100.1")._replace(health_check_port=32000),
        lb("2001:db8:1::/48", address="2001:db8::7"),
        desired_vs("203.0.113.7", kind=EXTERNAL_IP),
        desired_vs("192.168.0.10", 30080, kind=NODE_PORT, local=True, local_fallback=True),
        desired_vs("2001:db8::8", kind=EXTERNAL_IP, local=True, local_fallback=True),
    ]
    declared = {spec.name for spec in static_ruleset(OPTIONS).sets}
    found = desired_elements(servers, OPTIONS)
    assert {e.set for e in found} == declared


def test_a_service_translated_then_turned_into_elements() -> None:
    service = Service(
        namespace="shop",
        name="web",
        type="LoadBalancer",
        cluster_ips=("10.96.0.20",),
        load_balancer_ips=("198.51.100.1",),
        ports=(ServicePort("http", TCP, 80, 30080),),
        load_balancer_source_ranges=("192.0.2.0/24",),
    )
    endpoint_slice = EndpointSlice(
        "shop",
        "web-1",
        "web",
        2,
        (EndpointPort("http", TCP, 8080),),
        (Endpoint(("10.244.1.5",), node_name="node-1"), Endpoint(("10.244.2.7",), node_name="n2")),
    )
    config = TranslateConfig(node_name="node-1", node_addresses=("192.168.0.10",))
    state = translate([service], [endpoint_slice], config)
    assert set(desired_elements(state.virtual_servers, OPTIONS)) == {
        E("service-ips-v4", "10.96.0.20"),
        E("cluster-ips-v4", "10.96.0.20", "tcp", "80"),
        E("service-ips-v4", "198.51.100.1"),
        E("external-ips-v4", "198.51.100.1", "tcp", "80"),
        E("masq-services-v4", "198.51.100.1", "tcp", "80"),
        E("lb-filtered-v4", "198.51.100.1", "tcp", "80"),
        E("lb-source-ranges-v4", "198.51.100.1", "tcp", "80", "192.0.2.0/24"),
        E("masq-services-v4", "192.168.0.10", "tcp", "30080"),
        E("hairpin-v4", "10.244.1.5", "10.244.1.5"),
    }


# --- the agent's tally --------------------------------------------------------------------


def test_the_tally_keeps_an_element_until_its_last_virtual_server_lets_go() -> None:
    tally = ElementTally()
    web = virtual_server_elements(desired_vs("10.96.0.10", 80), OPTIONS)
    tls = virtual_server_elements(desired_vs("10.96.0.10", 443), OPTIONS)
    assert tally.replace((), web)[0] == frozenset(web)
    added, removed = tally.replace((), tls)
    assert added == {E("cluster-ips-v4", "10.96.0.10", "tcp", "443")} and removed == set()
    added, removed = tally.replace(web, ())
    assert added == set() and removed == {E("cluster-ips-v4", "10.96.0.10", "tcp", "80")}
    assert tally.elements == frozenset(tls)


def test_one_endpoint_change_on_this_node_is_one_hairpin_element() -> None:
    tally = ElementTally()
    before = virtual_server_elements(
        desired_vs("10.96.0.10", local_endpoints=("10.244.1.5",)), OPTIONS
    )
    tally.replace((), before)
    after = virtual_server_elements(
        desired_vs("10.96.0.10", local_endpoints=("10.244.1.5", "10.244.1.6")), OPTIONS
    )
    assert tally.replace(before, after) == (
        frozenset({E("hairpin-v4", "10.244.1.6", "10.244.1.6")}),
        frozenset(),
    )
