"""Sources: Kubernetes objects, from manifest files or the API, into input values.

The only room that parses YAML or reads from Kubernetes (the `events` room
writes to it). By what it reads:

- `files`: manifest files (YAML, JSON) into `model.inputs.Inputs` (`apply -f`);
- `api`: the API server, listed and watched for the resources the agent follows (`run`);
- `objects`: one parsed object (a plain dict) into an input value, for both.

This file exports the manifest reader and the object decoders, which need
nothing of the kubernetes client; `api` is imported on its own.
"""

from ipvsctl.sources.files.manifests import FileRef, SourceError, read_manifests
from ipvsctl.sources.objects.any_kind import InputObject, object_from_dict
from ipvsctl.sources.objects.endpoint_slice import slice_from_dict
from ipvsctl.sources.objects.metadata import Ignored
from ipvsctl.sources.objects.service import service_from_dict

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
