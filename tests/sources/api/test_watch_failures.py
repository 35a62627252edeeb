"""The reflector when the API server fails: retries with backoff, one log line per
streak of failures, and a stop that ends it whatever it is waiting for."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from kubernetes import client as kube_client

from ipvsctl.sources.api.backoff import Backoff, FailureStreak, RetryWake, retrying
from ipvsctl.sources.api.requests import ApiError
from ipvsctl.sources.api.resources import ENDPOINT_SLICES, SERVICES, node_resource
from ipvsctl.sources.api.watch import Reflector
from tests.sources.kube_api import TOKEN, KubeApi, service, wait_for
from tests.sources.recording_sink import RecordingSink
from tests.sources.reflector_runs import JOIN_TIMEOUT, QUICK, HookCalls, reflecting, synced
from tests.sources.stalling_proxy import StallingProxy

BACKOFF_LOG = "ipvsctl.sources.api.backoff"


def streak_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, dict[str, Any]]]:
    """The backoff's log lines: level, message and fields."""
    return [
        (r.levelno, r.getMessage(), r.__dict__["fields"])
        for r in caplog.records
        if r.name == BACKOFF_LOG
    ]


def test_an_api_server_down_for_a_while_logs_one_line_then_one_when_back(
    api: KubeApi, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, BACKOFF_LOG)
    api.create(service("web"))
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        api.stop_serving()
        wait_for(lambda: len(calls.errors) >= 4, what="several failed tries")
        api.start_serving()
        api.create(service("db", cluster_ip="10.96.0.11"))
        sink.wait_for(lambda s: ("default", "db") in s.held("Service"), "db after the outage")
    (failing, recovered) = streak_lines(caplog)
    assert failing[:2] == (
        logging.WARNING,
        "Kubernetes API requests failing, retrying with backoff",
    )
    assert failing[2]["kind"] == "Service"
    assert failing[2]["error"].startswith("WATCH /api/v1/services: ")
    assert recovered == (
        logging.INFO,
        "Kubernetes API requests working again",
        {"kind": "Service", "failures": len(calls.errors)},
    )
    # The watch resumed from where it was: no second list.
    assert calls.relists == ["Service"]
    assert len(api.requests("list", "/api/v1/services")) == 1


def test_5xx_answers_are_retried_until_the_list_succeeds(
    api: KubeApi, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, BACKOFF_LOG)
    api.create(service("web"))
    api.fail_reads(503, 500, 429)
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
    assert calls.errors == ["Service"] * 3
    assert set(sink.held("Service")) == {("default", "web")}
    lines = streak_lines(caplog)
    assert [level for level, _, _ in lines] == [logging.WARNING, logging.INFO]
    assert lines[0][2]["error"] == "LIST /api/v1/services: HTTP 503: injected"
    assert lines[1][2]["failures"] == 3


def test_a_failure_mid_watch_waits_before_trying_again(api: KubeApi, sink: RecordingSink) -> None:
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        api.wait_for_watches()
        api.fail_reads(503)  # the watch that follows the drop is refused once
        api.drop_watches()
        api.create(service("web"))
        sink.wait_for(lambda s: ("default", "web") in s.held("Service"))
    assert calls.errors == ["Service", "Service"]  # the drop, then the 503
    assert calls.restarts == [("Service", "error")]


def test_an_error_event_restarts_the_watch_from_where_it_was(
    api: KubeApi, sink: RecordingSink
) -> None:
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        api.wait_for_watches()
        version = reflector.resume_from
        api.send_error(500)
        watches = api.wait_for_requests(2, "watch", "/api/v1/services")
        assert watches[1].params["resourceVersion"] == version
    assert calls.restarts == [("Service", "error")]
    assert calls.errors == ["Service"]
    assert calls.relists == ["Service"]


def test_stop_ends_a_reflector_waiting_on_its_watch(api: KubeApi, sink: RecordingSink) -> None:
    stop = threading.Event()
    reflector = Reflector(api.client(), SERVICES, sink, stop, settings=QUICK)
    reflector.start()
    synced(reflector)
    api.wait_for_watches()  # blocked in a read that would last the watch's 60 s
    stop.set()
    reflector.thread.join(JOIN_TIMEOUT)
    assert not reflector.thread.is_alive()


def test_stop_ends_a_reflector_waiting_to_retry(api: KubeApi, sink: RecordingSink) -> None:
    api.stop_serving()
    stop = threading.Event()
    slow = Backoff(initial=60.0, cap=60.0, jitter=0.0)
    settings = replace(QUICK, backoff=slow)
    calls = HookCalls()
    reflector = Reflector(api.client(), SERVICES, sink, stop, calls.hooks(), settings)
    reflector.start()
    wait_for(lambda: calls.errors, what="the first failure")  # now waiting 60 s
    stop.set()
    reflector.thread.join(JOIN_TIMEOUT)
    assert not reflector.thread.is_alive()
    assert not reflector.synced.is_set()
    api.start_serving()


