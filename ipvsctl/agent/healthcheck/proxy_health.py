"""Whether the agent keeps the kernel in step, and the /healthz endpoint that says so.

The agent records every successful reconcile in a `SyncHealth`; the kubelet's
liveness and readiness probes, and the Service health check ports
(`service_health`), ask it. Healthy means: a first sync happened, the last one
is no older than twice the sync period (one missed full resync is tolerated,
two are not), and the agent does not know its view of the API to be stale (a
watch that went silent, until a new one is open: `stale`). The body keeps kube-proxy's field names
(`pkg/proxy/healthcheck/proxy_health.go`: lastUpdated, currentTime, healthy)
so tooling written for kube-proxy's port 10256 reads it unchanged.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ipvsctl.agent.http_listener import HttpListener, QuietHandler, parse_listen_address
from ipvsctl.agent.logs import rfc3339

HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


@dataclass(frozen=True)
class HealthStatus:
    """One answer to "is the agent healthy?", at `current_time`."""

    healthy: bool
    last_updated: float | None  # Unix time of the last successful sync; None before the first
    current_time: float
    virtual_servers: int
    real_servers: int

    def to_json(self) -> bytes:
        body = {
            "lastUpdated": None if self.last_updated is None else rfc3339(self.last_updated),
            "currentTime": rfc3339(self.current_time),
            "virtualServers": self.virtual_servers,
            "realServers": self.real_servers,
            "healthy": self.healthy,
        }
        return json.dumps(body, separators=(",", ":")).encode()


class SyncHealth:
    """The time and size of the last successful sync, safe to share between threads.

    `clock` returns Unix time (wall clock, since the answer shows it as a
    date); tests inject one.
    """

    def __init__(
        self,
        sync_period: float,
        clock: Callable[[], float] = time.time,
        stale: Callable[[], bool] = lambda: False,
    ) -> None:
        if sync_period <= 0:
            raise ValueError("sync_period must be positive")
        self.timeout = 2 * sync_period
        self._clock = clock
        self._stale = stale
        self._lock = threading.Lock()
        self._last: float | None = None
        self._virtual = 0
        self._real = 0

    def record_sync(self, at: float | None = None, virtual: int = 0, real: int = 0) -> None:
        """A reconcile succeeded at `at` (default: now), leaving `virtual` owned
        virtual servers with `real` real servers in the kernel."""
        when = self._clock() if at is None else at
        with self._lock:
            self._last, self._virtual, self._real = when, virtual, real

    def status(self) -> HealthStatus:
        now = self._clock()
        with self._lock:
            last, virtual, real = self._last, self._virtual, self._real
        # A clock stepped backwards makes `now - last` negative: still healthy,
        # which is right, since a sync did just happen.
        healthy = last is not None and now - last <= self.timeout and not self._stale()
        return HealthStatus(healthy, last, now, virtual, real)

    def is_healthy(self) -> bool:
        return self.status().healthy


def serve_healthz(address: str, health: SyncHealth) -> HttpListener:
    """Serve GET /healthz (and /livez, /readyz) on `--healthz-address`: 200 when
    healthy, 503 otherwise, a JSON body either way; 404 for any other path.

    Raises ValueError for a malformed address, OSError when it cannot bind.
    """
    try:
        host, port = parse_listen_address(address)
    except ValueError as error:
        raise ValueError(f"--healthz-address: {error}") from None
    handler = type("HealthzHandler", (_HealthzHandler,), {"health": health})
    return HttpListener(host, port, handler)


class _HealthzHandler(QuietHandler):
    health: SyncHealth

    def do_GET(self) -> None:
        if self.path.partition("?")[0] not in HEALTH_PATHS:
            self.send_json(404, b'{"error":"not found"}')
            return
        status = self.health.status()
        self.send_json(200 if status.healthy else 503, status.to_json())

    do_HEAD = do_GET
