"""One Service and its EndpointSlices into the virtual servers they imply (kube-proxy's
IPVS mode, pkg/proxy/ipvs/proxier.go syncService/syncEndpoint).

One virtual server per (service IP, service port) for its cluster IPs, external
IPs and load-balancer IPs, and per (node address, nodePort) for NodePorts. The
agent re-translates one Service at a time with this function.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter

from ipvsctl.model import (
    ForwardMethod,
    RealServer,
    ServiceFlag,
    ServiceKey,
    VirtualServer,
    address_family,
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
from ipvsctl.translate.endpoints import SliceView, Topology, endpoint_keys, slice_view
from ipvsctl.translate.scheduling import service_scheduling

TYPES_WITH_NODE_PORTS = frozenset({"NodePort", "LoadBalancer"})
_NODE_OF = itemgetter(1)  # of an endpoint (address, node name)


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
    # Cloud health checks may probe a load-balancer IP (kube-proxy lets them through its
    # port filter: KUBE-HEALTH-CHECK-NODE-PORT); only Local-policy load balancers have one.
    health_port = 0
    if service.type == "LoadBalancer" and service.external_traffic_local:
        health_port = service.health_check_node_port
    desired: list[DesiredVirtualServer] = []
    seen: set[ServiceKey] = set()
    for port, address, number, bound, local, kind in _virtual_servers(service, config):
        key = ServiceKey(address_family(address), port.protocol, address, number)
        # An external IP may repeat a load-balancer IP: the first one stands.
        if key in seen:
            continue
        seen.add(key)
        virtual = VirtualServer(key, scheduling.scheduler, flags, timeout)
        servers, here = real_servers.of(port, key.family, local)
        if kind == LOAD_BALANCER:
            ranges, health = service.load_balancer_source_ranges, health_port
        else:
            ranges, health = (), 0
        desired.append(
            DesiredVirtualServer(virtual, servers, owner, bound, kind, local, ranges, here, health)
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


class _RealServers:
    """The real servers of a Service's ports, built once per (port, family, locality) and
    shared by every virtual server that needs them, with the addresses among them that
    run on this node (hairpin candidates)."""

    def __init__(
        self, views: list[SliceView], forward: ForwardMethod, config: TranslateConfig
    ) -> None:
        self.views, self.forward, self.node_name = views, forward, config.node_name
        # Hints narrow only Cluster-policy traffic (kube-proxy: topology.go).
        self.topology = Topology(config.node_name, config.node_zone)
        self.built: dict[
            tuple[ServicePort, int, bool], tuple[tuple[RealServer, ...], tuple[str, ...]]
        ] = {}
        # An endpoint without a nodeName is on no node we know, never on this one.
        # Most Services have no endpoint here: look for this node's name in C first.
        name = config.node_name
        self.here: set[str] = set()
        for view in views if name else ():
            for group in (view.ready, view.fallback):
                if group and name in map(_NODE_OF, group):
                    self.here.update([address for address, node in group if node == name])

    def of(
        self, port: ServicePort, family: int, local: bool
    ) -> tuple[tuple[RealServer, ...], tuple[str, ...]]:
        """The real servers, and the addresses of those on this node."""
        found = self.built.get((port, family, local))
        if found is None:
            if local:
                keys = endpoint_keys(self.views, port, family, self.node_name)
            else:
                keys = endpoint_keys(self.views, port, family, None, self.topology)
            servers = RealServer.endpoints(keys, self.forward)
            here: tuple[str, ...] = ()
            if self.here:
                here = tuple(sorted({address for address, _ in keys if address in self.here}))
            found = self.built[(port, family, local)] = (servers, here)
        return found
