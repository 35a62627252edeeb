"""Manifest files (`apply -f`) into `Inputs`: Services and EndpointSlices, every problem,
and a note for each object ipvsctl leaves alone.

Reads what `kubectl apply -f` reads: multi-document YAML, JSON, `v1` `List`s (and
the `ServiceList`-style lists the API returns), `-` for stdin, and directories
(their *.yaml, *.yml and *.json files, sorted, not recursive). An object
without a namespace is in "default", as `kubectl apply` without `-n` puts it.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from ipvsctl.model.inputs import EndpointSlice, Inputs, ObjectError, ObjectRef, Service
from ipvsctl.model.printable import MAX_MESSAGE, printable
from ipvsctl.sources.files.json_documents import BadJson, load_json
from ipvsctl.sources.files.limits import MAX_FILE_BYTES
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
        return printable(self.name, MAX_MESSAGE)


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
    """The text of each file `path` names (itself, or a directory's manifests), at most
    MAX_FILE_BYTES each; what cannot be read is an error naming the file."""
    if path == STDIN:
        text = _read_stdin(stdin, errors)
        if text is not None:
            yield "stdin", text
        return
    try:
        is_directory = stat.S_ISDIR(os.stat(path).st_mode)
        entries = sorted(Path(path).iterdir()) if is_directory else [Path(path)]
    except OSError as error:
        errors.append(file_error(path, "file", f"cannot read: {_reason(error)}"))
        return
    for entry in entries:
        if is_directory and (entry.suffix not in MANIFEST_SUFFIXES or _is_directory(entry)):
            continue  # not recursive, as `kubectl apply -f DIR` without -R
        try:
            text = _decoded(_read_regular_file(str(entry)))
        except OSError as error:
            link = " (a symlink)" if entry.is_symlink() else ""
            errors.append(file_error(str(entry), "file", f"cannot read{link}: {_reason(error)}"))
        except _Unreadable as error:
            errors.append(file_error(str(entry), error.where, error.problem))
        else:
            yield str(entry), text


class _Unreadable(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = where, problem


def _is_directory(entry: Path) -> bool:
    """A directory among a directory's entries (not read); a dangling or looping symlink
    is not one, so that reading it reports it."""
    try:
        return stat.S_ISDIR(os.stat(entry).st_mode)
    except OSError:
        return False


def _read_regular_file(path: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES. Anything else (a FIFO, a
    device such as /dev/zero, a socket) is refused before a byte is read: opened
    without blocking (opening a FIFO waits for a writer), then checked."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _Unreadable("file", f"{_file_type(mode)}, not a regular file (- reads stdin)")
        return _bounded(file.read(MAX_FILE_BYTES + 1))


def _read_stdin(stdin: TextIO, errors: list[ObjectError]) -> str | None:
    try:
        binary = getattr(stdin, "buffer", None)
        if binary is not None:
            return _decoded(_bounded(binary.read(MAX_FILE_BYTES + 1)))
        text: str = stdin.read(MAX_FILE_BYTES + 1)  # a text stream (tests): characters
        if len(text) > MAX_FILE_BYTES:
            raise _too_large()
        return text
    except OSError as error:
        errors.append(file_error("stdin", "file", f"cannot read: {_reason(error)}"))
    except _Unreadable as error:
        errors.append(file_error("stdin", error.where, error.problem))
    return None


def _bounded(data: bytes) -> bytes:
    if len(data) > MAX_FILE_BYTES:
        raise _too_large()
    return data


def _too_large() -> _Unreadable:
    return _Unreadable("file", f"larger than {MAX_FILE_BYTES // 2**20} MiB, the limit")


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _Unreadable(f"line {line}", f"not UTF-8 (byte 0x{data[error.start]:02x})") from None


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "a special file"


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _parse(source: str, text: str, errors: list[ObjectError]) -> list[Document]:
    if source.endswith(".json"):
        try:
            return [Document(source, load_json(text))]
        except BadJson as error:
            errors.append(file_error(source, f"line {error.line}", error.problem))
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
