"""One change to the IPVS table: what reconcile plans and the kernel room applies."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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
        return self in (Op.ADD_REAL, Op.EDIT_REAL, Op.DELETE_REAL)


@dataclass(frozen=True)
class IpvsChange:
    """An edit of one virtual server, or of one real server within it.

    For deletes only the keys matter (`service.key`, `real_server.key`).
    """

    op: Op
    service: VirtualServer
    real_server: RealServer | None = None

    def __post_init__(self) -> None:
        if self.op.needs_real_server != (self.real_server is not None):
            raise ValueError(
                f"{self.op.name} {'needs' if self.op.needs_real_server else 'takes no'} real server"
            )


@dataclass(frozen=True)
class ChangeFailure:
    """A change the kernel refused, with the errno it answered."""

    change: IpvsChange
    errno: int
    message: str
