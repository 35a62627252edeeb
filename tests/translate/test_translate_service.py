"""translate_service: one Service and its slices into virtual servers, as kube-proxy's IPVS mode."""

from __future__ import annotations

import pytest

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    Protocol,
    RealServer,
    ServiceFlag,
    ServiceKey,
    VirtualServer,
)
from ipvsctl.model.desired import DesiredVirtualServer, TranslateConfig
from ipvsctl.model.inputs import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Service,
    ServicePort,
)
from ipvsctl.translate import scheduler_problem, translate, translate_service

TCP, UDP, SCTP = int(Protocol.TCP), int(Protocol.UDP), int(Protocol.SCTP)
CONFIG = TranslateConfig(node_name="node-1", node_addresses=("192.168.0.10",))

WEB = Service(
    namespace="shop",
    name="web",
    cluster_ips=("10.96.0.20",),
    ports=(ServicePort("http", TCP, 80),),
)


def endpoints(*addresses: str, node: str = "node-1", **conditions: bool) -> tuple[Endpoint, ...]:
    return tuple(Endpoint((address,), node_name=node, **conditions) for address in addresses)


HTTP_8080 = EndpointPort("http", TCP, 8080)


def web_slice(
    *members: Endpoint,
    name: str = "web-1",
    family: int = AF_INET,
    port: EndpointPort = HTTP_8080,
) -> EndpointSlice:
    return EndpointSlice("shop", name, "web", family, (port,), members)


WEB_SLICE = web_slice(*endpoints("10.244.1.5", "10.244.2.7", "10.244.3.9"))


def keys(servers: tuple[DesiredVirtualServer, ...]) -> list[tuple[int, int, str, int, bool]]:
    return [(s.key.family, s.key.protocol, s.key.address, s.key.port, s.bound) for s in servers]


def addresses(server: DesiredVirtualServer) -> list[str]:
    return [real.address for real in server.real_servers]


def translated(
    service: Service, *slices: EndpointSlice, config: TranslateConfig = CONFIG
) -> tuple[DesiredVirtualServer, ...]:
    servers, errors = translate_service(service, slices, config)
    assert errors == ()
    return servers


# --- which virtual servers -------------------------------------------------------------


def test_a_cluster_ip_service_gets_one_bound_virtual_server_per_port() -> None:
    service = WEB._replace(ports=(ServicePort("http", TCP, 80), ServicePort("dns", UDP, 53)))
    assert keys(translated(service)) == [
        (AF_INET, TCP, "10.96.0.20", 80, True),
        (AF_INET, UDP, "10.96.0.20", 53, True),
    ]


@pytest.mark.parametrize(
    "service",
    [
        pytest.param(WEB._replace(type="ExternalName", cluster_ips=()), id="ExternalName"),
        pytest.param(WEB._replace(cluster_ips=()), id="headless"),
        pytest.param(WEB._replace(proxy_name="other-proxy"), id="another proxy's"),
    ],
)
def test_services_that_are_not_ours_get_nothing(service: Service) -> None:
    assert translate_service(service, [WEB_SLICE], CONFIG) == ((), ())


def test_dual_stack_cluster_ips_get_one_virtual_server_per_family() -> None:
    service = WEB._replace(cluster_ips=("10.96.0.20", "fd00:10:96::20"))
    v6 = web_slice(*endpoints("fd00:10:244::5"), name="web-6", family=AF_INET6)
    servers = translated(service, WEB_SLICE, v6)
    assert keys(servers) == [
        (AF_INET, TCP, "10.96.0.20", 80, True),
        (AF_INET6, TCP, "fd00:10:96::20", 80, True),
    ]
    assert addresses(servers[0]) == ["10.244.1.5", "10.244.2.7", "10.244.3.9"]
    assert addresses(servers[1]) == ["fd00:10:244::5"]


def test_external_and_load_balancer_ips_are_bound_virtual_servers() -> None:
    service = WEB._replace(external_ips=("203.0.113.7",), load_balancer_ips=("198.51.100.1",))
    assert keys(translated(service)) == [
        (AF_INET, TCP, "10.96.0.20", 80, True),
        (AF_INET, TCP, "198.51.100.1", 80, True),
        (AF_INET, TCP, "203.0.113.7", 80, True),
    ]


