"""The emulated API server itself: a write costs the same however many came before,
the requests tests read are all kept, and `load` stores objects as creates would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kmock._internal import dsl

from ipvsctl.sources.api.resources import ENDPOINT_SLICES
from tests.sources.kube_api import KubeApi, endpoint_slice, service
from tests.sources.recording_sink import RecordingSink
from tests.sources.reflector_runs import reflecting, synced

SLICE_PATH = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-1"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def walks_per_write(api: KubeApi, steps: range) -> float:
    """How many logged requests kmock's views walk per write (matching a request to a
    reaction walks kmock's request log, through each reaction's filters)."""
    walked = 0
    original = dsl.Root.__iter__

    def counting(root: dsl.Root) -> Iterator[Any]:
        nonlocal walked
        for request in original(root):
            walked += 1
            yield request

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(dsl.Root, "__iter__", counting)
        patch_endpoints(api, steps)
    return walked / len(steps)


def patch_endpoints(api: KubeApi, steps: range) -> None:
    """One merge patch of slice web-1 per step, in turn, sent from the emulator's own
    loop (kmock's client: faster than the official one in a thread)."""

    async def send() -> None:
        for step in steps:
            address = f"10.244.{step // 250}.{step % 250 + 1}"
            patch = {"endpoints": [{"addresses": [address]}]}
            async with api.emulator.patch(SLICE_PATH, json=patch, headers=MERGE_PATCH) as sent:
                assert sent.status == 200, await sent.text()

    api.call(send)


def test_a_write_walks_as_many_requests_after_2000_writes_as_after_100(api: KubeApi) -> None:
    api.create(service("web", "shop"))
    api.create(endpoint_slice("web-1", "web", ("10.244.0.1",), "shop"))
    patch_endpoints(api, range(90))
    early = walks_per_write(api, range(90, 100))
    patch_endpoints(api, range(100, 1990))
    late = walks_per_write(api, range(1990, 2000))
    assert early > 0  # the count is of what kmock does
    assert late == early


def test_kmock_forgets_served_requests_and_the_log_keeps_every_write(api: KubeApi) -> None:
    api.create(service("web", "shop"))
    api.create(endpoint_slice("web-1", "web", ("10.244.0.1",), "shop"))
    patch_endpoints(api, range(50))
    assert api.call(lambda: list(api.emulator)) == []  # nothing in flight
    patches = api.requests("update", SLICE_PATH)
    assert [p.data["endpoints"][0]["addresses"] for p in patches] == [
        [f"10.244.0.{step + 1}"] for step in range(50)
    ]
    assert len(api.requests("create")) == 2


def test_loaded_objects_are_stored_and_watched_as_created_ones(
    api: KubeApi, sink: RecordingSink
) -> None:
    created = api.create(endpoint_slice("web-0", "web", ("10.244.0.1",), "shop"))
    with reflecting(api, ENDPOINT_SLICES, sink) as reflector:
        synced(reflector)
        before = api.revision
        api.load(endpoint_slice(f"web-{i}", "web", (f"10.244.1.{i}",), "shop") for i in (1, 2))
        sink.wait_for(lambda s: len(s.held("EndpointSlice")) == 3, "the loaded slices")
        assert [call[0] for call in sink.calls] == ["replace", "upsert", "upsert"]
    assert api.revision == before + 2
    stored = api.call(lambda: {k[2]: o.raw for k, o in api.emulator.objects.items()})
    loaded = stored["web-2"]
    assert loaded["metadata"]["resourceVersion"] == str(before + 2)
    assert loaded["metadata"]["uid"] != created["metadata"]["uid"]
    assert set(loaded["metadata"]) == set(created["metadata"])
    assert api.requests("create") and len(api.requests("create")) == 1  # no HTTP for loads


def test_loading_an_object_that_exists_is_refused(api: KubeApi) -> None:
    api.create(service("web", "shop"))
    with pytest.raises(Exception, match="already exists"):
        api.load([service("web", "shop")])
