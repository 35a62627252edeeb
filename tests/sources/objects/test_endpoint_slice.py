"""slice_from_dict: a parsed EndpointSlice into an input slice, a note, or its problems."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipvsctl.model import AF_INET, AF_INET6, Protocol
from ipvsctl.model.inputs import Endpoint, EndpointPort, EndpointSlice
from ipvsctl.sources import Ignored, slice_from_dict
from ipvsctl.sources.objects.endpoint_slice import (
    PartialSlice,
    checked_slice,
    plain_slice,
    slice_from_api,
)

TCP, UDP = int(Protocol.TCP), int(Protocol.UDP)


def api_slice(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-abc12",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
        "endpoints": [{"addresses": ["10.244.1.5"], "nodeName": "node-1"}],
        **fields,
    }


def converted(obj: dict[str, Any]) -> EndpointSlice:
    result = slice_from_dict(obj)
    assert isinstance(result, EndpointSlice), result
    return result


def problems(obj: dict[str, Any]) -> list[str]:
    result = slice_from_dict(obj)
    assert isinstance(result, list), result
    return [str(error) for error in result]


def test_a_plain_slice() -> None:
    assert converted(api_slice()) == EndpointSlice(
        namespace="shop",
        name="web-abc12",
        service_name="web",
        family=AF_INET,
        ports=(EndpointPort("http", TCP, 8080),),
        endpoints=(Endpoint(("10.244.1.5",), node_name="node-1"),),
    )


def test_conditions_hints_and_zone_are_read() -> None:
    endpoint = {
        "addresses": ["FD00:10:244::5"],
        "conditions": {"ready": False, "serving": True, "terminating": True},
        "nodeName": "node-2",
        "zone": "zone-a",
        "hints": {"forZones": [{"name": "zone-a"}], "forNodes": [{"name": "node-2"}]},
    }
    result = converted(api_slice(addressType="IPv6", endpoints=[endpoint]))
    assert result.family == AF_INET6
    assert result.endpoints == (
        Endpoint(
            ("fd00:10:244::5",),
            ready=False,
            serving=True,
            terminating=True,
            node_name="node-2",
            zone="zone-a",
            hints_for_nodes=("node-2",),
            hints_for_zones=("zone-a",),
        ),
    )


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({}, (True, True, False)),
        ({"ready": None}, (True, True, False)),
        ({"ready": False}, (False, True, False)),
        ({"ready": False, "serving": False, "terminating": True}, (False, False, True)),
    ],
)
def test_absent_conditions_read_as_kube_proxy_reads_them(
    conditions: dict[str, Any], expected: tuple[bool, bool, bool]
) -> None:
    obj = api_slice(endpoints=[{"addresses": ["10.244.1.5"], "conditions": conditions}])
    (endpoint,) = converted(obj).endpoints
    assert (endpoint.ready, endpoint.serving, endpoint.terminating) == expected


def test_a_port_without_a_number_is_left_out() -> None:
    obj = api_slice(ports=[{"name": "all"}, {"name": "dns", "protocol": "UDP", "port": 53}])
    assert converted(obj).ports == (EndpointPort("dns", UDP, 53),)


def test_a_slice_without_ports_or_endpoints_is_empty() -> None:
    result = converted(api_slice(ports=None, endpoints=None))
    assert (result.ports, result.endpoints) == ((), ())


def test_an_fqdn_slice_is_ignored_with_a_note() -> None:
    obj = api_slice(addressType="FQDN", endpoints=[{"addresses": ["db.example.com"]}])
    assert slice_from_dict(obj) == Ignored(
        "EndpointSlice shop/web-abc12: ignored (addressType FQDN: IPVS needs IP addresses)"
    )


def test_a_slice_of_no_service_is_ignored_with_a_note() -> None:
    obj = api_slice()
    del obj["metadata"]["labels"]
    assert slice_from_dict(obj) == Ignored(
        "EndpointSlice shop/web-abc12: ignored (no kubernetes.io/service-name label)"
    )


P = "EndpointSlice shop/web-abc12: "


@pytest.mark.parametrize(
    ("obj", "messages"),
    [
        pytest.param(
            api_slice(endpoints=[{"addresses": ["10.244.1"]}]),
            [P + 'endpoints[0].addresses[0]: "10.244.1" is not an IP address'],
            id="address not an IP",
        ),
        pytest.param(
            api_slice(endpoints=[{"addresses": ["fd00::5"]}]),
            [P + 'endpoints[0].addresses[0]: "fd00::5" is not an IPv4 address'],
            id="IPv6 address in an IPv4 slice",
        ),
        pytest.param(
            api_slice(addressType="IPv6", endpoints=[{"addresses": ["10.244.1.5"]}]),
            [P + 'endpoints[0].addresses[0]: "10.244.1.5" is not an IPv6 address'],
            id="IPv4 address in an IPv6 slice",
        ),
        pytest.param(
            api_slice(endpoints=[{"addresses": []}]),
            [P + "endpoints[0].addresses: missing (an endpoint needs an address)"],
            id="endpoint without address",
        ),
        pytest.param(
            api_slice(addressType="IPv5"),
            [P + 'addressType: "IPv5" is not IPv4, IPv6 or FQDN'],
            id="bad address type",
        ),
        pytest.param(
            api_slice(ports=[{"name": "http", "port": 70000}]),
            [P + "ports[0].port: 70000 is not a port (1-65535)"],
            id="port out of range",
        ),
        pytest.param(
            api_slice(ports=[{"name": "http", "port": 80, "protocol": "tcp"}]),
            [P + 'ports[0].protocol: "tcp" is not a protocol (TCP, UDP, SCTP)'],
            id="bad protocol",
        ),
        pytest.param(
            api_slice(endpoints=[{"addresses": ["10.244.1.5"], "conditions": {"ready": "yes"}}]),
            [P + 'endpoints[0].conditions.ready: "yes" is not true or false'],
            id="condition not a boolean",
        ),
        pytest.param(
            api_slice(metadata={"namespace": "shop"}),
            ["EndpointSlice shop/(unnamed): metadata.name: missing"],
            id="no name",
        ),
    ],
)
def test_every_problem_is_one_line_naming_object_field_and_value(
    obj: dict[str, Any], messages: list[str]
) -> None:
    assert problems(obj) == messages


ABSENT = object()
SLICE_VALUES: dict[str, list[Any]] = {
    "addressType": ["IPv4", "IPv6", "FQDN", "ipv4", None, ["IPv4"]],
    "ports": [
        None,
        [],
        [{"port": 80}],
        [{"name": "dns", "protocol": "UDP", "port": 53}, {"name": "all"}],
        [{"name": None, "protocol": None, "port": None}],
        [{"port": 0}],
        [{"port": False}],
        [{"port": 80, "protocol": "udp"}],
        [{"port": 80, "protocol": {}}],
        [{"name": 5, "port": 80}],
        ["x"],
        "x",
    ],
    "endpoints": [
        None,
        [],
        [{"addresses": ["10.244.1.5", "10.244.1.6"]}],
        [{"addresses": ["fd00::5"]}],
        [{"addresses": ["FD00:0::5"], "zone": "a"}],
        [{"addresses": ["10.244.1.5"], "conditions": {"ready": False, "terminating": True}}],
        [{"addresses": ["10.244.1.5"], "conditions": None, "nodeName": None}],
        [{"addresses": ["10.244.1.5"], "conditions": {"serving": "yes"}}],
        [{"addresses": ["10.244.1.5"], "hints": {"forZones": [{"name": "a"}]}}],
        [{"addresses": ["10.244.1.05"]}],
        [{"addresses": []}],
        [{"addresses": [5]}],
        [{"addresses": "10.244.1.5"}],
        ["x"],
    ],
}
METADATA_VALUES: dict[str, list[Any]] = {
    "name": ["web-abc12", "", None, 5],
    "namespace": ["shop", "", None, ["x"]],
    "labels": [
        None,
        {},
        {"kubernetes.io/service-name": "api"},
        {"kubernetes.io/service-name": ""},
        {"kubernetes.io/service-name": 5},
        "x",
    ],
}
CHANGES = [
    *(
        (section, key, value)
        for section, values in (("", SLICE_VALUES), ("metadata", METADATA_VALUES))
        for key, choices in values.items()
        for value in (ABSENT, *choices)
    ),
    ("", "metadata", None),
]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(CHANGES), max_size=4))
def test_the_plain_reading_is_the_checked_one(changes: list[tuple[str, str, Any]]) -> None:
    obj = api_slice()
    for section, key, value in changes:
        target = obj[section] if section else obj
        if not isinstance(target, dict):
            continue
        if value is ABSENT:
            target.pop(key, None)
        else:
            target[key] = value
    endpoint_slice = plain_slice(obj)
    if endpoint_slice is not None:
        assert checked_slice(obj, drop_bad_endpoints=False) == PartialSlice(endpoint_slice, ())


def test_an_address_type_that_is_not_text_is_a_problem() -> None:
    assert problems(api_slice(addressType=["IPv4"])) == [
        'EndpointSlice shop/web-abc12: addressType: ["IPv4"] is not IPv4, IPv6 or FQDN'
    ]


def test_from_the_api_a_bad_endpoint_costs_that_endpoint_alone() -> None:
    obj = api_slice(
        endpoints=[
            {"addresses": ["10.244.1.5"], "nodeName": "node-1"},
            {"addresses": ["010.244.2.8"], "nodeName": "node-2"},
            {"addresses": ["10.244.3.9"], "conditions": {"ready": "yes"}},
            {"addresses": ["10.244.4.1"], "conditions": {"ready": False}},
        ]
    )
    result = slice_from_api(obj)
    assert isinstance(result, PartialSlice), result
    assert [e.addresses for e in result.value.endpoints] == [("10.244.1.5",), ("10.244.4.1",)]
    assert [error.field for error in result.dropped] == [
        "endpoints[1].addresses[0]",
        "endpoints[2].conditions.ready",
    ]
    # A manifest with the same slice is refused whole: apply changes nothing on bad input.
    assert [line.split(": ")[1] for line in problems(obj)] == [
        "endpoints[1].addresses[0]",
        "endpoints[2].conditions.ready",
    ]


def test_from_the_api_a_slice_wrong_outside_its_endpoints_is_still_refused_whole() -> None:
    result = slice_from_api(api_slice(ports=[{"name": "http", "protocol": "TCP", "port": 0}]))
    assert isinstance(result, list)
    assert [error.field for error in result] == ["ports[0].port"]


def test_from_the_api_a_good_slice_is_the_same_value_as_from_a_file() -> None:
    assert slice_from_api(api_slice()) == slice_from_dict(api_slice())
