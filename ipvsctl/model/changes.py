"""One change to the IPVS table: what reconcile plans and the kernel room applies."""

from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple

from ipvsctl.model import RealServer, VirtualServer


class Op(Enum):
    """The six table edits, named by their ipvsadm option."""

    ADD_SERVICE = "-A"
    EDIT_SERVICE = "-E"
    DELETE_SERVICE = "-D"
    ADD_REAL = "-a"
    EDIT_REAL = "-e"
    DELETE_REAL = "-d"

    @property
    def needs_real_server(self) -> bool:
        return self in _NEEDS_REAL_SERVER


class _IpvsChangeFields(NamedTuple):
    op: Op
    service: VirtualServer
    real_server: RealServer | None = None


_NEEDS_REAL_SERVER = frozenset({Op.ADD_REAL, Op.EDIT_REAL, Op.DELETE_REAL})


class IpvsChange(_IpvsChangeFields):
    """An edit of one virtual server, or of one real server within it.

    For deletes only the keys matter (`service.key`, `real_server.key`).
    (A tuple: a cold `apply` of 1,000 Services builds 11,000 of these.)
    """

    __slots__ = ()

    def __new__(
        cls, op: Op, service: VirtualServer, real_server: RealServer | None = None
    ) -> IpvsChange:
        if (op in _NEEDS_REAL_SERVER) != (real_server is not None):
            needs = "needs" if op in _NEEDS_REAL_SERVER else "takes no"
            raise ValueError(f"{op.name} {needs} real server")
        return tuple.__new__(cls, (op, service, real_server))

    def _replace(self, **changes: Any) -> IpvsChange:
        # NamedTuple's own _replace skips __new__, and so the check.
        return IpvsChange(**{**self._asdict(), **changes})


class ChangeFailure(NamedTuple):
    """A change the kernel refused, with the errno it answered."""

    change: IpvsChange
    errno: int
    message: str
