"""The host's own kernel: whether it can serve as the lab, and running there."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .modules import IPVS_CORE, modules_to_load

IPVS_PROC = Path("/proc/net/ip_vs")
CAP_NET_ADMIN = 12


def has_cap_net_admin(proc_status: str) -> bool:
    """Whether a /proc/<pid>/status text shows CAP_NET_ADMIN in the effective set."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def host_has_ipvs() -> bool:
    """True when the host kernel has IPVS (loaded, or loadable) and we may configure it."""
    if not has_cap_net_admin(Path("/proc/self/status").read_text()):
        return False
    if not IPVS_PROC.exists():
        _modprobe([IPVS_CORE])
    return IPVS_PROC.exists()


def run_on_host(
    argv: Sequence[str], *, cwd: Path, env_extra: Mapping[str, str], load_modules: bool
) -> int:
    if load_modules:
        # Best effort: built-in modules and missing optional ones are fine.
        _modprobe(list(modules_to_load()))
    result = subprocess.run(list(argv), cwd=cwd, env={**os.environ, **env_extra}, check=False)
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
