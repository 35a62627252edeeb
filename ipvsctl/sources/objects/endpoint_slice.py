"""A discovery.k8s.io/v1 EndpointSlice, as parsed from YAML/JSON or the API, into an
`inputs.EndpointSlice`.

Conditions follow kube-proxy (pkg/proxy/endpointslicecache.go): absent `ready`
and `serving` mean true, absent `terminating` false. FQDN slices and slices of
no Service are skipped with a note: IPVS can use neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ipvsctl.model import AF_INET, AF_INET6, address_family, canonical_address
from ipvsctl.model.inputs import (
    SERVICE_NAME_LABEL,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    ObjectError,
)
from ipvsctl.sources.objects.fields import PROTOCOLS, FieldReader, show_value
from ipvsctl.sources.objects.metadata import DEFAULT_NAMESPACE, Ignored, labels_of, read_identity

FAMILIES = {"IPv4": int(AF_INET), "IPv6": int(AF_INET6)}
FQDN = "FQDN"


class PartialSlice(NamedTuple):
    """An EndpointSlice less its malformed endpoints (`value`), and their problems."""

    value: EndpointSlice
    dropped: tuple[ObjectError, ...]


def slice_from_dict(obj: Mapping[str, Any]) -> EndpointSlice | Ignored | list[ObjectError]:
    """The EndpointSlice, a note on why it is left alone, or every problem found in it."""
    endpoint_slice = plain_slice(obj)
    if endpoint_slice is not None:
        return endpoint_slice
    checked = checked_slice(obj, drop_bad_endpoints=False)
    return checked.value if isinstance(checked, PartialSlice) else checked


def slice_from_api(
    obj: Mapping[str, Any],
) -> EndpointSlice | PartialSlice | Ignored | list[ObjectError]:
    """As `slice_from_dict`, but an endpoint with a problem (an address such as
    010.244.2.8) costs that endpoint alone: the agent serves the slice's others and
    reports the problem (`PartialSlice`). `apply` refuses the whole input instead."""
    endpoint_slice = plain_slice(obj)
    if endpoint_slice is not None:
        return endpoint_slice
    checked = checked_slice(obj, drop_bad_endpoints=True)
    if isinstance(checked, PartialSlice) and not checked.dropped:
        return checked.value
    return checked


def checked_slice(
    obj: Mapping[str, Any], drop_bad_endpoints: bool
) -> PartialSlice | Ignored | list[ObjectError]:
    """The EndpointSlice (with the problems of the endpoints dropped for them, when
    `drop_bad_endpoints`), a note on why it is left alone, or every problem found in it,
    read field by field."""
    reader = read_identity(obj, "EndpointSlice")
    service_name = labels_of(obj, reader).get(SERVICE_NAME_LABEL)
    address_type = obj.get("addressType")
    if address_type == FQDN:
        return Ignored(f"{reader.ref}: ignored (addressType FQDN: IPVS needs IP addresses)")
    if not isinstance(address_type, str) or address_type not in FAMILIES:
        reader.problem("addressType", f"{show_value(address_type)} is not IPv4, IPv6 or FQDN")
    family = (
        FAMILIES.get(address_type, int(AF_INET)) if isinstance(address_type, str) else int(AF_INET)
    )
    ports = _ports(reader, obj)
    endpoints, dropped = _endpoints(reader, obj, family, drop_bad_endpoints)
    if reader.errors:
        return reader.errors
    if not isinstance(service_name, str) or not service_name:
        return Ignored(f"{reader.ref}: ignored (no {SERVICE_NAME_LABEL} label)")
    value = EndpointSlice(
        namespace=reader.ref.namespace,
        name=reader.ref.name,
        service_name=service_name,
        family=family,
        ports=ports,
        endpoints=endpoints,
    )
    return PartialSlice(value, dropped)


def plain_slice(obj: object) -> EndpointSlice | None:
    """The slice, if every field it has is well-formed and it belongs to a Service; else
    None, and `checked_slice` reads it field by field to name each problem or to say why
    it is left alone.

    What `checked_slice` gives for such a slice, faster: `apply -f` reads every slice of
    the cluster.
    """
    if type(obj) is not dict:
        return None
    metadata = obj.get("metadata")
    if type(metadata) is not dict:
        return None
    name = metadata.get("name")
    namespace = metadata.get("namespace", DEFAULT_NAMESPACE)
    labels = metadata.get("labels")
    if (
        type(name) is not str
        or not name
        or type(namespace) is not str
        or not namespace
        or type(labels) is not dict
    ):
        return None
    service_name = labels.get(SERVICE_NAME_LABEL)
    address_type = obj.get("addressType")
    if type(service_name) is not str or not service_name or type(address_type) is not str:
        return None
    family = FAMILIES.get(address_type)
    ports = _plain_ports(obj.get("ports", []))
    items = obj.get("endpoints", [])
    if family is None or ports is None or type(items) is not list:
        return None
    endpoints: list[Endpoint] = []
    for item in items:
        endpoint = _plain_endpoint(item, family)
        if endpoint is None:
            return None
        endpoints.append(endpoint)
    return EndpointSlice(namespace, name, service_name, family, ports, tuple(endpoints))


def _plain_ports(items: object) -> tuple[EndpointPort, ...] | None:
    if type(items) is not list:
        return None
    ports: list[EndpointPort] = []
    for item in items:
        if type(item) is not dict:
            return None
        name = item.get("name", "")
        protocol_name = item.get("protocol", "TCP")
        number = item.get("port")
        protocol = PROTOCOLS.get(protocol_name, 0) if type(protocol_name) is str else 0
        if type(name) is not str or not protocol:
            return None
        if number is None:  # "all ports": left out, as `_ports` leaves it
            continue
        if type(number) is not int or not 1 <= number <= 65535:
            return None
        ports.append(EndpointPort(name, protocol, number))
    return tuple(ports)


def _ports(reader: FieldReader, obj: Mapping[str, Any]) -> tuple[EndpointPort, ...]:
    ports: list[EndpointPort] = []
    for index, item in enumerate(reader.sequence(obj, "ports", "ports")):
        path = f"ports[{index}]"
        if not isinstance(item, Mapping):
            reader.problem(path, f"{show_value(item)} is not a mapping")
            continue
        name = reader.text(item, "name", f"{path}.name")
        protocol = reader.protocol(item, "protocol", f"{path}.protocol")
        # The API allows an absent port ("all ports"); kube-proxy cannot use it, nor can we.
        if item.get("port") is not None:
            number = reader.port(item["port"], f"{path}.port")
            if number:
                ports.append(EndpointPort(name, protocol, number))
    return tuple(ports)


def _endpoints(
    reader: FieldReader, obj: Mapping[str, Any], family: int, drop_bad: bool
) -> tuple[tuple[Endpoint, ...], tuple[ObjectError, ...]]:
    """The endpoints, and (when `drop_bad`) the problems of those left out for them;
    otherwise their problems are the slice's (on `reader`)."""
    endpoints: list[Endpoint] = []
    dropped: list[ObjectError] = []
    for index, item in enumerate(reader.sequence(obj, "endpoints", "endpoints")):
        endpoint = _plain_endpoint(item, family)
        if endpoint is not None:
            endpoints.append(endpoint)
            continue
        own = FieldReader(reader.ref)
        endpoint = _checked_endpoint(own, item, f"endpoints[{index}]", family)
        if not own.errors and endpoint is not None:
            endpoints.append(endpoint)
        elif drop_bad:
            dropped.extend(own.errors)
        else:
            reader.errors.extend(own.errors)
    return tuple(endpoints), tuple(dropped)


