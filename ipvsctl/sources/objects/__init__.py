"""One parsed Kubernetes object (a plain dict) into an input value, every field checked.

The manifest files and the API both feed dicts here, so `apply -f` and `run`
see an object the same way:

- `any_kind`: whatever its kind, to the decoder of that kind (`object_from_dict`);
- `service`, `endpoint_slice`, `node`: a v1 Service, a discovery.k8s.io/v1
  EndpointSlice, a v1 Node;
- `metadata`: an object's identity and labels, and `Ignored`, for an object
  ipvsctl leaves alone;
- `fields`: reading typed fields, one problem per bad field.
"""

from ipvsctl.sources.objects.any_kind import InputObject, object_from_dict
from ipvsctl.sources.objects.endpoint_slice import slice_from_dict
from ipvsctl.sources.objects.metadata import Ignored
from ipvsctl.sources.objects.node import node_from_dict
from ipvsctl.sources.objects.service import service_from_dict

__all__ = [
    "Ignored",
    "InputObject",
    "node_from_dict",
    "object_from_dict",
    "service_from_dict",
    "slice_from_dict",
]
