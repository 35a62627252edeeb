"""How the agent tells Services' problems as Events: a warning (a skipped address of
another family) is told once, as its own reason, and never counts the Service rejected."""

from __future__ import annotations

import queue

from ipvsctl.agent.metrics import AgentMetrics
from ipvsctl.agent.rejections import Rejections, event_reason
from ipvsctl.model.inputs import ObjectRef, Service
from ipvsctl.translate import service_warnings

SERVICE = Service("shop", "web", cluster_ips=("10.96.0.20",), external_ips=("2001:db8::7",))


class Recorder:
    def __init__(self) -> None:
        self.posted: queue.Queue[tuple[ObjectRef, str, str]] = queue.Queue()

    def warn(self, ref: ObjectRef, reason: str, message: str) -> None:
        self.posted.put((ref, reason, message))


def test_an_external_ip_of_another_family_is_an_ip_family_mismatch_event() -> None:
    (warning,) = service_warnings(SERVICE)
    assert event_reason(warning) == "IPFamilyMismatch"


def test_a_warning_is_told_once_and_the_service_is_not_rejected() -> None:
    metrics = AgentMetrics()
    rejections = Rejections(None, "node-1", metrics)
    recorder = Recorder()
    rejections.recorder = recorder  # type: ignore[assignment]
    warned = {("shop", "web"): service_warnings(SERVICE)}
    rejections.report_services({}, ())
    rejections.report_warnings(warned)
    rejections.report_warnings(warned)  # a resync: nothing new
    ref, reason, message = recorder.posted.get(timeout=30)
    assert (ref, reason) == (SERVICE.ref, "IPFamilyMismatch")
    assert message.startswith("spec.externalIPs: 2001:db8::7 is IPv6")
    assert rejections.outbox.empty() and recorder.posted.empty()
    assert b"ipvsctl_rejected_services 0.0" in metrics.exposition()
    # Fixed, then broken again: told again.
    rejections.report_warnings({})
    rejections.report_warnings(warned)
    assert recorder.posted.get(timeout=30)[1] == "IPFamilyMismatch"
