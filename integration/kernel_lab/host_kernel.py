"""The host's own kernel: whether it can serve as the lab, and running there."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import LabError
from .guest_env import with_system_path
from .modules import IPVS_CORE, modules_to_load

IPVS_PROC = Path("/proc/net/ip_vs")
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21


def has_capability(proc_status: str, capability: int) -> bool:
    """Whether a /proc/<pid>/status text shows `capability` in the effective set."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> capability & 1)
    return False


def has_cap_net_admin(proc_status: str) -> bool:
    return has_capability(proc_status, CAP_NET_ADMIN)


def host_has_ipvs() -> bool:
    """True when the host kernel has IPVS (loaded, or loadable) and we may use it safely.

    Safely: in a network namespace of our own (see netns), which takes
    CAP_SYS_ADMIN besides IPVS's CAP_NET_ADMIN.
    """
    status = Path("/proc/self/status").read_text()
    if not (has_capability(status, CAP_NET_ADMIN) and has_capability(status, CAP_SYS_ADMIN)):
        return False
    if not IPVS_PROC.exists():
        _modprobe([IPVS_CORE])
    return IPVS_PROC.exists()


def run_on_host(
    argv: Sequence[str], *, cwd: Path, env_extra: Mapping[str, str], load_modules: bool
) -> int:
    """Run `argv` on the host kernel; the caller puts it in its own network namespace."""
    if not has_capability(Path("/proc/self/status").read_text(), CAP_SYS_ADMIN):
        raise LabError(
            "the host kernel is usable only in a network namespace of the run's own, "
            "and making one needs CAP_SYS_ADMIN (run as root, or in a privileged container)"
        )
    if shutil.which("unshare") is None:
        raise LabError("unshare (util-linux) is missing: the run needs its own network namespace")
    if load_modules:
        # Loading is kernel-wide but harmless (nothing is configured by it).
        # Best effort: built-in modules and missing optional ones are fine.
        _modprobe(list(modules_to_load()))
    env = {**os.environ, **env_extra}
    # ip and modprobe live in the sbin directories, which a user's PATH may lack.
    env["PATH"] = with_system_path(env.get("PATH", ""))
    result = subprocess.run(list(argv), cwd=cwd, env=env, check=False)
    # A signal death is reported the way a shell would, as in the guest.
    return result.returncode if result.returncode >= 0 else 128 - result.returncode


def _modprobe(modules: list[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        subprocess.run(
            ["modprobe", "-q", "-a", *modules],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
