"""Booting Debian's kernel under QEMU with the host's / as its root, over 9p.

TCG (QEMU's own CPU emulation), never KVM: /dev/kvm exists on the machines
this project is tested on, but a KVM guest there hangs before the kernel
prints anything (the nested CPU reports almost no features).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import LabError
from .guest_process import DEFAULT_MEMORY, DEFAULT_TIMEOUT, GuestFiles, run_guest
from .initramfs import INIT_PARAMETER, ROOT_TAG

QEMU = "qemu-system-x86_64"
QEMU_PACKAGE = "qemu-system-x86"
# One vCPU: with two, each vCPU is a host thread that waits for the other at
# every cross-CPU flush, and on a busy 2-core host a 2 s step took 6-9 s.
DEFAULT_CPUS = 1
# cryptomgr.notests: the crypto self-tests cost 0.9 s of every emulated boot.
# tsc=reliable: the kernel distrusts the emulated TSC and falls back to the
# HPET, whose every read is an emulated device access.
KERNEL_PARAMETERS = ("console=ttyS0", "quiet", "panic=-1", "cryptomgr.notests", "tsc=reliable")


@dataclass(frozen=True)
class QemuBoot:
    """One guest boot: kernel, initramfs, the run's PID 1 script, and its report files."""

    kernel: Path
    initrd: Path
    init: Path
    files: GuestFiles
    memory: str = DEFAULT_MEMORY
    cpus: int = DEFAULT_CPUS


def boot_command(boot: QemuBoot, qemu: str = QEMU) -> list[str]:
    if any(c.isspace() for c in str(boot.init)):
        raise LabError(f"{boot.init}: the kernel command line cannot hold paths with spaces")
    root = f"local,path=/,mount_tag={ROOT_TAG},security_model=none,multidevs=remap"
    return [
        qemu,
        "-accel",
        "tcg",
        "-m",
        boot.memory,
        "-smp",
        str(boot.cpus),
        # No network card, disk, VGA or monitor: the guest needs only its root
        # file system, an entropy source and a serial console for the log.
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-device",
        "virtio-rng-pci",
        # A kernel that panics (its init died) stops QEMU instead of rebooting.
        "-no-reboot",
        "-kernel",
        str(boot.kernel),
        "-initrd",
        str(boot.initrd),
        # security_model=none: files the guest writes belong to the user
        # running QEMU, root or not; multidevs=remap: the host's / spans
        # several file systems, whose inode numbers would otherwise collide.
        "-virtfs",
        root,
        "-append",
        " ".join((*KERNEL_PARAMETERS, f"{INIT_PARAMETER}={boot.init}")),
    ]


def boot_and_follow(boot: QemuBoot, sink: BinaryIO, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Boot the guest, copy its command's output to ``sink`` as it comes,
    and return the command's exit status."""
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise LabError(f"{QEMU} is not installed (apt-get install {QEMU_PACKAGE})")
    return run_guest(boot_command(boot, qemu), boot.files, sink, timeout=timeout, name="QEMU")
