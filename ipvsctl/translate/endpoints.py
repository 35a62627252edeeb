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


def slice_view(endpoint_slice: EndpointSlice) -> SliceView:
    ready: dict[str, str] = {}
    fallback: dict[str, str] = {}
    for endpoint in endpoint_slice.endpoints:
        # The API lets consumers use only the first address of an endpoint; kube-proxy does.
        if not endpoint.addresses:
            continue
        if endpoint.ready:
            ready[endpoint.addresses[0]] = endpoint.node_name
        elif endpoint.serving and endpoint.terminating:
            fallback[endpoint.addresses[0]] = endpoint.node_name
    ports = {(p.name, p.protocol): p.port for p in reversed(endpoint_slice.ports)}
    return SliceView(
        endpoint_slice.family,
        ports,
        tuple(sorted(ready.items())),
        tuple(sorted(fallback.items())) if fallback else (),
    )


def endpoint_keys(
    views: Sequence[SliceView], port: ServicePort, family: int, local_node: str | None
) -> list[tuple[str, int]]:
    """The (address, port) of each endpoint serving `port` in `family`, sorted and unique.

    `local_node` keeps only the endpoints on that node (trafficPolicy Local);
    None keeps all.
    """
    wanted = (port.name, port.protocol)
    matching = [
        (view, number)
        for view in views
        if view.family == family and (number := view.ports.get(wanted)) is not None
    ]
    keys = _keys([(view.ready, number) for view, number in matching], local_node)
    if keys:
        return keys
    return _keys([(view.fallback, number) for view, number in matching], local_node)


def _keys(
    members: list[tuple[tuple[Member, ...], int]], local_node: str | None
) -> list[tuple[str, int]]:
    keys = [
        (address, number)
        for group, number in members
        for address, node in group
        if local_node is None or node == local_node
    ]
    # One slice is the common case, and its members are sorted and unique already.
    return keys if len(members) == 1 else sorted(set(keys))
