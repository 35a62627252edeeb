"""One Service and its EndpointSlices into the virtual servers they imply (kube-proxy's
IPVS mode, pkg/proxy/ipvs/proxier.go syncService/syncEndpoint).

One virtual server per (service IP, service port) for its cluster IPs, external
IPs and load-balancer IPs, and per (node address, nodePort) for NodePorts. The
agent re-translates one Service at a time with this function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

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
from ipvsctl.translate.endpoints import SliceView, build_real_servers, endpoint_keys, slice_view
from ipvsctl.translate.scheduling import Scheduling, service_scheduling

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
    flags, timeout = scheduling.flags, 0
    if service.affinity_timeout > 0:
        # The netmask stays the host mask (VirtualServer's default): affinity per client.
        flags |= ServiceFlag.PERSISTENT
        timeout = service.affinity_timeout
    owner = f"{service.namespace}/{service.name}"
    desired: list[DesiredVirtualServer] = []
    seen: set[tuple[int, int, str, int]] = set()
    for port, address, number, bound, servers in _addresses_of_ports(
        service, views, scheduling, config
    ):
        family = address_family(address)
        # An external IP may repeat a load-balancer IP: the first one stands.
        if (family, port.protocol, address, number) in seen:
            continue
        seen.add((family, port.protocol, address, number))
        virtual = VirtualServer(
            ServiceKey(family, port.protocol, address, number), scheduling.scheduler, flags, timeout
        )
        desired.append(DesiredVirtualServer(virtual, servers(family), owner, bound))
    return tuple(desired), ()


RealServersOf = Callable[[int], tuple[RealServer, ...]]


def _addresses_of_ports(
    service: Service, views: list[SliceView], scheduling: Scheduling, config: TranslateConfig
) -> Iterator[tuple[ServicePort, str, int, bool, RealServersOf]]:
    """(service port, address, port, bound, real servers by family) of every virtual server."""
    node_addresses, local = config.node_addresses, config.local_addresses
    external = service.external_ips + service.load_balancer_ips
    node_ports = service.type in TYPES_WITH_NODE_PORTS
    for port in service.ports:
        internal = _RealServersOfPort(
            views, port, scheduling.forward, config, service.internal_traffic_local
        )
        for address in service.cluster_ips:
            yield port, address, port.port, True, internal
        if external or (node_ports and port.node_port):
            outside = internal
            if service.external_traffic_local != service.internal_traffic_local:
                outside = _RealServersOfPort(
                    views, port, scheduling.forward, config, service.external_traffic_local
                )
            for address in external:
                bound = address not in node_addresses and address not in local
                yield port, address, port.port, bound, outside
            if node_ports and port.node_port:
                for address in node_addresses:
                    yield port, address, port.node_port, False, outside


class _RealServersOfPort:
    """The real servers of one service port per family, built on first use and then shared
    by every virtual server of the port."""

    def __init__(
        self,
        views: list[SliceView],
        port: ServicePort,
        forward: ForwardMethod,
        config: TranslateConfig,
        local: bool,
    ) -> None:
        self.views, self.port, self.forward = views, port, forward
        self.node = config.node_name if local else None
        self.built: dict[int, tuple[RealServer, ...]] = {}

    def __call__(self, family: int) -> tuple[RealServer, ...]:
        servers = self.built.get(family)
        if servers is None:
            keys = endpoint_keys(self.views, self.port, family, self.node)
            servers = self.built[family] = build_real_servers(keys, self.forward)
        return servers