def test_an_external_ip_that_is_a_node_address_is_not_bound() -> None:
    service = WEB._replace(external_ips=("192.168.0.10",))
    assert keys(translated(service))[1] == (AF_INET, TCP, "192.168.0.10", 80, False)


def test_an_external_ip_on_another_interface_of_the_node_is_never_bound() -> None:
    # Not a NodePort address (no --nodeport-addresses), but the node's own:
    # binding it would make every virtual server on the node's address ours.
    config = CONFIG._replace(node_addresses=(), local_addresses=frozenset({"192.168.0.10"}))
    service = WEB._replace(external_ips=("192.168.0.10",), load_balancer_ips=("192.168.0.10",))
    (_, external) = translated(service, config=config)
    assert (external.key.address, external.bound) == ("192.168.0.10", False)
    state = translate([service], [WEB_SLICE], config)
    assert "192.168.0.10" not in state.addresses


def test_an_address_listed_twice_is_one_virtual_server() -> None:
    service = WEB._replace(external_ips=("203.0.113.7",), load_balancer_ips=("203.0.113.7",))
    assert len(translated(service)) == 2


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_node_ports_get_an_unbound_virtual_server_per_node_address(service_type: str) -> None:
    service = WEB._replace(
        type=service_type,
        cluster_ips=("10.96.0.20", "fd00:96::20"),
        ports=(ServicePort("http", TCP, 80, 30080),),
    )
    config = CONFIG._replace(node_addresses=("192.168.0.10", "fd00::10"))
    v6 = web_slice(*endpoints("fd00:10:244::5"), name="web-6", family=AF_INET6)
    servers = translated(service, WEB_SLICE, v6, config=config)
    assert keys(servers) == [
        (AF_INET, TCP, "10.96.0.20", 80, True),
        (AF_INET6, TCP, "fd00:96::20", 80, True),
        (AF_INET, TCP, "192.168.0.10", 30080, False),
        (AF_INET6, TCP, "fd00::10", 30080, False),
    ]
    assert addresses(servers[3]) == ["fd00:10:244::5"]


def test_a_load_balancer_without_node_ports_has_none() -> None:
    service = WEB._replace(type="LoadBalancer")
    assert len(translated(service)) == 1


def test_a_cluster_ip_service_ignores_a_stray_node_port() -> None:
    service = WEB._replace(ports=(ServicePort("http", TCP, 80, 30080),))
    assert len(translated(service)) == 1


# --- how they schedule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "scheduler", "flags", "forward"),
    [
        ((), "rr", 0, ForwardMethod.MASQ),
        ((("ipvsctl.io/scheduler", "wlc"),), "wlc", 0, ForwardMethod.MASQ),
        ((("ipvsctl.io/scheduler", " lc "),), "lc", 0, ForwardMethod.MASQ),
        (
            (("ipvsctl.io/scheduler", "sh"), ("ipvsctl.io/scheduler-flags", "sh-fallback")),
            "sh",
            ServiceFlag.SCHED1,
            ForwardMethod.MASQ,
        ),
        (
            (("ipvsctl.io/scheduler", "sh"), ("ipvsctl.io/scheduler-flags", "sh-port")),
            "sh",
            ServiceFlag.SCHED2,
            ForwardMethod.MASQ,
        ),
        (
            (
                ("ipvsctl.io/scheduler", "mh"),
                ("ipvsctl.io/scheduler-flags", "mh-fallback, mh-port,"),
            ),
            "mh",
            ServiceFlag.SCHED1 | ServiceFlag.SCHED2,
            ForwardMethod.MASQ,
        ),
        ((("ipvsctl.io/forwarding-method", "masq"),), "rr", 0, ForwardMethod.MASQ),
        ((("ipvsctl.io/forwarding-method", "tunnel"),), "rr", 0, ForwardMethod.TUNNEL),
        ((("ipvsctl.io/forwarding-method", "route"),), "rr", 0, ForwardMethod.ROUTE),
    ],
)
def test_annotations_choose_scheduler_flags_and_forwarding(
    annotations: tuple[tuple[str, str], ...], scheduler: str, flags: int, forward: ForwardMethod
) -> None:
    (server,) = translated(WEB._replace(annotations=annotations), WEB_SLICE)
    assert (server.service.scheduler, server.service.flags) == (scheduler, flags)
    assert {real.forward for real in server.real_servers} == {forward}


