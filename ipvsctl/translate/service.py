"""One Service and its EndpointSlices into the virtual servers they imply (kube-proxy's
IPVS mode, pkg/proxy/ipvs/proxier.go syncService/syncEndpoint).

One virtual server per (service IP, service port) for its cluster IPs, external
IPs and load-balancer IPs, and per (node address, nodePort) for NodePorts, all
of the Service's own IP families (`Service.families`). The agent re-translates
one Service at a time with this function.

`service_warnings` says what translation left out of a Service that still
works: an external or load-balancer IP of a family the Service does not have
(kube-proxy's per-family proxiers skip it too). Warnings never refuse a Service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
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
from ipvsctl.translate.endpoints import SliceView, on_node, real_servers, slice_view
from ipvsctl.translate.scheduling import service_scheduling

TYPES_WITH_NODE_PORTS = frozenset({"NodePort", "LoadBalancer"})
_PERSISTENT = int(ServiceFlag.PERSISTENT)
_FAMILY_NAMES: dict[int, str] = {AF_INET: "IPv4", AF_INET6: "IPv6"}
_new = tuple.__new__


def is_ours(service: Service) -> bool:
    """Whether the Service gets virtual servers at all (kube-proxy's ShouldSkipService)."""
    return service.type != "ExternalName" and bool(service.cluster_ips) and not service.proxy_name


def service_warnings(service: Service) -> tuple[ObjectError, ...]:
    """What `translate_service` skips of a Service it otherwise serves (see the module)."""
    if not is_ours(service):
        return ()
    families = service.families
    problems = []
    for path, addresses in (
        ("spec.externalIPs", service.external_ips),
        ("status.loadBalancer.ingress", service.load_balancer_ips),
    ):
        for address in addresses:
            if _family(address) not in families:
                problems.append(
                    ObjectError(
                        service.ref,
                        path,
                        f"{address} is {_FAMILY_NAMES[_family(address)]}, not a family of the"
                        f" Service ({', '.join(_FAMILY_NAMES[f] for f in sorted(families))}):"
                        " skipped",
                    )
                )
    return tuple(problems)


def _family(address: str) -> int:
    return AF_INET6 if ":" in address else AF_INET


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
    # The real servers (and those of them on this node) of each (port, family, locality,
    # kind is external), built once and shared by every virtual server that needs them.
    built: dict[tuple[ServicePort, int, bool, bool], _Servers] = {}
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
        # Only Local-policy external addresses may fall back (`_servers_of`): others share.
        # And only to endpoints the Service uses: with internalTrafficPolicy Local too,
        # kube-proxy has no cluster endpoints to fall back on (UsesClusterEndpoints).
        external = local and kind != CLUSTER_IP and not service.internal_traffic_local
        found = built.get((port, family, local, external))
        if found is None:
            found = built[(port, family, local, external)] = _servers_of(
                views, port, family, forward, config, local, external, here
            )
        servers, on_this_node, fallback = found
        if kind == LOAD_BALANCER:
            ranges, health = service.load_balancer_source_ranges, health_port
        else:
            ranges, health = (), 0
        desired.append(
            _new(
                DesiredVirtualServer,
                (
                    virtual,
                    servers,
                    owner,
                    bound,
                    kind,
                    local,
                    ranges,
                    on_this_node,
                    health,
                    fallback,
                ),
            )
        )
    return tuple(desired), ()


# (real servers, those of them on this node, whether they are the cluster's in place of
# this node's none)
_Servers = tuple[tuple[RealServer, ...], tuple[str, ...], bool]


def _servers_of(
    views: list[SliceView],
    port: ServicePort,
    family: int,
    forward: ForwardMethod,
    config: TranslateConfig,
    local: bool,
    external: bool,
    here: set[str],
) -> _Servers:
    """The real servers of one (port, family, locality, kind).

    externalTrafficPolicy Local with no endpoint on this node takes the cluster's
    endpoints, as kube-proxy's IPVS mode does (kubernetes #97081: "Allow access from
    local PODs even if no local endpoints exist"), so a pod here still reaches its
    Service's load-balancer IP; the health check node port answers 503 meanwhile, so
    load balancers send nothing here, and the netfilter table keeps other external
    clients out (`DesiredVirtualServer.local_fallback`). internalTrafficPolicy Local
    stays empty: kube-proxy gives cluster IPs no such fallback, nor external ones of a
    Service whose internal policy is Local too (it then uses no cluster endpoints).
    """
    servers = real_servers(views, port, family, forward, config, local)
    fallback = local and external and not servers
    if fallback:
        servers = real_servers(views, port, family, forward, config, False)
    on_this_node: tuple[str, ...] = ()
    if here:
        on_this_node = tuple(sorted({rs.address for rs in servers if rs.address in here}))
    return servers, on_this_node, fallback


def _virtual_servers(
    service: Service, config: TranslateConfig
) -> Iterator[tuple[ServicePort, str, int, bool, bool, str]]:
    """(service port, address, port, bound, local traffic policy, kind) of every virtual
    server."""
    families = service.families
    node_addresses = [address for address in config.node_addresses if _family(address) in families]
    local = config.local_addresses
    # Addresses of other families are skipped (`service_warnings` tells of them).
    # A load-balancer IP also listed as an external IP stays a load balancer (the first
    # of a key stands): its loadBalancerSourceRanges still apply, as in kube-proxy.
    external = [(address, LOAD_BALANCER) for address in service.load_balancer_ips]
    external += [(address, EXTERNAL_IP) for address in service.external_ips]
    external = [(address, kind) for address, kind in external if _family(address) in families]
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
