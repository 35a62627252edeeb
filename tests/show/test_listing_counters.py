"""Counters in the listing: print_largenum's K/M/G/T scaling, --stats, --rate and --exact.

Expected strings are worked out by hand from ipvsadm 1.31's printf formats.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    KernelInfo,
    KernelTable,
    Protocol,
    RealServer,
    RealServerEntry,
    ServiceKey,
    Stats,
    VirtualServer,
    VirtualServerEntry,
)
from ipvsctl.show.listing import ListingOptions, format_largenum, render_listing

HEADER = "IP Virtual Server version 1.2.1 (size=4096)\n"


def tcp(address: str, port: int, family: int = AF_INET) -> ServiceKey:
    return ServiceKey(family=family, protocol=Protocol.TCP, address=address, port=port)


def service(
    key: ServiceKey, *real_servers: RealServerEntry, stats: Stats | None = None
) -> VirtualServerEntry:
    return VirtualServerEntry(
        service=VirtualServer(key=key), stats=stats or Stats(), real_servers=real_servers
    )


def real(address: str, port: int, stats: Stats) -> RealServerEntry:
    return RealServerEntry(server=RealServer(address=address, port=port), stats=stats)


def listing(*services: VirtualServerEntry, **options: bool) -> str:
    table = KernelTable(KernelInfo(version=0x010201, conn_tab_size=4096), services)
    return render_listing(table, ListingOptions(**options))


# ---- large numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "scaled"),
    [
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_000_000_000, "    1000M"),
        (99_999_999_999, "   99999M"),
        (100_000_000_000, "     100G"),
        (99_999_999_999_999, "   99999G"),
        (100_000_000_000_000, "     100T"),
        (2**64 - 1, "18446744T"),  # %8lluT: eight digits leave no space
    ],
)
def test_largenum_scales_at_each_boundary_in_nine_columns(value: int, scaled: str) -> None:
    assert format_largenum(value, exact=False) == scaled


@pytest.mark.parametrize(
    ("value", "exact"),
    [
        (0, "        0"),
        (12_345_678, " 12345678"),
        (123_456_789, " 123456789"),
        (2**64 - 1, " 18446744073709551615"),
    ],
)
def test_exact_largenum_keeps_nine_columns_then_grows_with_one_leading_space(
    value: int, exact: str
) -> None:
    assert format_largenum(value, exact=True) == exact


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_largenum_scaling_is_monotonic(a: int, b: int) -> None:
    def unscale(text: str) -> int:
        multiplier = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}.get(text[-1], 1)
        return int(text.rstrip("KMGT")) * multiplier

    low, high = sorted((a, b))
    assert unscale(format_largenum(low, False)) <= unscale(format_largenum(high, False))


@given(st.integers(0, 2**64 - 1))
def test_largenum_is_nine_wide_and_exact_form_is_the_number(value: int) -> None:
    assert len(format_largenum(value, False)) == 9
    exact = format_largenum(value, True)
    assert exact.startswith(" ") and int(exact) == value


# ---- --stats, --rate, --exact ---------------------------------------------------

STATS_TITLE = (
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
    "  -> RemoteAddress:Port\n"
)
RATE_TITLE = (
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
    "  -> RemoteAddress:Port\n"
)
SVC_80 = "TCP  10.0.0.1:80".ljust(33)  # the %-33s name column
RS_80 = "  -> 10.0.1.1:80".ljust(33)  # "  -> " and the %-28s address column
BIG = Stats(
    conns=7,
    inpkts=123_456_789,
    outpkts=5_000_000_000,
    inbytes=123_456_789_012_345,
    outbytes=42,
    cps=123_456_789,
    inpps=1,
    outpps=2,
    inbps=3_000_000_000,
    outbps=4,
)


def test_stats_prints_scaled_counters_for_services_and_real_servers() -> None:
    text = listing(
        service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, stats=BIG), stats=BIG), stats=True
    )
    assert text == (
        HEADER
        + STATS_TITLE
        + SVC_80
        + "        7  123456K    5000M     123T       42\n"
        # outpkts 5_000_000_000 keeps its low 32 bits on a real server: 705_032_704
        + RS_80
        + "        7  123456K  705032K     123T       42\n"
    )


def test_real_server_counters_other_than_bytes_keep_only_their_low_32_bits() -> None:
    # libipvs 1.31 parses a real server's STATS64 with its 32-bit parser
    stats = Stats(conns=2**32 + 5, inbytes=2**40, outpps=2**33 + 1)
    text = listing(
        service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, stats=stats), stats=stats),
        stats=True,
        exact=True,
    )
    assert text.splitlines()[3:] == [
        SVC_80 + " 4294967301        0        0 1099511627776        0",
        RS_80 + "        5        0        0 1099511627776        0",
    ]


def test_stats_with_exact_prints_every_digit() -> None:
    text = listing(service(tcp("10.0.0.1", 80), stats=BIG), stats=True, exact=True)
    assert (
        text.splitlines()[3] == SVC_80 + "        7 123456789 5000000000 123456789012345       42"
    )


def test_rate_scales_service_rates_but_prints_real_server_cps_and_pps_raw() -> None:
    text = listing(
        service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, stats=BIG), stats=BIG), rate=True
    )
    assert text == (
        HEADER
        + RATE_TITLE
        + SVC_80
        + "  123456K        1        2    3000M        4\n"
        + RS_80
        + " 123456789        1        2    3000M        4\n"
    )


def test_rate_with_exact_expands_only_the_largenum_columns() -> None:
    text = listing(
        service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, stats=BIG), stats=BIG),
        rate=True,
        exact=True,
    )
    assert text.splitlines()[3:] == [
        SVC_80 + " 123456789        1        2 3000000000        4",
        RS_80 + " 123456789        1        2 3000000000        4",
    ]


def test_stats_name_column_is_33_wide_and_long_ipv6_names_run_into_the_numbers() -> None:
    key = tcp("2001:db8:1234:5678:9abc:def0:1234:5678", 65535, family=AF_INET6)
    line = listing(service(key), stats=True).splitlines()[3]
    name = "TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:65535"
    assert line == name + "        0" * 5


def test_stats_wins_over_rate_when_both_are_given() -> None:
    assert listing(stats=True, rate=True) == HEADER + STATS_TITLE


FIXED_STATS_LINE = re.compile(r"^.{33}( {0,8}\d+| {0,8}\d+[KMGT]){5}$")


@given(
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4, unique=True),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
)
def test_every_stats_line_has_the_same_column_layout(
    addresses: list[int], big: int, small: int
) -> None:
    stats = Stats(conns=small, inpkts=big, outpkts=small, inbytes=big, outbytes=small)
    servers = [real(str(IPv4Address(a)), a % 65536, stats=stats) for a in addresses]
    entries = [service(tcp(str(IPv4Address(a)), 80), *servers, stats=stats) for a in addresses]
    lines = listing(*entries, stats=True).splitlines()
    assert len(lines[1]) == 78
    assert all(len(line) == 78 and FIXED_STATS_LINE.match(line) for line in lines[3:]), lines
