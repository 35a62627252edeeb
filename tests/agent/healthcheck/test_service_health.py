"""Service health check node ports, answered as kube-proxy answers them."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from ipvsctl.agent.healthcheck.service_health import HealthCheckPorts
from ipvsctl.model.inputs import ObjectRef
from tests.agent.http_get import free_port, get, refuses

WEB = ("shop", "web")
API = ObjectRef("Service", "shop", "api")


class Proxy:
    """Stands in for SyncHealth.is_healthy."""

    def __init__(self) -> None:
        self.healthy = True

    def __call__(self) -> bool:
        return self.healthy


@pytest.fixture
def proxy() -> Proxy:
    return Proxy()


@pytest.fixture
def ports(proxy: Proxy) -> Iterator[HealthCheckPorts]:
    manager = HealthCheckPorts(proxy, bind_addresses=["127.0.0.1"])
    yield manager
    manager.close()


def test_local_endpoints_and_a_healthy_agent_answer_200_with_kube_proxys_body(
    ports: HealthCheckPorts,
) -> None:
    port = free_port()
    ports.sync({port: (WEB, 2)})
    status, headers, body = get(port, "/any/path")
    assert status == 200
    assert body == (
        b'{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "web"\n\t},\n'
        b'\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}'
    )
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Load-Balancing-Endpoint-Weight"] == "2"


def test_no_local_endpoint_answers_503(ports: HealthCheckPorts) -> None:
    port = free_port()
    ports.sync({port: (WEB, 0)})
    status, headers, body = get(port)
    assert status == 503
    assert body == (
        b'{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "web"\n\t},\n'
        b'\t"localEndpoints": 0,\n\t"serviceProxyHealthy": true\n}'
    )
    assert headers["X-Load-Balancing-Endpoint-Weight"] == "0"


def test_an_unhealthy_agent_answers_503_despite_local_endpoints(
    ports: HealthCheckPorts, proxy: Proxy
) -> None:
    port = free_port()
    ports.sync({port: (API, 3)})
    proxy.healthy = False
    status, headers, body = get(port)
    assert status == 503
    assert body.endswith(b'\t"localEndpoints": 3,\n\t"serviceProxyHealthy": false\n}')
    assert b'"name": "api"' in body
    assert headers["X-Load-Balancing-Endpoint-Weight"] == "3"


def test_sync_opens_new_ports_closes_gone_ones_and_keeps_the_rest(
    ports: HealthCheckPorts,
) -> None:
    kept, gone, new = free_port(), free_port(), free_port()
    ports.sync({kept: (WEB, 1), gone: (API, 1)})
    (listener,) = ports.listeners(kept)
    socket_before = listener.fileno()

    ports.sync({kept: (WEB, 0), new: (API, 1)})

    assert ports.open_ports == {kept, new}
    assert ports.listeners(kept) == (listener,)
    assert listener.fileno() == socket_before
    assert refuses(gone)
    assert get(new)[0] == 200
    # The new count is answered by the socket that stayed.
    status, headers, _ = get(kept)
    assert (status, headers["X-Load-Balancing-Endpoint-Weight"]) == (503, "0")


def test_a_port_in_use_is_logged_once_and_opened_once_free(
    ports: HealthCheckPorts, caplog: pytest.LogCaptureFixture
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    other = free_port()
    caplog.set_level(logging.WARNING)

    ports.sync({taken: (WEB, 1), other: (API, 1)})
    ports.sync({taken: (WEB, 1), other: (API, 1)})

    warnings = [r for r in caplog.records if r.getMessage() == "health check port unavailable"]
    assert len(warnings) == 1
    assert vars(warnings[0])["fields"]["port"] == taken
    assert ports.open_ports == {other}
    assert get(other)[0] == 200

    holder.close()
    ports.sync({taken: (WEB, 1), other: (API, 1)})
    assert ports.open_ports == {taken, other}
    assert get(taken)[0] == 200


def test_close_stops_every_port(ports: HealthCheckPorts) -> None:
    first, second = free_port(), free_port()
    ports.sync({first: (WEB, 1), second: (API, 1)})
    ports.close()
    assert ports.open_ports == frozenset()
    assert refuses(first) and refuses(second)


def test_ports_outside_the_port_range_are_ignored(ports: HealthCheckPorts) -> None:
    ports.sync({0: (WEB, 1)})
    assert ports.open_ports == frozenset()
