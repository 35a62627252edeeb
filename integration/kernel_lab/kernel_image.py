"""The uncompressed kernel (``vmlinux``) inside Debian's ``vmlinuz``.

QEMU boots an ELF ``vmlinux`` straight through its PVH entry point; handed
the compressed bzImage, the emulated CPU first spends about 4 s of every
boot decompressing it (xz, under TCG). Unpacked once here, the boot reaches
the kernel's first line in well under a second.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from .errors import LabError

XZ_MAGIC = b"\xfd7zXZ\x00"
ELF_MAGIC = b"\x7fELF"


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel in a bzImage whose payload is xz-compressed."""
    start = bzimage.find(XZ_MAGIC)
    if start < 0:
        raise LabError("the kernel image holds no xz-compressed payload")
    try:
        # Stops at the end of the xz stream: what follows it is the bzImage's own.
        vmlinux = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(bzimage[start:])
    except lzma.LZMAError as exc:
        raise LabError(f"the kernel image's xz payload is damaged: {exc}") from None
    if not vmlinux.startswith(ELF_MAGIC):
        raise LabError("the kernel image's payload is not an ELF vmlinux")
    return vmlinux


def write_vmlinux(bzimage: Path, out: Path) -> None:
    out.write_bytes(extract_vmlinux(bzimage.read_bytes()))
