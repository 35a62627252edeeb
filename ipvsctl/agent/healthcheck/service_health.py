"""Service health check node ports, as kube-proxy serves them.

A `type: LoadBalancer` Service with `externalTrafficPolicy: Local` gets a
`spec.healthCheckNodePort`; the cloud load balancer probes it on every node
and sends traffic only to nodes that answer 200. As kube-proxy's
`pkg/proxy/healthcheck/service_health.go`: any path answers 200 when this
node has at least one local ready endpoint of the Service and the agent
itself is healthy, 503 otherwise, with the same JSON body (byte for byte)
and headers, including `X-Load-Balancing-Endpoint-Weight` for balancers
that weigh nodes by their endpoint count.

The agent calls `HealthCheckPorts.sync` after each reconcile with every
wanted port. Ports are opened and closed incrementally: a port that stays
keeps its sockets (a probe in flight is never refused), and a new endpoint
count only changes the next answer. A port someone else holds is logged
once and retried on every sync, never fatal (kube-proxy also goes on).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ipvsctl.agent.http_listener import EVERY_ADDRESS, HttpListener, QuietHandler
from ipvsctl.agent.logs import event
from ipvsctl.model.inputs import ObjectRef

log = logging.getLogger(__name__)

ServiceName = tuple[str, str]  # (namespace, name)
Wanted = Mapping[int, tuple[ObjectRef | ServiceName, int]]


def health_check_body(service: ServiceName, local_endpoints: int, proxy_healthy: bool) -> bytes:
    """kube-proxy's body exactly: tab-indented JSON, no trailing newline."""
    namespace, name = service
    body = {
        "service": {"namespace": namespace, "name": name},
        "localEndpoints": local_endpoints,
        "serviceProxyHealthy": proxy_healthy,
    }
    return json.dumps(body, indent="\t").encode()


@dataclass
class _Port:
    """One health check port: whose it is, its count, its sockets (one per bind address)."""

    port: int
    service: ServiceName
    local_endpoints: int
    listeners: list[HttpListener] = field(default_factory=list)


class HealthCheckPorts:
    """The open health check ports of this node.

    `proxy_healthy` is asked on every request (`SyncHealth.is_healthy`).
    `bind_addresses` are the node addresses to listen on (those
    `--nodeport-addresses` selects); empty or `("",)`: every address.
    `sync` and `close` belong to one thread (the agent's loop); requests are
    answered on their own threads.
    """

    def __init__(
        self, proxy_healthy: Callable[[], bool], bind_addresses: Sequence[str] = ()
    ) -> None:
        self._proxy_healthy = proxy_healthy
        self._addresses = tuple(dict.fromkeys(bind_addresses)) or (EVERY_ADDRESS,)
        self._lock = threading.Lock()  # guards the _Port fields requests read
        self._ports: dict[int, _Port] = {}
        self._failing: set[int] = set()  # ports whose bind failure was logged

    @property
    def open_ports(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._ports)

    def listeners(self, port: int) -> tuple[HttpListener, ...]:
        """The sockets serving `port` (none when it is not open)."""
        with self._lock:
            entry = self._ports.get(port)
            return tuple(entry.listeners) if entry else ()

    def sync(self, wanted: Wanted) -> None:
        """Serve exactly the ports in `wanted`: port -> (Service, its ready endpoints on
        this node). Ports outside 1-65535 are ignored (0 is "not allocated")."""
        targets = {
            port: (_service_name(service), count)
            for port, (service, count) in wanted.items()
            if 0 < port < 65536
        }
        with self._lock:
            gone = [self._ports.pop(port) for port in set(self._ports) - set(targets)]
            for port, entry in self._ports.items():
                entry.service, entry.local_endpoints = targets[port]
        for entry in gone:
            self._close(entry)
            event(log, "health check port closed", service=_text(entry.service), port=entry.port)
        self._failing &= set(targets)
        for port, (service, count) in targets.items():
            if port not in self._ports:
                self._open(port, service, count)

    def close(self) -> None:
        """Close every port (within about a second, whatever clients are doing)."""
        with self._lock:
            entries = list(self._ports.values())
            self._ports.clear()
        for entry in entries:
            self._close(entry)

    def _answer(self, entry: _Port) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            service, count = entry.service, entry.local_endpoints
        healthy = self._proxy_healthy()
        status = 200 if count > 0 and healthy else 503
        body = health_check_body(service, count, healthy)
        return status, body, {"X-Load-Balancing-Endpoint-Weight": str(count)}

    def _open(self, port: int, service: ServiceName, count: int) -> None:
        entry = _Port(port, service, count)
        handler = type(
            "HealthCheckHandler", (_HealthCheckHandler,), {"ports": self, "entry": entry}
        )
        try:
            for address in self._addresses:
                entry.listeners.append(HttpListener(address, port, handler))
        except OSError as error:
            # All or nothing, as kube-proxy: a half-open port would pass the
            # balancer's probe on some addresses only.
            self._close(entry)
            if port not in self._failing:
                self._failing.add(port)
                event(
                    log, "health check port unavailable", level=logging.WARNING,
                    service=_text(service), port=port, address=address or "*", error=str(error),
                )  # fmt: skip
            return
        self._failing.discard(port)
        with self._lock:
            self._ports[port] = entry
        event(log, "health check port opened", service=_text(service), port=port)

    @staticmethod
    def _close(entry: _Port) -> None:
        for listener in entry.listeners:
            listener.close()
        entry.listeners.clear()


class _HealthCheckHandler(QuietHandler):
    ports: HealthCheckPorts
    entry: _Port

    def do_GET(self) -> None:
        status, body, headers = self.ports._answer(self.entry)
        self.send_json(status, body, headers)

    do_HEAD = do_GET


def _service_name(service: ObjectRef | ServiceName) -> ServiceName:
    if isinstance(service, ObjectRef):
        return (service.namespace, service.name)
    namespace, name = service
    return (namespace, name)


def _text(service: ServiceName) -> str:
    return f"{service[0]}/{service[1]}"
