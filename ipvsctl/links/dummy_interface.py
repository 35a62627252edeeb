"""The dummy interface that holds service addresses, over one rtnetlink socket.

What kube-proxy's IPVS mode does (`pkg/proxy/ipvs/netlink_linux.go`), kept:

- The interface is created when missing and left **down**. Every address on it
  still gets its `local` route (the kernel adds local routes whatever the link
  state), which is all IPVS needs to see the packets; a down dummy adds no
  connected route, no IPv6 link-local address, and sends nothing.
- Addresses are bound as /32 or /128, scope global, no broadcast. Binding an
  address already there is success, as is removing one already gone.
- IPv6 addresses get IFA_F_NODAD. kube-proxy gets the same effect implicitly
  (a dummy link is NOARP, and the kernel skips DAD on NOARP links); saying it
  keeps the address usable at once even on a link that does do DAD.
- Deleting refuses a link that is not a dummy, so a mistyped `--interface`
  cannot take down a real NIC.

Each call is one netlink round trip on a socket opened once; addresses of one
interface share a single index lookup.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ipvsctl.links.errors import LinkError
from ipvsctl.links.nodeport_addresses import is_node_address
from ipvsctl.model import AF_INET, AF_INET6, address_family, canonical_address

IFA_F_NODAD = 0x02

# "already bound" and "not bound" answers, which kube-proxy treats as success
_ADDRESS_PRESENT = frozenset({errno.EEXIST})
_ADDRESS_ABSENT = frozenset({errno.EADDRNOTAVAIL, errno.ENXIO, errno.ESRCH})


@contextmanager
def _netlink(what: str) -> Iterator[None]:
    try:
        yield
    except NetlinkError as error:
        raise LinkError(error.code, what) from None
    except OSError as error:
        raise LinkError(error.errno or 0, what) from None


def _host_prefix(address: str) -> tuple[str, int, int]:
    """(canonical text, family, full prefix length) of an address, or LinkError."""
    try:
        text = canonical_address(address)
    except (OSError, ValueError):
        raise LinkError(errno.EINVAL, f"address {address!r}: not an IP address") from None
    family = address_family(text)
    return text, family, 32 if family == AF_INET else 128


class DummyInterface:
    """Dummy links and their addresses. Use as a context manager, or call close()."""

    def __init__(self) -> None:
        # groups=0: no multicast subscriptions, so no unread events pile up in
        # the socket between calls (pyroute2 subscribes to all by default).
        with _netlink("open rtnetlink socket"):
            self._ipr: Any = IPRoute(groups=0)

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> DummyInterface:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- links --------------------------------------------------------------

    def _link(self, name: str) -> Any | None:
        """The link's message, None when there is no link of that name."""
        try:
            return self._ipr.link("get", ifname=name)[0]
        except NetlinkError as error:
            if error.code == errno.ENODEV:
                return None
            raise LinkError(error.code, f"interface {name}: look up") from None

    def _index(self, name: str, action: str) -> int:
        link = self._link(name)
        if link is None:
            raise LinkError(errno.ENODEV, f"interface {name}: {action}")
        return int(link["index"])

    def exists(self, name: str) -> bool:
        return self._link(name) is not None

    def create(self, name: str) -> bool:
        """Make a dummy link `name` unless a link of that name exists; True when made.

        An existing link is used as it is, whatever its kind, as kube-proxy's
        EnsureDummyDevice does.
        """
        if self.exists(name):
            return False
        try:
            self._ipr.link("add", ifname=name, kind="dummy")
        except NetlinkError as error:
            if error.code == errno.EEXIST:  # made by someone else just now
                return False
            raise LinkError(error.code, f"interface {name}: create dummy") from None
        return True

    def delete(self, name: str) -> bool:
        """Remove the dummy link `name`; True when removed, False when there was none."""
        link = self._link(name)
        if link is None:
            return False
        linkinfo = link.get_attr("IFLA_LINKINFO")
        kind = linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None
        if kind != "dummy":
            raise LinkError(errno.EPERM, f"interface {name}: delete: is {kind or 'no'} dummy")
        try:
            self._ipr.link("del", index=link["index"])
        except NetlinkError as error:
            if error.code == errno.ENODEV:
                return False
            raise LinkError(error.code, f"interface {name}: delete") from None
        return True

    # -- addresses ----------------------------------------------------------

    def _addresses(self, index: int | None = None) -> Iterator[tuple[int, str]]:
        """(interface index, canonical address) of every address, or of one interface's."""
        with _netlink("list addresses"):
            messages = tuple(self._ipr.addr("dump"))
        for message in messages:
            if index is not None and message["index"] != index:
                continue
            address = message.get("address")
            if address is not None:
                yield int(message["index"]), canonical_address(address)

    def bound_addresses(self, name: str) -> frozenset[str]:
        """The addresses on `name`, both families; empty when there is no such link.

        IPv6 link-local addresses are left out, as kube-proxy's GetLocalAddresses
        leaves them out: the kernel makes one when the link goes up, and it is
        not ours to remove.
        """
        link = self._link(name)
        if link is None:
            return frozenset()
        return frozenset(
            address
            for _, address in self._addresses(int(link["index"]))
            if not _is_ipv6_link_local(address)
        )

    def add_address(self, name: str, address: str) -> None:
        self.add_addresses(name, (address,))

    def add_addresses(self, name: str, addresses: Iterable[str]) -> None:
        """Bind each address to `name` as /32 or /128; one already bound is left alone."""
        index: int | None = None
        for address in addresses:
            text, family, prefixlen = _host_prefix(address)
            what = f"interface {name}: add address {text}/{prefixlen}"
            if index is None:
                index = self._index(name, f"add address {text}/{prefixlen}")
            request: dict[str, Any] = {
                "index": index,
                "family": family,
                "address": text,
                "prefixlen": prefixlen,
            }
            if family == AF_INET6:
                request["flags"] = IFA_F_NODAD
            try:
                self._ipr.addr("add", **request)
            except NetlinkError as error:
                if error.code not in _ADDRESS_PRESENT:
                    raise LinkError(error.code, what) from None

    def delete_address(self, name: str, address: str) -> None:
        self.delete_addresses(name, (address,))

    def delete_addresses(self, name: str, addresses: Iterable[str]) -> None:
        """Unbind each address from `name`; one not bound (or no such link) is no error."""
        link: Any | None = None
        for address in addresses:
            text, family, prefixlen = _host_prefix(address)
            if link is None:
                link = self._link(name)
                if link is None:
                    return
            try:
                self._ipr.addr(
                    "del", index=link["index"], family=family, address=text, prefixlen=prefixlen
                )
            except NetlinkError as error:
                if error.code not in _ADDRESS_ABSENT:
                    what = f"interface {name}: delete address {text}/{prefixlen}"
                    raise LinkError(error.code, what) from None

    def node_addresses(self, exclude_interface: str) -> tuple[str, ...]:
        """Every address NodePorts may use: all but those on `exclude_interface`.

        Loopback and IPv6 link-local are left out (`is_node_address`). An
        address that is on the excluded interface *and* on another one is kept,
        as kube-proxy's GetAllLocalAddressesExcept keeps it
        (kubernetes/kubernetes#114815). IPv4 first, each family sorted.
        """
        excluded = self._link(exclude_interface)
        excluded_index = None if excluded is None else int(excluded["index"])
        found = {
            address
            for index, address in self._addresses()
            if index != excluded_index and is_node_address(address)
        }
        return tuple(sorted(found, key=_address_order))


def _is_ipv6_link_local(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.version == 6 and ip.is_link_local


def _address_order(address: str) -> tuple[int, bytes]:
    family = address_family(address)
    return (0 if family == AF_INET else 1, socket.inet_pton(family, address))


def node_addresses(exclude_interface: str) -> tuple[str, ...]:
    """`DummyInterface.node_addresses` on a socket of its own, for one-off callers."""
    with DummyInterface() as links:
        return links.node_addresses(exclude_interface)
