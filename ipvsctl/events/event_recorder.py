"""Warning Events about objects ipvsctl cannot use, where `kubectl describe` shows them.

A core/v1 Event, as kube-proxy and the kubelet post them: type Warning,
`involvedObject` the Service (with its uid, which `kubectl describe` selects
on), `source.component` and `reportingComponent` "ipvsctl", the node as
`source.host` and `reportingInstance`, a count and first/last timestamps.

`EventRecorder` counts a repeat (same object, reason and message) on the
Event it already posted, as client-go's recorder does, instead of posting
another: a Service that stays invalid through every resync is one Event with
a growing count, not a thousand objects in etcd.

Posting is a courtesy to the user: a failure is logged, never raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as kube_client

from ipvsctl.model.inputs import ObjectRef
from ipvsctl.sources.api.requests import (
    ApiError,
    Timeout,
    open_get,
    read_json,
    send_json,
)

log = logging.getLogger(__name__)

COMPONENT = "ipvsctl"
MAX_MESSAGE = 1024  # what the events API keeps of a note
HTTP_NOT_FOUND = 404
MERGE_PATCH = "application/merge-patch+json"
# kind -> (apiVersion, path of one object) for the kinds ipvsctl reports on.
OBJECT_PATHS = {
    "Service": ("v1", "/api/v1/namespaces/{namespace}/services/{name}"),
    "EndpointSlice": (
        "discovery.k8s.io/v1",
        "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}",
    ),
}


def post_event(
    client: kube_client.ApiClient, ref: ObjectRef, reason: str, message: str, node_name: str
) -> None:
    """Post one Warning Event about `ref` (no counting of repeats: see EventRecorder)."""
    EventRecorder(client, node_name).warn(ref, reason, message)


class EventRecorder:
    """Posts Warning Events for one node's agent; safe to call from any thread."""

    def __init__(
        self,
        client: kube_client.ApiClient,
        node_name: str,
        timeout: Timeout = (5.0, 10.0),
        clock: Callable[[], float] = time.time,
        remember: int = 1024,
    ) -> None:
        self._client = client
        self._node_name = node_name
        self._timeout = timeout
        self._clock = clock
        self._remember = remember
        # (object, reason, message) -> (Event name, count), oldest first
        self._posted: OrderedDict[tuple[ObjectRef, str, str], tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    def warn(self, ref: ObjectRef, reason: str, message: str) -> None:
        """A Warning Event about `ref`: a new one, or one more on the same one."""
        try:
            self._warn(ref, reason, message[:MAX_MESSAGE])
        except Exception as error:  # an Event must never take the agent down
            log.warning(
                "could not post event",
                exc_info=error if not isinstance(error, ApiError) else None,
                extra={"fields": {"object": str(ref), "reason": reason, "error": str(error)}},
            )

    def _warn(self, ref: ObjectRef, reason: str, message: str) -> None:
        key = (ref, reason, message)
        now = _timestamp(self._clock())
        with self._lock:
            known = self._posted.get(key)
        if known is not None:
            name, count = known
            try:
                path = f"/api/v1/namespaces/{_namespace(ref)}/events/{name}"
                patch = {"count": count + 1, "lastTimestamp": now}
                send_json(self._client, "PATCH", path, patch, self._timeout, MERGE_PATCH)
            except ApiError as error:
                if error.status != HTTP_NOT_FOUND:
                    raise
                # The API server dropped the Event (its TTL is an hour): post anew.
            else:
                self._note(key, name, count + 1)
                return
        event = self._event(ref, reason, message, now)
        path = f"/api/v1/namespaces/{_namespace(ref)}/events"
        send_json(self._client, "POST", path, event, self._timeout)
        self._note(key, event["metadata"]["name"], 1)

    def _note(self, key: tuple[ObjectRef, str, str], name: str, count: int) -> None:
        with self._lock:
            self._posted[key] = (name, count)
            self._posted.move_to_end(key)
            while len(self._posted) > self._remember:
                self._posted.popitem(last=False)

    def _event(self, ref: ObjectRef, reason: str, message: str, now: str) -> dict[str, Any]:
        api_version = OBJECT_PATHS.get(ref.kind, ("v1", ""))[0]
        involved = {
            "apiVersion": api_version,
            "kind": ref.kind,
            "name": ref.name,
            "namespace": ref.namespace,
        }
        uid = self._uid(ref)
        if uid:
            involved["uid"] = uid
        return {
            "apiVersion": "v1",
            "kind": "Event",
            # client-go's naming: the object's name and the time in hex nanoseconds.
            "metadata": {"name": f"{ref.name}.{time.time_ns():x}", "namespace": _namespace(ref)},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": "Warning",
            "source": {"component": COMPONENT, "host": self._node_name},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._node_name,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
        }

    def _uid(self, ref: ObjectRef) -> str:
        """The object's uid ("" when it cannot be read): `kubectl describe` lists only the
        Events whose involvedObject.uid is the object's."""
        if ref.kind not in OBJECT_PATHS:
            return ""
        path = OBJECT_PATHS[ref.kind][1].format(namespace=ref.namespace, name=ref.name)
        try:
            obj = read_json(open_get(self._client, path, (), self._timeout), f"GET {path}")
        except ApiError as error:
            fields = {"object": str(ref), "error": str(error)}
            log.debug("event without uid", extra={"fields": fields})
            return ""
        metadata = obj.get("metadata")
        uid = metadata.get("uid") if isinstance(metadata, dict) else None
        return uid if isinstance(uid, str) else ""


def _namespace(ref: ObjectRef) -> str:
    # Events about cluster-scoped objects (a Node) live in "default", as the kubelet's do.
    return ref.namespace or "default"


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
