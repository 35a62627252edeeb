"""The reflector against kmock's own emulator, which is simpler than an API server:
no resourceVersions, every watch replays the current objects as ADDED, and the
field selector is not applied. The reflector must still hold the right state."""

from __future__ import annotations

import kmock

from ipvsctl.model.inputs import NodeInfo
from ipvsctl.sources import object_from_dict
from ipvsctl.sources.api.resources import SERVICES, node_resource
from tests.sources.kube_api import KubeApi, node, service
from tests.sources.recording_sink import RecordingSink
from tests.sources.reflector_runs import HookCalls, reflecting, synced


def test_list_then_watch_delivers_additions_changes_and_deletions(
    kmock_api: KubeApi, sink: RecordingSink
) -> None:
    kmock_api.create(service("web"))
    with reflecting(kmock_api, SERVICES, sink) as reflector:
        synced(reflector)
        kmock_api.create(service("db", cluster_ip="10.96.0.11"))
        sink.wait_for(lambda s: ("default", "db") in s.held("Service"), "db added")
        kmock_api.patch(
            "Service", "default", "web", {"spec": {"ports": [{"name": "http", "port": 81}]}}
        )
        sink.wait_for(lambda s: s.held("Service")[("default", "web")].ports[0].port == 81)
        kmock_api.delete("Service", "default", "db")
        sink.wait_for(lambda s: ("default", "db") not in s.held("Service"), "db deleted")
    # The replayed ADDED of "web" gave a value equal to the listed one.
    replayed = next(c for c in sink.calls if c[0] == "upsert" and c[2] == ("default", "web"))
    assert replayed[3] == object_from_dict(service("web"))


def test_a_restart_without_resource_versions_lists_again(
    kmock_api: KubeApi, sink: RecordingSink
) -> None:
    kmock_api.create(service("web"))
    kmock_api.create(service("db", cluster_ip="10.96.0.11"))
    calls = HookCalls()
    with reflecting(kmock_api, SERVICES, sink, calls) as reflector:
        synced(reflector)
        sink.wait_for(lambda s: len(s.calls_named("upsert")) == 2, "the replayed ADDED")
        kmock_api.stop_serving()
        # Deleted while the watch was down: only a new list can tell.
        resource = kmock.resource("", "v1", "services")
        kmock_api.call(lambda: kmock_api.emulator.objects[resource, "default", "db"].delete())
        kmock_api.start_serving()
        sink.wait_for(lambda s: len(s.calls_named("replace")) == 2, "the second list")
        assert set(sink.held("Service")) == {("default", "web")}
    assert calls.relists == ["Service", "Service"]


def test_the_node_filter_holds_when_the_server_ignores_the_field_selector(
    kmock_api: KubeApi, sink: RecordingSink
) -> None:
    kmock_api.create(node("node-1", (("InternalIP", "10.0.0.1"),)))
    kmock_api.create(node("node-2", (("InternalIP", "10.0.0.2"),)))
    with reflecting(kmock_api, node_resource("node-1"), sink) as reflector:
        synced(reflector)
        kmock_api.patch("Node", "", "node-2", {"metadata": {"labels": {"x": "y"}}})
        kmock_api.patch("Node", "", "node-1", {"metadata": {"labels": {"x": "y"}}})
        sink.wait_for(lambda s: len(s.calls_named("upsert")) == 2, "replay and change")
    assert {call[2] for call in sink.calls if call[0] != "replace"} == {("", "node-1")}
    assert sink.held("Node") == {("", "node-1"): NodeInfo("node-1", ("10.0.0.1",))}
