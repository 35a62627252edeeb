"""Which endpoints of a Service's slices become the real servers of one service port.

As kube-proxy (pkg/proxy/topology.go CategorizeEndpoints): the ready endpoints;
when none is ready, those serving and terminating, so a rolling update never
leaves a Service with nothing. Locality (trafficPolicy Local) filters first and
the fallback applies to what is left, as kube-proxy does for its local set.

Translating 10,000 Services must stay well under half a second, so each slice
is indexed once per Service (`SliceView`), the real servers of a service port
are built once per family and locality and shared by its virtual servers, and
the common case (one slice, no locality, no hints) builds them in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ipvsctl.model import ForwardMethod, RealServer
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.model.inputs import EndpointPort, EndpointSlice, ServicePort


class SliceView(NamedTuple):
    """One slice, indexed: its endpoints by condition, each as {address: node name}.
    (A NamedTuple: one is built per slice per translation, and it builds several
    times faster than a dataclass.)"""

    family: int
    ports: tuple[EndpointPort, ...]
    ready: dict[str, str]
    fallback: dict[str, str]  # not ready, but serving and terminating
    # Topology hints by address, (for nodes, for zones); empty when no endpoint has any.
    hints: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


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
    return SliceView(endpoint_slice.family, endpoint_slice.ports, ready, fallback, hints)


def on_node(views: Sequence[SliceView], node_name: str) -> set[str]:
    """The addresses of the endpoints that run on node `node_name` (hairpin candidates).

    An endpoint without a nodeName is on no node we know, never on this one.
    """
    here: set[str] = set()
    for view in views if node_name else ():
        # Most Services have no endpoint here: look for the name in C first.
        if node_name in view.ready.values() or node_name in view.fallback.values():
            for group in (view.ready, view.fallback):
                here.update([address for address, node in group.items() if node == node_name])
    return here


def real_servers(
    views: Sequence[SliceView],
    port: ServicePort,
    family: int,
    forward: ForwardMethod,
    config: TranslateConfig,
    local: bool,
) -> tuple[RealServer, ...]:
    """The real servers for `port` in `family`: the endpoints serving it, by address.

    `local` keeps only the endpoints on this node (trafficPolicy Local);
    otherwise all, narrowed by topology hints when they apply (`topology_filter`).
    """
    if len(views) == 1 and not local and not views[0].hints:
        # The common case, in one pass: one slice, every member of it.
        view = views[0]
        number = _number(view.ports, port) if view.family == family else None
        if number is None:
            return ()
        return RealServer.endpoints(sorted(view.ready or view.fallback), number, forward)
    matching = [
        (view, number)
        for view in views
        if view.family == family and (number := _number(view.ports, port)) is not None
    ]
    local_node = config.node_name if local else None
    allowed = None
    # Hints narrow only Cluster-policy traffic (kube-proxy: topology.go).
    if not local and any(view.hints for view, _ in matching):
        serving = [view for view, _ in matching]
        allowed = topology_filter(serving, config.node_name, config.node_zone)
    keys = _keys([(view.ready, number) for view, number in matching], local_node, allowed)
    if not keys:
        keys = _keys([(view.fallback, number) for view, number in matching], local_node, allowed)
    return RealServer.from_keys(keys, forward)


def _number(ports: tuple[EndpointPort, ...], wanted: ServicePort) -> int | None:
    """The port number the slice gives the service port (by name and protocol), if any."""
    for port in ports:
        if port.name == wanted.name and port.protocol == wanted.protocol:
            return port.port
    return None


def topology_filter(views: Sequence[SliceView], node_name: str, zone: str) -> frozenset[str] | None:
    """The addresses hints allow for node `node_name` in `zone`, or None when hints do not
    apply.

    As kube-proxy's topologyModeFromHints (pkg/proxy/topology.go): node hints
    apply when every ready endpoint has some and one names this node; else zone
    hints, when every ready endpoint has some and one names this node's zone.
    Otherwise every endpoint serves, so a half-hinted slice never drops any.
    """
    ready = [view.hints.get(address, ((), ())) for view in views for address in view.ready]
    for which, here in ((0, node_name), (1, zone)):
        if ready and all(hint[which] for hint in ready) and any(here in h[which] for h in ready):
            return frozenset(
                address
                for view in views
                for address, hint in view.hints.items()
                if here in hint[which]
            )
    return None


def _keys(
    members: list[tuple[dict[str, str], int]],
    local_node: str | None,
    allowed: frozenset[str] | None,
) -> list[tuple[str, int]]:
    keys = {
        (address, number)
        for group, number in members
        for address, node in group.items()
        if (local_node is None or node == local_node) and (allowed is None or address in allowed)
    }
    return sorted(keys)
