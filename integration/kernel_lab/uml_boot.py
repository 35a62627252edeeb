"""Booting the UML kernel as a process, following the guest command's output
live, and reading its exit status back from the host file system."""

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

DEFAULT_MEMORY = "1G"
DEFAULT_TIMEOUT = 3600.0
# After the status file appears the guest only has to power off.
POWEROFF_GRACE = 15.0
POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 25
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Boot:
    """One guest boot: the kernel, its PID 1 script, and the host files it reports through."""

    kernel: Path
    init: Path
    run_dir: Path
    output: Path
    status: Path
    kernel_log: Path
    memory: str = DEFAULT_MEMORY


def boot_command(boot: Boot) -> list[str]:
    """The UML command line: hostfs root is the host's /, so the guest sees our files."""
    for path in (boot.init, boot.run_dir):
        if any(c.isspace() for c in str(path)):
            raise LabError(f"{path}: the UML command line cannot hold paths with spaces")
    return [
        str(boot.kernel),
        f"mem={boot.memory}",
        # seccomp mode: ptrace mode dies on CPUs with AMX (ptrace set fp regs failed).
        "seccomp=on",
        "root=/dev/root",
        "rootfstype=hostfs",
        "rootflags=/",
        "rw",
        f"init={boot.init}",
        # The kernel's console goes to its stderr, i.e. the log file, not the caller.
        "con=null",
        "con0=null,fd:2",
        f"uml_dir={boot.run_dir}",
    ]


def boot_and_follow(boot: Boot, sink: BinaryIO, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Boot the guest, copy its command's output to ``sink`` as it comes,
    and return the command's exit status."""
    boot.output.touch()
    with open(boot.kernel_log, "wb") as log:
        guest = subprocess.Popen(
            boot_command(boot),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=boot.run_dir,
            start_new_session=True,
            preexec_fn=_tie_to_harness,
        )
    try:
        _follow(guest, boot, sink, timeout)
    finally:
        _stop(guest)
    return read_status(boot)


def _follow(guest: subprocess.Popen[bytes], boot: Boot, sink: BinaryIO, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    powering_off_since: float | None = None
    with open(boot.output, "rb") as output:
        while True:
            chunk = output.read(1 << 16)
            if chunk:
                sink.write(chunk)
                sink.flush()
                continue
            if guest.poll() is not None:
                break
            now = time.monotonic()
            if powering_off_since is None and boot.status.exists():
                powering_off_since = now
            if powering_off_since is not None and now - powering_off_since > POWEROFF_GRACE:
                break
            if now > deadline:
                raise LabError(f"the UML guest was still running after {timeout:.0f} s; killed it")
            time.sleep(POLL_INTERVAL)
        sink.write(output.read())
        sink.flush()


def read_status(boot: Boot) -> int:
    try:
        return int(boot.status.read_text().strip())
    except (OSError, ValueError):
        raise LabError(
            "the UML guest stopped without reporting an exit status "
            f"(it did not boot, or its init died); kernel log:\n{_tail(boot)}"
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


def _tail(boot: Boot, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = boot.kernel_log.read_text(errors="replace")
    except OSError:
        return "(no kernel log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty kernel log)"