def _checked_endpoint(reader: FieldReader, item: object, path: str, family: int) -> Endpoint | None:
    """One endpoint read field by field; its problems go to `reader`."""
    if not isinstance(item, Mapping):
        reader.problem(path, f"{show_value(item)} is not a mapping")
        return None
    addresses = _addresses(reader, item, f"{path}.addresses", family)
    conditions = reader.mapping(item, "conditions", f"{path}.conditions")
    ready = reader.flag(conditions, "ready", f"{path}.conditions.ready", True)
    hints = reader.mapping(item, "hints", f"{path}.hints")
    return Endpoint(
        addresses=addresses,
        ready=ready,
        serving=reader.flag(conditions, "serving", f"{path}.conditions.serving", True),
        terminating=reader.flag(conditions, "terminating", f"{path}.conditions.terminating", False),
        node_name=reader.text(item, "nodeName", f"{path}.nodeName"),
        zone=reader.text(item, "zone", f"{path}.zone"),
        hints_for_nodes=_hint_names(reader, hints, "forNodes", f"{path}.hints"),
        hints_for_zones=_hint_names(reader, hints, "forZones", f"{path}.hints"),
    )


def _plain_endpoint(item: object, family: int) -> Endpoint | None:
    """The endpoint, if every field it has is well-formed; else None, and `_endpoints`
    reads it field by field to name each problem.

    Hot: a 10,000-Service cluster has some 100,000 endpoints, and most are plain.
    """
    if type(item) is not dict:
        return None
    texts = item.get("addresses")
    if type(texts) is not list or not texts:
        return None
    ipv6 = family == AF_INET6
    for text in texts:
        # canonical_address keeps the family it reads by the ":" (an IPv6 address has one).
        if type(text) is not str or (":" in text) is not ipv6:
            return None
    try:
        addresses = tuple([canonical_address(text) for text in texts])
    except ValueError:
        return None
    if len(item) == 1:  # only addresses: ready, serving, not terminating
        return Endpoint(addresses)
    conditions = item.get("conditions")
    if conditions is None:
        conditions = {}
    elif type(conditions) is not dict:
        return None
    ready = conditions.get("ready")
    serving = conditions.get("serving")
    terminating = conditions.get("terminating")
    node_name = item.get("nodeName")
    zone = item.get("zone")
    if (
        item.get("hints") is not None
        or (ready is not None and type(ready) is not bool)
        or (serving is not None and type(serving) is not bool)
        or (terminating is not None and type(terminating) is not bool)
        or (node_name is not None and type(node_name) is not str)
        or (zone is not None and type(zone) is not str)
    ):
        return None
    return Endpoint(
        addresses,
        ready is not False,
        serving is not False,
        terminating is True,
        node_name or "",
        zone or "",
    )


def _addresses(
    reader: FieldReader, item: Mapping[str, Any], path: str, family: int
) -> tuple[str, ...]:
    texts = reader.sequence(item, "addresses", path)
    if not texts:
        reader.problem(path, "missing (an endpoint needs an address)")
    found: list[str] = []
    for index, text in enumerate(texts):
        address = reader.address(text, f"{path}[{index}]")
        if address is None:
            continue
        if family and address_family(address) != family:
            wanted = "IPv4" if family == AF_INET else "IPv6"
            reader.problem(f"{path}[{index}]", f"{show_value(text)} is not an {wanted} address")
            continue
        found.append(address)
    return tuple(found)


def _hint_names(
    reader: FieldReader, hints: Mapping[str, Any], key: str, path: str
) -> tuple[str, ...]:
    names: list[str] = []
    for index, item in enumerate(reader.sequence(hints, key, f"{path}.{key}")):
        if isinstance(item, Mapping):
            names.append(reader.text(item, "name", f"{path}.{key}[{index}].name"))
        else:
            reader.problem(f"{path}.{key}[{index}]", f"{show_value(item)} is not a mapping")
    return tuple(names)
