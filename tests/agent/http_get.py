"""A plain HTTP GET against a local test listener: status, headers, body."""

from __future__ import annotations

import http.client
import socket


def get(port: int, path: str = "/", host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def refuses(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on host:port any more."""
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def free_port() -> int:
    """A port nobody listens on now (the kernel's pick), for listeners keyed by port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
