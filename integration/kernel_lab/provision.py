"""Provisioning: a UML kernel, its modules and a new enough glibc, unpacked
once into the cache and reused.

sid's ``user-mode-linux`` is needed because UML up to 6.12 dies on CPUs with
AMX (``ptrace set fp regs failed``); that binary needs glibc >= 2.38, so
sid's ``libc6`` is unpacked beside it and the kernel is patchelf'd to use it.
Nothing is installed: both packages are only unpacked with ``dpkg-deb -x``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .apt_client import PrivateApt, native_architecture, update_verified
from .apt_sources import system_archive_uri
from .debs import build_lock, check_call, package_version, swap_into_place, unpack
from .errors import LabError
from .locations import lab_cache_dir

# Bump when the layout of a built lab changes, so old caches are rebuilt.
LAB_FORMAT = 1
PACKAGES = ("user-mode-linux", "libc6")
STAMP = "lab.json"
KERNEL = Path("usr/bin/linux.uml")
LIBC_DIR = Path("usr/lib/x86_64-linux-gnu")
LOADER = LIBC_DIR / "ld-linux-x86-64.so.2"
MODULES_ROOT = Path("usr/lib/uml/modules")
# Neither the kernel nor the loader needs documentation or iconv modules.
PRUNED = (Path("usr/share"), LIBC_DIR / "gconv", Path("etc"))


@dataclass(frozen=True)
class Lab:
    """A provisioned UML kernel, ready to boot."""

    root: Path
    kernel_version: str
    packages: tuple[tuple[str, str], ...]
    keyring: str

    @property
    def kernel(self) -> Path:
        return self.root / KERNEL

    @property
    def modules_dir(self) -> Path:
        return self.root / MODULES_ROOT / self.kernel_version


def ensure_lab(cache: Path | None = None) -> Lab:
    """The cached lab, built first when missing or stale."""
    cache = cache or lab_cache_dir()
    final = cache / "uml"
    lab = load_lab(final)
    if lab is not None:
        return lab
    cache.mkdir(parents=True, exist_ok=True)
    with build_lock(cache):
        # Another process may have built it while this one waited for the lock.
        lab = load_lab(final)
        return lab if lab is not None else _build(cache, final)


def load_lab(root: Path) -> Lab | None:
    """The lab at ``root`` if it is complete and current, else None."""
    try:
        stamp = json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("format") != LAB_FORMAT or stamp.get("root") != str(root):
        return None
    lab = Lab(
        root=root,
        kernel_version=str(stamp["kernel_version"]),
        packages=tuple((str(n), str(v)) for n, v in stamp["packages"]),
        keyring=str(stamp.get("keyring", "")),
    )
    return lab if lab.kernel.is_file() and lab.modules_dir.is_dir() else None


def _build(cache: Path, final: Path) -> Lab:
    print(f"kernel-lab: provisioning a UML kernel into {final} (once)", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        debs, keyring = _fetch(work)
        staged = work / "lab"
        for deb in debs:
            unpack(deb, staged)
        for pruned in PRUNED:
            shutil.rmtree(staged / pruned, ignore_errors=True)
        # Tried where it lies, then pointed at where it will live.
        _point_at_libc(staged, staged)
        version = _smoke_test(staged)
        _point_at_libc(staged, final)
        lab = Lab(final, version, tuple(package_version(d) for d in debs), keyring)
        _write_stamp(staged, lab)
        swap_into_place(staged, final, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"kernel-lab: UML {version} ready in {final}", file=sys.stderr)
    return lab


def _fetch(work: Path) -> tuple[list[Path], str]:
    """The sid .deb files, and a note naming the keyring that verified them."""
    apt = PrivateApt(work / "apt", native_architecture())
    apt.prepare()
    mirror = system_archive_uri()
    keyring = update_verified(apt, mirror, work)
    debs = apt.download(PACKAGES, into=work / "debs")
    if len(debs) != len(PACKAGES):
        raise LabError(f"apt-get download gave {[d.name for d in debs]}, wanted {PACKAGES}")
    return debs, keyring


def _point_at_libc(staged: Path, libc_root: Path) -> None:
    """Make the kernel load sid's glibc from ``libc_root``."""
    check_call(
        [
            "patchelf",
            "--set-interpreter",
            str(libc_root / LOADER),
            "--set-rpath",
            str(libc_root / LIBC_DIR),
            str(staged / KERNEL),
        ]
    )


def _smoke_test(staged: Path) -> str:
    """Run the unpacked kernel (``--version``); return its version."""
    # Not through an explicit ld.so: UML re-executes /proc/self/exe, which would be ld.so.
    version = check_call([str(staged / KERNEL), "--version"]).strip()
    if not re.fullmatch(r"[0-9][\w.+~-]*", version):
        raise LabError(f"{KERNEL} --version said {version[:60]!r}, not a kernel version")
    if not (staged / MODULES_ROOT / version).is_dir():
        raise LabError(f"UML {version} has no modules in {MODULES_ROOT}")
    return version


def _write_stamp(staged: Path, lab: Lab) -> None:
    stamp = {
        "format": LAB_FORMAT,
        "root": str(lab.root),
        "kernel_version": lab.kernel_version,
        "packages": [list(p) for p in lab.packages],
        "keyring": lab.keyring,
    }
    (staged / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
