"""A network namespace of the run's own: the suite never sees the host's network.

IPVS state, links, addresses and the net.* sysctls belong to a network
namespace. On a node running kube-proxy in IPVS mode, flushing the host's
table takes every Service down; so every command the lab runs (on the host
or in UML, the same way) runs in a fresh network namespace, with a mount
namespace of its own so that what it mounts stays private too.

What remains kernel-wide (loading and unloading modules,
/proc/sys/kernel/*) is up to the tests: see `kernel_wide_skip_reason`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

GUEST_ENV = "IPVSCTL_LAB_GUEST"
# The values GUEST_ENV takes inside the lab's own kernels.
LAB_GUESTS = ("uml", "qemu")
KERNEL_WIDE_ENV = "IPVSCTL_TEST_KERNEL_WIDE"
SELF_NETNS = Path("/proc/self/ns/net")
INIT_NETNS = Path("/proc/1/ns/net")

# Run by sh inside the new namespaces, before the command itself.
_ENTER = "; ".join(
    [
        "set -e",
        # Until lo is up the local routing table does not exist, and adding
        # any real server fails with EINVAL ("address not unicast").
        "ip link set lo up",
        # sysfs shows the links of the namespace that mounted it: without a
        # fresh one, /sys/class/net would list the host's links.
        "mount -n -t sysfs sysfs /sys",
        # A /run of our own: `ip netns add` pins namespaces under /run/netns
        # and ipvsctl keeps its NodePort record under /run/ipvsctl; the tests'
        # names (be1, client, ...) and records stay out of the host's, and
        # nothing is written to the host's /run, not even a directory.
        "mount -n -t tmpfs tmpfs /run",
        "mkdir /run/netns",
        'exec "$@"',
    ]
)


def in_own_network_namespace(argv: Sequence[str]) -> list[str]:
    """`argv`, run in a new network and mount namespace with only `lo`, up.

    Needs CAP_SYS_ADMIN (util-linux unshare): a privileged container or root.
    """
    unshare = ["unshare", "--net", "--mount", "--propagation", "private", "--"]
    return [*unshare, "sh", "-c", _ENTER, "sh", *argv]


def in_initial_network_namespace(self_ns: Path = SELF_NETNS, init_ns: Path = INIT_NETNS) -> bool:
    """Whether this process shares PID 1's network namespace (the host's, on a node).

    Unreadable namespace links count as shared: when in doubt, it is the host.
    """
    try:
        ours, init = self_ns.stat(), init_ns.stat()
    except OSError:
        return True
    return (ours.st_dev, ours.st_ino) == (init.st_dev, init.st_ino)


def in_lab_guest(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process runs inside one of the lab's guest kernels."""
    return environ.get(GUEST_ENV) in LAB_GUESTS


def kernel_wide_skip_reason(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why a test that changes the whole kernel may not run here, or None when it may.

    A network namespace does not contain module unloads or /proc/sys/kernel:
    such tests run in the UML guest (a throwaway kernel), and on a host only
    when asked for explicitly.
    """
    if environ.get(GUEST_ENV) == "uml" or environ.get(KERNEL_WIDE_ENV) == "1":
        return None
    return (
        "changes the whole host kernel (unloads modules or writes /proc/sys/kernel), "
        f"which would break IPVS users on this host; runs in the UML lab, or here "
        f"with {KERNEL_WIDE_ENV}=1"
    )
