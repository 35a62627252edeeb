"""The links room against a real kernel, with iproute2's `ip` as the witness.

These tests make and delete links. Until the suite runs in a network namespace
of its own, every name here is unique to this run and everything made is
removed afterwards, even when a test fails.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator

import pytest

from ipvsctl.links import DummyInterface, LinkError, node_addresses, read_sysctls, write_sysctl

SUFFIX = f"{os.getpid() % 0xFFFF:04x}"
# Names no other test uses (15 characters at most, the kernel's limit).
OURS, OTHER = f"ipvl-d{SUFFIX}", f"ipvl-o{SUFFIX}"
V4, V6 = "10.251.0.10", "fd00:251::10"
OTHER_V4, OTHER_V6 = "10.251.9.9", "fd00:251::9:9"


def ip(*argv: str) -> str:
    return subprocess.run(["ip", *argv], check=True, capture_output=True, text=True).stdout


def ip_addresses(name: str) -> dict[str, str]:
    """address -> its whole `ip -o addr` line, for the link `name`."""
    lines = ip("-o", "addr", "show", "dev", name).splitlines()
    return {line.split()[3].split("/")[0]: line for line in lines}


def link_exists(name: str) -> bool:
    done = subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def links() -> Iterator[DummyInterface]:
    """A DummyInterface, with a foreign dummy link `OTHER` beside it; both links removed after."""
    ip("link", "add", OTHER, "type", "dummy")
    try:
        ip("addr", "add", f"{OTHER_V4}/32", "dev", OTHER)
        ip("addr", "add", f"{OTHER_V6}/128", "dev", OTHER, "nodad")
        with DummyInterface() as made:
            yield made
    finally:
        for name in (OURS, OTHER):
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


@pytest.fixture
def ours(links: DummyInterface) -> DummyInterface:
    assert links.create(OURS) is True
    return links


def assert_other_untouched() -> None:
    assert link_exists(OTHER)
    assert set(ip_addresses(OTHER)) == {OTHER_V4, OTHER_V6}


def test_create_makes_a_down_dummy_link_when_missing(links: DummyInterface) -> None:
    assert not links.exists(OURS)
    assert links.create(OURS) is True
    assert links.exists(OURS)
    details = ip("-d", "-o", "link", "show", "dev", OURS)
    assert " dummy " in details
    # Left down, as kube-proxy leaves kube-ipvs0.
    assert "state DOWN" in details and ",UP" not in details.split(">")[0]
    assert_other_untouched()


def test_create_is_idempotent_when_the_link_is_there(ours: DummyInterface) -> None:
    before = ip("-o", "link", "show", "dev", OURS).split(":")[0]
    assert ours.create(OURS) is False
    assert ip("-o", "link", "show", "dev", OURS).split(":")[0] == before


def test_addresses_are_bound_as_host_routes_and_ipv6_without_dad(ours: DummyInterface) -> None:
    ours.add_address(OURS, V4)
    ours.add_address(OURS, V6)
    shown = ip_addresses(OURS)
    assert set(shown) == {V4, V6}
    assert f"inet {V4}/32 scope global" in shown[V4]
    assert f"inet6 {V6}/128 scope global" in shown[V6]
    assert "tentative" not in shown[V6] and "dadfailed" not in shown[V6]
    assert "nodad" in shown[V6]
    assert ours.bound_addresses(OURS) == frozenset(shown)
    # A down dummy still makes the addresses local, which is what IPVS needs.
    assert V4 in ip("route", "show", "table", "local", "dev", OURS)
    assert V6 in ip("-6", "route", "show", "table", "local", "dev", OURS)
    assert_other_untouched()


def test_binding_an_address_twice_is_no_error(ours: DummyInterface) -> None:
    ours.add_addresses(OURS, [V4, V6])
    ours.add_addresses(OURS, [V4, "FD00:251:0::10"])
    assert ours.bound_addresses(OURS) == {V4, V6}


def test_bound_addresses_are_canonical_and_empty_for_a_missing_link(
    ours: DummyInterface,
) -> None:
    ours.add_address(OURS, "fd00:251:0:0::0:10")
    assert ours.bound_addresses(OURS) == {V6}
    assert ours.bound_addresses(f"ipvl-n{SUFFIX}") == frozenset()


def test_deleting_an_address_leaves_the_others(ours: DummyInterface) -> None:
    ours.add_addresses(OURS, [V4, V6])
    ours.delete_address(OURS, V4)
    assert set(ip_addresses(OURS)) == {V6}
    ours.delete_address(OURS, V6)
    assert ip_addresses(OURS) == {}
    # Already gone, and a link that is not there: nothing to do.
    ours.delete_addresses(OURS, [V4, V6])
    ours.delete_address(f"ipvl-n{SUFFIX}", V4)
    assert_other_untouched()


def test_deleting_the_link_removes_it_and_nothing_else(ours: DummyInterface) -> None:
    ours.add_addresses(OURS, [V4, V6])
    assert ours.delete(OURS) is True
    assert not link_exists(OURS)
    assert ours.delete(OURS) is False
    assert_other_untouched()


def test_deleting_a_link_that_is_no_dummy_is_refused(links: DummyInterface) -> None:
    with pytest.raises(LinkError, match=r"interface lo: delete: is no dummy"):
        links.delete("lo")
    assert link_exists("lo")


def test_adding_to_a_missing_interface_is_a_link_error_naming_both(
    links: DummyInterface,
) -> None:
    missing = f"ipvl-n{SUFFIX}"
    with pytest.raises(LinkError) as caught:
        links.add_address(missing, V4)
    assert str(caught.value) == (
        f"interface {missing}: add address {V4}/32: No such device (ENODEV)"
    )


def test_a_bad_address_is_a_link_error_before_any_request(ours: DummyInterface) -> None:
    with pytest.raises(LinkError, match=r"address 'not-an-ip': not an IP address"):
        ours.add_address(OURS, "not-an-ip")


def test_node_addresses_leave_out_our_link_loopback_and_link_local(
    ours: DummyInterface,
) -> None:
    ours.add_addresses(OURS, [V4, V6])
    # The same address on ours and on the foreign link stays a node address.
    ours.add_address(OURS, OTHER_V4)
    found = ours.node_addresses(OURS)
    assert OTHER_V4 in found and OTHER_V6 in found
    assert V4 not in found and V6 not in found
    assert not any(a.startswith(("127.", "fe80:")) or a == "::1" for a in found)
    assert node_addresses(OURS) == found
    assert_other_untouched()


# --- batches: a whole plan's addresses in one sendmsg -----------------------------

MANY_V4 = [f"10.252.{i // 250}.{i % 250 + 1}" for i in range(500)]
MANY_V6 = [f"fd00:252::{i + 1:x}" for i in range(500)]


def test_a_batch_of_a_thousand_addresses_shows_up_exactly_in_ip_addr(
    ours: DummyInterface,
) -> None:
    ours.add_addresses(OURS, [*MANY_V4, *MANY_V6])
    shown = ip_addresses(OURS)
    assert set(shown) == {*MANY_V4, *MANY_V6}
    assert all(f"inet {a}/32 scope global" in shown[a] for a in MANY_V4)
    assert all(f"inet6 {a}/128 scope global" in shown[a] for a in MANY_V6)
    assert all("nodad" in shown[a] and "tentative" not in shown[a] for a in MANY_V6)
    assert ours.bound_addresses(OURS) == frozenset(shown)
    assert_other_untouched()


def test_a_batch_delete_leaves_exactly_the_rest(ours: DummyInterface) -> None:
    ours.add_addresses(OURS, [*MANY_V4, *MANY_V6])
    gone = MANY_V4[::2] + MANY_V6[1::2]
    ours.delete_addresses(OURS, gone)
    assert set(ip_addresses(OURS)) == {*MANY_V4, *MANY_V6} - set(gone)
    ours.delete_addresses(OURS, [*MANY_V4, *MANY_V6])
    assert ip_addresses(OURS) == {}
    assert_other_untouched()


def test_duplicates_and_missing_ones_in_a_batch_are_no_error(ours: DummyInterface) -> None:
    ours.add_address(OURS, V4)
    # Bound before, twice in the batch, and one new.
    ours.add_addresses(OURS, [V4, V6, V6, "fd00:251:0::10", MANY_V4[0]])
    assert set(ip_addresses(OURS)) == {V4, V6, MANY_V4[0]}
    # Never bound, twice in the batch, and the same address on the foreign link.
    ours.delete_addresses(OURS, [MANY_V4[1], V6, V6, OTHER_V4, MANY_V4[0]])
    assert set(ip_addresses(OURS)) == {V4}
    assert_other_untouched()


def test_a_refused_address_is_named_and_the_rest_of_its_batch_still_bound(
    ours: DummyInterface,
) -> None:
    # The kernel refuses a multicast address as an interface address.
    with pytest.raises(LinkError) as caught:
        ours.add_addresses(OURS, [V4, "ff02::1", V6])
    assert caught.value.errno == errno.EADDRNOTAVAIL
    assert str(caught.value).startswith(f"interface {OURS}: add address ff02::1/128: ")
    assert set(ip_addresses(OURS)) == {V4, V6}


def test_a_sysctl_write_reads_back_and_is_restored() -> None:
    name = "net.ipv4.vs.conntrack"
    before = read_sysctls([name])[name]
    assert before in {"0", "1"}
    flipped = "0" if before == "1" else "1"
    try:
        write_sysctl(name, flipped)
        assert read_sysctls([name]) == {name: flipped}
        with open("/proc/sys/net/ipv4/vs/conntrack") as witness:
            assert witness.read().strip() == flipped
    finally:
        write_sysctl(name, before)
    assert read_sysctls([name, "net.ipv4.vs.no_such_sysctl"]) == {
        name: before,
        "net.ipv4.vs.no_such_sysctl": None,
    }
