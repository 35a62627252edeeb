"""A v1 Node, as the API returns it, into an `inputs.NodeInfo`: the addresses that
serve NodePorts and the zone that picks topology hints.

Only the agent's own Node is read. kube-proxy takes the node's IPs the same way
(InternalIP before ExternalIP); hostnames and other address types are not IPs
IPVS could listen on, so they are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipvsctl.model.inputs import NodeInfo, ObjectError, ObjectRef
from ipvsctl.model.printable import printable
from ipvsctl.sources.objects.fields import FieldReader, show_value

ZONE_LABEL = "topology.kubernetes.io/zone"
ADDRESS_TYPES = ("InternalIP", "ExternalIP")  # in the order they are listed in NodeInfo


class NodeRef(ObjectRef):
    """A Node as the subject of an error: cluster-scoped, so it prints without a namespace."""

    def __str__(self) -> str:
        return f"{printable(self.kind)} {printable(self.name)}"


def node_from_dict(obj: Mapping[str, Any]) -> NodeInfo | list[ObjectError]:
    """The node's name, IP addresses and zone, or every problem found in them."""
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = metadata.get("name")
    reader = FieldReader(NodeRef("Node", "", name if isinstance(name, str) and name else "?"))
    if not isinstance(name, str) or not name:
        reader.problem("metadata.name", "missing" if name in (None, "") else "not a string")
    labels = reader.mapping(metadata, "labels", "metadata.labels")
    zone = labels.get(ZONE_LABEL, "")
    if not isinstance(zone, str):
        reader.problem(f'metadata.labels["{ZONE_LABEL}"]', f"{show_value(zone)} is not a string")
        zone = ""
    addresses = _addresses(reader, reader.mapping(obj, "status", "status"))
    if reader.errors:
        return reader.errors
    return NodeInfo(name=reader.ref.name, addresses=addresses, zone=zone)


def _addresses(reader: FieldReader, status: Mapping[str, Any]) -> tuple[str, ...]:
    by_type: dict[str, list[str]] = {kind: [] for kind in ADDRESS_TYPES}
    for index, entry in enumerate(reader.sequence(status, "addresses", "status.addresses")):
        path = f"status.addresses[{index}]"
        if not isinstance(entry, Mapping):
            reader.problem(path, f"{show_value(entry)} is not a mapping")
            continue
        kind = entry.get("type")
        if kind not in by_type:
            continue  # Hostname, InternalDNS, ExternalDNS: names, not addresses
        address = reader.address(entry.get("address"), f"{path}.address")
        if address is not None:
            by_type[kind].append(address)
    found: list[str] = []
    for kind in ADDRESS_TYPES:
        for address in by_type[kind]:
            if address not in found:  # one address listed twice is one place to listen
                found.append(address)
    return tuple(found)
