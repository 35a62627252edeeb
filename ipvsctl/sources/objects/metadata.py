"""An object's identity (kind, namespace, name) and labels, read from its metadata, and
`Ignored`, what a converter returns for an object it leaves alone.

A missing namespace is "default", as `kubectl apply` without `-n` reads it; a
missing name is an error, reported on a placeholder name so the line still
says which kind of object it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ipvsctl.model.inputs import ObjectRef
from ipvsctl.sources.objects.fields import FieldReader, show_value

DEFAULT_NAMESPACE = "default"
UNNAMED = "(unnamed)"


class Ignored(NamedTuple):
    """An object read without error that ipvsctl leaves alone, and why (a note)."""

    note: str


def describe(obj: Mapping[str, Any]) -> ObjectRef:
    """The object's ref as best it can be read, for notes about objects we skip."""
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    namespace = metadata.get("namespace")
    name = metadata.get("name")
    return ObjectRef(
        kind if isinstance(kind, str) and kind else "Object",
        namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE,
        name if isinstance(name, str) and name else UNNAMED,
    )


def read_identity(obj: Mapping[str, Any], kind: str) -> FieldReader:
    """A FieldReader for the object, with problems of metadata.name/namespace recorded."""
    found = describe(obj)
    reader = FieldReader(ObjectRef(kind, found.namespace, found.name))
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        if metadata is None:
            reader.problem("metadata.name", "missing")
        else:
            reader.problem("metadata", f"{show_value(metadata)} is not a mapping")
        return reader
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        reader.problem("metadata.name", "missing" if name in (None, "") else "not a string")
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        reader.problem("metadata.namespace", f"{show_value(namespace)} is not a namespace name")
    return reader


def labels_of(obj: Mapping[str, Any], reader: FieldReader) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return {}
    return reader.mapping(metadata, "labels", "metadata.labels")


def annotations_of(obj: Mapping[str, Any], reader: FieldReader) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return {}
    return reader.mapping(metadata, "annotations", "metadata.annotations")


def uid_of(obj: Mapping[str, Any]) -> str:
    """metadata.uid, "" when there is none (a manifest) or it is not a string."""
    metadata = obj.get("metadata")
    uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    return uid if isinstance(uid, str) else ""
