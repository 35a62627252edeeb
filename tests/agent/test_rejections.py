"""What the agent tells about its Services: refusals and conflicts (addresses that hold
someone else's virtual server), once each, as Events."""

from __future__ import annotations

import queue

from ipvsctl.agent.rejections import Rejections, event_reason
from ipvsctl.model.inputs import ObjectError, ObjectRef

WEB, API = ("shop", "web"), ("shop", "api")
CONFLICT = ObjectError(
    ObjectRef("Service", "shop", "web"),
    "spec.externalIPs",
    "TCP 192.0.2.10:80 skipped: 192.0.2.10 holds a virtual server ipvsctl did not create"
    " (TCP 192.0.2.10:80); it is left as it is",
)
BAD_SCHEDULER = ObjectError(
    ObjectRef("Service", "shop", "api"), "--scheduler", 'unknown scheduler "fastest"'
)


class Metrics:
    def __init__(self) -> None:
        self.rejected: list[int] = []

    def set_rejected(self, services: int) -> None:
        self.rejected.append(services)


def rejections() -> tuple[Rejections, Metrics]:
    """Rejections without its recorder and posting thread: what it queues is read here."""
    told = object.__new__(Rejections)
    metrics = Metrics()
    told.metrics, told.told = metrics, {}  # type: ignore[assignment]
    told.outbox = queue.Queue()
    return told, metrics


def queued(told: Rejections) -> list[tuple[ObjectRef, str, str]]:
    items = []
    while not told.outbox.empty():
        items.append(told.outbox.get_nowait())
    return items


def test_a_conflict_is_a_warning_event_once_and_not_a_rejected_service() -> None:
    told, metrics = rejections()
    told.report_services({API: (BAD_SCHEDULER,)}, [], {WEB: (CONFLICT,)})
    assert queued(told) == [
        (BAD_SCHEDULER.ref, "InvalidScheduler", f"--scheduler: {BAD_SCHEDULER.message}"),
        (CONFLICT.ref, "ForeignVirtualServer", f"spec.externalIPs: {CONFLICT.message}"),
    ]
    assert metrics.rejected == [1]  # the refused one only
    told.report_services({}, [], {WEB: (CONFLICT,)})
    assert queued(told) == []  # told once


def test_a_conflict_that_ends_and_comes_back_is_told_again() -> None:
    told, _ = rejections()
    told.report_services({}, [], {WEB: (CONFLICT,)})
    told.report_services({}, [], {})
    assert queued(told) == [
        (CONFLICT.ref, "ForeignVirtualServer", f"spec.externalIPs: {CONFLICT.message}")
    ]
    told.report_services({}, [], {WEB: (CONFLICT,)})
    assert len(queued(told)) == 1


def test_the_reason_of_a_foreign_virtual_server() -> None:
    assert event_reason(CONFLICT) == "ForeignVirtualServer"
