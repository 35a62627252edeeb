"""This node's Node into a NodeInfo: InternalIPs then ExternalIPs, canonical, and its zone."""

from __future__ import annotations

from typing import Any

from ipvsctl.model.inputs import NodeInfo
from ipvsctl.sources.objects.node import node_from_dict


def a_node(addresses: list[Any], labels: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1", "labels": labels or {}},
        "status": {"addresses": addresses},
    }


def test_internal_addresses_come_first_then_external_each_as_listed() -> None:
    addresses = [
        {"type": "ExternalIP", "address": "203.0.113.7"},
        {"type": "Hostname", "address": "node-1"},
        {"type": "InternalIP", "address": "10.0.0.1"},
        {"type": "InternalDNS", "address": "node-1.cluster.internal"},
        {"type": "InternalIP", "address": "2001:DB8::1"},
        {"type": "ExternalIP", "address": "10.0.0.1"},  # listed twice: one place to listen
    ]
    node = a_node(addresses, {"topology.kubernetes.io/zone": "zone-a"})
    assert node_from_dict(node) == NodeInfo(
        "node-1", ("10.0.0.1", "2001:db8::1", "203.0.113.7"), "zone-a"
    )


def test_a_node_without_addresses_or_zone_has_none() -> None:
    assert node_from_dict({"metadata": {"name": "node-1"}}) == NodeInfo("node-1")


def test_a_bad_address_is_an_error_naming_the_node_and_field() -> None:
    errors = node_from_dict(a_node([{"type": "InternalIP", "address": "10.0.0.300"}]))
    assert isinstance(errors, list)
    assert [str(error) for error in errors] == [
        'Node node-1: status.addresses[0].address: "10.0.0.300" is not an IP address'
    ]


def test_a_node_without_a_name_is_an_error() -> None:
    errors = node_from_dict({"metadata": {}})
    assert isinstance(errors, list)
    assert [error.field for error in errors] == ["metadata.name"]
