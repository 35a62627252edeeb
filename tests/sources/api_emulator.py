"""kmock's Kubernetes emulator, with the API server semantics a reflector relies on.

kmock's `KubernetesEmulator` stores objects (merge patches) and streams their
changes, but has no resourceVersions: every watch replays the current objects
as ADDED, and nothing can be resumed. `ApiServerEmulator` keeps kmock's
storage and adds what a real API server does:

- a resourceVersion on every object and event, from one counter (etcd's
  revision), and a uid on every created object;
- LIST in pages (`limit`/`continue`, each list a snapshot), `fieldSelector` on
  metadata.name and metadata.namespace, items without apiVersion/kind;
- WATCH from a resourceVersion (the changes after it, from a history), or from
  ""/"0" (the current objects as ADDED first); `timeoutSeconds`; BOOKMARK
  events, when the watch allows them and the test calls `bookmark()`;
- `compact()`: every resourceVersion so far becomes too old; a watch from one
  gets an ERROR event 410 Expired (or HTTP 410 with `gone_as_status`), as does
  a continue token.

And faults, for tests: `end_watches()` (the server ends them, as at its
timeout), `drop_watches()` (the connection is cut mid-stream),
`send_error(code)` (an ERROR event, then the end),
`fail_reads(503, ...)` (the next LIST/WATCH requests are answered with those
statuses), `garble_lists(body, ...)` (the next LISTs answer those bodies),
`expire_watches(n)` (the next n WATCHes answer 410 at once), `expire_continues`
(that many continue tokens are refused).

The control methods run on the emulator's event loop (`KubeApi.call` takes
them there). Writes are serialized here, so the history is in order.

Speed: a write costs the same however many requests came before and however
many objects are stored, so a benchmark can hold a 10,000-Service cluster.
kmock itself is O(requests served) per request: it logs every request, and
matches each new one to a reaction by walking that log once per reaction. So
kmock's log here holds only the requests in flight (reactions that count or
slice requests would see only those: no test registers one on this
emulator), and `log` keeps what tests read: every write, list and watch.
Objects are looked up by key, not by a scan of the store, and a watch reads
the history from its position on. `load()` stores many objects at once, as
creates would, without HTTP: a shortcut for benchmarks and big fixtures.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import uuid
from collections.abc import AsyncIterator, Iterable
from operator import attrgetter
from typing import Any, NamedTuple

import attrs
import kmock

WRITES = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
READS = (kmock.action.LIST, kmock.action.WATCH)
LOGGED = WRITES + READS  # the requests `log` keeps
KINDS = {
    "services": "Service",
    "endpointslices": "EndpointSlice",
    "nodes": "Node",
    "events": "Event",
}


class Change(NamedTuple):
    revision: int
    resource: kmock.resource
    namespace: str | None
    name: str
    event: dict[str, Any]  # {"type": ..., "object": ...} as a watch sends it


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    gone_as_status: bool = False  # 410 on a too-old watch as the HTTP status, not an event
    expire_continues: int = 0  # refuse this many continue tokens with 410, as after a compaction

    _revision: int = attrs.field(default=1, init=False)
    _compacted: int = attrs.field(default=0, init=False)  # versions below this are too old
    _history: list[Change] = attrs.field(factory=list, init=False)
    _snapshots: dict[str, tuple[int, list[dict[str, Any]]]] = attrs.field(factory=dict, init=False)
    _failures: list[int] = attrs.field(factory=list, init=False)
    # Answers to the next LISTs, and watches to answer 410 at once, by path ("": any).
    _list_bodies: list[tuple[str, Any]] = attrs.field(factory=list, init=False)
    _expiring_watches: dict[str, int] = attrs.field(factory=dict, init=False)
    _bookmarks: int = attrs.field(default=0, init=False)
    _ends: int = attrs.field(default=0, init=False)
    _drops: int = attrs.field(default=0, init=False)
    _errors: list[int] = attrs.field(factory=list, init=False)  # codes of ERROR events sent
    _signal: int = attrs.field(default=0, init=False)  # moves on anything a watch must see
    _watching: int = attrs.field(default=0, init=False)  # watches waiting for changes now
    _writing: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    _changed: asyncio.Condition = attrs.field(factory=asyncio.Condition, init=False)
    _log: list[kmock.Request] = attrs.field(factory=list, init=False)
    _kinds: dict[tuple[str, str], tuple[kmock.resource, bool]] = attrs.field(
        factory=dict, init=False
    )

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def log(self) -> list[kmock.Request]:
        """The writes (create, patch, delete), lists and watches served, oldest first."""
        return list(self._log)

    @property
    def watching(self) -> int:
        """How many watches are established and waiting for changes: a bookmark or an
        end sent now reaches them."""
        return self._watching

    # -- control, for tests ------------------------------------------------------

    async def bookmark(self) -> None:
        await self._notify(bookmarks=1)

    async def end_watches(self) -> None:
        await self._notify(ends=1)

    async def drop_watches(self) -> None:
        await self._notify(drops=1)

    async def send_error(self, code: int) -> None:
        """An ERROR event (a Status with `code`) on every watch, which then ends."""
        self._errors.append(code)
        await self._notify()

    async def compact(self) -> None:
        """Forget the history: a watch from any resourceVersion given so far is too old."""
        self._revision += 1  # the compaction's own revision, which a new list then returns
        self._compacted = self._revision
        self._history.clear()
        self._snapshots.clear()

    async def bump(self) -> None:
        """A write elsewhere in the cluster: the revision moves, no watch here sees it."""
        self._revision += 1

    def fail_reads(self, *statuses: int) -> None:
        self._failures.extend(statuses)

    def garble_lists(self, *bodies: Any, path: str = "") -> None:
        """Answer the next LISTs (of `path`, or any) with these bodies (200 OK), as a broken
        proxy might."""
        self._list_bodies.extend((path, body) for body in bodies)

    def expire_watches(self, count: int, path: str = "") -> None:
        """Answer the next `count` WATCHes (of `path`, or any) with a 410 ERROR event at
        once, whatever their resourceVersion (a storm: each right after a good LIST)."""
        self._expiring_watches[path] = self._expiring_watches.get(path, 0) + count

    async def load(self, objects: Iterable[dict[str, Any]]) -> None:
        """Store `objects` as creates of each in turn would (a resourceVersion each, a
        uid, an ADDED event for watches), without an HTTP request each."""
        try:
            async with self._writing:
                for obj in objects:
                    self._load_one(obj)
        finally:
            await self._notify()  # of those stored before any refusal, too

    def _load_one(self, obj: dict[str, Any]) -> None:
        resource, namespaced = self._resource_of(obj)
        data = copy.deepcopy(obj)
        metadata = data.setdefault("metadata", {})
        if namespaced:
            metadata.setdefault("namespace", "default")
        namespace, name = metadata.get("namespace"), metadata.get("name")
        request = kmock.Request(
            action=kmock.action.CREATE, resource=resource, namespace=namespace, data=data
        )
        revision = self._revision + 1
        self._stamp(request, revision)
        key = (resource, namespace, name)
        if key not in self.objects:  # as KubernetesEmulator._handle stores a create
            self.objects[key] = data
        elif self.objects[key].deleted:
            self.objects[key].create(data)
        else:
            message = f"{resource.plural} {name!r} already exists"
            raise kmock.KubernetesError(status=409, reason="AlreadyExists", message=message)
        self._record(request, revision)

    # -- requests ----------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> Any:
        if request.action in LOGGED:
            self._log.append(request)
        try:
            return await self._serve(request)
        finally:
            self._forget(request)

    def _forget(self, request: kmock.Request) -> None:
        """Out of kmock's logs, once served: kmock walks its log (all of it, through
        each reaction's filters) to match every request, so a log of every request
        makes each request slower than the last."""
        for requests in (self._requests, *(p._requests for p in self._payloads)):
            for index in range(len(requests) - 1, -1, -1):
                if requests[index] is request:
                    del requests[index]
                    break

    async def _serve(self, request: kmock.Request) -> Any:
        if request.action in READS and self._failures:
            status = self._failures.pop(0)
            raise kmock.KubernetesError(status=status, reason="Injected", message="injected")
        if request.resource is None or request.action not in WRITES:
            return await super()._handle(request)
        async with self._writing:
            revision = self._revision + 1
            if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
                self._stamp(request, revision)
            response = await super()._handle(request)
            self._record(request, revision)
        await self._notify()
        return response

    def _stamp(self, request: kmock.Request, revision: int) -> None:
        if not isinstance(request.data, dict):
            return
        metadata = request.data.setdefault("metadata", {})
        metadata["resourceVersion"] = str(revision)
        if request.action == kmock.action.CREATE:
            metadata.setdefault("uid", str(uuid.uuid4()))

    def _record(self, request: kmock.Request, revision: int) -> None:
        data = request.data if isinstance(request.data, dict) else {}
        metadata = data.get("metadata") or {}
        namespace = request.namespace or metadata.get("namespace")
        name = request.name or metadata.get("name")
        obj = self.objects[request.resource, namespace, name]
        if request.action == kmock.action.DELETE:
            if not obj.deleted:
                return  # held by finalizers: not gone yet (no test needs the MODIFIED)
            raw = copy.deepcopy(obj.last.raw)
            raw.setdefault("metadata", {})["resourceVersion"] = str(revision)
            kind = "DELETED"
        else:
            raw = copy.deepcopy(obj.raw)
            kind = "ADDED" if request.action == kmock.action.CREATE else "MODIFIED"
        self._revision = revision
        self._history.append(
            Change(revision, request.resource, namespace, name, {"type": kind, "object": raw})
        )

    # kmock finds the object of a request by a scan of the whole store; by its key here.
    async def _serve_fetch(self, request: kmock.Request) -> Any:
        obj = self._stored(request, request.namespace, request.name)
        if obj is None or obj.deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return obj.raw

    async def _serve_create(self, request: kmock.Request) -> Any:
        metadata = request.data.get("metadata", {})
        namespace = request.namespace or metadata.get("namespace")
        return self._require(request, namespace, request.name or metadata.get("name")).raw

    async def _serve_update(self, request: kmock.Request) -> Any:
        return self._require(request, request.namespace, request.name).last.raw

    async def _serve_delete(self, request: kmock.Request) -> Any:
        return self._require(request, request.namespace, request.name).last.raw

    def _stored(self, request: kmock.Request, namespace: str | None, name: str | None) -> Any:
        key = (request.resource, namespace, name)
        found = key in self.objects  # kmock's ObjectsArray has no get()
        return self.objects[key] if found else None

    def _require(self, request: kmock.Request, namespace: str | None, name: str | None) -> Any:
        obj = self._stored(request, namespace, name)
        assert obj is not None, "stored by KubernetesEmulator._handle before this is served"
        return obj

    async def _serve_list(self, request: kmock.Request) -> Any:
        for index, (path, body) in enumerate(self._list_bodies):
            if path in ("", request.url.path):
                del self._list_bodies[index]
                return body
        params = request.params
        limit = int(params.get("limit") or 0)
        token = params.get("continue") or ""
        async with self._writing:
            if token:
                if self.expire_continues > 0 or token not in self._snapshots:
                    self.expire_continues = max(0, self.expire_continues - 1)
                    raise kmock.KubernetesError(
                        status=410, reason="Expired", message="continue token too old"
                    )
                revision, rest = self._snapshots.pop(token)
            else:
                revision, rest = self._revision, self._current(request)
        page, rest = (rest[:limit], rest[limit:]) if limit else (rest, [])
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if rest:
            token = uuid.uuid4().hex
            self._snapshots[token] = (revision, rest)
            metadata["continue"] = token
        for item in page:  # as in a typed list (ServiceList), items carry no apiVersion/kind
            item.pop("apiVersion", None)
            item.pop("kind", None)
        resource = request.resource
        kind = KINDS.get(resource.plural or "", "Object") if resource else "Object"
        group_version = f"{resource.group or ''}/{resource.version}".lstrip("/") if resource else ""
        # As a real API server answers: the typed list of the resource's group version.
        return {
            "apiVersion": group_version or "v1",
            "kind": f"{kind}List",
            "metadata": metadata,
            "items": page,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        params = request.params
        since = params.get("resourceVersion") or ""
        allow_bookmarks = params.get("allowWatchBookmarks") == "true"
        loop = asyncio.get_running_loop()
        timeout = params.get("timeoutSeconds")
        deadline = loop.time() + float(timeout) if timeout else None
        initial: list[dict[str, Any]] = []
        if since in ("", "0"):  # "the current state, then changes"
            position = self._revision
            initial = [{"type": "ADDED", "object": obj} for obj in self._current(request)]
        else:
            position = int(since)
        too_old = position < self._compacted or self._expire_one(request.url.path)
        message = f"too old resource version: {position} ({self._compacted})"
        if too_old and self.gone_as_status:
            raise kmock.KubernetesError(status=410, reason="Expired", message=message)
        yield b""  # the headers: the watch is established
        if too_old:
            yield {"type": "ERROR", "object": _status(410, "Expired", message)}
            return
        for event in initial:
            yield event
        self._watching += 1
        try:
            async for event in self._changes(request, position, allow_bookmarks, deadline):
                yield event
        finally:
            self._watching -= 1

    async def _changes(
        self,
        request: kmock.Request,
        position: int,
        allow_bookmarks: bool,
        deadline: float | None,
    ) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        bookmarks, ends, drops = self._bookmarks, self._ends, self._drops
        errors = len(self._errors)
        while True:
            start = bisect.bisect_right(self._history, position, key=attrgetter("revision"))
            for change in self._history[start:]:
                position = change.revision
                if self._selects(request, change.resource, change.namespace, change.name):
                    yield change.event
            if self._bookmarks > bookmarks and allow_bookmarks:
                position = self._revision
                yield {"type": "BOOKMARK", "object": self._bookmark(request)}
            bookmarks = self._bookmarks
            if self._drops > drops:
                transport = request._raw_request.transport if request._raw_request else None
                if transport is not None:
                    transport.abort()  # mid-stream, no end of the chunked body
                return
            if len(self._errors) > errors:
                code = self._errors[errors]
                yield {"type": "ERROR", "object": _status(code, "InternalError", "injected")}
                return
            if self._ends > ends:
                return
            signal = self._signal
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            try:
                async with self._changed:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda s=signal: self._signal != s), remaining
                    )
            except TimeoutError:
                return

    # -- helpers -----------------------------------------------------------------

    async def _notify(self, bookmarks: int = 0, ends: int = 0, drops: int = 0) -> None:
        self._bookmarks += bookmarks
        self._ends += ends
        self._drops += drops
        self._signal += 1
        async with self._changed:
            self._changed.notify_all()

    def _current(self, request: kmock.Request) -> list[dict[str, Any]]:
        found = [
            copy.deepcopy(obj.raw)
            for (resource, namespace, name), obj in self.objects.items()
            if not obj.deleted and self._selects(request, resource, namespace, name)
        ]
        return sorted(
            found, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"])
        )

    def _selects(
        self, request: kmock.Request, resource: Any, namespace: str | None, name: str
    ) -> bool:
        if resource != request.resource:
            return False
        if request.namespace is not None and namespace != request.namespace:
            return False
        wanted = {"metadata.name": name, "metadata.namespace": namespace or ""}
        for term in filter(None, (request.params.get("fieldSelector") or "").split(",")):
            field, _, value = term.replace("==", "=").partition("=")
            if field not in wanted:
                raise kmock.KubernetesError(status=400, reason="BadRequest", message=term)
            if wanted[field] != value:
                return False
        return True

    def _resource_of(self, obj: dict[str, Any]) -> tuple[kmock.resource, bool]:
        """The declared resource of an object's apiVersion and kind; whether namespaced."""
        if not self._kinds:
            for resource in self.resources:
                info = self.resources[resource]
                group_version = f"{resource.group}/{resource.version}".lstrip("/")
                self._kinds[group_version, info.kind] = (resource, bool(info.namespaced))
        found = self._kinds.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if found is None:
            raise ValueError(f"no resource declared for {obj.get('apiVersion')} {obj.get('kind')}")
        return found

    def _expire_one(self, path: str) -> bool:
        for scope in (path, ""):
            if self._expiring_watches.get(scope, 0) > 0:
                self._expiring_watches[scope] -= 1
                return True
        return False

    def _bookmark(self, request: kmock.Request) -> dict[str, Any]:
        plural = request.resource.plural if request.resource else ""
        return {
            "apiVersion": "v1",
            "kind": KINDS.get(plural or "", "Object"),
            "metadata": {"resourceVersion": str(self._revision)},
        }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
