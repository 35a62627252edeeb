"""Manifest files (`apply -f`) into `Inputs`: Services and EndpointSlices, every problem,
and a note for each object ipvsctl leaves alone.

Reads what `kubectl apply -f` reads: multi-document YAML, JSON, `v1` `List`s (and
the `ServiceList`-style lists the API returns), `-` for stdin, and directories
(their *.yaml, *.yml and *.json files, sorted, not recursive). An object
without a namespace is in "default", as `kubectl apply` without `-n` puts it.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from ipvsctl.model.inputs import EndpointSlice, Inputs, ObjectError, ObjectRef, Service
from ipvsctl.sources.files.yaml_documents import BadYaml, load_documents
from ipvsctl.sources.objects.any_kind import object_from_dict
from ipvsctl.sources.objects.metadata import Ignored

STDIN = "-"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class SourceError(Exception):
    """The files cannot be read as asked at all (not a problem in them: those are
    `Inputs.errors`)."""


class FileRef(ObjectRef):
    """A manifest file as the subject of an error; prints as its path, so the line reads
    `demo.yaml: line 3: ...`."""

    def __str__(self) -> str:
        return self.name


def file_error(source: str, field: str, message: str) -> ObjectError:
    return ObjectError(FileRef("File", "", source), field, message)


class Document(NamedTuple):
    """One parsed object and where it came from (for duplicate messages)."""

    source: str
    value: Any


def read_manifests(paths: Sequence[str], stdin: TextIO) -> Inputs:
    """Everything in the files (`-` is stdin): the objects, their problems, the notes.

    Unreadable or unparsable files are errors in `Inputs.errors`, like bad objects, so
    the user sees every problem at once. Raises SourceError only when `-` is given twice.
    """
    if list(paths).count(STDIN) > 1:
        raise SourceError("-f -: stdin can be read only once")
    documents: list[Document] = []
    errors: list[ObjectError] = []
    with _collection_paused():
        for path in paths:
            for source, text in _texts(path, stdin, errors):
                documents.extend(_parse(source, text, errors))
        return inputs_from_documents(documents, errors)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while reading: the documents and inputs are trees
    (no cycles to find), and collecting as 10,000 Services grow only re-traverses them
    (a tenth of `read_manifests`' time)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def inputs_from_documents(documents: Sequence[Document], errors: list[ObjectError]) -> Inputs:
    services: dict[tuple[str, str], tuple[Service, str]] = {}
    slices: dict[tuple[str, str], tuple[EndpointSlice, str]] = {}
    notes: list[str] = []
    for document in _flatten(documents, errors):
        value = object_from_dict(document.value)
        if isinstance(value, Ignored):
            notes.append(value.note)
        elif isinstance(value, list):
            errors.extend(value)
        else:
            seen: dict[Any, Any] = services if isinstance(value, Service) else slices
            key = (value.namespace, value.name)
            if key in seen:
                errors.append(_duplicate(value.ref, seen[key][1], document.source))
            else:
                seen[key] = (value, document.source)
    return Inputs(
        services=tuple(service for service, _ in services.values()),
        slices=tuple(endpoint_slice for endpoint_slice, _ in slices.values()),
        errors=tuple(errors),
        notes=tuple(notes),
    )


def _duplicate(ref: ObjectRef, first: str, again: str) -> ObjectError:
    where = f"twice in {first}" if first == again else f"in {first} and again in {again}"
    return ObjectError(ref, "metadata.name", f"defined {where}")


def _texts(path: str, stdin: TextIO, errors: list[ObjectError]) -> Iterator[tuple[str, str]]:
    if path == STDIN:
        yield "stdin", stdin.read()
        return
    try:
        if Path(path).is_dir():
            files = sorted(
                entry
                for entry in Path(path).iterdir()
                if entry.suffix in MANIFEST_SUFFIXES and entry.is_file()
            )
            for entry in files:
                yield str(entry), entry.read_text(encoding="utf-8")
        else:
            yield path, Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        errors.append(file_error(path, "file", f"cannot read: {reason}"))


def _parse(source: str, text: str, errors: list[ObjectError]) -> list[Document]:
    if source.endswith(".json"):
        try:
            return [Document(source, json.loads(text))]
        except json.JSONDecodeError as error:
            errors.append(file_error(source, f"line {error.lineno}", error.msg))
            return []
    documents: list[Document] = []
    try:
        for value in load_documents(text):
            documents.append(Document(source, value))
    except BadYaml as error:
        errors.append(file_error(source, error.where, error.problem))
    return documents


def _flatten(documents: Sequence[Document], errors: list[ObjectError]) -> Iterator[Document]:
    """Every object, with Lists opened (items of a `ServiceList` get its kind)."""
    for document in documents:
        value = document.value
        if not isinstance(value, Mapping) or not isinstance(value.get("kind"), str):
            shown = "no kind" if isinstance(value, Mapping) else "not a mapping"
            errors.append(file_error(document.source, "document", f"{shown}: not an object"))
            continue
        kind: str = value["kind"]
        if not kind.endswith("List") or "items" not in value:
            yield document
            continue
        items = value["items"] or []
        if not isinstance(items, list):
            errors.append(file_error(document.source, f"{kind}.items", "not a list"))
            continue
        defaults = {"kind": kind.removesuffix("List"), "apiVersion": value.get("apiVersion")}
        for item in items:
            if isinstance(item, Mapping) and kind != "List":
                item = {**defaults, **item}
            yield from _flatten([Document(document.source, item)], errors)
