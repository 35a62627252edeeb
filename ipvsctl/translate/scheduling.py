"""How a Service's virtual servers schedule and forward: its ipvsctl.io annotations.

A bad annotation makes the whole Service invalid (its errors, no virtual servers),
so a typo never silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Set
from typing import NamedTuple

from ipvsctl.model import ForwardMethod, ServiceFlag
from ipvsctl.model.inputs import (
    FORWARDING_ANNOTATION,
    SCHEDULER_ANNOTATION,
    SCHEDULER_FLAGS_ANNOTATION,
    ObjectError,
    Service,
)
from ipvsctl.model.names import FORWARD_NAMES, SCHEDULER_FLAG_NAMES
from ipvsctl.model.printable import printable

# Every scheduler the kernel has ever shipped (net/netfilter/ipvs/ip_vs_*.c).
KNOWN_SCHEDULERS = (
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
)  # fmt: skip
# The flags an annotation may name: ipvsadm's names under the scheduler that gives them one.
SCHEDULER_FLAGS = {
    name: (scheduler, ServiceFlag(bit))
    for scheduler, named in SCHEDULER_FLAG_NAMES.items()
    for bit, name in named.items()
}
# The forwarding methods a Service may ask for, by ipvsctl's names for them.
FORWARDING_METHODS = {
    FORWARD_NAMES[method]: method
    for method in (ForwardMethod.MASQ, ForwardMethod.TUNNEL, ForwardMethod.ROUTE)
}


class Scheduling(NamedTuple):
    scheduler: str
    flags: int
    forward: ForwardMethod


def scheduler_problem(name: str, offered: Set[str]) -> str | None:
    """Why `name` cannot be used as a scheduler (None when it can).

    `offered` is what the kernel offers; empty means "not known, do not check".
    """
    if name not in KNOWN_SCHEDULERS:
        return f'unknown scheduler "{printable(name)}" (known: {", ".join(KNOWN_SCHEDULERS)})'
    if offered and name not in offered:
        return f'scheduler "{name}" is not in this kernel (it offers: {", ".join(sorted(offered))})'
    return None


def service_scheduling(
    service: Service, default_scheduler: str, offered: Set[str]
) -> Scheduling | list[ObjectError]:
    """The scheduler, flags and forwarding method of the Service, or every problem in them."""
    if not service.annotations and scheduler_problem(default_scheduler, offered) is None:
        return Scheduling(default_scheduler, 0, ForwardMethod.MASQ)  # the common case, fast
    errors: list[ObjectError] = []

    def problem(field: str, message: str) -> None:
        errors.append(ObjectError(service.ref, field, message))

    annotated = service.annotation(SCHEDULER_ANNOTATION)
    scheduler = default_scheduler if annotated is None else annotated.strip()
    field = "--scheduler" if annotated is None else _field(SCHEDULER_ANNOTATION)
    if (why := scheduler_problem(scheduler, offered)) is not None:
        problem(field, why)

    flags = 0
    for name in (service.annotation(SCHEDULER_FLAGS_ANNOTATION) or "").split(","):
        name = name.strip()
        if not name:
            continue
        if name not in SCHEDULER_FLAGS:
            known = ", ".join(SCHEDULER_FLAGS)
            problem(
                _field(SCHEDULER_FLAGS_ANNOTATION),
                f'unknown flag "{printable(name)}" (known: {known})',
            )
            continue
        owner, flag = SCHEDULER_FLAGS[name]
        if owner != scheduler:
            problem(
                _field(SCHEDULER_FLAGS_ANNOTATION),
                f'flag "{name}" is for the {owner} scheduler, not {scheduler}',
            )
        flags |= flag

    method = (service.annotation(FORWARDING_ANNOTATION) or "masq").strip()
    if method not in FORWARDING_METHODS:
        known = ", ".join(FORWARDING_METHODS)
        problem(
            _field(FORWARDING_ANNOTATION), f'unknown method "{printable(method)}" (known: {known})'
        )
    if errors:
        return errors
    return Scheduling(scheduler, flags, FORWARDING_METHODS[method])


def _field(annotation: str) -> str:
    return f'metadata.annotations["{annotation}"]'
