"""A v1 Service, as parsed from YAML/JSON or the API, into an `inputs.Service`.

Checks what the API server would check for the fields ipvsctl reads (ranges,
families, duplicates), since `apply -f` reads objects no API server has seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipvsctl.model import Protocol, address_family, canonical_address
from ipvsctl.model.inputs import (
    DEFAULT_AFFINITY_TIMEOUT,
    OUR_ANNOTATIONS,
    SERVICE_PROXY_NAME_LABEL,
    ObjectError,
    Service,
    ServicePort,
)
from ipvsctl.sources.fields import PROTOCOLS, FieldReader, show_value
from ipvsctl.sources.metadata import (
    DEFAULT_NAMESPACE,
    annotations_of,
    labels_of,
    read_identity,
)

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
TYPES_WITH_NODE_PORTS = ("NodePort", "LoadBalancer")
TRAFFIC_POLICIES = ("Cluster", "Local")
AFFINITIES = ("None", "ClientIP")
MAX_AFFINITY_TIMEOUT = 86400  # the API server's limit for timeoutSeconds
HEADLESS = "None"


def service_from_dict(obj: Mapping[str, Any]) -> Service | list[ObjectError]:
    """The Service, or every problem found in it."""
    service = plain_service(obj)
    return service if service is not None else checked_service(obj)


def checked_service(obj: Mapping[str, Any]) -> Service | list[ObjectError]:
    """The Service, or every problem found in it, read field by field."""
    reader = read_identity(obj, "Service")
    if obj.get("spec") is None:
        reader.problem("spec", "missing")
    spec = reader.mapping(obj, "spec", "spec")
    service_type = reader.choice(spec, "type", "spec.type", SERVICE_TYPES)
    cluster_ips, headless = _cluster_ips(reader, spec, service_type)
    service = Service(
        namespace=reader.ref.namespace,
        name=reader.ref.name,
        type=service_type,
        cluster_ips=cluster_ips,
        external_ips=reader.addresses(spec, "externalIPs", "spec.externalIPs"),
        load_balancer_ips=_load_balancer_ips(reader, obj),
        ports=_ports(reader, spec, service_type, needs_ports=not headless),
        affinity_timeout=_affinity_timeout(reader, spec),
        internal_traffic_local=_is_local(reader, spec, "internalTrafficPolicy"),
        external_traffic_local=_is_local(reader, spec, "externalTrafficPolicy"),
        annotations=_our_annotations(reader, obj),
        proxy_name=_proxy_name(reader, obj),
        load_balancer_source_ranges=_source_ranges(reader, spec),
        health_check_node_port=reader.port(
            spec.get("healthCheckNodePort"), "spec.healthCheckNodePort", optional=True
        ),
    )
    return reader.errors if reader.errors else service


def _cluster_ips(
    reader: FieldReader, spec: Mapping[str, Any], service_type: str
) -> tuple[tuple[str, ...], bool]:
    """The cluster IPs (canonical), and whether the Service is headless."""
    single = spec.get("clusterIP")
    if spec.get("clusterIPs") is None:
        texts: list[Any] = [] if single in (None, "") else [single]
        paths = ["spec.clusterIP"]
    else:
        texts = reader.sequence(spec, "clusterIPs", "spec.clusterIPs")
        paths = [f"spec.clusterIPs[{index}]" for index in range(len(texts))]
        if single not in (None, "") and texts and single != texts[0]:
            reader.problem(
                "spec.clusterIP",
                f"{show_value(single)} differs from spec.clusterIPs[0] {show_value(texts[0])}",
            )
    if service_type == "ExternalName":
        return (), True
    if texts == [HEADLESS]:
        return (), True
    addresses = tuple(
        address
        for text, path in zip(texts, paths, strict=False)
        if (address := reader.address(text, path)) is not None
    )
    if len(texts) > 2:
        reader.problem("spec.clusterIPs", "at most two addresses (one IPv4, one IPv6)")
    elif len(addresses) == 2 and address_family(addresses[0]) == address_family(addresses[1]):
        reader.problem("spec.clusterIPs", "two addresses of the same family (dual-stack)")
    # Without a cluster IP, kube-proxy skips the Service (ShouldSkipService): so do we.
    return addresses, not addresses


def _load_balancer_ips(reader: FieldReader, obj: Mapping[str, Any]) -> tuple[str, ...]:
    status = reader.mapping(obj, "status", "status")
    balancer = reader.mapping(status, "loadBalancer", "status.loadBalancer")
    found: list[str] = []
    for index, ingress in enumerate(
        reader.sequence(balancer, "ingress", "status.loadBalancer.ingress")
    ):
        path = f"status.loadBalancer.ingress[{index}]"
        if not isinstance(ingress, Mapping):
            reader.problem(path, f"{show_value(ingress)} is not a mapping")
        elif ingress.get("ipMode") == "Proxy":
            # The load balancer proxies to the node and does not send the IP
            # itself: kube-proxy programs nothing for it (KEP-1860), nor do we.
            continue
        elif ingress.get("ip") not in (None, ""):  # a hostname-only ingress has no IP for us
            address = reader.address(ingress["ip"], f"{path}.ip")
            if address is not None and address not in found:
                found.append(address)
    return tuple(found)


def _ports(
    reader: FieldReader, spec: Mapping[str, Any], service_type: str, needs_ports: bool
) -> tuple[ServicePort, ...]:
    items = reader.sequence(spec, "ports", "spec.ports")
    if not items and needs_ports:
        reader.problem("spec.ports", "missing (a Service with a cluster IP needs a port)")
    ports: list[ServicePort] = []
    names: set[str] = set()
    numbers: set[tuple[int, int]] = set()
    for index, item in enumerate(items):
        path = f"spec.ports[{index}]"
        if not isinstance(item, Mapping):
            reader.problem(path, f"{show_value(item)} is not a mapping")
            continue
        name = reader.text(item, "name", f"{path}.name")
        protocol = reader.protocol(item, "protocol", f"{path}.protocol")
        number = reader.port(item.get("port"), f"{path}.port")
        node_port = reader.port(item.get("nodePort"), f"{path}.nodePort", optional=True)
        if node_port and service_type not in TYPES_WITH_NODE_PORTS:
            reader.problem(f"{path}.nodePort", f"{node_port}: a {service_type} Service has none")
        if not name and len(items) > 1:
            reader.problem(f"{path}.name", "missing (required when a Service has several ports)")
        elif name in names:
            reader.problem(f"{path}.name", f"{show_value(name)} names an earlier port too")
        if number and (number, protocol) in numbers:
            reader.problem(f"{path}.port", f"{number}/{Protocol(protocol).name} is listed twice")
        names.add(name)
        numbers.add((number, protocol))
        ports.append(ServicePort(name, protocol, number, node_port))
    return tuple(ports)


def _affinity_timeout(reader: FieldReader, spec: Mapping[str, Any]) -> int:
    if reader.choice(spec, "sessionAffinity", "spec.sessionAffinity", AFFINITIES) != "ClientIP":
        return 0
    path = "spec.sessionAffinityConfig"
    config = reader.mapping(spec, "sessionAffinityConfig", path)
    client = reader.mapping(config, "clientIP", f"{path}.clientIP")
    seconds = client.get("timeoutSeconds")
    if seconds is None:
        return DEFAULT_AFFINITY_TIMEOUT
    field = f"{path}.clientIP.timeoutSeconds"
    return reader.integer(seconds, field, 1, MAX_AFFINITY_TIMEOUT, "a timeout in seconds")


def _is_local(reader: FieldReader, spec: Mapping[str, Any], key: str) -> bool:
    return reader.choice(spec, key, f"spec.{key}", TRAFFIC_POLICIES) == "Local"


def _our_annotations(reader: FieldReader, obj: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    found = annotations_of(obj, reader)
    kept: list[tuple[str, str]] = []
    for key in sorted(OUR_ANNOTATIONS):
        if key in found:
            value = found[key]
            if isinstance(value, str):
                kept.append((key, value))
            else:
                reader.problem(
                    f'metadata.annotations["{key}"]', f"{show_value(value)} is not a string"
                )
    return tuple(kept)


def _proxy_name(reader: FieldReader, obj: Mapping[str, Any]) -> str:
    value = labels_of(obj, reader).get(SERVICE_PROXY_NAME_LABEL)
    return value if isinstance(value, str) else ""


def _source_ranges(reader: FieldReader, spec: Mapping[str, Any]) -> tuple[str, ...]:
    path = "spec.loadBalancerSourceRanges"
    ranges = (
        reader.cidr(value, f"{path}[{index}]")
        for index, value in enumerate(reader.sequence(spec, "loadBalancerSourceRanges", path))
    )
    return tuple(cidr for cidr in ranges if cidr is not None)


def plain_service(obj: object) -> Service | None:
    """The Service, if it is a common one and every field it has is well-formed; else
    None, and `checked_service` reads it field by field to name each problem.

    What `checked_service` gives for such a Service, faster: `apply -f` reads every
    Service of the cluster. Less common fields (session affinity, load balancer
    status and source ranges, our annotations, headless Services) take the checked path.
    """
    if type(obj) is not dict:
        return None
    metadata = obj.get("metadata")
    spec = obj.get("spec")
    if type(metadata) is not dict or type(spec) is not dict:
        return None
    name = metadata.get("name")
    namespace = metadata.get("namespace", DEFAULT_NAMESPACE)
    if type(name) is not str or not name or type(namespace) is not str or not namespace:
        return None
    proxy_name = _plain_proxy_name(metadata)
    service_type = spec.get("type")
    if service_type is None or service_type == "":
        service_type = "ClusterIP"
    elif service_type not in TYPES_WITH_IPS:
        return None
    cluster_ips = _plain_cluster_ips(spec)
    ports = _plain_ports(spec.get("ports"), service_type)
    external_ips = _plain_addresses(spec.get("externalIPs"))
    internal_local = _plain_choice(TRAFFIC_LOCAL, spec.get("internalTrafficPolicy"))
    external_local = _plain_choice(TRAFFIC_LOCAL, spec.get("externalTrafficPolicy"))
    health_check_node_port = spec.get("healthCheckNodePort")
    if (
        proxy_name is None
        or cluster_ips is None
        or ports is None
        or external_ips is None
        or internal_local is None
        or external_local is None
        or spec.get("sessionAffinity") not in (None, "", "None")
        or spec.get("loadBalancerSourceRanges") is not None
        or not _no_load_balancer_status(obj.get("status"))
        or not _is_port(health_check_node_port, optional=True)
    ):
        return None
    return Service(
        namespace=namespace,
        name=name,
        type=service_type,
        cluster_ips=cluster_ips,
        external_ips=external_ips,
        ports=ports,
        internal_traffic_local=internal_local,
        external_traffic_local=external_local,
        proxy_name=proxy_name,
        health_check_node_port=health_check_node_port or 0,
    )


TYPES_WITH_IPS = ("ClusterIP", "NodePort", "LoadBalancer")
# A traffic policy as `_is_local` reads it (absent or empty: Cluster).
TRAFFIC_LOCAL = {"": False, "Cluster": False, "Local": True}


def _plain_choice(choices: dict[str, bool], value: object) -> bool | None:
    if value is None:
        return False
    return choices.get(value) if type(value) is str else None


def _is_port(value: object, optional: bool = False) -> bool:
    return (value is None and optional) or (type(value) is int and 1 <= value <= 65535)


def _plain_proxy_name(metadata: dict[str, Any]) -> str | None:
    """The proxy-name label, if the labels are plain and none of our annotations is set."""
    labels = metadata.get("labels")
    annotations = metadata.get("annotations")
    if annotations is not None and (
        type(annotations) is not dict or any(key in annotations for key in OUR_ANNOTATIONS)
    ):
        return None
    if labels is None:
        return ""
    if type(labels) is not dict:
        return None
    value = labels.get(SERVICE_PROXY_NAME_LABEL)
    if value is None:
        return ""
    return value if type(value) is str else None


def _plain_addresses(texts: object) -> tuple[str, ...] | None:
    """Canonical addresses, if `texts` is absent or a list of IP addresses."""
    if texts is None:
        return ()
    if type(texts) is not list or any(type(text) is not str for text in texts):
        return None
    try:
        return tuple([canonical_address(text) for text in texts])
    except (OSError, ValueError):
        return None


def _plain_cluster_ips(spec: dict[str, Any]) -> tuple[str, ...] | None:
    """One cluster IP, or two of different families, as `_cluster_ips` reads them."""
    single = spec.get("clusterIP")
    texts = spec.get("clusterIPs")
    if texts is None:
        texts = [single]
    elif type(texts) is not list or (single not in (None, "") and texts and single != texts[0]):
        return None
    if not texts or len(texts) > 2 or texts == [HEADLESS]:
        return None
    addresses = _plain_addresses(texts)
    if not addresses or (
        len(addresses) == 2 and address_family(addresses[0]) == address_family(addresses[1])
    ):
        return None
    return addresses


def _plain_ports(items: object, service_type: str) -> tuple[ServicePort, ...] | None:
    if type(items) is not list or not items:
        return None
    ports: list[ServicePort] = []
    names: set[str] = set()
    numbers: set[tuple[int, int]] = set()
    for item in items:
        if type(item) is not dict:
            return None
        name = item.get("name", "")
        protocol_name = item.get("protocol", "TCP")
        protocol = PROTOCOLS.get(protocol_name, 0) if type(protocol_name) is str else 0
        number: Any = item.get("port")
        node_port: Any = item.get("nodePort")
        if (
            type(name) is not str
            or (not name and len(items) > 1)
            or name in names
            or not protocol
            or not _is_port(number)
            or (number, protocol) in numbers
            or not _is_port(node_port, optional=True)
            or (node_port is not None and service_type not in TYPES_WITH_NODE_PORTS)
        ):
            return None
        names.add(name)
        numbers.add((number, protocol))
        ports.append(ServicePort(name, protocol, number, node_port or 0))
    return tuple(ports)


def _no_load_balancer_status(status: object) -> bool:
    if status is None:
        return True
    if type(status) is not dict:
        return False
    balancer = status.get("loadBalancer")
    return balancer is None or (type(balancer) is dict and balancer.get("ingress") is None)
