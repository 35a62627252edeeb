"""How the agent names the problems it tells as Events."""

from __future__ import annotations

from ipvsctl.agent.rejections import event_reason
from ipvsctl.model.inputs import Service
from ipvsctl.translate import service_warnings


def test_an_external_ip_of_another_family_is_an_ip_family_mismatch_event() -> None:
    service = Service("shop", "web", cluster_ips=("10.96.0.20",), external_ips=("2001:db8::7",))
    (warning,) = service_warnings(service)
    assert event_reason(warning) == "IPFamilyMismatch"