def test_the_configured_scheduler_is_the_default() -> None:
    (server,) = translated(WEB, config=CONFIG._replace(scheduler="wrr"))
    assert server.service.scheduler == "wrr"


@pytest.mark.parametrize(
    ("family", "address", "netmask"),
    [(AF_INET, "10.96.0.20", 0xFFFFFFFF), (AF_INET6, "fd00:10:96::20", 128)],
)
def test_client_ip_affinity_makes_the_service_persistent_per_host(
    family: int, address: str, netmask: int
) -> None:
    (server,) = translated(WEB._replace(cluster_ips=(address,), affinity_timeout=600))
    assert server.service.flags == ServiceFlag.PERSISTENT
    assert (server.service.timeout, server.service.netmask) == (600, netmask)


def test_translated_values_are_whole_and_their_flags_a_plain_int() -> None:
    # Translate builds these as plain tuples (no __new__): every field must be there,
    # and flags must compare and encode as the int VirtualServer(...) would store.
    annotations = (("ipvsctl.io/scheduler", "sh"), ("ipvsctl.io/scheduler-flags", "sh-port"))
    service = WEB._replace(annotations=annotations, affinity_timeout=600)
    (server,) = translated(service, WEB_SLICE)
    assert len(server) == len(DesiredVirtualServer._fields)
    assert len(server.service) == len(VirtualServer._fields)
    assert len(server.key) == len(ServiceKey._fields)
    assert type(server.service.flags) is int
    assert server.service.flags == ServiceFlag.PERSISTENT | ServiceFlag.SCHED2
    rebuilt = VirtualServer(ServiceKey(*server.key), *server.service[1:])
    assert server.service == rebuilt


def test_without_affinity_the_service_is_not_persistent() -> None:
    (server,) = translated(WEB)
    assert (server.service.flags, server.service.timeout) == (0, 0)


# --- invalid Services ------------------------------------------------------------------

SCHED = 'metadata.annotations["ipvsctl.io/scheduler"]'
FLAGS = 'metadata.annotations["ipvsctl.io/scheduler-flags"]'
METHOD = 'metadata.annotations["ipvsctl.io/forwarding-method"]'
KNOWN = "rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos"


@pytest.mark.parametrize(
    ("annotations", "config", "messages"),
    [
        (
            {"ipvsctl.io/scheduler": "fastest"},
            CONFIG,
            [f'Service shop/web: {SCHED}: unknown scheduler "fastest" (known: {KNOWN})'],
        ),
        (
            {"ipvsctl.io/scheduler": "mh"},
            CONFIG._replace(schedulers=frozenset({"rr", "wlc"})),
            [
                f'Service shop/web: {SCHED}: scheduler "mh" is not in this kernel '
                "(it offers: rr, wlc)"
            ],
        ),
        (
            {},
            CONFIG._replace(scheduler="fastest"),
            [f'Service shop/web: --scheduler: unknown scheduler "fastest" (known: {KNOWN})'],
        ),
        (
            {"ipvsctl.io/scheduler": "mh", "ipvsctl.io/scheduler-flags": "sh-port"},
            CONFIG,
            [f'Service shop/web: {FLAGS}: flag "sh-port" is for the sh scheduler, not mh'],
        ),
        (
            {"ipvsctl.io/scheduler-flags": "sh-fallback"},
            CONFIG,
            [f'Service shop/web: {FLAGS}: flag "sh-fallback" is for the sh scheduler, not rr'],
        ),
        (
            {"ipvsctl.io/scheduler": "sh", "ipvsctl.io/scheduler-flags": "sh-sticky"},
            CONFIG,
            [
                f'Service shop/web: {FLAGS}: unknown flag "sh-sticky" '
                "(known: sh-fallback, sh-port, mh-fallback, mh-port)"
            ],
        ),
        (
            {"ipvsctl.io/forwarding-method": "nat"},
            CONFIG,
            [f'Service shop/web: {METHOD}: unknown method "nat" (known: masq, tunnel, route)'],
        ),
        (
            {"ipvsctl.io/scheduler": "nope", "ipvsctl.io/forwarding-method": "nat"},
            CONFIG,
            [
                f'Service shop/web: {SCHED}: unknown scheduler "nope" (known: {KNOWN})',
                f'Service shop/web: {METHOD}: unknown method "nat" (known: masq, tunnel, route)',
            ],
        ),
    ],
)
def test_an_invalid_service_gets_every_error_and_no_virtual_servers(
    annotations: dict[str, str], config: TranslateConfig, messages: list[str]
) -> None:
    service = WEB._replace(annotations=tuple(sorted(annotations.items())))
    servers, errors = translate_service(service, [WEB_SLICE], config)
    assert servers == ()
    assert [str(error) for error in errors] == messages


