"""Which endpoints of a Service's slices become the real servers of one service port.

As kube-proxy (pkg/proxy/topology.go CategorizeEndpoints): the ready endpoints;
when none is ready, those serving and terminating, so a rolling update never
leaves a Service with nothing. Locality (trafficPolicy Local) filters first and
the fallback applies to what is left, as kube-proxy does for its local set.

Translating 10,000 Services must stay well under a second, so each slice is
indexed once per Service (`SliceView`), and the real servers of a service port
are built once per family and locality and shared by its virtual servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ipvsctl.model.inputs import EndpointSlice, ServicePort

# An endpoint as a real server needs it: (address, node name).
Member = tuple[str, str]


class SliceView(NamedTuple):
    """One slice, indexed: its port numbers by (name, protocol), its endpoints by
    condition, each sorted by address and unique. (A NamedTuple: one is built per
    slice per translation, and it builds several times faster than a dataclass.)"""

    family: int
    ports: dict[tuple[str, int], int]
    ready: tuple[Member, ...]
    fallback: tuple[Member, ...]  # not ready, but serving and terminating
    # Topology hints by address, (for nodes, for zones); empty when no endpoint has any.
    hints: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


class Topology(NamedTuple):
    """Where this node is, for EndpointSlice hints: its name and its zone label."""

    node_name: str
    zone: str


def slice_view(endpoint_slice: EndpointSlice) -> SliceView:
    ready: dict[str, str] = {}
    fallback: dict[str, str] = {}
    hints: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for endpoint in endpoint_slice.endpoints:
        # The API lets consumers use only the first address of an endpoint; kube-proxy does.
        if not endpoint.addresses:
            continue
        address = endpoint.addresses[0]
        if endpoint.ready:
            ready[address] = endpoint.node_name
        elif endpoint.serving and endpoint.terminating:
            fallback[address] = endpoint.node_name
        if endpoint.hints_for_nodes or endpoint.hints_for_zones:
            hints[address] = (endpoint.hints_for_nodes, endpoint.hints_for_zones)
    ports = {(p.name, p.protocol): p.port for p in reversed(endpoint_slice.ports)}
    return SliceView(
        endpoint_slice.family,
        ports,
        tuple(sorted(ready.items())),
        tuple(sorted(fallback.items())) if fallback else (),
        hints,
    )


def endpoint_keys(
    views: Sequence[SliceView],
    port: ServicePort,
    family: int,
    local_node: str | None,
    topology: Topology | None = None,
) -> list[tuple[str, int]]:
    """The (address, port) of each endpoint serving `port` in `family`, sorted and unique.

    `local_node` keeps only the endpoints on that node (trafficPolicy Local);
    None keeps all, narrowed by `topology` hints when they apply (`topology_filter`).
    """
    wanted = (port.name, port.protocol)
    matching = [
        (view, number)
        for view in views
        if view.family == family and (number := view.ports.get(wanted)) is not None
    ]
    allowed = None
    if local_node is None and topology is not None and any(view.hints for view, _ in matching):
        allowed = topology_filter([view for view, _ in matching], topology)
    keys = _keys([(view.ready, number) for view, number in matching], local_node, allowed)
    if keys:
        return keys
    return _keys([(view.fallback, number) for view, number in matching], local_node, allowed)


def topology_filter(views: Sequence[SliceView], topology: Topology) -> frozenset[str] | None:
    """The addresses hints allow for this node, or None when hints do not apply.

    As kube-proxy's topologyModeFromHints (pkg/proxy/topology.go): node hints
    apply when every ready endpoint has some and one names this node; else zone
    hints, when every ready endpoint has some and one names this node's zone.
    Otherwise every endpoint serves, so a half-hinted slice never drops any.
    """
    ready = [view.hints.get(address, ((), ())) for view in views for address, _ in view.ready]
    for which, here in ((0, topology.node_name), (1, topology.zone)):
        if ready and all(hint[which] for hint in ready) and any(here in h[which] for h in ready):
            return frozenset(
                address
                for view in views
                for address, hint in view.hints.items()
                if here in hint[which]
            )
    return None


def _keys(
    members: list[tuple[tuple[Member, ...], int]],
    local_node: str | None,
    allowed: frozenset[str] | None = None,
) -> list[tuple[str, int]]:
    keys = [
        (address, number)
        for group, number in members
        for address, node in group
        if (local_node is None or node == local_node) and (allowed is None or address in allowed)
    ]
    # One slice is the common case, and its members are sorted and unique already.
    return keys if len(members) == 1 else sorted(set(keys))
