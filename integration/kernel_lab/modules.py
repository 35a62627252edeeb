"""The kernel modules a test run expects to be loaded."""

from __future__ import annotations

from pathlib import Path

IPVS_CORE = "ip_vs"
# Every scheduler the contract lets a Service ask for.
SCHEDULERS = (
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_mh",
    "ip_vs_fo",
    "ip_vs_ovf",
)
LINK_TYPES = ("dummy", "veth")
KNOWN_PERSISTENCE_ENGINES = ("ip_vs_pe_sip",)
# The table `inet ipvsctl` uses: NAT with masquerade, conntrack state, fib
# lookups and reject, in the inet family (both IPv4 and IPv6 halves). Only
# the QEMU guest has them: UML's kernel has nf_tables for bridges alone.
NETFILTER = (
    "nf_conntrack",
    "nf_conntrack_netlink",
    "nf_nat",
    "nf_tables",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_ct",
    "nft_reject",
    "nft_reject_inet",
    "nft_reject_ipv4",
    "nft_reject_ipv6",
    "nft_fib",
    "nft_fib_inet",
    "nft_fib_ipv4",
    "nft_fib_ipv6",
)


def persistence_engines(modules_dir: Path) -> tuple[str, ...]:
    """The ``ip_vs_pe_*`` modules a kernel's module tree ships."""
    names = {path.name.split(".ko", 1)[0] for path in modules_dir.rglob("ip_vs_pe_*.ko*")}
    return tuple(sorted(names))


def modules_to_load(persistence: tuple[str, ...] = KNOWN_PERSISTENCE_ENGINES) -> tuple[str, ...]:
    return (IPVS_CORE, *SCHEDULERS, *LINK_TYPES, *persistence)


def netfilter_modules_to_load(
    persistence: tuple[str, ...] = KNOWN_PERSISTENCE_ENGINES,
) -> tuple[str, ...]:
    """What a netfilter test run expects: IPVS and the link types too."""
    return (*modules_to_load(persistence), *NETFILTER)


def scheduler_name(module: str) -> str:
    """The name IPVS registers a scheduler module under: ip_vs_wrr -> wrr."""
    return module.removeprefix("ip_vs_")
