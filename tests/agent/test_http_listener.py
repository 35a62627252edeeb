"""Listen addresses as the flags spell them, and listeners that close for good."""

from __future__ import annotations

import pytest

from ipvsctl.agent.http_listener import (
    EVERY_ADDRESS,
    HttpListener,
    QuietHandler,
    parse_listen_address,
)
from tests.agent.http_get import get, refuses


class Hello(QuietHandler):
    def do_GET(self) -> None:
        self.send_json(200, b'{"hello":true}')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:10249", ("127.0.0.1", 10249)),
        ("0.0.0.0:10256", ("0.0.0.0", 10256)),
        ("[::1]:10249", ("::1", 10249)),
        ("[::]:10256", ("::", 10256)),
        ("[fd00:0::1]:80", ("fd00::1", 80)),
        (":10249", (EVERY_ADDRESS, 10249)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
    ],
)
def test_listen_addresses_parse_as_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("10249", "expected host:port"),
        ("::1:10249", "needs brackets"),
        ("[127.0.0.1]:80", "IPv6 addresses only"),
        ("localhost:80", "not an IP address"),
        ("127.0.0.1:", "port must be"),
        ("127.0.0.1:http", "port must be"),
        ("127.0.0.1:65536", "port must be"),
    ],
)
def test_bad_listen_addresses_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_listen_address(text)


def test_a_listener_answers_until_closed_and_then_frees_its_port() -> None:
    listener = HttpListener("127.0.0.1", 0, Hello)
    port = listener.port
    status, headers, body = get(port)
    assert (status, body) == (200, b'{"hello":true}')
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"

    listener.close()
    listener.close()  # a second close is harmless
    assert refuses(port)
    HttpListener("127.0.0.1", port, Hello).close()  # the port can be bound again


def test_every_address_includes_ipv4_loopback() -> None:
    listener = HttpListener(EVERY_ADDRESS, 0, Hello)
    try:
        assert get(listener.port)[0] == 200
    finally:
        listener.close()


def test_a_taken_port_raises_and_leaves_nothing_open() -> None:
    first = HttpListener("127.0.0.1", 0, Hello)
    try:
        with pytest.raises(OSError):
            HttpListener("127.0.0.1", first.port, Hello)
        assert get(first.port)[0] == 200
    finally:
        first.close()