def test_the_backoff_doubles_up_to_its_cap_less_its_jitter() -> None:
    backoff = Backoff(initial=0.5, cap=30.0, jitter=0.5)
    assert [backoff.delay(n, draw=lambda: 0.0) for n in range(1, 9)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0,
    ]  # fmt: skip
    assert backoff.delay(3, draw=lambda: 1.0) == 1.0  # at most half of it is taken off


def test_a_streak_waits_longer_with_each_failure_and_starts_over_after_a_success() -> None:
    stop = threading.Event()
    streak = FailureStreak("Service", Backoff(initial=0.001, cap=0.004, jitter=0.0))
    waits: list[float] = []
    outcomes = iter([ApiError("down"), ApiError("down"), ApiError("down"), None])

    def attempt() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome
        streak.succeeded()

    run = retrying(streak, stop)
    run.before_sleep = lambda state: waits.append(state.upcoming_sleep)
    run(attempt)
    assert waits == [0.001, 0.002, 0.004]
    assert streak.failures == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"apiVersion": "v1", "kind": "ServiceList", "metadata": {"resourceVersion": "9"}},
        {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": []},
        {"apiVersion": "apps/v1", "kind": "ServiceList", "metadata": {}, "items": []},
        {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 200},
    ],
    ids=["empty", "no-items", "wrong-kind", "wrong-api-version", "a-status"],
)
def test_a_list_that_is_not_the_list_asked_for_is_retried_and_deletes_nothing(
    api: KubeApi, sink: RecordingSink, body: dict[str, Any]
) -> None:
    api.create(service("web"))
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        api.wait_for_watches()
        api.garble_lists(body, body)
        api.compact()  # the next watch gets 410: a LIST follows, answered with `body` twice
        api.drop_watches()
        wait_for(lambda: len(api.requests("list", "/api/v1/services")) >= 4, what="a good list")
        sink.wait_for(lambda s: len(s.calls_named("replace")) >= 2, "the good list's replace")
    replaces = [call[2] for call in sink.calls_named("replace")]
    assert all(set(values) == {("default", "web")} for values in replaces), replaces
    assert sink.calls_named("delete") == []
    assert calls.errors.count("Service") >= 2  # each garbled answer a failure, retried


