"""ipvsadm's listing order: libipvs's wrapping compares under glibc's merge-sort qsort."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    RealServer,
    RealServerEntry,
    ServiceKey,
    VirtualServer,
    VirtualServerEntry,
)
from ipvsctl.show.listing_address import address_words, format_address_port
from ipvsctl.show.listing_order import (
    compare_real_servers,
    compare_services,
    glibc_qsort,
    ipvsadm_order,
)


def entry(key: ServiceKey) -> VirtualServerEntry:
    return VirtualServerEntry(service=VirtualServer(key=key))


def v4(address: str, port: int = 80) -> VirtualServerEntry:
    return entry(ServiceKey(AF_INET, 6, address, port))


def dest(address: str, port: int = 80, family: int = 0) -> RealServerEntry:
    return RealServerEntry(server=RealServer(address=address, port=port, family=family))


@given(st.lists(st.integers()))
def test_glibc_qsort_equals_sorted_for_a_total_order(values: list[int]) -> None:
    assert glibc_qsort(values, lambda a, b: a - b) == sorted(values)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers())))
def test_glibc_qsort_is_stable(pairs: list[tuple[int, int]]) -> None:
    assert glibc_qsort(pairs, lambda a, b: a[0] - b[0]) == sorted(pairs, key=lambda p: p[0])


@given(st.lists(st.integers(0, 2**32 - 1), max_size=12))
def test_sorting_services_returns_a_permutation_even_with_the_wrapping_compare(
    addresses: list[int],
) -> None:
    services = [v4(str(IPv4Address(a)), i) for i, a in enumerate(addresses)]
    keys = [e.service.key for e in services]
    assert sorted(e.service.key for e in ipvsadm_order(services)) == sorted(keys)


@given(st.lists(st.integers(0, 2**31 - 1), max_size=12, unique=True))
def test_addresses_closer_than_two_to_the_31_sort_naturally(addresses: list[int]) -> None:
    services = [v4(str(IPv4Address(a))) for a in addresses]
    ordered = [IPv4Address(e.service.key.address) for e in ipvsadm_order(services)]
    assert ordered == sorted(IPv4Address(a) for a in addresses)


def test_three_addresses_that_wrap_pairwise_sort_as_glibc_msort_leaves_them() -> None:
    # 0.0.0.0 < 96.0.0.0 < 192.0.0.0 < 0.0.0.0 under the wrapping compare: a cycle
    services = [v4("192.0.0.0"), v4("0.0.0.0"), v4("96.0.0.0")]
    top, zero, middle = services
    # (int)(a - b) on the first address word: each pair is 0x60000000 or
    # 0x40000000 apart the short way round, so each reads as "less than".
    assert compare_services(zero, middle) == -0x60000000
    assert compare_services(middle, top) == -0x60000000
    assert compare_services(top, zero) == -0x40000000
    assert compare_services(middle, zero) == 0x60000000
    assert [e.service.key.address for e in ipvsadm_order(services)] == [
        "192.0.0.0",
        "0.0.0.0",
        "96.0.0.0",
    ]


def test_ipv6_services_compare_all_four_words() -> None:
    services = [entry(ServiceKey(AF_INET6, 6, a, 80)) for a in ("2001:db8::2", "2001:db8::1")]
    assert [e.service.key.address for e in ipvsadm_order(services)] == [
        "2001:db8::1",
        "2001:db8::2",
    ]


def test_fwmark_services_sort_by_mark_then_family() -> None:
    services = [entry(ServiceKey.for_fwmark(AF_INET6, 1)), entry(ServiceKey.for_fwmark(AF_INET, 2))]
    services.append(entry(ServiceKey.for_fwmark(AF_INET, 1)))
    assert [(e.service.key.fwmark, e.service.key.family) for e in ipvsadm_order(services)] == [
        (1, AF_INET),
        (1, AF_INET6),
        (2, AF_INET),
    ]


def test_real_server_compare_counts_words_by_the_first_servers_family() -> None:
    compare = compare_real_servers(AF_INET6)
    ipv4_dest, ipv6_dest = dest("10.0.0.1", family=AF_INET), dest("a00:1::1")
    # as IPv4 only the first word counts (0x0a000001 vs 0x0a000001): tie, so ports decide
    assert compare(ipv4_dest, ipv6_dest) == 0
    # as IPv6 all four words count, and the fourth differs (1 vs 0)
    assert compare(ipv6_dest, ipv4_dest) == 1


def test_fwmarks_two_to_the_31_apart_compare_with_a_wrapped_sign() -> None:
    high, zero = entry(ServiceKey.for_fwmark(AF_INET, 0x80000001)), v4("10.0.0.1")
    assert compare_services(high, zero) == -0x7FFFFFFF
    assert compare_services(zero, high) == 0x7FFFFFFF
    assert [e.service.key.fwmark for e in ipvsadm_order([zero, high])] == [0x80000001, 0]


def test_equal_services_compare_as_zero_and_ports_by_difference() -> None:
    assert compare_services(v4("10.0.0.1", 80), v4("10.0.0.1", 80)) == 0
    assert compare_services(v4("10.0.0.1", 80), v4("10.0.0.1", 443)) == 80 - 443


def test_nosort_keeps_the_order_it_was_given() -> None:
    services = [v4("10.0.0.2"), v4("10.0.0.1")]
    assert ipvsadm_order(services, sort=False) == services


def test_address_words_put_ipv4_in_the_first_word() -> None:
    assert address_words("10.0.0.1") == (0x0A000001, 0, 0, 0)
    assert address_words("2001:db8::1") == (0x20010DB8, 0, 0, 1)
    assert address_words("") == (0, 0, 0, 0)


def test_address_port_brackets_every_family_but_ipv4() -> None:
    assert format_address_port(AF_INET, "10.0.0.1", 80) == "10.0.0.1:80"
    assert format_address_port(AF_INET6, "::1", 80) == "[::1]:80"
