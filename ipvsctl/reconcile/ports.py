"""What the engine drives, each as a narrow `typing.Protocol`.

The engine never sees netlink, /proc/sys or the nft command: it is handed one
object per port. The real classes live in the I/O rooms (kernel, links,
netfilter); the tests hand it fakes (tests/reconcile/fakes.py). mypy checks
both against these protocols (below for the real ones, in the fakes' module
for theirs), the idea of kube-proxy's `var _ = utilipvs.Interface(&FakeIPVS{})`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ipvsctl.model.changes import ChangeFailure, IpvsChange
from ipvsctl.model.ipvs import RealServerEntry, ServiceKey, Timeouts, VirtualServerEntry

if TYPE_CHECKING:
    from ipvsctl.netfilter import Support, TableState


class IpvsTable(Protocol):
    """The kernel's IPVS table: dump it, dump one service's real servers, apply changes
    (batched; going on past refusals, one failure each); and its node-wide connection
    timeouts (`ipvsadm --set`: a 0 leaves that one unchanged; KernelError on failure)."""

    def services(self) -> Sequence[VirtualServerEntry]: ...

    def real_servers(self, key: ServiceKey) -> Sequence[RealServerEntry]: ...

    def apply(self, changes: Sequence[IpvsChange]) -> Sequence[ChangeFailure]: ...

    def timeouts(self) -> Timeouts: ...

    def set_timeouts(self, timeouts: Timeouts) -> None: ...


class Links(Protocol):
    """The dummy interface and the addresses bound to it (LinkError on failure)."""

    def kind(self, name: str) -> str | None: ...

    def create(self, name: str) -> bool: ...

    def delete(self, name: str) -> bool: ...

    def bound_addresses(self, name: str) -> frozenset[str]: ...

    def add_addresses(self, name: str, addresses: Iterable[str]) -> None: ...

    def delete_addresses(self, name: str, addresses: Iterable[str]) -> None: ...


class Sysctls(Protocol):
    """The sysctls IPVS needs: which (for this kernel), their values, writing one."""

    def wanted(self, strict_arp: bool) -> Mapping[str, str]: ...

    def read(self, names: Iterable[str]) -> Mapping[str, str | None]: ...

    def write(self, name: str, value: str) -> None: ...


class Nft(Protocol):
    """ipvsctl's nftables table (NetfilterError on failure)."""

    def installed(self) -> bool: ...

    def read(self) -> TableState: ...

    def apply(self, transaction: str) -> None: ...

    def supported(self) -> Support: ...


# The clock: monotonic seconds.
Clock = Callable[[], float]


class NodePorts(NamedTuple):
    """Everything the engine drives on this node. `nft` is None with --no-netfilter."""

    ipvs: IpvsTable
    links: Links
    sysctls: Sysctls
    nft: Nft | None = None
    clock: Clock = time.monotonic


def host_nft() -> Nft:
    # Imported only when used: --no-netfilter needs none of the nft room.
    from ipvsctl.netfilter import NftTable

    return NftTable()


@contextmanager
def host_ports(netfilter: bool) -> Iterator[NodePorts]:
    """The real ports of this node (its network namespace), open for one `with` block."""
    from ipvsctl.kernel import IpvsKernel
    from ipvsctl.links import DummyInterface, HostSysctls

    with ExitStack() as stack:
        links = stack.enter_context(DummyInterface())
        ipvs = stack.enter_context(IpvsKernel())
        yield NodePorts(ipvs, links, HostSysctls(), host_nft() if netfilter else None)


def forget_udp_flow(service: str, service_port: int, real: str, real_port: int) -> None:
    """Delete this node's conntrack entries of a UDP flow to a real server that is gone
    (the agent's `forget_flow`; ConntrackError on failure)."""
    from ipvsctl.conntrack import delete_udp_flows

    delete_udp_flows(service, service_port, real, real_port)


def _host_schedulers() -> frozenset[str] | None:
    from ipvsctl.kernel.schedulers import available_schedulers

    return available_schedulers()


def _host_load_scheduler(name: str) -> str | None:
    from ipvsctl.kernel.schedulers import load_scheduler

    return load_scheduler(name)


def _host_addresses(exclude_interface: str) -> tuple[str, ...]:
    from ipvsctl.links import node_addresses

    return node_addresses(exclude_interface)


class NodeAccess(NamedTuple):
    """How a command reaches this node: the two facts read before anything is opened
    (the schedulers the kernel offers, None when unknown; the node's addresses outside
    our interface), and its ports, opened for one `with` block (with nft or without);
    `nft` alone, for what is checked before the rest is opened; `load_scheduler`, which
    makes a scheduler ready before `apply` changes anything (None, or why it cannot)."""

    schedulers: Callable[[], frozenset[str] | None] = _host_schedulers
    addresses: Callable[[str], tuple[str, ...]] = _host_addresses
    open_ports: Callable[[bool], AbstractContextManager[NodePorts]] = host_ports
    nft: Callable[[], Nft] = host_nft
    load_scheduler: Callable[[str], str | None] = _host_load_scheduler


HOST = NodeAccess()


if TYPE_CHECKING:
    from ipvsctl.kernel import IpvsKernel
    from ipvsctl.links import DummyInterface, HostSysctls
    from ipvsctl.netfilter import NftTable

    def _the_real_classes_fit(
        ipvs: IpvsKernel, links: DummyInterface, sysctls: HostSysctls, nft: NftTable
    ) -> tuple[IpvsTable, Links, Sysctls, Nft, Clock]:
        return ipvs, links, sysctls, nft, time.monotonic
