"""Provisioning: a UML kernel, its modules and a new enough glibc, unpacked
once into the cache and reused.

sid's ``user-mode-linux`` is needed because UML up to 6.12 dies on CPUs with
AMX (``ptrace set fp regs failed``); that binary needs glibc >= 2.38, so
sid's ``libc6`` is unpacked beside it and the kernel is patchelf'd to use it.
Nothing is installed: both packages are only unpacked with ``dpkg-deb -x``.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .apt_client import (
    KEYRING_PACKAGE,
    SYSTEM_KEYRING,
    PrivateApt,
    download_with_system_apt,
    last_line,
    looks_like_signature_failure,
    native_architecture,
)
from .apt_sources import system_archive_uri
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
    with _build_lock(cache):
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


@contextmanager
def _build_lock(cache: Path) -> Iterator[None]:
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(cache: Path, final: Path) -> Lab:
    print(f"kernel-lab: provisioning a UML kernel into {final} (once)", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        debs, keyring = _fetch(work)
        staged = work / "lab"
        for deb in debs:
            _check_call(["dpkg-deb", "-x", str(deb), str(staged)])
        for pruned in PRUNED:
            shutil.rmtree(staged / pruned, ignore_errors=True)
        # Tried where it lies, then pointed at where it will live.
        _point_at_libc(staged, staged)
        version = _smoke_test(staged)
        _point_at_libc(staged, final)
        lab = Lab(final, version, tuple(_package_version(d) for d in debs), keyring)
        _write_stamp(staged, lab)
        _swap_into_place(staged, final, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"kernel-lab: UML {version} ready in {final}", file=sys.stderr)
    return lab


def _fetch(work: Path) -> tuple[list[Path], str]:
    """The sid .deb files, and a note naming the keyring that verified them."""
    apt = PrivateApt(work / "apt", native_architecture())
    apt.prepare()
    mirror = system_archive_uri()
    keyring = _update_verified(apt, mirror, work)
    debs = apt.download(PACKAGES, into=work / "debs")
    if len(debs) != len(PACKAGES):
        raise LabError(f"apt-get download gave {[d.name for d in debs]}, wanted {PACKAGES}")
    return debs, keyring


def _update_verified(apt: PrivateApt, mirror: str, work: Path) -> str:
    """Fetch sid's lists, verifying its Release with the newest keyring we can trust.

    The system keyring verifies sid as long as sid is still signed with a key
    it knows; if not, the keyring package from the system's own (verified)
    lists may be newer. sid's own keyring package would only be trusted
    because sid said so, so it is never used.
    """
    result = apt.update_sid(mirror, SYSTEM_KEYRING)
    if result.returncode == 0:
        return str(SYSTEM_KEYRING)
    if not looks_like_signature_failure(result.stdout + result.stderr):
        raise LabError(f"apt-get update of sid from {mirror} failed: {last_line(result)}")
    deb = download_with_system_apt(KEYRING_PACKAGE, work / "keyring")
    if deb is not None:
        _check_call(["dpkg-deb", "-x", str(deb), str(work / "keyring")])
        newer = work / "keyring" / SYSTEM_KEYRING.relative_to("/")
        if apt.update_sid(mirror, newer).returncode == 0:
            return f"{KEYRING_PACKAGE} {_package_version(deb)[1]} from the system's lists"
    raise LabError(
        f"sid's Release signature cannot be verified with {SYSTEM_KEYRING}: "
        f"{last_line(result)}; upgrade {KEYRING_PACKAGE}"
    )


def _point_at_libc(staged: Path, libc_root: Path) -> None:
    """Make the kernel load sid's glibc from ``libc_root``."""
    _check_call(
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
    version = _check_call([str(staged / KERNEL), "--version"]).strip()
    if not re.fullmatch(r"[0-9][\w.+~-]*", version):
        raise LabError(f"{KERNEL} --version said {version[:60]!r}, not a kernel version")
    if not (staged / MODULES_ROOT / version).is_dir():
        raise LabError(f"UML {version} has no modules in {MODULES_ROOT}")
    return version


def _package_version(deb: Path) -> tuple[str, str]:
    name, version = _check_call(["dpkg-deb", "-f", str(deb), "Package", "Version"]).splitlines()
    return name.split(":", 1)[1].strip(), version.split(":", 1)[1].strip()


def _write_stamp(staged: Path, lab: Lab) -> None:
    stamp = {
        "format": LAB_FORMAT,
        "root": str(lab.root),
        "kernel_version": lab.kernel_version,
        "packages": [list(p) for p in lab.packages],
        "keyring": lab.keyring,
    }
    (staged / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")


def _swap_into_place(staged: Path, final: Path, work: Path) -> None:
    """Rename the staged lab to ``final``; a stale one is moved aside first."""
    if final.exists():
        final.rename(work / "stale")
    staged.rename(final)


def _check_call(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed (needed to provision the lab)") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines() or [""]
        raise LabError(f"{Path(argv[0]).name} failed (exit {result.returncode}): {detail[-1]}")
    return result.stdout
