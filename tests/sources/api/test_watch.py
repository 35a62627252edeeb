"""The reflector against an API server with real semantics: list, watch, resume, relist."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ipvsctl.model.inputs import NodeInfo
from ipvsctl.sources import object_from_dict
from ipvsctl.sources.api.resources import ENDPOINT_SLICES, SERVICES, node_resource
from ipvsctl.sources.api.watch import WatchSettings
from tests.sources.kube_api import KubeApi, endpoint_slice, node, service, wait_for
from tests.sources.recording_sink import RecordingSink
from tests.sources.reflector_runs import QUICK, HookCalls, reflecting, synced

SERVICES_PATH = "/api/v1/services"


def test_the_first_list_fills_the_sink_with_what_apply_would_read(
    api: KubeApi, sink: RecordingSink
) -> None:
    manifests = [service("web", cluster_ip="10.96.0.10"), service("db", cluster_ip="10.96.0.11")]
    for manifest in manifests:
        api.create(manifest)
    with reflecting(api, SERVICES, sink) as reflector:
        synced(reflector)
        # List items come without apiVersion/kind; the values are still apply -f's (but
        # for the uid the API server gave each).
        call, kind, values = sink.calls[0]
        assert all(value.uid for value in values.values())
        assert (call, kind, {key: v._replace(uid="") for key, v in values.items()}) == (
            "replace",
            "Service",
            {("default", m["metadata"]["name"]): object_from_dict(m) for m in manifests},
        )


def test_the_watch_delivers_additions_changes_and_deletions(
    api: KubeApi, sink: RecordingSink
) -> None:
    api.create(service("web"))
    with reflecting(api, SERVICES, sink) as reflector:
        synced(reflector)
        api.create(service("db", cluster_ip="10.96.0.11"))
        sink.wait_for(lambda s: ("default", "db") in s.held("Service"), "db added")
        api.patch("Service", "default", "web", {"spec": {"ports": [{"name": "http", "port": 81}]}})
        sink.wait_for(lambda s: s.held("Service")[("default", "web")].ports[0].port == 81)
        api.delete("Service", "default", "db")
        sink.wait_for(lambda s: ("default", "db") not in s.held("Service"), "db deleted")
        assert [call[0] for call in sink.calls] == ["replace", "upsert", "upsert", "delete"]


def test_the_first_watch_starts_at_the_lists_resource_version(
    api: KubeApi, sink: RecordingSink
) -> None:
    api.create(service("web"))
    listed_at = api.revision
    with reflecting(api, SERVICES, sink) as reflector:
        synced(reflector)
        (watch,) = api.wait_for_requests(1, "watch", SERVICES_PATH)
        assert watch.params["resourceVersion"] == str(listed_at)
        assert watch.params["allowWatchBookmarks"] == "true"
        assert 48 <= int(watch.params["timeoutSeconds"]) <= 72  # 60 s +- 20%


def test_a_bookmark_moves_the_resume_point(api: KubeApi, sink: RecordingSink) -> None:
    with reflecting(api, SERVICES, sink) as reflector:
        synced(reflector)
        api.bump()  # the cluster moves on, nothing this watch sees
        api.wait_for_watches()
        api.bookmark()
        wait_for(lambda: reflector.resume_from == str(api.revision), what="the bookmark")
        api.end_watches()
        watches = api.wait_for_requests(2, "watch", SERVICES_PATH)
        assert watches[1].params["resourceVersion"] == str(api.revision)


def test_a_dropped_watch_resumes_from_the_last_event_without_listing(
    api: KubeApi, sink: RecordingSink
) -> None:
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        api.create(service("web"))
        sink.wait_for(lambda s: ("default", "web") in s.held("Service"))
        web_version = str(api.revision)
        api.drop_watches()
        watches = api.wait_for_requests(2, "watch", SERVICES_PATH)
        assert watches[1].params["resourceVersion"] == web_version
        api.create(service("db", cluster_ip="10.96.0.11"))
        sink.wait_for(lambda s: ("default", "db") in s.held("Service"))
    assert len(api.requests("list", SERVICES_PATH)) == 1
    assert calls.relists == ["Service"]
    assert calls.restarts == [("Service", "error")]


def test_a_watch_the_server_ends_resumes_where_it_stopped(
    api: KubeApi, sink: RecordingSink
) -> None:
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        api.create(service("web"))
        sink.wait_for(lambda s: ("default", "web") in s.held("Service"))
        api.end_watches()
        watches = api.wait_for_requests(2, "watch", SERVICES_PATH)
        assert watches[1].params["resourceVersion"] == str(api.revision)
    assert calls.restarts == [("Service", "closed")]
    assert calls.errors == []


@pytest.mark.parametrize("gone_as_status", [False, True], ids=["error-event", "http-410"])
def test_an_expired_resource_version_relists_and_replaces_with_equal_values(
    api: KubeApi, sink: RecordingSink, gone_as_status: bool
) -> None:
    api.emulator.gone_as_status = gone_as_status
    api.create(service("web"))
    api.create(service("db", cluster_ip="10.96.0.11"))
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        api.compact()
        api.end_watches()  # the next watch asks for a version the server no longer has
        sink.wait_for(lambda s: len(s.calls_named("replace")) == 2, "the relist")
        first, second = sink.calls_named("replace")
        assert second == first  # equal values: nothing changed for the cache
        api.create(service("cache", cluster_ip="10.96.0.12"))
        sink.wait_for(lambda s: ("default", "cache") in s.held("Service"))
    assert calls.relists == ["Service", "Service"]
    assert ("Service", "expired") in calls.restarts
    assert calls.errors == []


def test_a_long_list_is_read_in_pages(api: KubeApi, sink: RecordingSink) -> None:
    names = [f"svc-{index}" for index in range(5)]
    for index, name in enumerate(names):
        api.create(service(name, cluster_ip=f"10.96.0.{10 + index}"))
    with reflecting(api, SERVICES, sink, settings=_paged(2)) as reflector:
        synced(reflector)
    lists = api.requests("list", SERVICES_PATH)
    assert [r.params.get("limit") for r in lists] == ["2", "2", "2"]
    assert [bool(r.params.get("continue")) for r in lists] == [False, True, True]
    assert sorted(key[1] for key in sink.calls[0][2]) == sorted(names)


def test_an_expired_continue_token_starts_the_list_over(api: KubeApi, sink: RecordingSink) -> None:
    for index in range(3):
        api.create(service(f"svc-{index}", cluster_ip=f"10.96.0.{10 + index}"))
    api.emulator.expire_continues = 1
    calls = HookCalls()
    with reflecting(api, SERVICES, sink, calls, settings=_paged(2)) as reflector:
        synced(reflector)
    assert len(sink.calls_named("replace")) == 1
    assert len(sink.calls[0][2]) == 3
    assert calls.errors == []  # a 410 mid-list is no failure, just a new start


def test_an_invalid_service_is_reported_with_the_field_and_keeps_its_last_good_version(
    api: KubeApi, sink: RecordingSink
) -> None:
    api.create(service("bad", cluster_ip="not-an-ip"))
    with reflecting(api, SERVICES, sink) as reflector:
        synced(reflector)
        assert sink.calls[0] == ("replace", "Service", {})
        (_, kind, key, errors) = sink.calls[1]
        assert (kind, key) == ("Service", ("default", "bad"))
        assert [error.field for error in errors] == ["spec.clusterIPs[0]"]
        # A valid Service made invalid by a change is reported the same way.
        api.create(service("web"))
        sink.wait_for(lambda s: ("default", "web") in s.held("Service"))
        api.patch("Service", "default", "web", {"spec": {"ports": [{"name": "http", "port": 0}]}})
        sink.wait_for(lambda s: ("default", "web") in s.problems.get("Service", {}))
        assert sink.problems["Service"][("default", "web")][0].field == "spec.ports[0].port"
    # The reflector says "invalid", never "delete": the sink keeps the last good web.
    assert not [call for call in sink.calls_named("delete") if call[2] == ("default", "web")]
    assert ("default", "bad") not in sink.held("Service")  # never good: nothing to keep


def test_a_slice_that_loses_its_service_label_is_deleted(api: KubeApi, sink: RecordingSink) -> None:
    api.create(endpoint_slice("web-1", "web", ("10.244.1.5",)))
    with reflecting(api, ENDPOINT_SLICES, sink) as reflector:
        synced(reflector)
        assert set(sink.held("EndpointSlice")) == {("default", "web-1")}
        api.patch(
            "EndpointSlice",
            "default",
            "web-1",
            {"metadata": {"labels": {"kubernetes.io/service-name": None}}},
        )
        sink.wait_for(lambda s: not s.held("EndpointSlice"), "the slice gone")
        assert sink.calls[-1] == ("delete", "EndpointSlice", ("default", "web-1"))


def test_only_this_nodes_node_is_read(api: KubeApi, sink: RecordingSink) -> None:
    api.create(
        node(
            "node-1",
            (("Hostname", "node-1"), ("ExternalIP", "203.0.113.7"), ("InternalIP", "10.0.0.1")),
            zone="zone-a",
        )
    )
    api.create(node("node-2", (("InternalIP", "10.0.0.2"),)))
    with reflecting(api, node_resource("node-1"), sink) as reflector:
        synced(reflector)
        expected = NodeInfo("node-1", ("10.0.0.1", "203.0.113.7"), "zone-a")
        assert sink.held("Node") == {("", "node-1"): expected}
        api.patch("Node", "", "node-2", {"metadata": {"labels": {"x": "y"}}})
        api.patch("Node", "", "node-1", {"metadata": {"labels": {"x": "y"}}})
        sink.wait_for(lambda s: len(s.calls) == 2, "node-1 modified")
        assert sink.calls[1] == ("upsert", "Node", ("", "node-1"), expected)
    (listed,) = api.requests("list", "/api/v1/nodes")
    assert listed.params["fieldSelector"] == "metadata.name=node-1"


def _paged(size: int) -> WatchSettings:
    return replace(QUICK, page_size=size)
