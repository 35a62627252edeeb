"""The kernel's scheduler set is read from loaded, built-in and loadable modules."""

from __future__ import annotations

import os
from pathlib import Path

from ipvsctl.kernel.schedulers import available_schedulers


def _tree(tmp_path: Path, builtin: str, dep: str | None) -> Path:
    tree = tmp_path / "modules" / os.uname().release
    tree.mkdir(parents=True)
    (tree / "modules.builtin").write_text(builtin)
    if dep is not None:
        (tree / "modules.dep").write_text(dep)
    return tmp_path / "modules"


def test_loaded_builtin_and_loadable_schedulers_are_all_found(tmp_path: Path) -> None:
    proc = tmp_path / "proc_modules"
    proc.write_text("ip_vs_wrr 12288 0 - Live 0x0\nip_vs 200704 1 ip_vs_wrr, Live 0x0\n")
    root = _tree(
        tmp_path,
        "kernel/net/netfilter/ipvs/ip_vs_rr.ko\n",
        "kernel/net/netfilter/ipvs/ip_vs_sh.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz\n"
        "kernel/net/netfilter/ipvs/ip_vs_ftp.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz\n"
        "kernel/net/netfilter/ipvs/ip_vs_pe_sip.ko: kernel/net/netfilter/ipvs/ip_vs.ko\n",
    )
    assert available_schedulers(proc, root) == frozenset({"rr", "wrr", "sh"})


def test_no_module_tree_means_unknown_not_empty(tmp_path: Path) -> None:
    proc = tmp_path / "proc_modules"
    proc.write_text("ip_vs_rr 12288 0 - Live 0x0\n")
    assert available_schedulers(proc, tmp_path / "none") is None


def test_builtin_list_alone_is_enough(tmp_path: Path) -> None:
    root = _tree(tmp_path, "kernel/net/netfilter/ipvs/ip_vs_mh.ko\n", None)
    assert available_schedulers(tmp_path / "no_proc", root) == frozenset({"mh"})
