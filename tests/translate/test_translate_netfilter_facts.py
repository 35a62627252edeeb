"""translate_service: what each virtual server tells the netfilter table (kind, traffic
policy, source ranges, this node's endpoints, health check port)."""

from __future__ import annotations

from ipvsctl.model import AF_INET, AF_INET6, Protocol
from ipvsctl.model.desired import (
    CLUSTER_IP,
    EXTERNAL_IP,
    LOAD_BALANCER,
    NODE_PORT,
    DesiredVirtualServer,
    TranslateConfig,
)
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort
from ipvsctl.translate import translate_service

TCP = int(Protocol.TCP)
CONFIG = TranslateConfig(node_name="node-1", node_addresses=("192.168.0.10",))
SHOP = Service(
    namespace="shop",
    name="web",
    type="LoadBalancer",
    cluster_ips=("10.96.0.20",),
    external_ips=("203.0.113.7",),
    load_balancer_ips=("198.51.100.1",),
    ports=(ServicePort("http", TCP, 80, 30080),),
    load_balancer_source_ranges=("192.0.2.0/24",),
    health_check_node_port=32000,
)


def slice_of(*members: tuple[str, str], family: int = AF_INET, **conditions: bool) -> EndpointSlice:
    endpoints = tuple(
        Endpoint((address,), node_name=node, **conditions) for address, node in members
    )
    return EndpointSlice(
        "shop", f"web-{family}", "web", family, (EndpointPort("http", TCP, 8080),), endpoints
    )


SLICE = slice_of(("10.244.1.5", "node-1"), ("10.244.2.7", "node-2"), ("10.244.1.9", "node-1"))


def translated(
    service: Service, *slices: EndpointSlice, config: TranslateConfig = CONFIG
) -> dict[str, DesiredVirtualServer]:
    servers, errors = translate_service(service, slices, config)
    assert errors == ()
    return {server.key.address: server for server in servers}


def test_each_virtual_server_says_which_kind_of_service_address_it_is() -> None:
    kinds = {address: vs.kind for address, vs in translated(SHOP, SLICE).items()}
    assert kinds == {
        "10.96.0.20": CLUSTER_IP,
        "203.0.113.7": EXTERNAL_IP,
        "198.51.100.1": LOAD_BALANCER,
        "192.168.0.10": NODE_PORT,
    }


def test_cluster_policy_virtual_servers_are_not_local() -> None:
    assert not any(vs.local for vs in translated(SHOP, SLICE).values())


def test_external_traffic_policy_local_marks_every_virtual_server_but_the_cluster_ip() -> None:
    servers = translated(SHOP._replace(external_traffic_local=True), SLICE)
    assert {address: vs.local for address, vs in servers.items()} == {
        "10.96.0.20": False,
        "203.0.113.7": True,
        "198.51.100.1": True,
        "192.168.0.10": True,
    }


def test_internal_traffic_policy_local_marks_only_the_cluster_ip() -> None:
    servers = translated(SHOP._replace(internal_traffic_local=True), SLICE)
    assert [address for address, vs in servers.items() if vs.local] == ["10.96.0.20"]


def test_source_ranges_belong_to_load_balancer_ips_only() -> None:
    servers = translated(SHOP, SLICE)
    assert servers["198.51.100.1"].source_ranges == ("192.0.2.0/24",)
    others = [vs.source_ranges for address, vs in servers.items() if address != "198.51.100.1"]
    assert others == [(), (), ()]


def test_a_load_balancer_ip_also_listed_as_external_ip_keeps_its_source_ranges() -> None:
    # kube-proxy filters an ingress IP whatever else lists it: the firewall never fails open.
    service = SHOP._replace(external_ips=("198.51.100.1",))
    server = translated(service, SLICE)["198.51.100.1"]
    assert server.kind == LOAD_BALANCER and server.source_ranges == ("192.0.2.0/24",)


def test_local_endpoints_are_the_real_servers_on_this_node() -> None:
    servers = translated(SHOP, SLICE)
    assert servers["10.96.0.20"].local_endpoints == ("10.244.1.5", "10.244.1.9")
    assert servers["192.168.0.10"].local_endpoints == ("10.244.1.5", "10.244.1.9")


def test_a_node_with_no_endpoint_has_no_local_endpoints() -> None:
    servers = translated(SHOP, SLICE, config=CONFIG._replace(node_name="node-3"))
    assert all(vs.local_endpoints == () for vs in servers.values())


def test_without_a_node_name_endpoints_without_one_are_not_local() -> None:
    anonymous = slice_of(("10.244.1.5", ""))
    servers = translated(SHOP, anonymous, config=CONFIG._replace(node_name=""))
    assert all(vs.local_endpoints == () for vs in servers.values())


def test_local_endpoints_follow_the_terminating_fallback() -> None:
    terminating = slice_of(("10.244.1.5", "node-1"), ready=False, serving=True, terminating=True)
    assert translated(SHOP, terminating)["10.96.0.20"].local_endpoints == ("10.244.1.5",)


def test_local_endpoints_are_of_the_virtual_servers_family() -> None:
    service = SHOP._replace(cluster_ips=("10.96.0.20", "fd00:10:96::20"))
    v6 = slice_of(("fd00:10:244::5", "node-1"), family=AF_INET6)
    servers = translated(service, SLICE, v6)
    assert servers["fd00:10:96::20"].local_endpoints == ("fd00:10:244::5",)
    assert servers["10.96.0.20"].local_endpoints == ("10.244.1.5", "10.244.1.9")


def test_only_local_policy_load_balancer_ips_carry_the_health_check_port() -> None:
    assert all(vs.health_check_port == 0 for vs in translated(SHOP, SLICE).values())
    servers = translated(SHOP._replace(external_traffic_local=True), SLICE)
    ports = {address: vs.health_check_port for address, vs in servers.items()}
    assert ports == {"10.96.0.20": 0, "203.0.113.7": 0, "198.51.100.1": 32000, "192.168.0.10": 0}
