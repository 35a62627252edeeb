"""The sysctl table kube-proxy's IPVS mode sets, and the /proc/sys name mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipvsctl.links import LinkError, sysctls
from ipvsctl.links.sysctls import sysctl_path, wanted_sysctls

BASE = {
    "net.ipv4.vs.conntrack": "1",
    "net.ipv4.vs.expire_nodest_conn": "1",
    "net.ipv4.vs.expire_quiescent_template": "1",
    "net.ipv4.ip_forward": "1",
}
STRICT_ARP = {"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"}


def test_without_strict_arp_the_ipvs_and_forwarding_sysctls_are_wanted() -> None:
    assert wanted_sysctls(strict_arp=False) == BASE


def test_strict_arp_adds_arp_ignore_and_arp_announce() -> None:
    assert wanted_sysctls(strict_arp=True) == BASE | STRICT_ARP


@pytest.mark.parametrize("kernel", [(4, 1), (4, 19), (5, 4), (5, 8)])
def test_conn_reuse_mode_is_zeroed_on_kernels_with_the_reuse_stall(kernel: tuple[int, int]) -> None:
    assert wanted_sysctls(strict_arp=False, kernel=kernel) == BASE | {
        "net.ipv4.vs.conn_reuse_mode": "0"
    }


@pytest.mark.parametrize("kernel", [(3, 10), (4, 0), (5, 9), (6, 1), (7, 0)])
def test_conn_reuse_mode_is_left_alone_where_it_is_missing_or_fixed(
    kernel: tuple[int, int],
) -> None:
    assert wanted_sysctls(strict_arp=True, kernel=kernel) == BASE | STRICT_ARP


def test_every_value_is_text_as_proc_sys_takes_it() -> None:
    for value in wanted_sysctls(True, (5, 4)).values():
        assert isinstance(value, str) and value.isdigit()


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("net.ipv4.vs.conntrack", "/proc/sys/net/ipv4/vs/conntrack"),
        ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
        ("net/ipv4/conf/eth0.100/rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"),
    ],
)
def test_a_dotted_name_maps_to_its_proc_sys_path_and_a_slashed_one_is_kept(
    name: str, path: str
) -> None:
    assert sysctl_path(name) == Path(path)


def test_read_and_write_on_a_fake_proc_sys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysctls, "PROC_SYS", tmp_path)
    (tmp_path / "net/ipv4/vs").mkdir(parents=True)
    (tmp_path / "net/ipv4/vs/conntrack").write_text("0\n")
    (tmp_path / "net/ipv4/ip_forward").write_text("1\n")
    assert sysctls.read_sysctls(["net.ipv4.vs.conntrack", "net.ipv4.vs.nothing"]) == {
        "net.ipv4.vs.conntrack": "0",
        "net.ipv4.vs.nothing": None,
    }
    sysctls.write_sysctl("net.ipv4.vs.conntrack", "1")
    assert (tmp_path / "net/ipv4/vs/conntrack").read_text() == "1\n"
    assert sysctls.read_sysctls(["net.ipv4.vs.conntrack"]) == {"net.ipv4.vs.conntrack": "1"}


def test_writing_a_missing_sysctl_is_a_link_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sysctls, "PROC_SYS", tmp_path)
    with pytest.raises(LinkError, match=r"sysctl net.ipv4.vs.conntrack: .*\(ENOENT\)"):
        sysctls.write_sysctl("net.ipv4.vs.conntrack", "1")
