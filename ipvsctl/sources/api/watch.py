"""A reflector: one resource listed, then watched, into a `ClusterSink`, for as long as
the agent runs.

It follows the API server's contract as client-go's reflector does
(tools/cache/reflector.go):

- LIST in pages (`limit`/`continue`), then WATCH from the list's
  resourceVersion with bookmarks and a server-side timeout (jittered, so the
  watches of a thousand nodes do not all end in the same second).
- Every event and bookmark moves the resume point; a watch that ends, or
  whose connection drops, starts again from it, with nothing lost or repeated.
  So does a watch silent for `idle_timeout` (no event, no bookmark): a
  connection that died without a reset would otherwise leave the agent blind.
- 410 Gone (on the request, or as an ERROR event) means the resume point is
  older than the server's history: LIST again, and `replace` the whole kind;
  with backoff when the watch expired right after its LIST.
- An event without a resourceVersion (an emulator, not a real server) leaves
  no point to resume from, so the next start is a LIST too.
- Failures retry with backoff (`backoff`), logged once per streak.

Each reflector runs in a daemon thread. `stop` ends it within a moment: a
second thread waits for it and shuts the open response's socket, which ends
a read that would otherwise wait for the next event, and a backoff wait ends
at `stop` (and when another reflector of the agent reaches the API server
again: `RetryWake`). (A request still waiting for its answer's headers, which an
API server sends at once for a watch, is bounded by its timeouts instead.)
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client as kube_client

from ipvsctl.model.inputs import ObjectKey, Refused
from ipvsctl.sources.api.backoff import Backoff, FailureStreak, RetryWake, retrying
from ipvsctl.sources.api.requests import (
    ApiError,
    ListPage,
    ResourceExpired,
    StreamSilent,
    json_lines,
    open_get,
    read_list,
    status_error,
)
from ipvsctl.sources.api.resources import (
    ENDPOINT_SLICES,
    SERVICES,
    ClusterSink,
    ClusterValue,
    Resource,
    deliver,
    node_resource,
    object_key,
    read_object,
    resource_version,
    wanted,
)

log = logging.getLogger(__name__)

EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK")


def _ignore(*_: object) -> None:
    pass


@dataclass(frozen=True)
class ReflectorHooks:
    """What a reflector reports, for metrics. Called from the reflector's thread."""

    # (kind, reason): "closed" (the server ended it, e.g. its timeout), "expired"
    # (410: a LIST follows), "error" (the connection broke or the server sent an error).
    on_watch_restart: Callable[[str, str], None] = _ignore
    on_relist: Callable[[str], None] = _ignore  # (kind): a full LIST starts
    on_api_error: Callable[[str], None] = _ignore  # (kind): a request failed
    on_reconnect: Callable[[str], None] = _ignore  # (kind): answered again after failures


@dataclass(frozen=True)
class WatchSettings:
    watch_timeout: float = 300.0  # seconds a watch lasts (timeoutSeconds), before jitter
    watch_jitter: float = 0.2  # each watch lasts watch_timeout * (1 +- this)
    page_size: int = 500  # objects per LIST page
    connect_timeout: float = 10.0
    list_read_timeout: float = 60.0  # a LIST page's longest silence
    # A watch silent this long past its own timeout has lost its connection
    # without a word (a half-open TCP connection): give up on it.
    read_margin: float = 30.0
    # A watch that delivers nothing, not even a bookmark (a real API server sends one
    # about every minute to a watch that asks, as ours do), for this long is dead:
    # started again at once, from where it was (`run --api-idle-timeout`).
    idle_timeout: float = 120.0
    backoff: Backoff = field(default_factory=Backoff)


