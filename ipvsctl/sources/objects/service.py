"""A v1 Service, as parsed from YAML/JSON or the API, into an `inputs.Service`.

Checks what the API server would check for the fields ipvsctl reads (ranges,
families, duplicates), since `apply -f` reads objects no API server has seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipvsctl.model import AF_INET, AF_INET6, Protocol, address_family
from ipvsctl.model.inputs import (
    DEFAULT_AFFINITY_TIMEOUT,
    OUR_ANNOTATIONS,
    SERVICE_PROXY_NAME_LABEL,
    ObjectError,
    Service,
    ServicePort,
)
from ipvsctl.sources.objects.fields import FieldReader, show_value
from ipvsctl.sources.objects.metadata import (
    annotations_of,
    labels_of,
    read_identity,
    uid_of,
)

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
TYPES_WITH_NODE_PORTS = ("NodePort", "LoadBalancer")
TRAFFIC_POLICIES = ("Cluster", "Local")
AFFINITIES = ("None", "ClientIP")
MAX_AFFINITY_TIMEOUT = 86400  # the API server's limit for timeoutSeconds
HEADLESS = "None"
IP_FAMILIES: dict[str, int] = {"IPv4": AF_INET, "IPv6": AF_INET6}
FAMILY_NAMES: dict[int, str] = {AF_INET: "IPv4", AF_INET6: "IPv6"}


def service_from_dict(obj: Mapping[str, Any]) -> Service | list[ObjectError]:
    """The Service, or every problem found in it, read field by field."""
    reader = read_identity(obj, "Service")
    if obj.get("spec") is None:
        reader.problem("spec", "missing")
    spec = reader.mapping(obj, "spec", "spec")
    service_type = reader.choice(spec, "type", "spec.type", SERVICE_TYPES)
    cluster_ips, headless = _cluster_ips(reader, spec, service_type)
    ip_families = _ip_families(reader, spec, cluster_ips)
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
        ip_families=ip_families,
        uid=uid_of(obj),
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


def _ip_families(
    reader: FieldReader, spec: Mapping[str, Any], cluster_ips: tuple[str, ...]
) -> tuple[int, ...]:
    """spec.ipFamilies as address families. As the API server checks: known names, at
    most one of each family, and clusterIPs[i] of family ipFamilies[i] (a cluster IP of
    a family the Service does not have would be served on the wrong proxier's side)."""
    families: list[int] = []
    for index, name in enumerate(reader.sequence(spec, "ipFamilies", "spec.ipFamilies")):
        path = f"spec.ipFamilies[{index}]"
        known = IP_FAMILIES.get(name) if isinstance(name, str) else None
        if known is None:
            reader.problem(path, f"{show_value(name)} is not one of IPv4, IPv6")
        elif known in families:
            reader.problem(path, f"{show_value(name)} is listed twice")
        else:
            families.append(known)
    if not families:
        return ()
    listed = spec.get("clusterIPs") is not None
    for index, address in enumerate(cluster_ips):
        path = f"spec.clusterIPs[{index}]" if listed else "spec.clusterIP"
        family = FAMILY_NAMES[address_family(address)]
        if index >= len(families):
            reader.problem(path, f"{address} is {family}, and spec.ipFamilies has no family for it")
        elif address_family(address) != families[index]:
            wanted = FAMILY_NAMES[families[index]]
            reader.problem(path, f"{address} is {family}, but spec.ipFamilies[{index}] is {wanted}")
    return tuple(families)


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
