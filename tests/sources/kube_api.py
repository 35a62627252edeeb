"""A Kubernetes API on loopback for tests, and what a test does with it.

`KubeApi` runs an emulator (`ApiServerEmulator` for a real API server's
semantics, or kmock's plain `KubernetesEmulator`) on its own event loop in a
thread, so the code under test talks real HTTP to it from ordinary threads.
Objects are written as kubectl writes them, through the official client
(create, strategic-merge patch, delete); `client()` and `write_kubeconfig()`
point code under test at it; `requests()` tells what it was asked; the fault
methods make it misbehave. `load()` fills it fast, for benchmarks and big
fixtures: many objects straight into the store, as creates would leave them.
With `tls` it serves HTTPS with that certificate, as a cluster's API server
does for a pod's in-cluster configuration.

    with KubeApi() as api:
        api.create(service("web"))
        reflector = Reflector(api.client(), SERVICES, sink, stop)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import kmock
from aiohttp.test_utils import RawTestServer
from kubernetes import client as kube_client

from tests.sources.api_emulator import ApiServerEmulator
from tests.sources.serving_tls import ServingCertificate

TOKEN = "test-token"
RESOURCES = {
    "v1/services": ("Service", True),
    "discovery.k8s.io/v1/endpointslices": ("EndpointSlice", True),
    "v1/nodes": ("Node", False),
    "v1/events": ("Event", True),
}
CALL_TIMEOUT = 10.0
LOAD_BATCH = 1000  # objects stored per turn of the loop: it serves requests between turns


class KubeApi:
    """An emulated API server on 127.0.0.1, served from a thread of its own."""

    def __init__(
        self,
        emulator: Callable[[], kmock.KubernetesEmulator] = ApiServerEmulator,
        tls: ServingCertificate | None = None,
    ):
        self._make_emulator = emulator
        self.tls = tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-api", daemon=True)
        self._server: kmock.Server | None = None
        self._port = 0
        self._writer: kube_client.ApiClient | None = None
        self.emulator: kmock.KubernetesEmulator
        self.url = ""

    def __enter__(self) -> Self:
        self._thread.start()
        self.call(self._start)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.call(self._finish)
        except TimeoutError:
            raise TimeoutError(f"the emulated API server did not stop: {self._stuck()}") from None
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT)
            self._loop.close()

    def _stuck(self) -> str:
        """Where the loop's thread is and what its tasks await: why a call timed out."""
        frame = sys._current_frames().get(self._thread.ident or 0)
        where = traceback.format_stack(frame, limit=4) if frame is not None else ["gone"]
        tasks = [repr(task.get_coro()) for task in asyncio.all_tasks(self._loop)]
        return f"thread at {''.join(where).strip()!r}; {len(tasks)} tasks: {tasks[:10]}"

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run `function(*args)` (plain or async) on the emulator's loop; its result."""

        async def run() -> Any:
            result = function(*args)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(CALL_TIMEOUT)

    # -- pointing code at it -----------------------------------------------------

    def client(self) -> kube_client.ApiClient:
        """A new client of the official library, authenticated with a bearer token."""
        configuration = kube_client.Configuration(host=self.url)
        configuration.api_key = {"BearerToken": f"Bearer {TOKEN}"}
        if self.tls is not None:
            configuration.ssl_ca_cert = str(self.tls.ca_cert)
        return kube_client.ApiClient(configuration)

    def write_kubeconfig(self, path: Path, server: str = "") -> Path:
        """A kubeconfig for this emulator (at `server` instead, e.g. a proxy of it)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": self._cluster(server)}],
            "users": [{"name": "tester", "user": {"token": TOKEN}}],
            "contexts": [
                {"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}
            ],
            "current-context": "emulator",
        }
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def _cluster(self, server: str = "") -> dict[str, str]:
        if self.tls is None:
            return {"server": server or self.url}
        return {"server": server or self.url, "certificate-authority": str(self.tls.ca_cert)}

    # -- writing objects, as kubectl does ------------------------------------------

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace", "default")
        api = self._api_for(obj["kind"])
        if obj["kind"] == "Node":
            return _body(api.create_node(obj, _preload_content=False))
        create = getattr(api, f"create_namespaced_{_snake(obj['kind'])}")
        return _body(create(namespace, obj, _preload_content=False))

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A strategic-merge patch (kmock merges it as a JSON merge patch: None deletes)."""
        api = self._api_for(kind)
        if kind == "Node":
            return _body(api.patch_node(name, patch, _preload_content=False))
        update = getattr(api, f"patch_namespaced_{_snake(kind)}")
        return _body(update(name, namespace, patch, _preload_content=False))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        api = self._api_for(kind)
        if kind == "Node":
            api.delete_node(name, _preload_content=False)
        else:
            getattr(api, f"delete_namespaced_{_snake(kind)}")(
                name, namespace, _preload_content=False
            )

    def load(self, objects: Iterable[dict[str, Any]]) -> None:
        """Store `objects` (Services, EndpointSlices, ...) as creates of each in turn
        would (resourceVersions, uids, ADDED events to watches), without an HTTP request
        each: a shortcut for benchmarks and tests that need a big cluster. Needs
        ApiServerEmulator."""
        emulator, remaining = self._real(), iter(objects)
        while batch := list(islice(remaining, LOAD_BATCH)):
            self.call(emulator.load, batch)

    # -- what it was asked ---------------------------------------------------------

    def requests(self, action: str | None = None, path: str | None = None) -> list[kmock.Request]:
        """The requests so far, oldest first; only those of `action` (e.g. "watch") and
        `path` (without the query), when given. From ApiServerEmulator: the writes,
        lists and watches (see its `log`)."""
        seen: list[kmock.Request] = self.call(
            lambda: (
                self.emulator.log
                if isinstance(self.emulator, ApiServerEmulator)
                else list(self.emulator)
            )
        )
        return [
            r
            for r in seen
            if (action is None or (r.action is not None and r.action.value == action.upper()))
            and (path is None or r.url.path == path)
        ]

    def wait_for_requests(self, count: int, action: str, path: str) -> list[kmock.Request]:
        """The requests of `action` on `path`, once there are at least `count` of them."""

        def enough() -> list[kmock.Request] | None:
            found = self.requests(action, path)
            return found if len(found) >= count else None

        found: list[kmock.Request] = wait_for(enough, what=f"{count} {action} of {path}")
        return found

    # -- misbehaving ---------------------------------------------------------------

    def stop_serving(self) -> None:
        """Close every connection and the listening socket: connections are refused."""
        self.call(self._stop_serving)

    def start_serving(self) -> None:
        """Listen again, on the same port."""
        self.call(self._start_serving)

    # The rest need ApiServerEmulator: see its docstring.
    def bookmark(self) -> None:
        self.call(self._real().bookmark)

    def end_watches(self) -> None:
        self.call(self._real().end_watches)

    def drop_watches(self) -> None:
        self.call(self._real().drop_watches)

    def send_error(self, code: int) -> None:
        self.call(self._real().send_error, code)

    def compact(self) -> None:
        self.call(self._real().compact)

    def bump(self) -> None:
        self.call(self._real().bump)

    def fail_reads(self, *statuses: int) -> None:
        self.call(self._real().fail_reads, *statuses)

    def garble_lists(self, *bodies: Any, path: str = "") -> None:
        self.call(lambda: self._real().garble_lists(*bodies, path=path))

    def expire_watches(self, count: int, path: str = "") -> None:
        self.call(self._real().expire_watches, count, path)

    @property
    def revision(self) -> int:
        return int(self.call(lambda: self._real().revision))

    def wait_for_watches(self, count: int = 1) -> None:
        """Until `count` watches are established and waiting (see ApiServerEmulator.watching)."""
        wait_for(lambda: self.call(lambda: self._real().watching) >= count, what="watches")

    # -- on the loop ---------------------------------------------------------------

    async def _start(self) -> None:
        self.emulator = self._make_emulator()
        for key, (kind, namespaced) in RESOURCES.items():
            self.emulator.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=namespaced)
        await self.emulator.__aenter__()
        await self._start_serving()
        self.url = str(self._require_server().url).rstrip("/")

    async def _finish(self) -> None:
        if self._server is not None:
            await self._stop_serving()
        await self.emulator.__aexit__(None, None, None)

    async def _start_serving(self) -> None:
        if self.tls is None:
            server = kmock.Server(self.emulator, port=self._port or None)
        else:
            server = kmock.Server(
                self.emulator,
                port=self._port or None,
                server_cls=functools.partial(_TlsTestServer, self.tls.server_context()),
                # kmock's own client (emulator.get, .patch, ...) trusts the cluster CA too.
                client_fct=functools.partial(_trusting_session, self.tls.client_context()),
            )
        await server.__aenter__()
        self._server, self._port = server, server.port

    async def _stop_serving(self) -> None:
        # aiohttp's shutdown leaves established connections open: an open watch
        # would hang until its read timeout. Cut them all, as a dying server does,
        # closing ones too (a close waits for a dead client to take what was written).
        server = self._require_server().server.runner.server
        for connection in server.connections if server is not None else ():
            transport = connection.transport
            if transport is not None:
                transport.abort()
        if server is not None:
            # A request still running holds aiohttp's shutdown for a minute: give it a second.
            await server.shutdown(1.0)
        await self._require_server().__aexit__(None, None, None)
        self._server = None

    def _require_server(self) -> kmock.Server:
        assert self._server is not None, "the emulator is not serving"
        return self._server

    def _real(self) -> ApiServerEmulator:
        assert isinstance(self.emulator, ApiServerEmulator), "needs ApiServerEmulator"
        return self.emulator

    def _api_for(self, kind: str) -> Any:
        if self._writer is None:
            self._writer = self.client()
        if kind == "EndpointSlice":
            return kube_client.DiscoveryV1Api(self._writer)
        return kube_client.CoreV1Api(self._writer)


