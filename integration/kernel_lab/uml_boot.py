"""Booting the UML kernel as a process with the host's / as its root (the
following and status reading are guest_process's, shared with QEMU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import LabError
from .guest_process import DEFAULT_MEMORY, DEFAULT_TIMEOUT, GuestFiles, run_guest


@dataclass(frozen=True)
class Boot:
    """One guest boot: the kernel, its PID 1 script, and the host files it reports through."""

    kernel: Path
    init: Path
    files: GuestFiles
    memory: str = DEFAULT_MEMORY


def boot_command(boot: Boot) -> list[str]:
    """The UML command line: hostfs root is the host's /, so the guest sees our files."""
    for path in (boot.init, boot.files.run_dir):
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
        f"uml_dir={boot.files.run_dir}",
    ]


def boot_and_follow(boot: Boot, sink: BinaryIO, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Boot the guest, copy its command's output to ``sink`` as it comes,
    and return the command's exit status."""
    return run_guest(boot_command(boot), boot.files, sink, timeout=timeout, name="UML")