def test_a_storm_of_410_after_each_list_relists_with_backoff_not_back_to_back(
    api: KubeApi, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ipvsctl.sources.api.watch")
    api.create(service("web"))
    paced = replace(QUICK, backoff=Backoff(initial=0.1, cap=0.4, jitter=0.0))
    with reflecting(api, SERVICES, sink, settings=paced) as reflector:
        synced(reflector)
        api.wait_for_watches()
        storm = 6
        api.expire_watches(storm)
        started = time.monotonic()
        api.drop_watches()
        # The storm is over once a watch is established again after its last 410.
        wait_for(
            lambda: len(api.requests("list", "/api/v1/services")) == 1 + storm,
            what="a list per expired watch",
        )
        api.wait_for_watches()
        took = time.monotonic() - started
        api.create(service("db", cluster_ip="10.96.0.11"))
        sink.wait_for(lambda s: ("default", "db") in s.held("Service"), "db after the storm")
    # Each LIST after the first expiry waited its backoff: 0.1 + 0.2 + 0.4 + 0.4 + 0.4 s
    # at least (the first expiry follows a watch that had run: no wait before its LIST).
    assert took >= 0.1 + 0.2 + 0.4 * 3
    assert len(api.requests("list", "/api/v1/services")) == 1 + storm
    warnings = [r for r in caplog.records if r.name == "ipvsctl.sources.api.watch"]
    assert [r.getMessage() for r in warnings] == [
        "watch expired right after its list; listing again with backoff"
    ]


def test_a_silent_watch_is_taken_for_dead_started_again_and_stale_meanwhile(
    api: KubeApi, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ipvsctl.sources.api.watch")
    settings = replace(
        QUICK, idle_timeout=0.5, backoff=Backoff(initial=0.5, cap=0.5, jitter=0.0)
    )
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls, settings) as reflector:
        synced(reflector)
        api.wait_for_watches()
        version = reflector.resume_from
        assert not reflector.stale
        # The open watch stays open and says nothing; the next two are refused.
        api.fail_reads(503, 503)
        wait_for(lambda: reflector.stale, what="the silent watch taken for dead")
        wait_for(lambda: not reflector.stale, what="a new watch open")
        watches = api.wait_for_requests(4, "watch", "/api/v1/services")
        # Started again from where it was: nothing listed again.
        assert {w.params["resourceVersion"] for w in watches} == {version}
        api.create(service("db", cluster_ip="10.96.0.11"))
        sink.wait_for(lambda s: ("default", "db") in s.held("Service"), "db after the silence")
    assert ("Service", "silent") in calls.restarts
    assert calls.relists == ["Service"]
    messages = [r.getMessage() for r in caplog.records if r.name == "ipvsctl.sources.api.watch"]
    assert messages == ["watch silent, taken for dead; starting it again"]


def test_a_reflector_back_at_the_server_ends_the_others_backoff(
    api: KubeApi, sink: RecordingSink
) -> None:
    """After an outage, a reflector whose backoff has grown long retries as soon as
    another reaches the server: the agent's view (and health) is whole again at once."""
    stop = threading.Event()
    wake = RetryWake(stop)
    quick_calls, slow_calls = HookCalls(), HookCalls()
    slow = replace(QUICK, backoff=Backoff(initial=60.0, cap=60.0, jitter=0.0))
    reflectors = [
        Reflector(api.client(), SERVICES, sink, stop, quick_calls.hooks(), QUICK, wake),
        Reflector(api.client(), ENDPOINT_SLICES, sink, stop, slow_calls.hooks(), slow, wake),
    ]
    try:
        for reflector in reflectors:
            reflector.start()
            synced(reflector)
        api.wait_for_watches(2)
        api.stop_serving()
        wait_for(lambda: slow_calls.errors, what="the slow one waiting out 60 s")
        api.start_serving()
        # Well inside the slow one's own 60 s: the quick one's return woke it.
        wait_for(lambda: slow_calls.reconnects, timeout=20.0, what="the slow one back")
        assert quick_calls.reconnects == ["Service"]
        assert not any(reflector.failing for reflector in reflectors)
    finally:
        stop.set()
        for reflector in reflectors:
            reflector.thread.join(JOIN_TIMEOUT)


def test_a_connection_that_goes_silent_without_a_reset_is_noticed(
    api: KubeApi, sink: RecordingSink
) -> None:
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    settings = replace(QUICK, idle_timeout=0.5)
    calls = HookCalls()
    with StallingProxy((host, int(port))) as proxy:
        configuration = kube_client.Configuration(host=proxy.url)
        configuration.api_key = {"BearerToken": f"Bearer {TOKEN}"}
        stop = threading.Event()
        client = kube_client.ApiClient(configuration)
        reflector = Reflector(client, SERVICES, sink, stop, calls.hooks(), settings)
        reflector.start()
        try:
            synced(reflector)
            api.wait_for_watches()
            proxy.stall()  # the open watch: up, and silent
            api.create(service("db", cluster_ip="10.96.0.11"))
            sink.wait_for(lambda s: ("default", "db") in s.held("Service"), "db through a new one")
            # Seen as silent, not as an error or a close (waited for: on a busy machine
            # the hook is called a moment after the new watch has delivered).
            wait_for(lambda: ("Service", "silent") in calls.restarts, what="a silent restart")
        finally:
            stop.set()
            reflector.thread.join(JOIN_TIMEOUT)


def test_answers_that_are_garbage_wake_no_one_and_the_backoff_holds(
    api: KubeApi, sink: RecordingSink
) -> None:
    """A server (or proxy) answering 200 with garbage to every LIST is still failing: the
    reflectors sharing a wake must not wake each other out of their backoff each try."""
    api.create(service("web"))
    api.garble_lists(*([{}] * 1000))
    stop = threading.Event()
    wake = RetryWake(stop)
    settings = replace(QUICK, backoff=Backoff(initial=1.0, cap=1.0, jitter=0.0))
    calls = [HookCalls() for _ in range(3)]
    resources = (SERVICES, ENDPOINT_SLICES, node_resource("node-1"))
    reflectors = [
        Reflector(api.client(), resource, sink, stop, hooks.hooks(), settings, wake)
        for resource, hooks in zip(resources, calls, strict=True)
    ]
    for reflector in reflectors:
        reflector.start()
    wait_for(lambda: all(len(c.errors) >= 2 for c in calls), what="two failures each")
    started = time.monotonic()
    time.sleep(2.0)  # a window to count requests in, not a wait for a condition
    stop.set()
    for reflector in reflectors:
        reflector.thread.join(JOIN_TIMEOUT)
    window = time.monotonic() - started
    # One LIST per reflector per second of backoff, at most (a woken storm made hundreds).
    assert len(api.requests("list")) <= 3 * (window + 2) + 6
    assert all(c.reconnects == [] for c in calls)
