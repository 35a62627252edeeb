"""Where the lab keeps its files on the host.

Everything lives under one cache directory, never under /tmp or /run: the
UML guest mounts its own tmpfs on both, so files the guest must share with
the host have to live elsewhere on the host file system.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .netns import in_lab_guest

CACHE_ENV = "IPVSCTL_LAB_CACHE"
# Paths the guest covers with its own tmpfs: the host's files there are invisible
# inside, except directories under /tmp that a run binds back (init_script).
GUEST_PRIVATE_DIRS = (Path("/run"),)
KEEP_ENV = "IPVSCTL_LAB_KEEP"
IN_USE = ".in-use"
KEPT = ".kept"


def lab_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The cache directory: $IPVSCTL_LAB_CACHE, else ~/.cache/ipvsctl/kernel-lab."""
    override = environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser().absolute()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).absolute() / "ipvsctl" / "kernel-lab"


def host_tmp_dir(path: Path) -> Path | None:
    """The top-level directory under /tmp holding `path`, or None when it is elsewhere."""
    resolved = path.resolve()
    if not resolved.is_relative_to("/tmp") or resolved == Path("/tmp"):
        return None
    return Path("/tmp", resolved.relative_to("/tmp").parts[0])


def hidden_in_guest(path: Path) -> bool:
    """True when the guest cannot see this host path (it is under /run)."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(private) for private in GUEST_PRIVATE_DIRS)


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under the cache's runs/, removed afterwards.

    Held locked while in use, so that directories left by a killed harness
    can be told apart from live ones and swept. With $IPVSCTL_LAB_KEEP set it
    is kept (and never swept), to read the guest's kernel log afterwards.
    """
    runs = lab_cache_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # Inside a guest the host's flocks are invisible (hostfs, and QEMU's 9p
    # server, keep locks local to each kernel): every live host run would
    # look abandoned there.
    if not in_lab_guest():
        _sweep_abandoned(runs)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=runs))
    try:
        with open(path / IN_USE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield path
    finally:
        if os.environ.get(KEEP_ENV):
            (path / KEPT).touch()
            print(f"kernel-lab: kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _sweep_abandoned(runs: Path) -> None:
    for path in runs.iterdir():
        if _abandoned(path):
            shutil.rmtree(path, ignore_errors=True)


def _abandoned(path: Path) -> bool:
    """True for a run directory whose owner is gone (nobody holds its lock)."""
    lock_path = path / IN_USE
    try:
        if (path / KEPT).exists():
            return False
        # Too young to be locked yet: its owner may be between mkdtemp and flock.
        if not lock_path.exists() and time.time() - path.stat().st_mtime < 60:
            return False
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
