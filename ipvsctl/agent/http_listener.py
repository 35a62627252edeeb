"""One HTTP listening socket served on a daemon thread, closable at once.

Metrics, /healthz and every Service health check port are one of these.
`http.server.ThreadingHTTPServer` does the HTTP; this module adds what a
node service needs around it: `host:port` flag parsing, a dual-stack
wildcard, request handlers that cannot hang or print, and a `close()` that
returns in milliseconds rather than after `serve_forever`'s poll interval
(a sync that closes fifty health check ports must not stall for seconds).
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

# A host of "" means every address of the node, both families where the
# kernel allows it, as Go's net.Listen reads ":10256" (kube-proxy's flags).
EVERY_ADDRESS = ""

# Seconds a client may take to send its request: a probe that connects and
# then says nothing would otherwise hold a thread forever.
REQUEST_TIMEOUT = 10.0


def parse_listen_address(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` as (host, port); "" for every address.

    Raises ValueError saying what is wrong, for the caller to prefix with its flag.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r}: expected host:port, [ipv6]:port or :port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(f"{text!r}: brackets are for IPv6 addresses only")
    elif ":" in host:
        raise ValueError(f"{text!r}: an IPv6 address needs brackets: [address]:port")
    if host:
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: port must be a number from 0 to 65535")
    return host, int(port_text)


class QuietHandler(BaseHTTPRequestHandler):
    """Base of our handlers: bounded wait for the request, no line per request on stderr
    (the kubelet probes every ten seconds)."""

    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    # Request threads are daemons (ThreadingHTTPServer's default) and closing
    # must not wait for them: a slow client cannot hold up a sync or shutdown.
    block_on_close = False
    # handle_request() below only ever runs on a socket the selector found
    # ready; a zero timeout keeps a connection reset meanwhile from blocking it.
    timeout = 0

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        if host == EVERY_ADDRESS:
            host = "::" if socket.has_dualstack_ipv6() else "0.0.0.0"
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # "::" serves IPv4 too, whatever net.ipv6.bindv6only says; an
            # explicit IPv6 address is IPv6 only in any case.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # Not HTTPServer.server_bind: its socket.getfqdn() can wait seconds on
        # reverse DNS, for a name nothing here uses.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is routine; no traceback on stderr.
        log.debug("http request failed", exc_info=True, extra={"fields": {"port": self.port}})

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class HttpListener:
    """A socket bound and listening on (host, port), answered by `handler` on a
    daemon thread. Binding happens in the constructor: OSError (EADDRINUSE,
    EADDRNOTAVAIL, EACCES) reaches the caller, and nothing is left open."""

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(host, port, handler)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"http-{self.port}", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the kernel's choice when 0 was asked for)."""
        return self._server.port

    def fileno(self) -> int:
        """The listening socket's descriptor: the same one for as long as this listener lives."""
        return self._server.fileno()

    def _serve(self) -> None:
        # A selector over the listening socket and a wake-up socket, instead of
        # serve_forever(): shutdown() would wait for its next poll (0.5 s).
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_reader:
                        return
                    self._server.handle_request()

    def close(self) -> None:
        """Stop accepting and release the port. Requests in flight finish on their own threads."""
        if self._closed:
            return
        self._closed = True
        self._wake_writer.send(b"x")
        self._thread.join(timeout=1.0)
        self._server.server_close()
        self._wake_writer.close()
        self._wake_reader.close()
