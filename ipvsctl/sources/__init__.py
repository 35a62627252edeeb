"""Sources: Kubernetes objects (manifest files, later the API watch) into `model.inputs.Inputs`.

The only room that parses YAML or talks to Kubernetes. `objects` turns one parsed
object (a plain dict) into an input value; `manifests` reads files into `Inputs`.
"""

from ipvsctl.sources.manifests import FileRef, SourceError, read_manifests
from ipvsctl.sources.metadata import Ignored
from ipvsctl.sources.objects import InputObject, object_from_dict
from ipvsctl.sources.service_object import service_from_dict
from ipvsctl.sources.slice_object import slice_from_dict

__all__ = [
    "FileRef",
    "Ignored",
    "InputObject",
    "SourceError",
    "object_from_dict",
    "read_manifests",
    "service_from_dict",
    "slice_from_dict",
]
