"""The three resources the agent watches, what each object becomes, and where it goes.

An object from the API (a list item or a watch event's object, a plain dict)
becomes the same value `apply -f` makes of it (`sources.objects.object_from_dict`), or
a `NodeInfo` for the node's own Node, and is handed to a `ClusterSink` keyed
by (namespace, name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ipvsctl.model.inputs import (
    EndpointSlice,
    NodeInfo,
    ObjectError,
    ObjectKey,
    Refused,
    Service,
)
from ipvsctl.sources.objects.any_kind import object_from_dict
from ipvsctl.sources.objects.endpoint_slice import PartialSlice, slice_from_api
from ipvsctl.sources.objects.metadata import Ignored, uid_of
from ipvsctl.sources.objects.node import node_from_dict

Kind = Literal["Service", "EndpointSlice", "Node"]
ClusterValue = Service | EndpointSlice | NodeInfo
Decoded = ClusterValue | PartialSlice | Ignored | list[ObjectError]


class ClusterSink(Protocol):
    """Where reflectors put what they read: the agent's cache of the cluster.

    Called from each reflector's own thread (one per kind), so concurrently for
    different kinds. Values are immutable and compare by value: an object that
    did not change between two lists gives an equal value, so the sink can tell
    a change from a repeat.
    """

    def replace(
        self,
        kind: Kind,
        values: Mapping[ObjectKey, ClusterValue],
        invalid: Mapping[ObjectKey, Refused],
    ) -> None:
        """After each (re)list: every valid object of `kind`, and the malformed ones with
        their problems (each keeps the last good version held, if any); anything else
        held is gone."""

    def upsert(self, kind: Kind, key: ObjectKey, value: ClusterValue) -> None:
        """An object was added or changed (or a watch replayed it unchanged)."""

    def delete(self, kind: Kind, key: ObjectKey) -> None:
        """An object is gone, or no longer one ipvsctl reads (e.g. a slice lost its
        Service label). May name a key the sink does not hold."""

    def invalid(self, kind: Kind, key: ObjectKey, refused: Refused) -> None:
        """An object whose new version has problems: the last good version held, if any
        (of the same object: the same uid), stays until a good one comes (one bad update
        never costs a Service); one never good counts as absent."""


@dataclass(frozen=True)
class Resource:
    """One resource to list and watch, and how its objects are read."""

    kind: Kind
    api_version: str  # what list items lack and object_from_dict needs
    path: str  # the collection across all namespaces
    decode: Callable[[Mapping[str, Any]], Decoded]
    only_name: str = ""  # read just this object (fieldSelector metadata.name=)

    @property
    def field_selector(self) -> str:
        return f"metadata.name={self.only_name}" if self.only_name else ""


SERVICES = Resource("Service", "v1", "/api/v1/services", object_from_dict)
ENDPOINT_SLICES = Resource(
    "EndpointSlice",
    "discovery.k8s.io/v1",
    "/apis/discovery.k8s.io/v1/endpointslices",
    slice_from_api,
)


def node_resource(node_name: str) -> Resource:
    """This node's Node object alone."""
    return Resource("Node", "v1", "/api/v1/nodes", node_from_dict, only_name=node_name)


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return ("", "")
    namespace, name = metadata.get("namespace"), metadata.get("name")
    return (
        namespace if isinstance(namespace, str) else "",
        name if isinstance(name, str) else "",
    )


def resource_version(obj: Mapping[str, Any]) -> str:
    """The object's metadata.resourceVersion, "" when it has none."""
    metadata = obj.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else ""


def decode(resource: Resource, obj: dict[str, Any]) -> Decoded:
    """What `obj` (an item of this resource, from a list or a watch) is to ipvsctl."""
    # List items carry no apiVersion/kind (the list has them); the converter
    # dispatches on both, as it does for manifests.
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    return resource.decode(obj)


def wanted(resource: Resource, obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is one this resource reads. A field selector the server did not
    apply (an emulator, a proxy) must not let another node's Node in."""
    return not resource.only_name or object_key(obj)[1] == resource.only_name


def read_object(
    resource: Resource, obj: dict[str, Any]
) -> tuple[ClusterValue | None, Refused | None]:
    """What `obj` gives the sink: a value to hold (None: nothing, e.g. an object ipvsctl
    leaves alone), and its problems (None: none). A slice with malformed endpoints
    gives both: the slice less them, and theirs."""
    value = decode(resource, obj)
    if isinstance(value, PartialSlice):
        return value.value, Refused(value.dropped, uid_of(obj))
    if isinstance(value, list):
        return None, Refused(tuple(value), uid_of(obj))
    if isinstance(value, Ignored):
        return None, None
    return value, None


def deliver(sink: ClusterSink, resource: Resource, obj: dict[str, Any]) -> None:
    """Hand one added or modified object to the sink as what it now is."""
    key = object_key(obj)
    value, refused = read_object(resource, obj)
    if value is not None:
        sink.upsert(resource.kind, key, value)
    elif refused is None:
        sink.delete(resource.kind, key)  # it may have been one we read before this change
    if refused is not None:
        sink.invalid(resource.kind, key, refused)
