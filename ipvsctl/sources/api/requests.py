"""Requests to the API server, with the responses read raw.

The kubernetes client's `ApiClient` gives the configuration, the credentials
(a rotated service account token re-read) and its connection pool (TLS,
proxies); this module sends the requests on that pool and reads the bodies
itself, unloaded (what the client calls `_preload_content=False`): a list
page or a watch stream becomes plain dicts, never client model objects,
which cost far more memory per Service than the dict, and far more than the
`inputs` value the dict becomes.

Every failure is an `ApiError` (the HTTP status, or 0 when none came) with a
one-line message; `ResourceExpired` is the one the caller must answer
differently (list again) rather than retry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import urllib3
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

# (connect, read) seconds, as the client takes them.
Timeout = tuple[float, float]
HTTP_GONE = 410
JSON = "application/json"


class ApiError(Exception):
    """A request that did not succeed; `status` is its HTTP status, 0 when no answer came."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ResourceExpired(ApiError):
    """410 Gone: the resourceVersion or continue token is older than the server keeps."""

    def __init__(self, message: str) -> None:
        super().__init__(message, HTTP_GONE)


class ListPage(NamedTuple):
    items: list[dict[str, Any]]
    resource_version: str  # metadata.resourceVersion: where a watch of this list starts
    continue_token: str  # metadata.continue: "" on the last page


class StreamSilent(ApiError):
    """A stream that sent nothing, not a byte, for its read timeout: a connection that
    went dead without a reset (a half-open TCP connection, a stuck proxy)."""


def open_get(
    client: kube_client.ApiClient,
    path: str,
    query: Sequence[tuple[str, str]],
    timeout: Timeout,
    verb: str = "GET",
) -> urllib3.BaseHTTPResponse:
    """A GET's response, status 2xx, body unread (the caller reads or streams it).
    Raises ResourceExpired on 410, ApiError on anything else that is not a success;
    their messages begin with `verb` (LIST, WATCH) and `path`."""
    return _send(client, "GET", path, query, None, {"Accept": JSON}, timeout, verb)


def send_json(
    client: kube_client.ApiClient,
    method: str,
    path: str,
    body: Mapping[str, Any],
    timeout: Timeout,
    content_type: str = JSON,
) -> dict[str, Any]:
    """Send `body` as JSON (POST, or PATCH with a patch content type); the JSON answer."""
    headers = {"Accept": JSON, "Content-Type": content_type}
    response = _send(client, method, path, (), dict(body), headers, timeout)
    return read_json(response, f"{method} {path}")


def read_json(response: urllib3.BaseHTTPResponse, what: str) -> dict[str, Any]:
    """The whole body as one JSON object."""
    try:
        data = response.read()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiError(f"{what}: reading the answer: {describe(error)}") from None
    finally:
        response.release_conn()
    return _json_object(data, what)


def read_list(
    response: urllib3.BaseHTTPResponse, what: str, kind: str = "", api_version: str = ""
) -> ListPage:
    """A list response as its items (plain dicts) and where it stands.

    Anything but the list asked for (another `kind` or `apiVersion` than `kind`List of
    `api_version`, when given) is an ApiError, retried: a body without `items` (`{}`
    from a broken proxy, an error page that parses as JSON) read as an empty list
    would delete every Service.
    """
    body = read_json(response, what)
    # A real API server names the list; a bare emulator may not, and that is no error.
    for field, expected in (("kind", f"{kind}List"), ("apiVersion", api_version)):
        found = body.get(field)
        if kind and found is not None and found != expected:
            raise ApiError(f"{what}: {field} {_shortened(repr(found))}, not {expected!r}")
    if "items" not in body:
        raise ApiError(f"{what}: a list without items")
    metadata = body.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    items = body.get("items")
    if items is None:  # an empty list may come as "items": null
        items = []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ApiError(f"{what}: items is not a list of objects")
    return ListPage(
        items, str(metadata.get("resourceVersion") or ""), str(metadata.get("continue") or "")
    )


def _shortened(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def json_lines(response: urllib3.BaseHTTPResponse, what: str) -> Iterator[dict[str, Any]]:
    """A watch stream's events, one JSON object a line, as they arrive; ends when the server
    ends the stream. Raises ApiError when the connection breaks or a line is not JSON."""
    pending = bytearray()
    try:
        # amt=None: one HTTP chunk at a time, so an event is seen when it arrives
        # (a fixed amount would wait for that many bytes).
        for chunk in response.stream(None, decode_content=True):
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) >= 0:
                line = bytes(pending[start:end])
                start = end + 1
                if line.strip():
                    yield _json_object(line, what)
            del pending[:start]
    except urllib3.exceptions.ReadTimeoutError:
        raise StreamSilent(f"{what}: nothing received for too long") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ApiError(f"{what}: stream broken: {describe(error)}") from None
    if pending.strip():
        yield _json_object(bytes(pending), what)


def status_error(status: Mapping[str, Any], what: str) -> ApiError:
    """The error a Status object stands for (a watch's ERROR event carries one):
    ResourceExpired for 410 Gone, an ApiError with its code otherwise."""
    code = status.get("code")
    message = " ".join(str(status.get("message") or status.get("reason") or "").split())
    if code == HTTP_GONE or status.get("reason") in ("Expired", "Gone"):
        return ResourceExpired(f"{what}: {message}")
    return ApiError(f"{what}: {code}: {message}", code if isinstance(code, int) else 0)


def describe(error: BaseException) -> str:
    """A connection error in one line: urllib3 wraps the cause a few times over."""
    while isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _send(
    client: kube_client.ApiClient,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    body: dict[str, Any] | None,
    headers: dict[str, str],
    timeout: Timeout,
    verb: str = "",
) -> urllib3.BaseHTTPResponse:
    what = f"{verb or method} {path}"
    try:
        # param_serialize adds the credentials (and re-reads a rotated token).
        _, url, headers, _, _ = client.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        # The client's own connection pool, but without urllib3's retries: the
        # caller retries with backoff and logs once per streak of failures, where
        # urllib3 would retry at once, three times, with a warning each.
        response = client.rest_client.pool_manager.request(
            method,
            url,
            headers=headers,
            body=None if body is None else json.dumps(body),
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            retries=False,
            preload_content=False,
        )
    except (urllib3.exceptions.HTTPError, OSError, ApiException) as error:
        raise ApiError(f"{what}: {describe(error)}") from None
    if 200 <= response.status < 300:
        return response
    message = _status_message(response)
    if response.status == HTTP_GONE:
        raise ResourceExpired(f"{what}: {message}")
    raise ApiError(f"{what}: HTTP {response.status}: {message}", response.status)


def _status_message(response: urllib3.BaseHTTPResponse) -> str:
    """The message of the Status object an API server answers a failure with."""
    try:
        data = response.read()
    except (urllib3.exceptions.HTTPError, OSError):
        data = b""
    finally:
        response.release_conn()
    try:
        status = json.loads(data)
    except ValueError:
        status = None
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return " ".join(status["message"].split())
    return str(response.reason or "no message")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise ApiError(f"{what}: answer is not JSON: {data[:80]!r}") from None
    if not isinstance(value, dict):
        raise ApiError(f"{what}: answer is not a JSON object: {data[:80]!r}")
    return value
