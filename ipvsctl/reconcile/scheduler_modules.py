"""Every scheduler a plan adds or switches a virtual server to, made ready before `apply`
changes anything: a scheduler whose module cannot load is an error naming who asked
for it (the Services' annotation, or --scheduler), with nothing changed."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ipvsctl.model.changes import Op
from ipvsctl.model.inputs import SCHEDULER_ANNOTATION, ObjectError, ObjectRef, Service
from ipvsctl.model.printable import printable
from ipvsctl.plan import Plan

_ANNOTATION_FIELD = f'metadata.annotations["{SCHEDULER_ANNOTATION}"]'


class FlagRef(ObjectRef):
    """A command-line flag as the subject of an error: prints as the flag."""

    def __str__(self) -> str:
        return printable(self.name)


def unloadable_schedulers(
    plan: Plan,
    services: Iterable[Service],
    default: str,
    load: Callable[[str], str | None],
) -> tuple[ObjectError, ...]:
    """One error per Service (or one for --scheduler) whose scheduler `load` cannot ready."""
    needed = sorted(
        {
            change.service.scheduler
            for change in plan.ipvs
            if change.op in (Op.ADD_SERVICE, Op.EDIT_SERVICE)
        }
    )
    failed = {name: why for name in needed if (why := load(name)) is not None}
    if not failed:
        return ()
    errors: list[ObjectError] = []
    flag_failed = False
    for service in services:
        annotated = service.annotation(SCHEDULER_ANNOTATION)
        name = default if annotated is None else annotated.strip()
        if name not in failed:
            continue
        if annotated is None:
            flag_failed = True
        else:
            errors.append(ObjectError(service.ref, _ANNOTATION_FIELD, _cannot(name, failed)))
    if flag_failed or not errors:
        name = default if default in failed else next(iter(failed))
        errors.insert(0, ObjectError(FlagRef("Flag", "", "--scheduler"), "", _cannot(name, failed)))
    return tuple(errors)


def _cannot(name: str, failed: dict[str, str]) -> str:
    return f'scheduler "{name}" cannot be loaded ({failed[name]})'
