"""The sysctls IPVS needs, and reading and writing them through /proc/sys.

Every sysctl here is per network namespace (net.ipv4.vs.* since IPVS became
netns-aware, net.ipv4.ip_forward and net.ipv4.conf.all.* as well), so writing
them inside a namespace leaves the host's values alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ipvsctl.links.errors import LinkError

PROC_SYS = Path("/proc/sys")

# conn_reuse_mode=0 works around a 1 s stall on reused source ports that
# kernels 4.1 to 5.8 have; 5.9 fixed it and kube-proxy leaves the value alone
# from then on (kubernetes/kubernetes#93297), and so do we.
CONN_REUSE_BROKEN_FROM = (4, 1)
CONN_REUSE_FIXED_IN = (5, 9)


def wanted_sysctls(strict_arp: bool, kernel: tuple[int, int] | None = None) -> dict[str, str]:
    """What kube-proxy's IPVS mode sets (`pkg/proxy/ipvs/proxier.go`, `NewProxier`), and why.

    `kernel` is the running kernel's (major, minor); give it to get the
    conn_reuse_mode workaround on the kernels that need it.
    """
    wanted = {
        # IPVS keeps conntrack entries for its connections, so the netfilter
        # rules that masquerade (and `ct state`) see IPVS traffic.
        "net.ipv4.vs.conntrack": "1",
        # Drop a connection at once when its real server is removed, instead of
        # letting packets vanish until the client times out.
        "net.ipv4.vs.expire_nodest_conn": "1",
        # Expire persistence (session affinity) templates of a weight-0 real
        # server, so graceful termination really drains it.
        "net.ipv4.vs.expire_quiescent_template": "1",
        # Masquerade mode forwards packets to real servers on other hosts.
        "net.ipv4.ip_forward": "1",
    }
    if kernel is not None and CONN_REUSE_BROKEN_FROM <= kernel < CONN_REUSE_FIXED_IN:
        wanted["net.ipv4.vs.conn_reuse_mode"] = "0"
    if strict_arp:
        # Answer ARP only for addresses on the receiving interface, and announce
        # only such addresses: service IPs on the dummy interface stay unknown
        # to the LAN (needed next to MetalLB-style ARP speakers).
        wanted["net.ipv4.conf.all.arp_ignore"] = "1"
        wanted["net.ipv4.conf.all.arp_announce"] = "2"
    return wanted


def running_kernel() -> tuple[int, int]:
    """The running kernel's (major, minor), from uname: `6.1.0-18-amd64` -> (6, 1)."""
    release = os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def sysctl_path(name: str) -> Path:
    """`net.ipv4.vs.conntrack` -> /proc/sys/net/ipv4/vs/conntrack.

    A name with a slash is taken as a path already, as sysctl(8) does, so an
    interface name with a dot (`net/ipv4/conf/eth0.100/rp_filter`) can be named.
    """
    relative = name if "/" in name else name.replace(".", "/")
    return PROC_SYS / relative.strip("/")


def read_sysctls(names: Iterable[str]) -> dict[str, str | None]:
    """Each sysctl's current value (whitespace stripped), None where it does not exist."""
    values: dict[str, str | None] = {}
    for name in names:
        try:
            values[name] = sysctl_path(name).read_text().strip()
        except FileNotFoundError:
            values[name] = None
        except OSError as error:
            raise LinkError(error.errno or 0, f"sysctl {name}: read") from None
    return values


def write_sysctl(name: str, value: str) -> None:
    try:
        sysctl_path(name).write_text(f"{value}\n")
    except OSError as error:
        raise LinkError(error.errno or 0, f"sysctl {name}: write {value!r}") from None


class HostSysctls:
    """This network namespace's sysctls, as the engine's `Sysctls` port."""

    def wanted(self, strict_arp: bool) -> dict[str, str]:
        return wanted_sysctls(strict_arp, running_kernel())

    def read(self, names: Iterable[str]) -> dict[str, str | None]:
        return read_sysctls(names)

    def write(self, name: str, value: str) -> None:
        write_sysctl(name, value)
