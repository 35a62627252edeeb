"""EndpointSlice topology hints, as kube-proxy's pkg/proxy/topology.go applies them."""

from __future__ import annotations

import pytest

from ipvsctl.model import AF_INET, AF_INET6, Protocol
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort
from ipvsctl.translate import translate_service

TCP = int(Protocol.TCP)
CONFIG = TranslateConfig(node_name="node-a", node_zone="zone-a")
WEB = Service("shop", "web", cluster_ips=("10.96.0.20",), ports=(ServicePort("http", TCP, 80),))


def endpoint(
    address: str, *, nodes: tuple[str, ...] = (), zones: tuple[str, ...] = (), **conditions: bool
) -> Endpoint:
    return Endpoint((address,), hints_for_nodes=nodes, hints_for_zones=zones, **conditions)


def real_addresses(
    service: Service, *members: Endpoint, config: TranslateConfig = CONFIG
) -> list[str]:
    port = EndpointPort("http", TCP, 8080)
    slice_ = EndpointSlice("shop", "web-1", "web", AF_INET, (port,), members)
    servers, errors = translate_service(service, [slice_], config)
    assert errors == ()
    (server,) = servers
    return [real.address for real in server.real_servers]


ZONED = (
    endpoint("10.244.1.1", zones=("zone-a",)),
    endpoint("10.244.2.1", zones=("zone-b",)),
    endpoint("10.244.3.1", zones=("zone-a", "zone-c")),
)


def test_hints_of_a_slice_of_the_other_family_change_nothing() -> None:
    port = EndpointPort("http", TCP, 8080)
    hinted = EndpointSlice(
        "shop", "web-6", "web", AF_INET6, (port,), (endpoint("fd00::1", zones=("zone-a",)),)
    )
    plain = EndpointSlice("shop", "web-4", "web", AF_INET, (port,), (endpoint("10.244.2.1"),))
    for slices, expected in (([hinted], []), ([hinted, plain], ["10.244.2.1"])):
        servers, errors = translate_service(WEB, slices, CONFIG)
        assert errors == () and [real.address for real in servers[0].real_servers] == expected


def test_zone_hints_keep_the_endpoints_hinted_for_this_nodes_zone() -> None:
    assert real_addresses(WEB, *ZONED) == ["10.244.1.1", "10.244.3.1"]


def test_node_hints_win_over_zone_hints_when_every_endpoint_has_them() -> None:
    members = (
        endpoint("10.244.1.1", nodes=("node-a",), zones=("zone-a",)),
        endpoint("10.244.1.2", nodes=("node-b",), zones=("zone-a",)),
    )
    assert real_addresses(WEB, *members) == ["10.244.1.1"]


def test_node_hints_for_other_nodes_only_fall_back_to_zone_hints() -> None:
    members = (
        endpoint("10.244.1.1", nodes=("node-b",), zones=("zone-a",)),
        endpoint("10.244.2.1", nodes=("node-c",), zones=("zone-b",)),
    )
    assert real_addresses(WEB, *members) == ["10.244.1.1"]


@pytest.mark.parametrize(
    ("members", "config"),
    [
        pytest.param(
            (*ZONED, endpoint("10.244.4.1")), CONFIG, id="one ready endpoint without hints"
        ),
        pytest.param(
            ZONED,
            TranslateConfig(node_name="node-a", node_zone="zone-z"),
            id="no hint for this zone",
        ),
        pytest.param(ZONED, TranslateConfig(node_name="node-a"), id="node without a zone label"),
    ],
)
def test_hints_that_do_not_apply_leave_every_endpoint(
    members: tuple[Endpoint, ...], config: TranslateConfig
) -> None:
    everyone = sorted(e.addresses[0] for e in members)
    assert real_addresses(WEB, *members, config=config) == everyone


def test_a_not_ready_endpoint_without_hints_does_not_disable_them() -> None:
    members = (*ZONED, endpoint("10.244.4.1", ready=False, serving=False))
    assert real_addresses(WEB, *members) == ["10.244.1.1", "10.244.3.1"]


def test_the_terminating_fallback_is_narrowed_by_the_same_hints() -> None:
    terminating = {"ready": False, "serving": True, "terminating": True}
    members = (
        endpoint("10.244.1.1", zones=("zone-a",), **terminating),
        endpoint("10.244.2.1", zones=("zone-b",), **terminating),
    )
    # No ready endpoint: the hints do not apply (kube-proxy decides on ready ones only).
    assert real_addresses(WEB, *members) == ["10.244.1.1", "10.244.2.1"]
    ready = endpoint("10.244.9.1", zones=("zone-b",))
    assert real_addresses(WEB, *members, ready) == ["10.244.9.1"]


def test_hints_never_narrow_local_traffic_policy() -> None:
    local = WEB._replace(internal_traffic_local=True)
    members = (
        Endpoint(("10.244.1.1",), node_name="node-a", hints_for_zones=("zone-b",)),
        Endpoint(("10.244.2.1",), node_name="node-b", hints_for_zones=("zone-a",)),
    )
    assert real_addresses(local, *members) == ["10.244.1.1"]
