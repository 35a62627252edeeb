"""Services the agent cannot program: logged once, counted, and told to their owners as a
Kubernetes Event (Warning), so `kubectl describe service` says why. Every other
Service keeps working.

A Service whose external or load-balancer address holds a virtual server ipvsctl
did not create is served without that address, and told so the same way (a
conflict: a warning, not a refusal, so it is not counted as rejected).
A Service served with a warning (an external address of a family it does not
have, skipped) gets a Warning Event the same way, but is not counted as rejected.

Once means once per problem: a resync or an unrelated change does not repeat
it; a Service whose problem changes, or comes back after being fixed, is told
again. Events are posted from a thread of their own, so a slow API server never
holds up the kernel.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from typing import Any

from ipvsctl.agent.logs import event
from ipvsctl.agent.metrics import AgentMetrics
from ipvsctl.events import EventRecorder
from ipvsctl.model.inputs import (
    FORWARDING_ANNOTATION,
    SCHEDULER_ANNOTATION,
    SCHEDULER_FLAGS_ANNOTATION,
    ObjectError,
    ObjectKey,
    ObjectRef,
)

log = logging.getLogger("ipvsctl.agent")

_MAX_QUEUED = 1000


def event_reason(error: ObjectError) -> str:
    """A CamelCase reason as Kubernetes Events carry, from the field the problem is in."""
    if SCHEDULER_FLAGS_ANNOTATION in error.field:
        return "InvalidSchedulerFlags"
    if SCHEDULER_ANNOTATION in error.field or error.field == "--scheduler":
        return "InvalidScheduler"
    if FORWARDING_ANNOTATION in error.field:
        return "InvalidForwardingMethod"
    if "already; left to it" in error.message:
        return "VirtualServerConflict"
    if "ipvsctl did not create" in error.message:
        return "ForeignVirtualServer"
    if "not a family of the Service" in error.message:
        return "IPFamilyMismatch"
    return "InvalidService"


class Rejections:
    """`client`: the sources' API client (`sources.api.client`)."""

    def __init__(self, client: Any, node_name: str, metrics: AgentMetrics) -> None:
        self.recorder, self.metrics = EventRecorder(client, node_name), metrics
        self.told: dict[ObjectRef, tuple[ObjectError, ...]] = {}
        self.warned: dict[ObjectRef, tuple[ObjectError, ...]] = {}
        self.outbox: queue.Queue[tuple[ObjectRef, str, str]] = queue.Queue(_MAX_QUEUED)
        threading.Thread(target=self._post, name="events", daemon=True).start()

    def report_services(
        self,
        rejected: Mapping[ObjectKey, tuple[ObjectError, ...]],
        malformed: Collection[ObjectKey],
        conflicts: Mapping[ObjectKey, tuple[ObjectError, ...]] | None = None,
    ) -> None:
        """Every Service translation refuses now, every one the sources could not read, and
        every one served without some of its virtual servers (`NodeEngine.conflicts`): the
        new problems are told, the gone ones forgotten (so they are told again if they come
        back)."""
        conflicts = conflicts or {}
        for namespace, name in sorted({*rejected, *conflicts}):
            errors = rejected.get((namespace, name), ()) + conflicts.get((namespace, name), ())
            self._tell(ObjectRef("Service", namespace, name), errors)
        refused = {("Service", *key) for key in (*rejected, *malformed)}
        keep = refused | {("Service", *key) for key in conflicts}
        for ref in [r for r in self.told if r.kind == "Service" and tuple(r) not in keep]:
            del self.told[ref]
        self.metrics.set_rejected(len(refused))

    def report_warnings(self, warned: Mapping[ObjectKey, tuple[ObjectError, ...]]) -> None:
        """Every served Service's warnings now: the new ones told, the gone ones forgotten."""
        for (namespace, name), warnings in warned.items():
            self._tell(ObjectRef("Service", namespace, name), warnings, self.warned, "warning")
        keep = {ObjectRef("Service", *key) for key in warned}
        for ref in [r for r in self.warned if r not in keep]:
            del self.warned[ref]

    def report_malformed(self, found: Sequence[tuple[ObjectRef, tuple[ObjectError, ...]]]) -> None:
        """Objects the sources could not read (any kind), as `Changes.invalid` gives them."""
        for ref, errors in found:
            self._tell(ref, errors)

    def _tell(
        self,
        ref: ObjectRef,
        errors: tuple[ObjectError, ...],
        told: dict[ObjectRef, tuple[ObjectError, ...]] | None = None,
        what: str = "rejected",
    ) -> None:
        told = self.told if told is None else told
        if told.get(ref) == errors:
            return
        told[ref] = errors
        for error in errors:
            reason = event_reason(error)
            said = "skipped" if reason == "ForeignVirtualServer" else what
            event(log, said, level=logging.WARNING, object=str(ref), problem=str(error))
            message = f"{error.field}: {error.message}"
            with suppress(queue.Full):  # logged above; an Event is a courtesy
                self.outbox.put_nowait((ref, reason, message))

    def _post(self) -> None:
        while True:
            ref, reason, message = self.outbox.get()
            self.recorder.warn(ref, reason, message)
