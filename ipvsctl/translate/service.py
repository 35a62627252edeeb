"""One Service and its EndpointSlices into the virtual servers they imply (kube-proxy's
IPVS mode, pkg/proxy/ipvs/proxier.go syncService/syncEndpoint).

One virtual server per (service IP, service port) for its cluster IPs, external
IPs and load-balancer IPs, and per (node address, nodePort) for NodePorts. The
agent re-translates one Service at a time with this function.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    RealServer,
    ServiceFlag,
    ServiceKey,
    VirtualServer,
    full_netmask,
)
from ipvsctl.model.desired import (
    CLUSTER_IP,
    EXTERNAL_IP,
    LOAD_BALANCER,
    NODE_PORT,
    DesiredVirtualServer,
    TranslateConfig,
)
from ipvsctl.model.inputs import EndpointSlice, ObjectError, Service, ServicePort
from ipvsctl.translate.endpoints import on_node, real_servers, slice_view
from ipvsctl.translate.scheduling import service_scheduling

TYPES_WITH_NODE_PORTS = frozenset({"NodePort", "LoadBalancer"})
_PERSISTENT = int(ServiceFlag.PERSISTENT)
_new = tuple.__new__


def is_ours(service: Service) -> bool:
    """Whether the Service gets virtual servers at all (kube-proxy's ShouldSkipService)."""
    return service.type != "ExternalName" and bool(service.cluster_ips) and not service.proxy_name


def translate_service(
    service: Service, slices: Iterable[EndpointSlice], config: TranslateConfig
) -> tuple[tuple[DesiredVirtualServer, ...], tuple[ObjectError, ...]]:
    """The Service's virtual servers, or (when it is invalid) none and its errors.

    `slices` may hold other Services' slices too: only those labelled with this
    Service's name in its namespace are used.
    """
    if not is_ours(service):
        return (), ()
    scheduling = service_scheduling(service, config.scheduler, config.schedulers)
    if isinstance(scheduling, list):
        return (), tuple(scheduling)
    name, namespace = service.name, service.namespace
    views = [
        slice_view(endpoint_slice)
        for endpoint_slice in slices
        if endpoint_slice.service_name == name and endpoint_slice.namespace == namespace
    ]
    scheduler, forward, flags = scheduling.scheduler, scheduling.forward, int(scheduling.flags)
    timeout = 0
    if service.affinity_timeout > 0:
        # The netmask stays the host mask (below): affinity per client.
        flags |= _PERSISTENT
        timeout = service.affinity_timeout
    owner = f"{namespace}/{name}"
    here = on_node(views, config.node_name)
    # Cloud health checks may probe a load-balancer IP (kube-proxy lets them through its
    # port filter: KUBE-HEALTH-CHECK-NODE-PORT); only Local-policy load balancers have one.
    health_port = 0
    if service.type == "LoadBalancer" and service.external_traffic_local:
        health_port = service.health_check_node_port
    # The real servers (and those of them on this node) of each (port, family, locality),
    # built once and shared by every virtual server that needs them.
    built: dict[tuple[ServicePort, int, bool], tuple[tuple[RealServer, ...], tuple[str, ...]]] = {}
    desired: list[DesiredVirtualServer] = []
    seen: set[ServiceKey] = set()
    for port, address, number, bound, local, kind in _virtual_servers(service, config):
        family = AF_INET6 if ":" in address else AF_INET
        # Built as tuples, skipping __new__'s checks, as 10,000s are built: the address is
        # canonical (the input types and TranslateConfig hold only canonical ones), the
        # flags are a plain settable int, and every field is given.
        key = _new(ServiceKey, (family, port.protocol, address, number, 0))
        # An external IP may repeat a load-balancer IP: the first one stands.
        if key in seen:
            continue
        seen.add(key)
        virtual = _new(VirtualServer, (key, scheduler, flags, timeout, full_netmask(family), ""))
        found = built.get((port, family, local))
        if found is None:
            servers = real_servers(views, port, family, forward, config, local)
            on_this_node: tuple[str, ...] = ()
            if here:
                on_this_node = tuple(sorted({rs.address for rs in servers if rs.address in here}))
            found = built[(port, family, local)] = (servers, on_this_node)
        servers, on_this_node = found
        if kind == LOAD_BALANCER:
            ranges, health = service.load_balancer_source_ranges, health_port
        else:
            ranges, health = (), 0
        desired.append(
            _new(
                DesiredVirtualServer,
                (virtual, servers, owner, bound, kind, local, ranges, on_this_node, health),
            )
        )
    return tuple(desired), ()


def _virtual_servers(
    service: Service, config: TranslateConfig
) -> Iterator[tuple[ServicePort, str, int, bool, bool, str]]:
    """(service port, address, port, bound, local traffic policy, kind) of every virtual
    server."""
    node_addresses, local = config.node_addresses, config.local_addresses
    # A load-balancer IP also listed as an external IP stays a load balancer (the first
    # of a key stands): its loadBalancerSourceRanges still apply, as in kube-proxy.
    external = [(address, LOAD_BALANCER) for address in service.load_balancer_ips]
    external += [(address, EXTERNAL_IP) for address in service.external_ips]
    node_ports = service.type in TYPES_WITH_NODE_PORTS
    internal_local, external_local = service.internal_traffic_local, service.external_traffic_local
    for port in service.ports:
        for address in service.cluster_ips:
            yield port, address, port.port, True, internal_local, CLUSTER_IP
        for address, kind in external:
            bound = address not in node_addresses and address not in local
            yield port, address, port.port, bound, external_local, kind
        if node_ports and port.node_port:
            for address in node_addresses:
                yield port, address, port.node_port, False, external_local, NODE_PORT
