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


def persistence_engines(modules_dir: Path) -> tuple[str, ...]:
    """The ``ip_vs_pe_*`` modules a kernel's module tree ships."""
    names = {path.name.split(".ko", 1)[0] for path in modules_dir.rglob("ip_vs_pe_*.ko*")}
    return tuple(sorted(names))


def modules_to_load(persistence: tuple[str, ...] = KNOWN_PERSISTENCE_ENGINES) -> tuple[str, ...]:
    return (IPVS_CORE, *SCHEDULERS, *LINK_TYPES, *persistence)


def scheduler_name(module: str) -> str:
    """The name IPVS registers a scheduler module under: ip_vs_wrr -> wrr."""
    return module.removeprefix("ip_vs_")
