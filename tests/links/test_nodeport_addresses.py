"""Which node addresses --nodeport-addresses selects, per family, as kube-proxy does."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.links import addresses_in_cidrs, is_node_address

NODE = ("10.0.0.5", "192.168.1.7", "169.254.20.10", "2001:db8::5", "fd00::7")


def test_no_cidrs_selects_every_address() -> None:
    assert addresses_in_cidrs(NODE, []) == NODE


def test_an_ipv4_cidr_filters_ipv4_and_keeps_every_ipv6_address() -> None:
    assert addresses_in_cidrs(NODE, ["10.0.0.0/8"]) == ("10.0.0.5", "2001:db8::5", "fd00::7")


def test_an_ipv6_cidr_filters_ipv6_and_keeps_every_ipv4_address() -> None:
    assert addresses_in_cidrs(NODE, ["2001:db8::/32"]) == (
        "10.0.0.5",
        "192.168.1.7",
        "169.254.20.10",
        "2001:db8::5",
    )


def test_cidrs_of_both_families_filter_both() -> None:
    cidrs = ["192.168.0.0/16", "fd00::/8"]
    assert addresses_in_cidrs(NODE, cidrs) == ("192.168.1.7", "fd00::7")


def test_several_cidrs_of_one_family_are_a_union() -> None:
    cidrs = ["10.0.0.0/24", "169.254.0.0/16", "::/0"]
    assert addresses_in_cidrs(NODE, cidrs) == (
        "10.0.0.5",
        "169.254.20.10",
        "2001:db8::5",
        "fd00::7",
    )


def test_a_zero_cidr_matches_its_whole_family_even_beside_narrower_ones() -> None:
    assert addresses_in_cidrs(NODE, ["10.0.0.0/8", "0.0.0.0/0", "fd00::/8"]) == (
        "10.0.0.5",
        "192.168.1.7",
        "169.254.20.10",
        "fd00::7",
    )


def test_a_cidr_that_matches_nothing_selects_nothing_of_its_family() -> None:
    assert addresses_in_cidrs(NODE, ["172.16.0.0/12", "2001:db8:ffff::/48"]) == ()


def test_host_bits_in_a_cidr_are_ignored_as_kube_proxy_ignores_them() -> None:
    assert addresses_in_cidrs(["10.0.0.5"], ["10.0.0.1/24"]) == ("10.0.0.5",)


def test_addresses_come_out_canonical_and_once() -> None:
    got = addresses_in_cidrs(["2001:DB8:0::5", "2001:db8::5", "10.0.0.5"], [])
    assert got == ("2001:db8::5", "10.0.0.5")


def test_a_cidr_list_entry_may_carry_spaces_from_a_comma_list() -> None:
    assert addresses_in_cidrs(NODE, [" 10.0.0.0/8"]) == ("10.0.0.5", "2001:db8::5", "fd00::7")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "nonsense", "fd00::/129", ""])
def test_a_bad_cidr_is_a_value_error_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="--nodeport-addresses"):
        addresses_in_cidrs(NODE, [bad])


def test_a_bad_address_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'eth0'"):
        addresses_in_cidrs(["eth0"], [])


@pytest.mark.parametrize(
    ("address", "usable"),
    [
        ("127.0.0.1", False),
        ("127.3.4.5", False),
        ("::1", False),
        ("fe80::1", False),
        ("febf::1", False),
        ("169.254.20.10", True),
        ("10.0.0.5", True),
        ("2001:db8::5", True),
        ("fd00::7", True),
    ],
)
def test_loopback_and_ipv6_link_local_are_no_node_addresses(address: str, usable: bool) -> None:
    assert is_node_address(address) is usable


addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
networks = st.one_of(
    st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(v=4), st.integers(0, 32)),
    st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(v=6), st.integers(0, 128)),
)


@given(st.lists(addresses, max_size=8), st.lists(networks, max_size=4))
def test_every_selected_address_is_given_and_in_a_cidr_of_its_family_or_its_family_has_none(
    given_addresses: list[str], cidrs: list[str]
) -> None:
    chosen = addresses_in_cidrs(given_addresses, cidrs)
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    canonical = [str(ipaddress.ip_address(a)) for a in given_addresses]
    assert len(set(chosen)) == len(chosen)
    for address in canonical:
        ip = ipaddress.ip_address(address)
        same_family = [n for n in nets if n.version == ip.version]
        expected = not same_family or any(ip in n for n in same_family)
        assert (address in chosen) is expected
    assert set(chosen) <= set(canonical)
