"""The engine's options (one record for `apply`, `diff`, `cleanup` and `run`), checked
once, and what is built from them with this node's facts: the translate
configuration and the netfilter options.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, NamedTuple

from ipvsctl.links import addresses_in_cidrs
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.model.inputs import NodeInfo
from ipvsctl.model.ipvs import Timeouts
from ipvsctl.model.printable import printable
from ipvsctl.translate import scheduler_problem

if TYPE_CHECKING:
    from ipvsctl.netfilter import NetfilterOptions


class OptionError(ValueError):
    """A command-line value that cannot be used (names the flag), or a node that cannot
    hold what the options ask: nothing was changed."""


class EngineOptions(NamedTuple):
    """The command-line settings the engine depends on (`run` adds its shell's own)."""

    node_name: str = ""
    scheduler: str = "rr"
    interface: str = "kube-ipvs0"
    nodeport_cidrs: tuple[str, ...] = ()
    strict_arp: bool = False
    netfilter: bool = True  # False: --no-netfilter, no table is read or written
    cluster_cidrs: tuple[str, ...] = ()  # --cluster-cidr, canonical once checked
    masquerade_all: bool = False
    graceful_period: float = 900.0  # --graceful-period (the agent's drains)
    # --ipvs-exclude-cidrs, canonical once checked: never deleted as unwanted (Ownership)
    exclude_cidrs: tuple[str, ...] = ()
    # --ipvs-tcp-timeout, --ipvs-tcpfin-timeout, --ipvs-udp-timeout in seconds; 0: as is
    ipvs_timeouts: Timeouts = Timeouts(0, 0, 0)


def check_options(options: EngineOptions, offered: frozenset[str]) -> EngineOptions:
    """The options, checked before anything is read or changed (OptionError names the
    flag), with the cluster and excluded CIDRs canonical (10.244.1.0/16 is 10.244.0.0/16)
    and unique."""
    check_interface(options.interface)
    problem = scheduler_problem(options.scheduler, offered)
    if problem:
        raise OptionError(f"--scheduler: {problem}")
    for cidr in options.nodeport_cidrs:
        _network("--nodeport-addresses", cidr)
    cluster: list[str] = []
    for cidr in options.cluster_cidrs:
        canonical = _network("--cluster-cidr", cidr)
        if canonical not in cluster:
            cluster.append(canonical)
    excluded: list[str] = []
    for cidr in options.exclude_cidrs:
        canonical = _network("--ipvs-exclude-cidrs", cidr)
        if canonical not in excluded:
            excluded.append(canonical)
    for flag, seconds in zip(_TIMEOUT_FLAGS, options.ipvs_timeouts, strict=True):
        # The kernel takes seconds as a u32 and multiplies them by HZ into an int.
        if not 0 <= seconds <= _MAX_TIMEOUT:
            raise OptionError(f"{flag}: {seconds}s is not between 0 and {_MAX_TIMEOUT}s")
    return options._replace(cluster_cidrs=tuple(cluster), exclude_cidrs=tuple(excluded))


_TIMEOUT_FLAGS = ("--ipvs-tcp-timeout", "--ipvs-tcpfin-timeout", "--ipvs-udp-timeout")
_MAX_TIMEOUT = 2**31 // 1000  # seconds * HZ (at most 1000) must fit an int


IFNAMSIZ = 16  # the kernel's buffer for a link name, its NUL included
# What the kernel's isspace() calls space (lib/ctype.c), 0xa0 (Latin-1's NBSP) included.
_KERNEL_SPACE = frozenset(b" \t\n\v\f\r\xa0")


def check_interface(name: str) -> None:
    """--interface as the kernel's dev_valid_name() (net/core/dev.c) takes it, checked
    before anything changes: else the dummy link is refused (EINVAL) only after the
    virtual servers it was to carry are made."""
    raw = name.encode("utf-8", "surrogateescape")  # the bytes the kernel would be given
    if not raw:
        why = "empty"
    elif len(raw) >= IFNAMSIZ:
        why = f"{len(raw)} bytes; a link name has at most {IFNAMSIZ - 1}"
    elif raw in (b".", b".."):
        why = "not a link name the kernel takes"
    elif any(byte in _KERNEL_SPACE or byte in b"/:\0" for byte in raw):
        why = "a link name holds no space, '/', ':' or NUL"
    else:
        return
    raise OptionError(f'--interface: "{printable(name)}": {why}')


def _network(flag: str, cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError:
        raise OptionError(f"{flag}: {printable(repr(cidr))} is not a CIDR") from None


def translate_config(
    options: EngineOptions,
    node: NodeInfo | None,
    local: tuple[str, ...],
    offered: frozenset[str],
) -> TranslateConfig:
    """What translate is told of this node: NodePorts on its addresses (`local`) in
    --nodeport-addresses, else on its Node's InternalIP/ExternalIP addresses (none
    without a Node object, as with `apply`)."""
    if options.nodeport_cidrs:
        nodeports = nodeport_addresses(options, local)
    else:
        nodeports = node.addresses if node is not None else ()
    return TranslateConfig(
        node_name=options.node_name,
        node_zone=node.zone if node is not None else "",
        node_addresses=nodeports,
        local_addresses=frozenset(local),
        scheduler=options.scheduler,
        schedulers=offered,
    )


def nodeport_addresses(options: EngineOptions, local: tuple[str, ...]) -> tuple[str, ...]:
    """The node's addresses (`local`) in --nodeport-addresses; none without the flag."""
    if not options.nodeport_cidrs:
        return ()
    return addresses_in_cidrs(local, options.nodeport_cidrs)


def netfilter_options(options: EngineOptions, local: frozenset[str]) -> NetfilterOptions:
    """The netfilter table's options: checked --cluster-cidr and --masquerade-all, and
    this node's own addresses."""
    from ipvsctl.netfilter import NetfilterOptions

    return NetfilterOptions(options.cluster_cidrs, options.masquerade_all, local)


def unsupported_netfilter(reason: str) -> str:
    return (
        f"netfilter: this kernel cannot hold ipvsctl's nftables table ({reason}); "
        "pass --no-netfilter where the CNI masquerades and filters service traffic"
    )
