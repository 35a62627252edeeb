"""A TCP proxy in front of the emulated API server that can go silent.

`stall()` makes every connection open now stop relaying, in both directions,
without closing it: the client sees a connection that is up and says nothing,
as behind a half-open TCP connection or a stuck load balancer. While
`stall_new` is set, connections made later are stalled too. Threads, one pair
per connection; nothing leaves loopback.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from types import TracebackType
from typing import Self


class StallingProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.stall_new = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._stalled_below = 0  # connections numbered below this relay nothing
        self._next = 0
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def stall(self) -> None:
        """Every connection open now goes silent (and stays open)."""
        with self._lock:
            self._stalled_below = self._next

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                number = self._next
                self._next += 1
                if self.stall_new:
                    self._stalled_below = self._next
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink, number), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, number: int) -> None:
        try:
            while data := source.recv(65536):
                while self._stalled(number) and not self._closed.is_set():
                    # Hold the bytes: the other side sees silence, not an end.
                    self._closed.wait(0.1)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _stalled(self, number: int) -> bool:
        with self._lock:
            return number < self._stalled_below
