"""Which IPVS schedulers the running kernel can use, known before anything is applied.

The kernel loads a scheduler module (ip_vs_<name>) on first use and answers
ENOENT when there is none. `apply` checks every Service's scheduler first, so
that a scheduler this kernel lacks is a validation error naming the Service,
not a half-applied plan.

A module file can exist and still not load (built for another kernel, damaged,
refused by module signing): `apply` then loads every scheduler its plan needs
(`load_scheduler`, with modprobe, as kube-proxy loads its modules at start)
before it changes anything, so that such a kernel is an error with nothing
changed rather than a link, addresses and sysctls set around a refused `-A`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

_MODULE = re.compile(r"(?:^|/)ip_vs_([a-z0-9]+)\.ko(?:\.[a-z]+)?$")
# Modules of the IPVS directory that are not schedulers.
_NOT_SCHEDULERS = frozenset({"ftp", "pe_sip"})


def _names_in(lines: list[str]) -> set[str]:
    found = set()
    for line in lines:
        match = _MODULE.search(line.split(":", 1)[0].strip())
        if match and match.group(1) not in _NOT_SCHEDULERS:
            found.add(match.group(1))
    return found


def available_schedulers(
    proc_modules: Path = Path("/proc/modules"), modules_root: Path = Path("/lib/modules")
) -> frozenset[str] | None:
    """The schedulers loaded, built in, or loadable; None when that cannot be known
    (no module tree for this kernel, as in a container without /lib/modules)."""
    found: set[str] = set()
    try:
        for line in proc_modules.read_text().splitlines():
            name = line.split(" ", 1)[0]
            if name.startswith("ip_vs_"):
                found.add(name.removeprefix("ip_vs_"))
    except OSError:
        pass
    tree = modules_root / os.uname().release
    try:
        builtin = (tree / "modules.builtin").read_text().splitlines()
    except OSError:
        builtin = []
    try:
        dependencies = (tree / "modules.dep").read_text().splitlines()
    except OSError:
        if not builtin:
            # Loaded modules alone would call every built-in scheduler missing.
            return None
        dependencies = []
    found |= _names_in(builtin) | _names_in(dependencies)
    return frozenset(found - _NOT_SCHEDULERS)


MODPROBE_TIMEOUT = 60.0  # seconds; a load takes milliseconds, a hung one must not hang us


def load_scheduler(
    name: str, proc_modules: Path = Path("/proc/modules"), modules_root: Path = Path("/lib/modules")
) -> str | None:
    """None when scheduler `name` is ready in the kernel (loaded, built in, or loaded now);
    else why not, in one line. Without modprobe nothing can be learned here: None,
    and the kernel, which loads schedulers on demand, decides at the first change."""
    module = f"ip_vs_{name}"
    try:
        loaded = {line.split(" ", 1)[0] for line in proc_modules.read_text().splitlines()}
    except OSError:
        loaded = set()
    try:
        builtin = (modules_root / os.uname().release / "modules.builtin").read_text()
    except OSError:
        builtin = ""
    if module in loaded or name in _names_in(builtin.splitlines()):
        return None
    try:
        done = subprocess.run(
            ["modprobe", module],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=MODPROBE_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        return f"modprobe {module} did not finish in {MODPROBE_TIMEOUT:.0f} s"
    if done.returncode == 0:
        return None
    said = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return f"modprobe {module}: {said[-1] if said else f'exit status {done.returncode}'}"