def test_a_scheduler_the_kernel_offers_is_accepted() -> None:
    service = WEB._replace(annotations=(("ipvsctl.io/scheduler", "wlc"),))
    config = CONFIG._replace(schedulers=frozenset({"rr", "wlc"}))
    assert len(translated(service, config=config)) == 1


# --- real servers ----------------------------------------------------------------------


def test_real_servers_take_the_slice_port_of_the_same_name_and_protocol() -> None:
    service = WEB._replace(ports=(ServicePort("http", TCP, 80), ServicePort("metrics", TCP, 9090)))
    slice_ = EndpointSlice(
        "shop",
        "web-1",
        "web",
        AF_INET,
        (
            EndpointPort("metrics", TCP, 9100),
            EndpointPort("http", UDP, 8081),  # same name, other protocol: not for http/TCP
            EndpointPort("http", TCP, 8080),
        ),
        endpoints("10.244.1.5"),
    )
    http, metrics = translated(service, slice_)
    assert http.real_servers == (RealServer("10.244.1.5", 8080),)
    assert metrics.real_servers == (RealServer("10.244.1.5", 9100),)


@pytest.mark.parametrize("slices", [1, 2], ids=["one slice", "two slices"])
def test_a_slice_port_listed_twice_gives_its_first_number(slices: int) -> None:
    ports = (EndpointPort("http", TCP, 8080), EndpointPort("http", TCP, 8081))
    first = EndpointSlice("shop", "web-1", "web", AF_INET, ports, endpoints("10.244.1.5"))
    second = first._replace(name="web-2", endpoints=endpoints("10.244.2.7"))
    (server,) = translated(WEB, *(first, second)[:slices])
    assert {real.port for real in server.real_servers} == {8080}


def test_an_unnamed_service_port_matches_the_unnamed_slice_port() -> None:
    service = WEB._replace(ports=(ServicePort("", TCP, 80),))
    slice_ = web_slice(*endpoints("10.244.1.5"), port=EndpointPort("", TCP, 8080))
    (server,) = translated(service, slice_)
    assert server.real_servers == (RealServer("10.244.1.5", 8080),)


def test_a_port_no_slice_serves_has_no_real_servers() -> None:
    service = WEB._replace(ports=(ServicePort("grpc", TCP, 81),))
    (server,) = translated(service, WEB_SLICE)
    assert server.real_servers == ()


def test_real_servers_have_weight_one_and_the_services_family() -> None:
    (server,) = translated(WEB, WEB_SLICE)
    assert {(real.weight, real.family) for real in server.real_servers} == {(1, 0)}


def test_only_this_services_slices_in_its_namespace_count() -> None:
    others = [
        EndpointSlice("shop", "api-1", "api", AF_INET, WEB_SLICE.ports, endpoints("10.244.9.1")),
        EndpointSlice("dev", "web-1", "web", AF_INET, WEB_SLICE.ports, endpoints("10.244.9.2")),
    ]
    (server,) = translated(WEB, WEB_SLICE, *others)
    assert addresses(server) == ["10.244.1.5", "10.244.2.7", "10.244.3.9"]


