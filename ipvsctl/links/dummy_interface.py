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
- Deleting refuses a link that is not a dummy (and reconcile refuses to use
  one at all), so a mistyped `--interface` cannot take down a real NIC.

The addresses of a whole plan go to the kernel in as few `sendmsg` calls as
the socket buffers allow (`ipvsctl.netlink.batch_socket`), each refusal
matched to its address: one round trip per address cost ~1 ms in the kernel
lab, 20 s for 20,000 Services. Links are looked up, made and deleted on the
same socket, so no netlink library is loaded at all.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType

from ipvsctl.links import rtnetlink_messages as rtm
from ipvsctl.links.errors import LinkError
from ipvsctl.links.nodeport_addresses import is_node_address
from ipvsctl.links.rtnetlink_messages import HostAddress
from ipvsctl.model import AF_INET, address_family
from ipvsctl.netlink.batch_socket import DEFAULT_TIMEOUT, Message, NetlinkError, NetlinkSocket

# "already bound" and "not bound" answers, which kube-proxy treats as success
_ADDRESS_PRESENT = frozenset({errno.EEXIST})
_ADDRESS_ABSENT = frozenset({errno.EADDRNOTAVAIL, errno.ENXIO, errno.ESRCH})


def _host_address(address: str) -> HostAddress:
    """The address as a /32 or /128 host route, or LinkError."""
    try:
        return rtm.host_address(address_family(address), address)
    except (OSError, ValueError):
        raise LinkError(errno.EINVAL, f"address {address!r}: not an IP address") from None


def _spelled(address: HostAddress) -> str:
    return f"{socket.inet_ntop(address.family, address.packed)}/{address.prefixlen}"


