"""The agent's own health: healthy from the first sync until two sync periods pass
without another; /healthz says so with kube-proxy's body fields."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ipvsctl.agent.healthcheck.proxy_health import SyncHealth, serve_healthz
from ipvsctl.agent.http_listener import HttpListener
from tests.agent.http_get import get

START = 1_738_324_800.0  # 2025-01-31T12:00:00Z
PERIOD = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> SyncHealth:
    return SyncHealth(PERIOD, clock=clock)


@pytest.fixture
def healthz(health: SyncHealth) -> Iterator[HttpListener]:
    server = serve_healthz("127.0.0.1:0", health)
    yield server
    server.close()


def test_unhealthy_before_the_first_sync(health: SyncHealth) -> None:
    status = health.status()
    assert not status.healthy
    assert status.last_updated is None


def test_healthy_until_two_sync_periods_pass_without_a_sync(
    health: SyncHealth, clock: Clock
) -> None:
    health.record_sync(virtual=3, real=7)
    assert health.is_healthy()
    clock.now += 2 * PERIOD
    assert health.is_healthy()
    clock.now += 0.001
    assert not health.is_healthy()
    health.record_sync()
    assert health.is_healthy()


def test_a_sync_recorded_at_an_earlier_time_counts_from_then(
    health: SyncHealth, clock: Clock
) -> None:
    health.record_sync(at=START - 2 * PERIOD - 1)
    assert not health.is_healthy()


def test_healthz_answers_503_then_200_then_503(
    healthz: HttpListener, health: SyncHealth, clock: Clock
) -> None:
    status, _, body = get(healthz.port, "/healthz")
    assert status == 503
    assert json.loads(body) == {
        "lastUpdated": None,
        "currentTime": "2025-01-31T12:00:00.000Z",
        "virtualServers": 0,
        "realServers": 0,
        "healthy": False,
    }

    clock.now += 1.25
    health.record_sync(virtual=3, real=7)
    clock.now += 5
    status, headers, body = get(healthz.port, "/healthz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(body) == {
        "lastUpdated": "2025-01-31T12:00:01.250Z",
        "currentTime": "2025-01-31T12:00:06.250Z",
        "virtualServers": 3,
        "realServers": 7,
        "healthy": True,
    }

    clock.now += 2 * PERIOD
    status, _, body = get(healthz.port, "/healthz")
    assert status == 503
    assert json.loads(body)["healthy"] is False


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz?verbose=1"])
def test_livez_and_readyz_answer_as_healthz(
    healthz: HttpListener, health: SyncHealth, path: str
) -> None:
    health.record_sync()
    assert get(healthz.port, path)[0] == 200


def test_other_paths_are_not_found(healthz: HttpListener) -> None:
    assert get(healthz.port, "/metrics")[0] == 404


def test_a_bad_healthz_address_names_the_flag(health: SyncHealth) -> None:
    with pytest.raises(ValueError, match=r"^--healthz-address: "):
        serve_healthz("10256", health)


def test_the_sync_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SyncHealth(0)


def test_a_view_known_to_be_stale_is_unhealthy_until_it_is_whole_again() -> None:
    stale = [False]
    health = SyncHealth(30.0, clock=lambda: 1000.0, stale=lambda: stale[0])
    health.record_sync(at=999.0)
    assert health.is_healthy()
    stale[0] = True  # a watch went silent: what happened since is unknown
    assert not health.is_healthy()
    stale[0] = False  # a new watch is open from where the old one was
    assert health.is_healthy()
