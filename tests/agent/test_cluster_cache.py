"""The agent's cache of the cluster: what it holds when objects turn bad, come back, or the
API server answers again."""

from __future__ import annotations

from ipvsctl.agent.cluster_cache import SERVICE, ClusterCache
from ipvsctl.model.inputs import ObjectError, ObjectRef, Refused, Service, ServicePort

WEB = ("shop", "web")
PROBLEM = (ObjectError(ObjectRef("Service", *WEB), "spec.ports[0].port", "0 is out of range"),)
UID = "8a3c6f2e-0000-4000-8000-000000000001"
REFUSED = Refused(PROBLEM, UID)


def web(port: int = 80, uid: str = UID) -> Service:
    ports = (ServicePort("p", 6, port),)
    return Service("shop", "web", cluster_ips=("10.96.0.1",), ports=ports, uid=uid)


def test_a_bad_update_keeps_the_last_good_service_and_is_reported_once() -> None:
    cache = ClusterCache()
    cache.upsert(SERVICE, WEB, web())
    cache.take_changes(0)
    cache.invalid(SERVICE, WEB, REFUSED)
    cache.invalid(SERVICE, WEB, REFUSED)  # the same problems again: told once
    changes = cache.take_changes(0)
    assert cache.services[WEB] == web()
    assert changes.services == {}  # nothing to sync: the good version stands
    assert [problems for _, problems in changes.invalid] == [PROBLEM]
    assert cache.malformed(SERVICE) == [WEB]
    cache.upsert(SERVICE, WEB, web(8080))  # fixed
    assert cache.malformed(SERVICE) == []
    assert cache.services[WEB] == web(8080)


def test_a_relist_keeps_the_last_good_version_of_a_malformed_object() -> None:
    cache = ClusterCache()
    cache.replace(SERVICE, {WEB: web()}, {})
    cache.replace(SERVICE, {}, {WEB: REFUSED})
    assert cache.services[WEB] == web()
    assert cache.malformed(SERVICE) == [WEB]
    cache.replace(SERVICE, {}, {})  # gone while the agent was away
    assert WEB not in cache.services and cache.malformed(SERVICE) == []


def test_a_service_never_good_is_absent() -> None:
    cache = ClusterCache()
    cache.invalid(SERVICE, WEB, REFUSED)
    assert WEB not in cache.services


def test_the_api_server_answering_again_is_a_change_to_take() -> None:
    cache = ClusterCache()
    assert cache.take_changes(0).empty
    cache.reconnected("Service")
    changes = cache.take_changes(0)
    assert changes.reconnected and not changes.empty
    assert not cache.take_changes(0).reconnected


def test_a_service_made_again_under_its_name_does_not_inherit_the_old_ones_version() -> None:
    cache = ClusterCache()
    cache.replace(SERVICE, {WEB: web()}, {})
    again = Refused(PROBLEM, "8a3c6f2e-0000-4000-8000-000000000002")  # another uid
    cache.replace(SERVICE, {}, {WEB: again})  # deleted and made again, invalid, meanwhile
    assert WEB not in cache.services
    cache.upsert(SERVICE, WEB, web())
    cache.invalid(SERVICE, WEB, again)
    assert WEB not in cache.services
