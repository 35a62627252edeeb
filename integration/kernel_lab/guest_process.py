"""A guest kernel as a host process (UML's kernel, or QEMU): starting it,
following the guest command's output live, reading its exit status back from
the host file system, and making sure it never outlives the harness."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import LabError

DEFAULT_TIMEOUT = 3600.0
DEFAULT_MEMORY = "1G"
# After the status file appears the guest only has to power off.
POWEROFF_GRACE = 15.0
POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 25
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class GuestFiles:
    """Where one guest boot runs and the host files it reports through."""

    run_dir: Path
    output: Path
    status: Path
    kernel_log: Path


def run_guest(
    command: list[str],
    files: GuestFiles,
    sink: BinaryIO,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    name: str,
) -> int:
    """Start the guest, copy its command's output to ``sink`` as it comes,
    and return the command's exit status; ``name`` names the guest in errors."""
    files.output.touch()
    with open(files.kernel_log, "wb") as log:
        guest = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=files.run_dir,
            start_new_session=True,
            preexec_fn=_tie_to_harness,
        )
    try:
        _follow(guest, files, sink, timeout, name)
    finally:
        _stop(guest)
    return read_status(files, name)


def _follow(
    guest: subprocess.Popen[bytes], files: GuestFiles, sink: BinaryIO, timeout: float, name: str
) -> None:
    deadline = time.monotonic() + timeout
    powering_off_since: float | None = None
    with open(files.output, "rb") as output:
        while True:
            chunk = output.read(1 << 16)
            if chunk:
                sink.write(chunk)
                sink.flush()
                continue
            if guest.poll() is not None:
                break
            now = time.monotonic()
            if powering_off_since is None and files.status.exists():
                powering_off_since = now
            if powering_off_since is not None and now - powering_off_since > POWEROFF_GRACE:
                break
            if now > deadline:
                raise LabError(
                    f"the {name} guest was still running after {timeout:.0f} s; killed it"
                )
            time.sleep(POLL_INTERVAL)
        sink.write(output.read())
        sink.flush()


def read_status(files: GuestFiles, name: str) -> int:
    try:
        return int(files.status.read_text().strip())
    except (OSError, ValueError):
        raise LabError(
            f"the {name} guest stopped without reporting an exit status "
            f"(it did not boot, or its init died); kernel log:\n{_tail(files)}"
        ) from None


def _stop(guest: subprocess.Popen[bytes]) -> None:
    """Kill the guest and every helper process it forked."""
    if guest.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(guest.pid, signal.SIGKILL)
    guest.wait()


def _tie_to_harness() -> None:
    """Runs in the forked child before exec."""
    # A panicking UML aborts; a core of a 1G guest is not worth the disk.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The guest is in its own session, so it would outlive a harness killed
    # without a chance to clean up; the kernel kills it instead (its helper
    # processes follow their parent by themselves).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(files: GuestFiles, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = files.kernel_log.read_text(errors="replace")
    except OSError:
        return "(no kernel log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty kernel log)"
