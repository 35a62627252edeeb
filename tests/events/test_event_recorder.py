"""Warning Events on Services: what is posted, a repeat counted on the same Event, and
failures that are logged and never raised."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from ipvsctl.events.event_recorder import EventRecorder, post_event
from ipvsctl.model.inputs import ObjectRef
from tests.sources.kube_api import KubeApi, service

WEB = ObjectRef("Service", "shop", "web")
REASON = "InvalidScheduler"
MESSAGE = 'metadata.annotations["ipvsctl.io/scheduler"]: unknown scheduler "fastest"'
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture
def api() -> Iterator[KubeApi]:
    """An API server with a real one's semantics, as the sources' tests use."""
    with KubeApi() as running:
        yield running


def events(api: KubeApi) -> list[dict[str, Any]]:
    found = api.call(
        lambda: [
            obj.raw
            for (resource, _, _), obj in api.emulator.objects.items()
            if resource.plural == "events" and not obj.deleted
        ]
    )
    return list(found)


def test_an_event_is_posted_as_the_kubelet_posts_one(api: KubeApi) -> None:
    created = api.create(service("web", namespace="shop"))
    post_event(api.client(), WEB, REASON, MESSAGE, "node-1")
    (event,) = events(api)
    assert event["metadata"]["namespace"] == "shop"
    assert event["metadata"]["name"].startswith("web.")
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Service",
        "namespace": "shop",
        "name": "web",
        "uid": created["metadata"]["uid"],  # what `kubectl describe` selects Events by
    }
    assert {key: event[key] for key in ("type", "reason", "message", "count")} == {
        "type": "Warning",
        "reason": REASON,
        "message": MESSAGE,
        "count": 1,
    }
    assert event["source"] == {"component": "ipvsctl", "host": "node-1"}
    assert (event["reportingComponent"], event["reportingInstance"]) == ("ipvsctl", "node-1")
    assert event["firstTimestamp"] == event["lastTimestamp"]


def test_a_repeat_counts_on_the_same_event(api: KubeApi) -> None:
    api.create(service("web", namespace="shop"))
    now = [T0]
    recorder = EventRecorder(api.client(), "node-1", clock=lambda: now[0])
    recorder.warn(WEB, REASON, MESSAGE)
    now[0] += 60
    recorder.warn(WEB, REASON, MESSAGE)
    (event,) = events(api)
    assert event["count"] == 2
    assert (event["firstTimestamp"], event["lastTimestamp"]) == (
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:14:20Z",
    )
    recorder.warn(WEB, REASON, "another problem")
    assert len(events(api)) == 2


def test_a_repeat_of_an_event_the_server_dropped_posts_a_new_one(api: KubeApi) -> None:
    recorder = EventRecorder(api.client(), "node-1")
    recorder.warn(WEB, REASON, MESSAGE)
    (first,) = events(api)
    api.delete("Event", "shop", first["metadata"]["name"])
    recorder.warn(WEB, REASON, MESSAGE)
    (second,) = events(api)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["count"] == 1
    assert "uid" not in second["involvedObject"]  # no such Service: posted all the same


def test_a_failure_is_logged_not_raised(api: KubeApi, caplog: pytest.LogCaptureFixture) -> None:
    api.stop_serving()
    post_event(api.client(), WEB, REASON, MESSAGE, "node-1")
    (record,) = [r for r in caplog.records if r.name == "ipvsctl.events.event_recorder"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "could not post event"
    assert record.__dict__["fields"]["object"] == "Service shop/web"
    assert record.__dict__["fields"]["error"].startswith("POST /api/v1/namespaces/shop/events: ")
