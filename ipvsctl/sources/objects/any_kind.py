"""One parsed Kubernetes object (a plain dict) into an input value, whatever its kind.

The manifest reader and the API watch both feed dicts here, so `apply -f` and
`run` see a Service the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ipvsctl.model.inputs import EndpointSlice, ObjectError, Service
from ipvsctl.sources.objects.endpoint_slice import slice_from_dict
from ipvsctl.sources.objects.metadata import Ignored, describe
from ipvsctl.sources.objects.service import service_from_dict

SERVICE_API = ("v1", "Service")
SLICE_API = ("discovery.k8s.io/v1", "EndpointSlice")

InputObject = Service | EndpointSlice | Ignored | list[ObjectError]


def object_from_dict(obj: Mapping[str, Any]) -> InputObject:
    """A Service, an EndpointSlice, a note on why the object is skipped, or its problems."""
    api = (obj.get("apiVersion"), obj.get("kind"))
    if api == SERVICE_API:
        return service_from_dict(obj)
    if api == SLICE_API:
        return slice_from_dict(obj)
    ref = describe(obj)
    if api[1] in (SERVICE_API[1], SLICE_API[1]):
        wanted = SERVICE_API[0] if api[1] == SERVICE_API[1] else SLICE_API[0]
        return Ignored(f"{ref}: ignored (apiVersion {api[0]}; ipvsctl reads {wanted})")
    return Ignored(f"{ref}: ignored (ipvsctl reads Services and EndpointSlices)")
