"""Reading API answers raw: watch streams split into events wherever the chunks break,
list pages, and failures as one-line ApiErrors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from ipvsctl.sources.api.requests import ApiError, describe, json_lines, open_get, read_list
from tests.sources.kube_api import KubeApi


class Chunks:
    """A response body that arrives in the given pieces."""

    def __init__(self, *pieces: bytes, then: Exception | None = None) -> None:
        self.pieces, self.then = pieces, then

    def stream(self, amt: int | None, decode_content: bool) -> Iterator[bytes]:
        yield from self.pieces
        if self.then is not None:
            raise self.then


def events(response: Any) -> list[dict[str, Any]]:
    return list(json_lines(response, "WATCH /x"))


def test_events_are_split_at_newlines_wherever_the_chunks_break() -> None:
    stream = Chunks(b'{"type": "ADD', b'ED"}\n{"type": "MODIFIED"}\n\n{"type"', b': "DELETED"}')
    assert events(stream) == [{"type": "ADDED"}, {"type": "MODIFIED"}, {"type": "DELETED"}]


def test_a_broken_stream_is_an_api_error() -> None:
    stream = Chunks(b'{"type": "ADDED"}\n{"ty', then=urllib3.exceptions.ProtocolError("reset"))
    found = json_lines(stream, "WATCH /x")  # type: ignore[arg-type]
    assert next(found) == {"type": "ADDED"}
    with pytest.raises(ApiError, match=r"^WATCH /x: stream broken: reset$"):
        next(found)


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n"])
def test_a_line_that_is_not_a_json_object_is_an_api_error(line: bytes) -> None:
    with pytest.raises(ApiError, match=r"^WATCH /x: answer is not"):
        events(Chunks(line))


def test_an_error_status_is_one_line_with_the_servers_message(api: KubeApi) -> None:
    api.fail_reads(503)
    with pytest.raises(ApiError) as raised:
        open_get(api.client(), "/api/v1/services", (), (2.0, 5.0))
    assert (str(raised.value), raised.value.status) == (
        "GET /api/v1/services: HTTP 503: injected",
        503,
    )


def test_a_refused_connection_is_one_line(api: KubeApi) -> None:
    api.stop_serving()
    with pytest.raises(ApiError) as raised:
        open_get(api.client(), "/api/v1/services", (), (2.0, 5.0))
    assert raised.value.status == 0
    assert "Connection refused" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_empty_list_may_have_null_items(api: KubeApi) -> None:
    page = read_list(open_get(api.client(), "/api/v1/services", (), (2.0, 5.0)), "LIST")
    assert (page.items, page.continue_token) == ([], "")
    assert page.resource_version == str(api.revision)


def test_describe_unwraps_urllib3s_retry_error() -> None:
    cause = urllib3.exceptions.NewConnectionError(None, "Failed to establish: refused")  # type: ignore[arg-type]
    wrapped = urllib3.exceptions.MaxRetryError(None, "/x", cause)  # type: ignore[arg-type]
    assert describe(wrapped) == str(cause)
