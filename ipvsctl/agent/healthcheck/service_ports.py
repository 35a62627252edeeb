"""Which health check node ports to serve, and what each says (kube-proxy's
pkg/proxy/healthcheck): a `type: LoadBalancer` Service with
`externalTrafficPolicy: Local` and a `spec.healthCheckNodePort` tells cloud load
balancers how many of its ready endpoints run on this node, so they send
traffic only to nodes that can serve it without another hop.
"""

from __future__ import annotations

from collections.abc import Iterable

from ipvsctl.agent.cluster_cache import ClusterCache
from ipvsctl.model import address_family
from ipvsctl.model.inputs import EndpointSlice, ObjectKey, ObjectRef, Service


def health_check_port(
    service: Service, slices: Iterable[EndpointSlice], node_name: str
) -> tuple[int, ObjectRef, int] | None:
    """(port, Service, its ready endpoints on this node) when the Service has a health
    check node port, else None."""
    port = service.health_check_node_port
    if not port or service.type != "LoadBalancer" or not service.external_traffic_local:
        return None
    # One family's endpoints (the Service's first): a dual-stack pod is in two slices.
    family = address_family(service.cluster_ips[0]) if service.cluster_ips else None
    local = {
        endpoint.addresses[0]
        for endpoint_slice in slices
        if family is None or endpoint_slice.family == family
        for endpoint in endpoint_slice.endpoints
        if endpoint.addresses and endpoint.ready and endpoint.node_name == node_name
    }
    return port, service.ref, len(local)


class HealthPortTable:
    """The health check node ports the cached Services want, kept per Service so a change
    costs only that Service's look."""

    def __init__(self) -> None:
        self.wanted: dict[ObjectKey, tuple[int, ObjectRef, int]] = {}

    def update(
        self, cache: ClusterCache, node_name: str, changed: Iterable[ObjectKey] | None
    ) -> dict[int, tuple[ObjectRef, int]]:
        """Look again at the `changed` Services (None: at all of them); every port wanted,
        with its Service and count (the first Service by name wins a shared port)."""
        if changed is None:
            self.wanted.clear()
            changed = list(cache.services)
        for key in changed:
            service = cache.services.get(key)
            found = health_check_port(service, cache.slices_of(key), node_name) if service else None
            if found is None:
                self.wanted.pop(key, None)
            else:
                self.wanted[key] = found
        ports: dict[int, tuple[ObjectRef, int]] = {}
        for port, ref, local in sorted(self.wanted.values()):
            ports.setdefault(port, (ref, local))
        return ports