class Reflector:
    """Keeps `sink` holding what the API server holds of `resource`. `start()` it;
    `synced` is set once the first complete list is in the sink."""

    def __init__(
        self,
        client: kube_client.ApiClient,
        resource: Resource,
        sink: ClusterSink,
        stop: threading.Event,
        hooks: ReflectorHooks | None = None,
        settings: WatchSettings | None = None,
        wake: RetryWake | None = None,
    ) -> None:
        self.resource = resource
        self.synced = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"reflector-{resource.kind}", daemon=True
        )
        self._client = client
        self._sink = sink
        self._stop = stop
        self._hooks = hooks or ReflectorHooks()
        self._settings = settings or WatchSettings()
        self._wake = wake or RetryWake(stop)
        self._streak = FailureStreak(
            resource.kind, self._settings.backoff, lambda: self._hooks.on_api_error(resource.kind)
        )
        # None: the next start is a LIST. "" (a server that gave no version): watch from now.
        self._resume_from: str | None = None
        self._response: urllib3.BaseHTTPResponse | None = None
        self._response_lock = threading.Lock()
        self._delivered = 0  # events and bookmarks read, ever
        self._silent = False  # the last watch went silent, and no new one is open yet
        self._told_back = 0  # the failure streak whose end was last told (`_answered`)
        self._told_silent = False  # logged for the silences since the last event
        self._fresh_list = False  # no watch has delivered anything since the last LIST
        self._expiries = 0  # watches in a row that expired right after their LIST

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def failing(self) -> bool:
        """Whether it is cut off from the API server now: its last requests failed and no
        answer is being read. (The failure streak itself ends only at the first event,
        which in a quiet cluster may be minutes after the server is back.)"""
        with self._response_lock:
            return self._streak.failures > 0 and self._response is None

    @property
    def stale(self) -> bool:
        """Whether what it delivered is known to be behind: its watch went silent and no
        new one is open yet."""
        return self._silent

    @property
    def resume_from(self) -> str | None:
        """The resourceVersion the next watch starts from; None when a LIST comes first."""
        return self._resume_from

    def start(self) -> None:
        threading.Thread(
            target=self._close_on_stop, name=f"reflector-{self.kind}-stop", daemon=True
        ).start()
        self.thread.start()

    def _run(self) -> None:
        try:
            retrying(self._streak, self._stop, self._wake)(self._list_and_watch)
        except Exception:  # only when stopping: every failure is retried until then
            if not self._stop.is_set():
                log.exception("reflector ended", extra={"fields": {"kind": self.kind}})

    def _list_and_watch(self) -> None:
        try:
            while not self._stop.is_set():
                if self._resume_from is None:
                    self._wait_out_expiries()
                    self._relist()
                    self._fresh_list = True
                delivered = self._delivered
                reason = self._watch()
                # A watch that expires before delivering anything of the list it follows
                # (a server, or a proxy, answering 410 to every watch) would make the
                # LISTs back to back: hundreds a second, each of every object.
                storm = reason == "expired" and self._fresh_list and delivered == self._delivered
                self._expiries = self._expiries + 1 if storm else 0
                self._fresh_list = self._fresh_list and reason == "expired"
                if not self._stop.is_set():
                    self._hooks.on_watch_restart(self.kind, reason)
        except ApiError:
            if not self._stop.is_set():
                raise
        except Exception:
            # Not the API: a bug, here or in the sink. What the sink holds may lack
            # the event that failed, so start again from a full list.
            self._resume_from = None
            if not self._stop.is_set():
                raise

    def _wait_out_expiries(self) -> None:
        """Before a LIST that follows watches expiring right after their LIST: the backoff
        every other failure gets, logged once per streak."""
        if not self._expiries:
            return
        if self._expiries == 1:
            log.warning(
                "watch expired right after its list; listing again with backoff",
                extra={"fields": {"kind": self.kind}},
            )
        self._stop.wait(self._settings.backoff.delay(self._expiries))

    def _relist(self) -> None:
        self._hooks.on_relist(self.kind)
        decoded, version = self._list_everything()
        self._streak.succeeded()
        values: dict[ObjectKey, ClusterValue] = {}
        problems: dict[ObjectKey, Refused] = {}
        for key, (value, refused) in decoded.items():
            if value is not None:
                values[key] = value
            if refused is not None:
                problems[key] = refused
        self._sink.replace(self.resource.kind, values, problems)
        self._resume_from = version
        self.synced.set()

    def _list_everything(
        self,
    ) -> tuple[dict[ObjectKey, tuple[ClusterValue | None, Refused | None]], str]:
        """Every object, decoded page by page (a page's dicts are dropped before the next
        comes), and the list's resourceVersion."""
        for attempt in range(2):
            decoded: dict[ObjectKey, tuple[ClusterValue | None, Refused | None]] = {}
            token = ""
            try:
                while True:
                    page = self._list_page(token)
                    for obj in page.items:
                        if wanted(self.resource, obj):
                            decoded[object_key(obj)] = read_object(self.resource, obj)
                    token = page.continue_token
                    if not token:
                        return decoded, page.resource_version
            except ResourceExpired:
                # The continue token outlived the server's history mid-list: start
                # the list over (client-go's pager does the same).
                if not token or attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _list_page(self, token: str) -> ListPage:
        query = [("limit", str(self._settings.page_size))]
        if token:
            query.append(("continue", token))
        query.extend(self._selector())
        timeout = (self._settings.connect_timeout, self._settings.list_read_timeout)
        response = open_get(self._client, self.resource.path, query, timeout, "LIST")
        with self._tracking(response):
            resource = self.resource
            page = read_list(response, f"LIST {resource.path}", resource.kind, resource.api_version)
        self._answered()
        return page

    def _watch(self) -> str:
        """One watch from the resume point, until it ends; why it ended."""
        settings = self._settings
        seconds = settings.watch_timeout * random.uniform(
            1 - settings.watch_jitter, 1 + settings.watch_jitter
        )
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(max(1, int(seconds)))),
        ]
        if self._resume_from:
            query.append(("resourceVersion", self._resume_from))
        query.extend(self._selector())
        silence = min(seconds + settings.read_margin, settings.idle_timeout)
        timeout = (settings.connect_timeout, silence)
        try:
            response = open_get(self._client, self.resource.path, query, timeout, "WATCH")
            # Open from our resume point: the server replays whatever we missed.
            self._silent = False
            self._answered()
            with self._tracking(response):
                try:
                    for event in json_lines(response, f"WATCH {self.resource.path}"):
                        if self._stop.is_set():
                            break
                        self._apply(event)
                        self._streak.succeeded()
                        self._told_silent = False
                except (ResourceExpired, StreamSilent):
                    raise
                except ApiError:
                    if not self._stop.is_set():
                        self._hooks.on_watch_restart(self.kind, "error")
                    raise
        except ResourceExpired:
            self._resume_from = None
            return "expired"
        except StreamSilent:
            # What happened since the last event is unknown until a new watch is open.
            self._silent = True
            if not self._told_silent:
                log.warning(
                    "watch silent, taken for dead; starting it again",
                    extra={"fields": {"kind": self.kind, "seconds": round(silence, 1)}},
                )
                self._told_silent = True
            return "silent"
        self._streak.succeeded()
        return "closed"

    def _apply(self, event: dict[str, Any]) -> None:
        what, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            raise ApiError(f"WATCH {self.resource.path}: a {what} event without an object")
        if what == "ERROR":
            raise status_error(obj, f"WATCH {self.resource.path}: error event")
        if what not in EVENT_TYPES:
            raise ApiError(f"WATCH {self.resource.path}: unknown event type {what!r}")
        if what != "BOOKMARK" and wanted(self.resource, obj):
            if what == "DELETED":
                self._sink.delete(self.resource.kind, object_key(obj))
            else:
                deliver(self._sink, self.resource, obj)
        # Every event moves the resume point, whatever it was about.
        self._resume_from = resource_version(obj) or None
        self._delivered += 1

    def _answered(self) -> None:
        """A good answer (a list page read, a watch open) during a failure streak: the
        server is back, for the other reflectors too. Said once per streak: a server that
        answers and then fails again (a proxy that resets every stream) must not wake
        every reflector, and start a full sync, on each try."""
        streak = self._streak
        if streak.failures and self._told_back != streak.streaks:
            self._told_back = streak.streaks
            self._wake.poke()
            self._hooks.on_reconnect(self.kind)

    def _selector(self) -> list[tuple[str, str]]:
        selector = self.resource.field_selector
        return [("fieldSelector", selector)] if selector else []

    @contextmanager
    def _tracking(self, response: urllib3.BaseHTTPResponse) -> Iterator[None]:
        """`response` is the one `stop` must cut short while it is being read."""
        with self._response_lock:
            self._response = response
            if self._stop.is_set():
                _cut(response)
        try:
            yield
        finally:
            with self._response_lock:
                self._response = None
            response.close()

    def _close_on_stop(self) -> None:
        self._stop.wait()
        self._wake.poke()
        with self._response_lock:
            if self._response is not None:
                _cut(self._response)


def _cut(response: urllib3.BaseHTTPResponse) -> None:
    """End a read of `response` blocked in another thread (shutdown, not close: closing a
    socket does not wake a thread blocked reading it)."""
    # ValueError, RuntimeError: already read to the end, or released; no read waits on it.
    with suppress(ValueError, RuntimeError, OSError):
        response.shutdown()


def cluster_reflectors(
    client: kube_client.ApiClient,
    node_name: str,
    sink: ClusterSink,
    stop: threading.Event,
    hooks: ReflectorHooks | None = None,
    settings: WatchSettings | None = None,
) -> list[Reflector]:
    """The agent's three reflectors (Services, EndpointSlices, this node's Node),
    not yet started; one reaching the API server again ends the others' backoff."""
    resources = (SERVICES, ENDPOINT_SLICES, node_resource(node_name))
    wake = RetryWake(stop)
    return [Reflector(client, r, sink, stop, hooks, settings, wake) for r in resources]