def test_a_slice_of_the_other_family_is_not_used() -> None:
    v6 = web_slice(*endpoints("fd00:10:244::5"), name="web-6", family=AF_INET6)
    (server,) = translated(WEB, v6)
    assert server.real_servers == ()


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        pytest.param(
            endpoints("10.244.1.1") + endpoints("10.244.1.2", ready=False),
            ["10.244.1.1"],
            id="ready only",
        ),
        pytest.param(
            endpoints("10.244.1.1", ready=False, serving=True, terminating=True)
            + endpoints("10.244.1.2", ready=False, serving=False, terminating=True)
            + endpoints("10.244.1.3", ready=False, serving=True, terminating=False),
            ["10.244.1.1"],
            id="none ready: serving and terminating",
        ),
        pytest.param(
            endpoints("10.244.1.1")
            + endpoints("10.244.1.2", ready=False, serving=True, terminating=True),
            ["10.244.1.1"],
            id="terminating ones wait while any is ready",
        ),
        pytest.param(
            endpoints("10.244.1.2", ready=False, serving=False, terminating=False),
            [],
            id="nothing usable",
        ),
    ],
)
def test_ready_endpoints_and_the_terminating_fallback(
    members: tuple[Endpoint, ...], expected: list[str]
) -> None:
    (server,) = translated(WEB, web_slice(*members))
    assert addresses(server) == expected


def test_an_endpoint_in_two_slices_is_one_real_server_sorted_by_address() -> None:
    first = web_slice(*endpoints("10.244.3.9", "10.244.1.5"), name="web-1")
    second = web_slice(*endpoints("10.244.1.5", "10.244.10.1"), name="web-2")
    (server,) = translated(WEB, first, second)
    assert addresses(server) == ["10.244.1.5", "10.244.10.1", "10.244.3.9"]


def test_one_slice_in_any_order_gives_real_servers_sorted_and_unique() -> None:
    members = endpoints("10.244.3.9", "10.244.1.5", "10.244.10.1", "10.244.1.5")
    (server,) = translated(WEB, web_slice(*members))
    assert addresses(server) == ["10.244.1.5", "10.244.10.1", "10.244.3.9"]
    fallback = endpoints("10.244.2.2", "10.244.2.1", ready=False, serving=True, terminating=True)
    (server,) = translated(WEB, web_slice(*fallback))
    assert addresses(server) == ["10.244.2.1", "10.244.2.2"]


def test_the_first_address_of_an_endpoint_is_the_real_server() -> None:
    member = Endpoint(("10.244.1.5", "10.244.1.6"))
    (server,) = translated(WEB, web_slice(member))
    assert addresses(server) == ["10.244.1.5"]


# --- traffic policies ------------------------------------------------------------------

MIXED = web_slice(
    *endpoints("10.244.1.5", node="node-1"),
    *endpoints("10.244.2.7", node="node-2"),
    *endpoints("10.244.1.6", node="node-1", ready=False, serving=True, terminating=True),
)
EVERYWHERE = WEB._replace(
    type="NodePort",
    external_ips=("203.0.113.7",),
    load_balancer_ips=("198.51.100.1",),
    ports=(ServicePort("http", TCP, 80, 30080),),
)


@pytest.mark.parametrize(
    ("internal_local", "external_local", "cluster", "external"),
    [
        (False, False, ["10.244.1.5", "10.244.2.7"], ["10.244.1.5", "10.244.2.7"]),
        (True, False, ["10.244.1.5"], ["10.244.1.5", "10.244.2.7"]),
        (False, True, ["10.244.1.5", "10.244.2.7"], ["10.244.1.5"]),
        (True, True, ["10.244.1.5"], ["10.244.1.5"]),
    ],
)
def test_local_traffic_policies_keep_only_this_nodes_endpoints(
    internal_local: bool, external_local: bool, cluster: list[str], external: list[str]
) -> None:
    service = EVERYWHERE._replace(
        internal_traffic_local=internal_local, external_traffic_local=external_local
    )
    servers = translated(service, MIXED)
    by_address = {server.key.address: addresses(server) for server in servers}
    assert by_address == {
        "10.96.0.20": cluster,
        "203.0.113.7": external,
        "198.51.100.1": external,
        "192.168.0.10": external,
    }


