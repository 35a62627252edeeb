"""Unpacking Debian packages into a lab directory, and swapping a finished
lab into the cache: the steps both lab kernels (UML, QEMU) share."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LabError
from .guest_env import with_system_path


def check_call(argv: list[str]) -> str:
    """Run a provisioning tool; its stdout, or a LabError naming its last complaint."""
    # depmod lives in sbin, which a user's PATH may lack.
    found = shutil.which(argv[0], path=with_system_path(os.environ.get("PATH", "")))
    try:
        result = subprocess.run(
            [found or argv[0], *argv[1:]], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed (needed to provision the lab)") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines() or [""]
        raise LabError(f"{Path(argv[0]).name} failed (exit {result.returncode}): {detail[-1]}")
    return result.stdout


def unpack(deb: Path, into: Path) -> None:
    """Extract a .deb's files (never installing it: no scripts run, dpkg's state untouched)."""
    check_call(["dpkg-deb", "-x", str(deb), str(into)])


def package_version(deb: Path) -> tuple[str, str]:
    name, version = check_call(["dpkg-deb", "-f", str(deb), "Package", "Version"]).splitlines()
    return name.split(":", 1)[1].strip(), version.split(":", 1)[1].strip()


def swap_into_place(staged: Path, final: Path, work: Path) -> None:
    """Rename the staged lab to ``final``; a stale one is moved aside first."""
    if final.exists():
        final.rename(work / "stale")
    staged.rename(final)


@contextmanager
def build_lock(cache: Path) -> Iterator[None]:
    """One build at a time per cache, whichever kernel it is for."""
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
