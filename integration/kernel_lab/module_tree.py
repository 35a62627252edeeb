"""A kernel's module tree, read from its ``modules.dep``: which files a module
needs, in the order to load them, and which files a lab may leave out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from .debs import check_call
from .errors import LabError

# A module's dependencies, as paths relative to the version's directory.
Dependencies = Mapping[str, tuple[str, ...]]

# What the tests can want from a module tree: networking (netfilter, IPVS,
# namespaces), link types, and what the guest needs to boot (9p, virtio).
# Hardware drivers, sound and most file systems (three quarters of it) go.
# crypto, lib and arch stay whole: modules.dep does not list what a module
# asks for at run time (libcrc32c, which conntrack needs, loads crc32c by
# name, and fails with ENOENT without it).
KEPT_TREES = (
    "kernel/net/",
    "kernel/crypto/",
    "kernel/lib/",
    "kernel/arch/",
    "kernel/fs/9p/",
    "kernel/drivers/virtio/",
    "kernel/drivers/net/bonding/",
    "kernel/drivers/net/ipvlan/",
    "kernel/drivers/net/vxlan/",
    "kernel/drivers/char/hw_random/virtio-rng.ko",
)
# Only the modules directly in it (veth, dummy, macvlan, virtio_net, ...), not its NIC drivers.
KEPT_FLAT = ("kernel/drivers/net",)


def module_name(path: str) -> str:
    """The name modprobe knows a module file by: dashes and underscores are one."""
    return PurePosixPath(path).name.split(".ko", 1)[0].replace("-", "_")


def parse_modules_dep(text: str) -> dict[str, tuple[str, ...]]:
    """``modules.dep``: ``kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko ...`` per line."""
    deps = {}
    for line in text.splitlines():
        module, sep, needs = line.partition(":")
        if sep:
            deps[module.strip()] = tuple(needs.split())
    return deps


def load_order(deps: Dependencies, names: Iterable[str]) -> list[str]:
    """The files to insmod, dependencies first, each once, for modules ``names``."""
    by_name = {module_name(path): path for path in deps}
    order: list[str] = []
    for name in names:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            raise LabError(f"module {name} is not in this kernel's module tree")
        # depmod lists a module's dependencies the way modprobe unloads them.
        for needed in (*reversed(deps[path]), path):
            if needed not in order:
                order.append(needed)
    return order


def kept(deps: Dependencies) -> set[str]:
    """The module files a lab keeps: the wanted trees and all they depend on."""
    wanted = {
        path
        for path in deps
        if path.startswith(KEPT_TREES) or str(PurePosixPath(path).parent) in KEPT_FLAT
    }
    return wanted.union(*(deps[path] for path in wanted))


def prune(version_dir: Path) -> None:
    """Index the tree, delete the module files ``kept`` leaves out, index it again."""
    # The package ships no index: its postinst runs depmod.
    depmod(version_dir)
    deps = parse_modules_dep((version_dir / "modules.dep").read_text())
    for path in set(deps) - kept(deps):
        (version_dir / path).unlink()
    depmod(version_dir)


def depmod(version_dir: Path) -> None:
    """Index a module tree the way the package's postinst would have."""
    base = version_dir.parent.parent.parent
    if version_dir.parent != base / "lib" / "modules":
        raise LabError(f"{version_dir} is not a lib/modules/VERSION directory")
    check_call(["depmod", "-b", str(base), version_dir.name])