def test_local_policy_falls_back_to_this_nodes_terminating_endpoints() -> None:
    members = (
        *endpoints("10.244.2.7", node="node-2"),
        *endpoints("10.244.1.6", node="node-1", ready=False, serving=True, terminating=True),
    )
    service = WEB._replace(internal_traffic_local=True)
    (server,) = translated(service, web_slice(*members))
    assert addresses(server) == ["10.244.1.6"]


ELSEWHERE = web_slice(
    *endpoints("10.244.2.7", node="node-2"), *endpoints("10.244.3.9", node="node-3")
)


def test_external_local_policy_with_no_endpoint_here_serves_the_clusters_endpoints() -> None:
    # kube-proxy's IPVS mode (kubernetes #97081): a pod here still reaches its own
    # load-balancer IP; the health check node port answers 503 meanwhile.
    service = EVERYWHERE._replace(external_traffic_local=True)
    servers = translated(service, ELSEWHERE)
    external = [server for server in servers if server.kind != "cluster"]
    assert len(external) == 3
    for server in external:
        assert addresses(server) == ["10.244.2.7", "10.244.3.9"]
        assert (server.local, server.local_fallback) == (True, True)
    (cluster,) = [server for server in servers if server.kind == "cluster"]
    assert cluster.local_fallback is False


def test_both_policies_local_with_no_endpoint_here_stay_empty() -> None:
    # kube-proxy then uses no cluster endpoints at all (UsesClusterEndpoints), so it
    # has none to fall back on (its TestNoEndpointsMetric, "Both policies are set").
    service = EVERYWHERE._replace(external_traffic_local=True, internal_traffic_local=True)
    for server in translated(service, ELSEWHERE):
        assert (server.real_servers, server.local_fallback) == ((), False)


def test_internal_local_policy_with_no_endpoint_here_stays_empty() -> None:
    (server,) = translated(WEB._replace(internal_traffic_local=True), ELSEWHERE)
    assert (server.real_servers, server.local_fallback) == ((), False)


def test_external_local_policy_with_an_endpoint_here_does_not_fall_back() -> None:
    servers = translated(EVERYWHERE._replace(external_traffic_local=True), MIXED)
    assert not any(server.local_fallback for server in servers)


def test_virtual_servers_of_one_port_share_their_real_servers() -> None:
    servers = translated(EVERYWHERE, MIXED)
    assert len({id(server.real_servers) for server in servers}) == 1


def test_keys_are_canonical_service_keys() -> None:
    (server,) = translated(WEB)
    assert server.key == ServiceKey(AF_INET, TCP, "10.96.0.20", 80)
    assert server.owner == "shop/web"


def test_sctp_ports_translate_like_tcp() -> None:
    service = WEB._replace(ports=(ServicePort("sig", SCTP, 3868),))
    slice_ = web_slice(*endpoints("10.244.1.5"), port=EndpointPort("sig", SCTP, 3868))
    (server,) = translated(service, slice_)
    assert server.key.protocol == SCTP
    assert addresses(server) == ["10.244.1.5"]


def test_a_ready_endpoint_in_any_slice_keeps_terminating_ones_of_others_out() -> None:
    ready = web_slice(*endpoints("10.244.1.5"), name="web-1")
    draining = web_slice(
        *endpoints("10.244.2.7", ready=False, serving=True, terminating=True), name="web-2"
    )
    (server,) = translated(WEB, ready, draining)
    assert addresses(server) == ["10.244.1.5"]


@pytest.mark.parametrize(
    ("name", "offered", "problem"),
    [
        ("wlc", frozenset(), None),
        ("wlc", frozenset({"wlc"}), None),
        ("fastest", frozenset(), f'unknown scheduler "fastest" (known: {KNOWN})'),
        ("mh", frozenset({"rr"}), 'scheduler "mh" is not in this kernel (it offers: rr)'),
    ],
)
def test_scheduler_problem_checks_a_flag_value_once(
    name: str, offered: frozenset[str], problem: str | None
) -> None:
    assert scheduler_problem(name, offered) == problem
