"""The QEMU guest's initramfs: busybox, the modules that reach the host's
file system, and an init that mounts the host's / over 9p and hands over.

Debian's kernel has 9p and virtio only as modules, so something must load
them before the host's / can be the root; a few lines of busybox sh do, with
no initramfs-tools or cpio on the host (the archive is written here).
"""

from __future__ import annotations

import lzma
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The modules the initramfs loads (their dependencies come along): the 9p
# root file system over virtio, and the virtio entropy source, without which
# the guest's first getrandom() waits seconds for the kernel's entropy pool.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "virtio_rng")
# The tag QEMU's -virtfs gives the host's /, and the kernel parameter that
# names the script to switch to (the kernel puts it in init's environment).
ROOT_TAG = "hostroot"
INIT_PARAMETER = "labinit"
# 512000 is the most 9p's virtio transport takes; the default 8 KiB makes
# every large read and write many round trips through the emulated device.
ROOT_MOUNT_OPTIONS = "trans=virtio,version=9p2000.L,msize=512000"

CONSOLE_MAJOR, CONSOLE_MINOR = 5, 1

INIT = f"""#!/bin/busybox sh
# PID 1 of the kernel lab's initramfs (written by integration.kernel_lab).
b=/bin/busybox
fail() {{
  echo "kernel-lab initramfs: $*"
  $b poweroff -f
}}
$b mount -t proc proc /proc
$b mount -t devtmpfs devtmpfs /dev
for m in $($b cat /modules/order); do
  $b insmod "/modules/$m" || fail "insmod $m failed"
done
$b mount -t 9p -o {ROOT_MOUNT_OPTIONS} {ROOT_TAG} /newroot || fail "cannot mount the host's /"
# The host's /dev is no use to the guest kernel: a devtmpfs of its own, with
# /dev/shm and /dev/pts, goes over it.
$b mount --move /dev /newroot/dev
$b mkdir -p /newroot/dev/shm /newroot/dev/pts
$b mount -t tmpfs tmpfs /newroot/dev/shm
$b mount -t devpts devpts /newroot/dev/pts
$b umount /proc
[ -n "${INIT_PARAMETER}" ] || fail "no {INIT_PARAMETER}= on the kernel command line"
exec $b switch_root /newroot "${INIT_PARAMETER}"
"""


@dataclass(frozen=True)
class Entry:
    """One member of a cpio archive: a directory, a file, or a device node."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def initramfs_entries(busybox: bytes, modules: Iterable[tuple[str, bytes]]) -> list[Entry]:
    """The archive's members; ``modules`` are (file name, contents) in load order."""
    modules = list(modules)
    entries = [
        Entry(name, stat.S_IFDIR | 0o755)
        for name in ("bin", "dev", "proc", "sys", "newroot", "modules")
    ]
    # The kernel opens /dev/console for init before anything is mounted.
    entries.append(Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(CONSOLE_MAJOR, CONSOLE_MINOR)))
    entries.append(Entry("bin/busybox", stat.S_IFREG | 0o755, busybox))
    entries.append(Entry("init", stat.S_IFREG | 0o755, INIT.encode()))
    order = "".join(f"{name}\n" for name, _ in modules).encode()
    entries.append(Entry("modules/order", stat.S_IFREG | 0o644, order))
    entries += [Entry(f"modules/{name}", stat.S_IFREG | 0o644, data) for name, data in modules]
    return entries


def cpio_newc(entries: Iterable[Entry]) -> bytes:
    """The entries as a ``newc`` cpio archive, the format the kernel unpacks."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry("TRAILER!!!", 0)], start=1):
        name = entry.name.encode() + b"\0"
        fields = (
            ino,
            entry.mode,
            0,  # uid
            0,  # gid
            2 if stat.S_ISDIR(entry.mode) else 1,
            0,  # mtime: the same input gives the same bytes
            len(entry.data),
            0,  # devmajor
            0,  # devminor
            *entry.rdev,
            len(name),
            0,  # check
        )
        out += b"070701" + b"".join(b"%08X" % field for field in fields) + name
        out += b"\0" * (-len(out) % 4)
        out += entry.data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def write_initramfs(out: Path, busybox: Path, modules: Iterable[Path]) -> None:
    """Write the initramfs to ``out``: ``modules`` are .ko files in load order."""
    contents = [_uncompressed(path) for path in modules]
    out.write_bytes(cpio_newc(initramfs_entries(busybox.read_bytes(), contents)))


def _uncompressed(module: Path) -> tuple[str, bytes]:
    """A module as busybox's insmod takes it: newer Debian kernels ship .ko.xz."""
    if module.suffix == ".xz":
        return module.stem, lzma.decompress(module.read_bytes())
    return module.name, module.read_bytes()
