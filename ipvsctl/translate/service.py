"""One Service and its EndpointSlices into the virtual servers they imply (kube-proxy's
IPVS mode, pkg/proxy/ipvs/proxier.go syncService/syncEndpoint).

One virtual server per (service IP, service port) for its cluster IPs, external
IPs and load-balancer IPs, and per (node address, nodePort) for NodePorts. The
agent re-translates one Service at a time with this function.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ipvsctl.model import (
    ForwardMethod,
    RealServer,
    ServiceFlag,
    ServiceKey,
    VirtualServer,
    address_family,
)
from ipvsctl.model.desired import DesiredVirtualServer, TranslateConfig
from ipvsctl.model.inputs import EndpointSlice, ObjectError, Service, ServicePort
from ipvsctl.translate.endpoints import SliceView, Topology, endpoint_keys, slice_view
from ipvsctl.translate.scheduling import service_scheduling

TYPES_WITH_NODE_PORTS = frozenset({"NodePort", "LoadBalancer"})


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
    views = [
        slice_view(endpoint_slice)
        for endpoint_slice in slices
        if endpoint_slice.service_name == service.name
        and endpoint_slice.namespace == service.namespace
    ]
    flags, timeout = int(scheduling.flags), 0
    if service.affinity_timeout > 0:
        # The netmask stays the host mask (VirtualServer's default): affinity per client.
        flags |= int(ServiceFlag.PERSISTENT)
        timeout = service.affinity_timeout
    owner = f"{service.namespace}/{service.name}"
    real_servers = _RealServers(views, scheduling.forward, config)
    desired: list[DesiredVirtualServer] = []
    seen: set[ServiceKey] = set()
    for port, address, number, bound, local in _virtual_servers(service, config):
        key = ServiceKey(address_family(address), port.protocol, address, number)
        # An external IP may repeat a load-balancer IP: the first one stands.
        if key in seen:
            continue
        seen.add(key)
        virtual = VirtualServer(key, scheduling.scheduler, flags, timeout)
        servers = real_servers.of(port, key.family, local)
        desired.append(DesiredVirtualServer(virtual, servers, owner, bound))
    return tuple(desired), ()


def _virtual_servers(
    service: Service, config: TranslateConfig
) -> Iterator[tuple[ServicePort, str, int, bool, bool]]:
    """(service port, address, port, bound, local traffic policy) of every virtual server."""
    node_addresses, local = config.node_addresses, config.local_addresses
    external = service.external_ips + service.load_balancer_ips
    node_ports = service.type in TYPES_WITH_NODE_PORTS
    internal_local, external_local = service.internal_traffic_local, service.external_traffic_local
    for port in service.ports:
        for address in service.cluster_ips:
            yield port, address, port.port, True, internal_local
        for address in external:
            bound = address not in node_addresses and address not in local
            yield port, address, port.port, bound, external_local
        if node_ports and port.node_port:
            for address in node_addresses:
                yield port, address, port.node_port, False, external_local


class _RealServers:
    """The real servers of a Service's ports, built once per (port, family, locality) and
    shared by every virtual server that needs them."""

    def __init__(
        self, views: list[SliceView], forward: ForwardMethod, config: TranslateConfig
    ) -> None:
        self.views, self.forward, self.node_name = views, forward, config.node_name
        # Hints narrow only Cluster-policy traffic (kube-proxy: topology.go).
        self.topology = Topology(config.node_name, config.node_zone)
        self.built: dict[tuple[ServicePort, int, bool], tuple[RealServer, ...]] = {}

    def of(self, port: ServicePort, family: int, local: bool) -> tuple[RealServer, ...]:
        servers = self.built.get((port, family, local))
        if servers is None:
            if local:
                keys = endpoint_keys(self.views, port, family, self.node_name)
            else:
                keys = endpoint_keys(self.views, port, family, None, self.topology)
            servers = self.built[(port, family, local)] = RealServer.endpoints(keys, self.forward)
        return servers
