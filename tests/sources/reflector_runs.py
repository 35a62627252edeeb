"""Running a reflector in a test: quick settings, recorded hooks, and a stop that is
always called (and must end the thread)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ipvsctl.sources.api.backoff import Backoff
from ipvsctl.sources.api.resources import Resource
from ipvsctl.sources.api.watch import Reflector, ReflectorHooks, WatchSettings
from tests.sources.kube_api import KubeApi
from tests.sources.recording_sink import RecordingSink

# Short backoff so retries take milliseconds; a long watch timeout so a watch
# ends only when a test makes it end.
QUICK = WatchSettings(
    watch_timeout=60.0,
    backoff=Backoff(initial=0.01, cap=0.05),
    connect_timeout=2.0,
    list_read_timeout=5.0,
)
JOIN_TIMEOUT = 5.0


class HookCalls:
    """What a reflector reported through its hooks."""

    def __init__(self) -> None:
        self.restarts: list[tuple[str, str]] = []
        self.relists: list[str] = []
        self.errors: list[str] = []
        self.reconnects: list[str] = []

    def hooks(self) -> ReflectorHooks:
        return ReflectorHooks(
            on_watch_restart=lambda kind, reason: self.restarts.append((kind, reason)),
            on_relist=self.relists.append,
            on_api_error=self.errors.append,
            on_reconnect=self.reconnects.append,
        )


@contextmanager
def reflecting(
    api: KubeApi,
    resource: Resource,
    sink: RecordingSink,
    calls: HookCalls | None = None,
    settings: WatchSettings = QUICK,
) -> Iterator[Reflector]:
    """A started reflector of `resource` on `api`; stopped at the end, which must end its
    thread (the test fails otherwise)."""
    stop = threading.Event()
    hooks = calls.hooks() if calls is not None else None
    reflector = Reflector(api.client(), resource, sink, stop, hooks, settings)
    reflector.start()
    try:
        yield reflector
    finally:
        stop.set()
        reflector.thread.join(JOIN_TIMEOUT)
    assert not reflector.thread.is_alive(), "the reflector outlived its stop"


def synced(reflector: Reflector) -> Reflector:
    assert reflector.synced.wait(JOIN_TIMEOUT), f"{reflector.kind} never listed"
    return reflector
