"""The kernel's IPVS table: the only code that speaks the IPVS netlink family.

Narrow on purpose (after kube-proxy's ipvs.Interface): read the table, read
and set timeouts, apply a list of changes in batches, flush. Every call ends
within the connection's `timeout`, or raises KernelError naming what it did.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from ipvsctl.kernel import ipvs_codec as codec
from ipvsctl.kernel import ipvs_uapi as uapi
from ipvsctl.kernel.errors import KernelError, KernelUnavailable, describe_errno
from ipvsctl.kernel.netlink import GenericNetlink, Request
from ipvsctl.model import (
    KernelInfo,
    KernelTable,
    RealServerEntry,
    ServiceKey,
    Timeouts,
    VirtualServerEntry,
)
from ipvsctl.model.changes import ChangeFailure, IpvsChange, Op
from ipvsctl.netlink.batch_socket import DEFAULT_TIMEOUT

_COMMAND = {
    Op.ADD_SERVICE: uapi.CMD_NEW_SERVICE,
    Op.EDIT_SERVICE: uapi.CMD_SET_SERVICE,
    Op.DELETE_SERVICE: uapi.CMD_DEL_SERVICE,
    Op.ADD_REAL: uapi.CMD_NEW_DEST,
    Op.EDIT_REAL: uapi.CMD_SET_DEST,
    Op.DELETE_REAL: uapi.CMD_DEL_DEST,
}

NOT_AVAILABLE = "IPVS is not available in this kernel (modprobe ip_vs)"
NOT_PERMITTED = "IPVS needs CAP_NET_ADMIN (run as root)"
OUTCOME_UNKNOWN = (
    "outcome unknown: answers were lost to a receive buffer overrun; re-read the table"
)


class ApplyResult(list[ChangeFailure]):
    """The changes the kernel refused, in order, as `IpvsKernel.apply` returns them.

    A list, so callers that only iterate it are unaffected. A failure with
    errno ENOBUFS is not a refusal: whether that change was applied is
    unknown, and the table must be read again before planning from it.
    """

    @property
    def unknown(self) -> list[ChangeFailure]:
        """The changes whose outcome is unknown."""
        return [failure for failure in self if failure.errno == errno.ENOBUFS]

    @property
    def table_must_be_reread(self) -> bool:
        return any(failure.errno == errno.ENOBUFS for failure in self)


def encode_change(change: IpvsChange, encoded_keys: dict[int, bytes] | None = None) -> Request:
    """The netlink request that carries out one change.

    `encoded_keys` keeps the service key attributes encoded so far, by the
    `id` of their ServiceKey, for one `apply`: every real-server change of a
    service names it, and they share one key object. By identity because that
    skips hashing the key's address; the changes keep their keys alive
    meanwhile, so no id is reused.
    """
    # Branch on the command: comparing ints is cheaper than naming Op members
    # (an Enum class attribute costs ~0.2 us, and apply encodes every change).
    command = _COMMAND[change.op]
    service, real = change.service, change.real_server
    if real is None:
        if command == uapi.CMD_DEL_SERVICE:
            return Request(command, codec.service_key(service.key))
        return Request(command, codec.service_full(service))
    key = service.key
    encoded = None if encoded_keys is None else encoded_keys.get(id(key))
    if encoded is None:
        encoded = codec.service_key(key)
        if encoded_keys is not None:
            encoded_keys[id(key)] = encoded
    if command == uapi.CMD_DEL_DEST:
        return Request(command, encoded + codec.dest_key(key.family, real))
    return Request(command, encoded + codec.dest_full(key.family, real))


class IpvsKernel:
    """A connection to the kernel's IPVS table; no call waits longer than `timeout` s."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            self._nl = GenericNetlink(uapi.GENL_NAME, uapi.GENL_VERSION, timeout)
        except KernelUnavailable as e:
            raise KernelUnavailable(e.errno, NOT_AVAILABLE) from e
        # Every IPVS command, reads included, is GENL_ADMIN_PERM: ask once
        # here so a missing capability is one clear error, not a failed batch.
        # The answer (version, connection table size) is fixed while ip_vs is
        # loaded, so it is kept, not asked again.
        try:
            self._info = codec.decode_info(self._request(Request(uapi.CMD_GET_INFO), "get info")[0])
        except BaseException:
            self._nl.close()
            raise

    def close(self) -> None:
        self._nl.close()

    @property
    def timeout(self) -> float:
        return self._nl.timeout

    @property
    def batch_limit(self) -> int:
        """How many changes `apply` sends in one system call at most."""
        return self._nl.batch_limit

    def __enter__(self) -> IpvsKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, req: Request, what: str) -> list[bytes]:
        try:
            return self._nl.request(req)
        except KernelError as e:
            raise _explain(e, what) from e

    def _dump(self, req: Request, what: str) -> list[bytes]:
        try:
            return self._nl.dump(req)
        except KernelError as e:
            raise _explain(e, what) from e

    def info(self) -> KernelInfo:
        """IPVS_CMD_GET_INFO, as read when the connection was opened."""
        return self._info

    def timeouts(self) -> Timeouts:
        reply = self._request(Request(uapi.CMD_GET_CONFIG), "get timeouts")
        return codec.decode_timeouts(reply[0])

    def set_timeouts(self, timeouts: Timeouts) -> None:
        """Set the tcp, tcpfin and udp timeouts; a 0 leaves that one unchanged."""
        self._request(Request(uapi.CMD_SET_CONFIG, codec.timeouts_attrs(timeouts)), "set timeouts")

    def real_servers(self, key: ServiceKey) -> tuple[RealServerEntry, ...]:
        replies = self._dump(
            Request(uapi.CMD_GET_DEST, codec.service_key(key)), "list real servers"
        )
        return tuple(codec.decode_dest(reply, key.family) for reply in replies)

    def service(self, key: ServiceKey) -> VirtualServerEntry | None:
        """One virtual server with its real servers, or None when it does not exist."""
        try:
            reply = self._nl.request(Request(uapi.CMD_GET_SERVICE, codec.service_key(key)))
        except KernelError as e:
            if e.errno in (errno.ESRCH, errno.ENOENT):
                return None
            raise _explain(e, "get service") from e
        service, stats = codec.decode_service(reply[0])
        return VirtualServerEntry(service, stats, self.real_servers(key))

    def services(self) -> tuple[VirtualServerEntry, ...]:
        """Every virtual server with its real servers, in the kernel's order."""
        replies = self._dump(Request(uapi.CMD_GET_SERVICE), "list services")
        entries = []
        for reply in replies:
            service, stats = codec.decode_service(reply)
            entries.append(VirtualServerEntry(service, stats, self.real_servers(service.key)))
        return tuple(entries)

    def table(self) -> KernelTable:
        return KernelTable(info=self._info, services=self.services())

    def apply(self, changes: Sequence[IpvsChange]) -> ApplyResult:
        """Carry out the changes in order, batched; returns the ones the kernel refused.

        See `ApplyResult` for the failures whose outcome is unknown (ENOBUFS).
        """
        encoded_keys: dict[int, bytes] = {}
        requests = [encode_change(change, encoded_keys) for change in changes]
        try:
            failed = self._nl.send_batch(requests)
        except KernelError as e:
            raise _explain(e, "apply changes") from e
        return ApplyResult(
            ChangeFailure(changes[index], code, _failure_message(code))
            for index, code in sorted(failed.items())
        )

    def flush(self) -> None:
        """Delete every virtual server (ipvsadm -C)."""
        self._request(Request(uapi.CMD_FLUSH), "flush")


def _failure_message(code: int) -> str:
    return OUTCOME_UNKNOWN if code == errno.ENOBUFS else describe_errno(code)


def _explain(error: KernelError, what: str) -> KernelError:
    if error.errno == errno.EPERM:
        return KernelUnavailable(error.errno, NOT_PERMITTED)
    return KernelError(error.errno, what, error.detail)
