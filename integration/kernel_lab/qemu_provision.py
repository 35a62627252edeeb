"""Provisioning the QEMU target: Debian's own kernel (``linux-image-amd64``)
and an initramfs made of ``busybox-static``, unpacked once into the cache.

UML's kernel has no nf_tables for IP traffic, Debian's generic kernel has
everything as modules (IPVS, nf_tables with the inet family, 9p, virtio).
Bookworm's 6.1 rather than sid's: one package holds the kernel, its modules
and their index (sid splits them into four), it matches the ``nft`` of the
machines here, and it changes only with point releases and security fixes.

The lab records the package versions it was built from; ``--setup`` asks the
mirror again and rebuilds when either package changed. Ordinary runs use the
cache as it is and never touch the network.
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
from .debs import build_lock, package_version, swap_into_place, unpack
from .errors import LabError
from .initramfs import BOOT_MODULES, write_initramfs
from .kernel_image import write_vmlinux
from .locations import lab_cache_dir
from .module_tree import load_order, parse_modules_dep, prune
from .modules import netfilter_modules_to_load

SUITE = "bookworm"
KERNEL_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
# Bump when the layout of a built lab changes, so old caches are rebuilt.
LAB_FORMAT = 1
LAB_DIR = "qemu"
# Kept between builds: a later --setup's apt-get update then fetches only what changed.
APT_STATE_DIR = f"apt-{SUITE}"
STAMP = "lab.json"
INITRD = "initrd.cpio"
VMLINUX = "vmlinux"
BUSYBOX_PATHS = (Path("bin/busybox"), Path("usr/bin/busybox"))
# Options without which the lab is useless, read from the kernel's config
# (PVH and xz: see kernel_image).
REQUIRED_CONFIG = (
    "CONFIG_NF_TABLES_INET=y",
    "CONFIG_IP_VS=m",
    "CONFIG_NET_9P_VIRTIO=m",
    "CONFIG_PVH=y",
    "CONFIG_KERNEL_XZ=y",
)
PRUNED = (Path("usr"), Path("etc"))
_IMAGE_DEPENDENCY = re.compile(r"(linux-image-\S+)\s*\(=\s*([^)\s]+)\)")

Packages = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class QemuLab:
    """A provisioned Debian kernel with its initramfs, ready to boot under QEMU."""

    root: Path
    kernel_version: str
    packages: Packages
    keyring: str

    @property
    def kernel(self) -> Path:
        return self.root / VMLINUX

    @property
    def initrd(self) -> Path:
        return self.root / INITRD

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.kernel_version


def ensure_qemu_lab(cache: Path | None = None, *, refresh: bool = False) -> QemuLab:
    """The cached lab, built first when missing or stale.

    With ``refresh`` the mirror is asked for the current packages first; when
    it cannot be reached, a cached lab is kept (saying so) rather than failing.
    """
    cache = cache or lab_cache_dir()
    final = cache / LAB_DIR
    lab = load_qemu_lab(final)
    if lab is not None and not refresh:
        return lab
    cache.mkdir(parents=True, exist_ok=True)
    with build_lock(cache):
        # Another process may have built it while this one waited for the lock.
        lab = load_qemu_lab(final)
        if lab is not None and not refresh:
            return lab
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
        try:
            return _refresh(cache, final, lab, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def load_qemu_lab(root: Path) -> QemuLab | None:
    """The lab at ``root`` if it is complete and current, else None."""
    try:
        stamp = json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("format") != LAB_FORMAT or stamp.get("suite") != SUITE:
        return None
    lab = QemuLab(
        root=root,
        kernel_version=str(stamp["kernel_version"]),
        packages=tuple((str(n), str(v)) for n, v in stamp["packages"]),
        keyring=str(stamp.get("keyring", "")),
    )
    complete = lab.kernel.is_file() and lab.initrd.is_file() and lab.modules_dir.is_dir()
    return lab if complete else None


def _refresh(cache: Path, final: Path, current: QemuLab | None, work: Path) -> QemuLab:
    apt = PrivateApt(cache / APT_STATE_DIR, native_architecture())
    apt.prepare()
    try:
        keyring = update_verified(apt, system_archive_uri(), work, SUITE)
        wanted = current_packages(apt)
    except LabError as exc:
        if current is None:
            raise
        print(f"kernel-lab: keeping QEMU kernel {current.kernel_version}: {exc}", file=sys.stderr)
        return current
    if current is not None and current.packages == wanted:
        return current
    return _build(final, apt, wanted, keyring, work)


def current_packages(apt: PrivateApt) -> Packages:
    """The kernel image the meta-package points at, and busybox, with their versions."""
    image = image_dependency(control_field(apt.show(KERNEL_PACKAGE), "Depends"))
    busybox = (BUSYBOX_PACKAGE, control_field(apt.show(BUSYBOX_PACKAGE), "Version"))
    return tuple(sorted((image, busybox)))


def control_field(control: str, field: str) -> str:
    """A field of the first stanza of ``apt-cache show`` output."""
    for line in control.splitlines():
        name, sep, value = line.partition(":")
        if sep and name == field:
            return value.strip()
        if not line.strip():
            break
    raise LabError(f"apt-cache show printed no {field} field")


def image_dependency(depends: str) -> tuple[str, str]:
    """``linux-image-6.1.0-50-amd64 (= 6.1.176-1), ...`` -> its name and version."""
    match = _IMAGE_DEPENDENCY.search(depends)
    if match is None:
        raise LabError(f"{KERNEL_PACKAGE} depends on no versioned kernel image: {depends!r}")
    return match.group(1), match.group(2)


def _build(final: Path, apt: PrivateApt, wanted: Packages, keyring: str, work: Path) -> QemuLab:
    named = ", ".join(f"{name} {version}" for name, version in wanted)
    print(f"kernel-lab: provisioning QEMU's kernel from {named} into {final}", file=sys.stderr)
    debs = apt.download([f"{name}={version}" for name, version in wanted], into=work / "debs")
    versions = {deb: package_version(deb) for deb in debs}
    got = tuple(sorted(versions.values()))
    if got != wanted:
        raise LabError(f"apt-get download gave {got}, wanted {wanted}")
    staged, tools = work / "lab", work / "busybox"
    for deb, (name, _) in versions.items():
        unpack(deb, tools if name == BUSYBOX_PACKAGE else staged)
    for pruned in PRUNED:
        shutil.rmtree(staged / pruned, ignore_errors=True)
    version = _kernel_version(staged)
    lab = QemuLab(final, version, wanted, keyring)
    staged_lab = QemuLab(staged, version, wanted, keyring)
    _check_config(staged, version)
    bzimage = staged / "boot" / f"vmlinuz-{version}"
    write_vmlinux(bzimage, staged_lab.kernel)
    bzimage.unlink()
    prune(staged_lab.modules_dir)
    deps = parse_modules_dep((staged_lab.modules_dir / "modules.dep").read_text())
    # Fails here, naming the module, rather than in every guest later.
    load_order(deps, netfilter_modules_to_load())
    boot = [staged_lab.modules_dir / path for path in load_order(deps, BOOT_MODULES)]
    write_initramfs(staged_lab.initrd, _busybox(tools), boot)
    _write_stamp(lab, staged)
    swap_into_place(staged, final, work)
    print(f"kernel-lab: QEMU kernel {version} ready in {final}", file=sys.stderr)
    return lab


def _kernel_version(staged: Path) -> str:
    versions = [p.name for p in (staged / "lib" / "modules").glob("*") if p.is_dir()]
    if len(versions) != 1 or not (staged / "boot" / f"vmlinuz-{versions[0]}").is_file():
        raise LabError(f"{KERNEL_PACKAGE}: expected one kernel and its modules, found {versions}")
    return versions[0]


def _check_config(staged: Path, version: str) -> None:
    config = (staged / "boot" / f"config-{version}").read_text().splitlines()
    missing = [option for option in REQUIRED_CONFIG if option not in config]
    if missing:
        raise LabError(f"kernel {version} lacks {', '.join(missing)}")


def _busybox(tools: Path) -> Path:
    for candidate in BUSYBOX_PATHS:
        if (tools / candidate).is_file():
            return tools / candidate
    raise LabError(f"{BUSYBOX_PACKAGE} holds no busybox binary")


def _write_stamp(lab: QemuLab, staged: Path) -> None:
    stamp = {
        "format": LAB_FORMAT,
        "suite": SUITE,
        "kernel_version": lab.kernel_version,
        "packages": [list(p) for p in lab.packages],
        "keyring": lab.keyring,
    }
    (staged / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")


def describe(lab: QemuLab) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in lab.packages)
    return f"QEMU kernel {lab.kernel_version} ({packages}) in {lab.root}"