class _TlsTestServer(RawTestServer):
    """aiohttp's test server on HTTPS: kmock starts it without arguments, so the
    context comes in here."""

    def __init__(self, context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._context = context

    async def start_server(self, *args: Any, **kwargs: Any) -> None:
        await super().start_server(*args, ssl=self._context, **kwargs)


def _trusting_session(context: ssl.SSLContext, url: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(ssl=context))


def wait_for(
    probe: Callable[[], Any], timeout: float = CALL_TIMEOUT, what: str = "", every: float = 0.005
) -> Any:
    """`probe()`'s first truthy result, trying every `every` seconds; fails the test
    (naming `what`) when none comes in `timeout` seconds (a guard, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        time.sleep(every)


def _snake(kind: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")


def _body(response: Any) -> dict[str, Any]:
    return json.loads(response.data) if response.data else {}


# -- objects, as a user would write them -------------------------------------------


def service(
    name: str,
    namespace: str = "default",
    cluster_ip: str = "10.96.0.10",
    port: int = 80,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": 8080}],
            **spec,
        },
    }


def endpoint_slice(
    name: str, service_name: str, addresses: tuple[str, ...], namespace: str = "default"
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": True}} for address in addresses
        ],
    }


def node(name: str, addresses: tuple[tuple[str, str], ...] = (), zone: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"topology.kubernetes.io/zone": zone} if zone else {},
        },
        "status": {"addresses": [{"type": t, "address": a} for t, a in addresses]},
    }