class DummyInterface:
    """Dummy links and their addresses. Use as a context manager, or call close()."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            self._socket = NetlinkSocket(rtm.NETLINK_ROUTE, timeout)
        except (NetlinkError, OSError) as error:
            raise LinkError(error.errno or 0, "open rtnetlink socket") from None

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> DummyInterface:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, message: Message, what: str) -> list[bytes]:
        try:
            return self._socket.request(message)
        except NetlinkError as error:
            raise LinkError(error.errno, what) from None

    # -- links --------------------------------------------------------------

    def _link(self, name: str) -> rtm.Link | None:
        """The link `name`, None when there is no link of that name."""
        try:
            replies = self._socket.request(rtm.get_link(name))
        except NetlinkError as error:
            if error.errno == errno.ENODEV:
                return None
            raise LinkError(error.errno, f"interface {name}: look up") from None
        return rtm.read_link(replies[0]) if replies else None

    def _index(self, name: str) -> int | None:
        link = self._link(name)
        return None if link is None else link.ifindex

    def exists(self, name: str) -> bool:
        return self._link(name) is not None

    def kind(self, name: str) -> str | None:
        """The link's kind ("dummy", "veth", ...; "" for a plain device such as a NIC or
        `lo`), None when there is no link of that name."""
        link = self._link(name)
        return None if link is None else link.kind or ""

    def create(self, name: str) -> bool:
        """Make a dummy link `name` unless a link of that name exists; True when made.

        An existing link is used as it is, whatever its kind, as kube-proxy's
        EnsureDummyDevice does.
        """
        if self.exists(name):
            return False
        try:
            self._request(rtm.new_dummy_link(name), f"interface {name}: create dummy")
        except LinkError as error:
            if error.errno == errno.EEXIST:  # made by someone else just now
                return False
            raise
        return True

    def delete(self, name: str) -> bool:
        """Remove the dummy link `name`; True when removed, False when there was none."""
        link = self._link(name)
        if link is None:
            return False
        if link.kind != rtm.DUMMY_KIND:
            raise LinkError(errno.EPERM, f"interface {name}: delete: is {link.kind or 'no'} dummy")
        try:
            self._request(rtm.delete_link(link.ifindex), f"interface {name}: delete")
        except LinkError as error:
            if error.errno == errno.ENODEV:  # gone meanwhile
                return False
            raise
        return True

    # -- addresses ----------------------------------------------------------

    def _addresses(self) -> Iterator[tuple[int, str]]:
        """(interface index, address in inet_ntop's spelling) of every address."""
        try:
            replies = self._socket.dump(rtm.dump_addresses())
        except NetlinkError as error:
            raise LinkError(error.errno, "list addresses") from None
        for reply in replies:
            found = rtm.read_address(reply)
            if found is not None:
                yield found

    def bound_addresses(self, name: str) -> frozenset[str]:
        """The addresses on `name`, both families; empty when there is no such link.

        IPv6 link-local addresses are left out, as kube-proxy's GetLocalAddresses
        leaves them out: the kernel makes one when the link goes up, and it is
        not ours to remove.
        """
        index = self._index(name)
        if index is None:
            return frozenset()
        return frozenset(
            address
            for found, address in self._addresses()
            if found == index and not _is_ipv6_link_local(address)
        )

    def add_address(self, name: str, address: str) -> None:
        self.add_addresses(name, (address,))

    def add_addresses(self, name: str, addresses: Iterable[str]) -> None:
        """Bind each address to `name` as /32 or /128; one already bound is left alone.

        Every address is checked before any is sent. All are sent even when
        some are refused; the LinkError then names the first refused.
        """
        hosts = [_host_address(address) for address in addresses]
        if not hosts:
            return
        index = self._index(name)
        if index is None:
            raise LinkError(errno.ENODEV, f"interface {name}: add address {_spelled(hosts[0])}")
        messages = [rtm.new_address(index, host) for host in hosts]
        self._send(name, "add", hosts, messages, _ADDRESS_PRESENT)

    def delete_address(self, name: str, address: str) -> None:
        self.delete_addresses(name, (address,))

    def delete_addresses(self, name: str, addresses: Iterable[str]) -> None:
        """Unbind each address from `name`; one not bound (or no such link) is no error."""
        hosts = [_host_address(address) for address in addresses]
        index = self._index(name) if hosts else None
        if index is None:
            return
        messages = [rtm.delete_address(index, host) for host in hosts]
        self._send(name, "delete", hosts, messages, _ADDRESS_ABSENT)

    def _send(
        self,
        name: str,
        verb: str,
        hosts: Sequence[HostAddress],
        messages: Sequence[Message],
        harmless: frozenset[int],
    ) -> None:
        """Send the batch; raise LinkError for the first refusal not in `harmless`."""
        more = f" and {len(hosts) - 1} more" if len(hosts) > 1 else ""
        what = f"interface {name}: {verb} address {_spelled(hosts[0])}{more}"
        try:
            failures = self._socket.send_batch(messages)
            lost = [i for i, code in failures.items() if code == errno.ENOBUFS]
            if lost:
                # Answers lost to a receive-queue overrun, not refusals. Adding an
                # address that is there, or deleting one that is not, is harmless
                # (EEXIST, EADDRNOTAVAIL), so those requests are simply sent again.
                again = self._socket.send_batch([messages[i] for i in lost])
                for i in lost:
                    del failures[i]
                failures.update({lost[j]: code for j, code in again.items()})
        except NetlinkError as error:
            raise LinkError(error.errno, what) from None
        refused = sorted((i, code) for i, code in failures.items() if code not in harmless)
        if refused:
            first, code = refused[0]
            count = f" (first of {len(refused)} refused)" if len(refused) > 1 else ""
            raise LinkError(
                code, f"interface {name}: {verb} address {_spelled(hosts[first])}{count}"
            )

    def node_addresses(self, exclude_interface: str) -> tuple[str, ...]:
        """Every address NodePorts may use: all but those on `exclude_interface`.

        Loopback and IPv6 link-local are left out (`is_node_address`). An
        address that is on the excluded interface *and* on another one is kept,
        as kube-proxy's GetAllLocalAddressesExcept keeps it
        (kubernetes/kubernetes#114815). IPv4 first, each family sorted.
        """
        excluded_index = self._index(exclude_interface)
        found = {
            address
            for index, address in self._addresses()
            if index != excluded_index and is_node_address(address)
        }
        return tuple(sorted(found, key=_address_order))


def _is_ipv6_link_local(address: str) -> bool:
    # fe80::/10 is spelled fe8x..febx by inet_ntop; the prefix test skips the
    # parse for the thousands of service addresses a large node has.
    return address.startswith("fe") and ipaddress.ip_address(address).is_link_local


def _address_order(address: str) -> tuple[int, bytes]:
    family = address_family(address)
    return (0 if family == AF_INET else 1, socket.inet_pton(family, address))


def node_addresses(exclude_interface: str) -> tuple[str, ...]:
    """`DummyInterface.node_addresses` on a socket of its own, for one-off callers."""
    with DummyInterface() as links:
        return links.node_addresses(exclude_interface)
