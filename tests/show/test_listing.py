"""The text listing's lines and order, pinned to ipvsadm 1.31's print_title / print_service_entry.

Expected strings are worked out by hand from ipvsadm.c's printf formats.
"""

from __future__ import annotations

from typing import Any

import pytest

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    KernelInfo,
    KernelTable,
    Protocol,
    RealServer,
    RealServerEntry,
    ServiceFlag,
    ServiceKey,
    Stats,
    Timeouts,
    TunnelFlag,
    TunnelType,
    VirtualServer,
    VirtualServerEntry,
)
from ipvsctl.show.listing import (
    ListingOptions,
    render_listing,
    render_service_listing,
    render_timeouts,
)

INFO = KernelInfo(version=0x010201, conn_tab_size=4096)
HEADER = "IP Virtual Server version 1.2.1 (size=4096)\n"
PLAIN_TITLE = (
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
)
TCP, UDP, SCTP = Protocol.TCP, Protocol.UDP, Protocol.SCTP


def tcp(address: str, port: int, family: int = AF_INET, protocol: int = TCP) -> ServiceKey:
    return ServiceKey(family=family, protocol=protocol, address=address, port=port)


def service(
    key: ServiceKey,
    *real_servers: RealServerEntry,
    stats: Stats | None = None,
    **config: Any,
) -> VirtualServerEntry:
    return VirtualServerEntry(
        service=VirtualServer(key=key, **config),
        stats=stats or Stats(),
        real_servers=real_servers,
    )


def real(address: str, port: int, stats: Stats | None = None, **config: Any) -> RealServerEntry:
    counts = {
        k: config.pop(k)
        for k in ("active_conns", "inactive_conns", "persistent_conns")
        if k in config
    }
    return RealServerEntry(
        server=RealServer(address=address, port=port, **config),
        stats=stats or Stats(),
        **counts,
    )


RS_80 = "  -> 10.0.1.1:80".ljust(33)  # "  -> " and the %-28s address column


def listing(*services: VirtualServerEntry, **options: bool) -> str:
    return render_listing(KernelTable(INFO, services), ListingOptions(**options))


# ---- header, titles, plain lines ---------------------------------------------


def test_empty_table_prints_header_and_column_titles_only() -> None:
    assert listing() == HEADER + PLAIN_TITLE


def test_header_prints_version_and_connection_table_size() -> None:
    table = KernelTable(KernelInfo(version=0x010203, conn_tab_size=1048576), ())
    assert render_listing(table, ListingOptions()).splitlines()[0] == (
        "IP Virtual Server version 1.2.3 (size=1048576)"
    )


def test_plain_real_server_line_pads_every_column_including_the_last() -> None:
    text = listing(service(tcp("10.0.0.1", 80), real("10.0.1.1", 8080, forward=ForwardMethod.MASQ)))
    assert text == (
        HEADER + PLAIN_TITLE + "TCP  10.0.0.1:80 rr\n"
        "  -> 10.0.1.1:8080                Masq    1      0          0         \n"
    )


@pytest.mark.parametrize(
    ("forward", "name"),
    [
        (ForwardMethod.MASQ, "Masq   "),
        (ForwardMethod.LOCAL, "Local  "),
        (ForwardMethod.TUNNEL, "Tunnel "),
        (ForwardMethod.ROUTE, "Route  "),
        # fwd_name() has no case for bypass; glibc prints the NULL as "(null)"
        (ForwardMethod.BYPASS, "(null) "),
    ],
)
def test_forwarding_method_is_named_like_ipvsadm_fwd_name(
    forward: ForwardMethod, name: str
) -> None:
    text = listing(service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, forward=forward)))
    assert (
        text.splitlines()[4]
        == f"  -> 10.0.1.1:80                  {name} 1      0          0         "
    )


@pytest.mark.parametrize(
    ("weight", "column"), [(0, "0     "), (65535, "65535 "), (2**32 - 1, "-1    ")]
)
def test_weight_is_printed_as_a_signed_int_in_six_columns(weight: int, column: str) -> None:
    text = listing(service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, weight=weight)))
    assert (
        text.splitlines()[4]
        == f"  -> 10.0.1.1:80                  Masq    {column} 0          0         "
    )


def test_active_and_inactive_connections_fill_the_last_two_columns() -> None:
    entry = real("10.0.1.1", 80, active_conns=1234567890, inactive_conns=42)
    text = listing(service(tcp("10.0.0.1", 80), entry))
    assert (
        text.splitlines()[4]
        == "  -> 10.0.1.1:80                  Masq    1      1234567890 42        "
    )


def test_udp_and_sctp_services_are_named_by_protocol_padded_to_four() -> None:
    text = listing(
        service(tcp("10.0.0.1", 53, protocol=UDP)), service(tcp("10.0.0.1", 9, protocol=SCTP))
    )
    assert text.splitlines()[3:] == ["UDP  10.0.0.1:53 rr", "SCTP 10.0.0.1:9 rr"]


def test_ipv6_addresses_are_bracketed_for_services_and_real_servers() -> None:
    key = tcp("2001:db8::1", 443, family=AF_INET6)
    text = listing(service(key, real("2001:db8::a", 8443), scheduler="wlc"))
    assert text.splitlines()[3:] == [
        "TCP  [2001:db8::1]:443 wlc",
        "  -> [2001:db8::a]:8443           Masq    1      0          0         ",
    ]


def test_ipv6_addresses_are_spelled_as_glibc_inet_ntop_spells_them() -> None:
    key = tcp("::ffff:1.2.3.4", 80, family=AF_INET6)
    text = listing(service(key, real("2001:db8:0:0:1:0:0:1", 80)))
    assert text.splitlines()[3:] == [
        "TCP  [::ffff:1.2.3.4]:80 rr",
        "  -> [2001:db8::1:0:0:1]:80       Masq    1      0          0         ",
    ]


def test_ipv4_real_server_in_ipv6_service_is_printed_without_brackets() -> None:
    key = tcp("2001:db8::1", 80, family=AF_INET6)
    entry = real("10.0.1.1", 80, family=AF_INET, forward=ForwardMethod.TUNNEL)
    assert listing(service(key, entry)).splitlines()[4].startswith("  -> 10.0.1.1:80        ")


# ---- fwmark, persistence, flags ---------------------------------------------


def test_fwmark_services_print_mark_and_ipv6_suffix() -> None:
    text = listing(
        service(ServiceKey.for_fwmark(AF_INET, 5)),
        service(ServiceKey.for_fwmark(AF_INET6, 5), scheduler="sh"),
    )
    assert text.splitlines()[3:] == ["FWM  5 rr", "FWM  5 IPv6 sh"]


def test_fwmark_at_or_above_two_to_the_31_prints_negative_like_printf_d() -> None:
    text = listing(service(ServiceKey.for_fwmark(AF_INET, 0xFFFFFFFF)))
    assert text.splitlines()[3] == "FWM  -1 rr"


def test_persistent_service_prints_timeout_without_mask_when_mask_is_full() -> None:
    entry = service(tcp("10.0.0.1", 0), flags=ServiceFlag.PERSISTENT, timeout=300)
    assert listing(entry).splitlines()[3] == "TCP  10.0.0.1:0 rr persistent 300"


def test_persistent_ipv4_mask_is_printed_dotted_when_not_slash_32() -> None:
    entry = service(
        tcp("10.0.0.1", 80), flags=ServiceFlag.PERSISTENT, timeout=60, netmask=0xFFFFFF00
    )
    assert listing(entry).splitlines()[3] == "TCP  10.0.0.1:80 rr persistent 60 mask 255.255.255.0"


def test_persistent_ipv6_mask_is_printed_as_prefix_length_when_not_128() -> None:
    key = tcp("2001:db8::1", 80, family=AF_INET6)
    lines = listing(
        service(key, flags=ServiceFlag.PERSISTENT, timeout=60, netmask=64),
        service(ServiceKey.for_fwmark(AF_INET6, 3), flags=ServiceFlag.PERSISTENT, timeout=10),
    ).splitlines()
    assert lines[3:] == [
        "TCP  [2001:db8::1]:80 rr persistent 60 mask 64",
        "FWM  3 IPv6 rr persistent 10",
    ]


def test_mask_is_not_printed_for_a_service_that_is_not_persistent() -> None:
    assert (
        listing(service(tcp("10.0.0.1", 80), netmask=0xFFFF0000)).splitlines()[3]
        == "TCP  10.0.0.1:80 rr"
    )


def test_persistence_engine_is_printed_only_for_persistent_services() -> None:
    flags = ServiceFlag.PERSISTENT | ServiceFlag.ONEPACKET
    lines = listing(
        service(tcp("10.0.0.1", 5060, protocol=UDP), flags=flags, timeout=90, pe_name="sip"),
        service(tcp("10.0.0.2", 5060, protocol=UDP), pe_name="sip"),
    ).splitlines()
    assert lines[3:] == ["UDP  10.0.0.1:5060 rr persistent 90 pe sip ops", "UDP  10.0.0.2:5060 rr"]


def test_one_packet_scheduling_prints_ops_last() -> None:
    entry = service(tcp("10.0.0.1", 53, protocol=UDP), flags=ServiceFlag.ONEPACKET)
    assert listing(entry).splitlines()[3] == "UDP  10.0.0.1:53 rr ops"


@pytest.mark.parametrize(
    ("scheduler", "flags", "printed"),
    [
        ("sh", ServiceFlag.SCHED1 | ServiceFlag.SCHED2, "sh (sh-fallback,sh-port)"),
        ("sh", ServiceFlag.SCHED2, "sh (sh-port)"),
        ("mh", ServiceFlag.SCHED1 | ServiceFlag.SCHED2, "mh (mh-fallback,mh-port)"),
        ("rr", ServiceFlag.SCHED1 | ServiceFlag.SCHED3, "rr (flag-1,flag-3)"),
        ("wlc", ServiceFlag.SCHED2, "wlc (flag-2)"),
        # print_sched_flags names only sh's own two flags, so flag-3 leaves "()"
        ("sh", ServiceFlag.SCHED3, "sh ()"),
    ],
)
def test_scheduler_flags_are_named_per_scheduler(scheduler: str, flags: int, printed: str) -> None:
    entry = service(tcp("10.0.0.1", 80), scheduler=scheduler, flags=flags)
    assert listing(entry).splitlines()[3] == f"TCP  10.0.0.1:80 {printed}"


def test_flags_come_before_persistence_and_ops() -> None:
    flags = ServiceFlag.SCHED1 | ServiceFlag.PERSISTENT | ServiceFlag.ONEPACKET
    entry = service(tcp("10.0.0.1", 80, protocol=UDP), scheduler="mh", flags=flags, timeout=5)
    assert listing(entry).splitlines()[3] == "UDP  10.0.0.1:80 mh (mh-fallback) persistent 5 ops"


# ---- --thresholds, --persistent-conn, --tun-info ------------------------------------


def test_thresholds_lists_upper_and_lower_thresholds_and_keeps_the_plain_service_line() -> None:
    entry = real(
        "10.0.1.1", 80, upper_threshold=100, lower_threshold=50, active_conns=3, inactive_conns=4
    )
    text = listing(service(tcp("10.0.0.1", 80), entry, scheduler="wrr"), thresholds=True)
    assert text == (
        HEADER + "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n"
        "  -> RemoteAddress:Port\n"
        "TCP  10.0.0.1:80 wrr\n" + RS_80 + " 100        50         3          4         \n"
    )


def test_persistent_conn_lists_weight_unsigned_and_persistent_connections() -> None:
    entry = real("10.0.1.1", 80, weight=2**32 - 1, persistent_conns=9, active_conns=1)
    text = listing(service(tcp("10.0.0.1", 80), entry), persistent_conn=True)
    assert text == (
        HEADER + "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n"
        "  -> RemoteAddress:Port\n"
        "TCP  10.0.0.1:80 rr\n" + RS_80 + " 4294967295 9           1          0         \n"
    )


def test_thresholds_wins_over_persistent_conn() -> None:
    assert "Uthreshold" in listing(thresholds=True, persistent_conn=True)


@pytest.mark.parametrize(
    ("config", "info"),
    [
        ({"forward": ForwardMethod.MASQ}, "n/a          "),
        ({"forward": ForwardMethod.TUNNEL}, "ipip         "),
        (
            {
                "forward": ForwardMethod.TUNNEL,
                "tunnel_type": TunnelType.GUE,
                "tunnel_port": 6080,
                "tunnel_flags": TunnelFlag.NOCSUM,
            },
            "gue:6080:-c  ",
        ),
        (
            {
                "forward": ForwardMethod.TUNNEL,
                "tunnel_type": TunnelType.GUE,
                "tunnel_port": 6080,
                "tunnel_flags": TunnelFlag.REMCSUM,
            },
            "gue:6080:r+c ",
        ),
        (
            {
                "forward": ForwardMethod.TUNNEL,
                "tunnel_type": TunnelType.GRE,
                "tunnel_flags": TunnelFlag.CSUM,
            },
            "gre:+c       ",
        ),
    ],
)
def test_tun_info_adds_a_tunnel_column(config: dict[str, Any], info: str) -> None:
    text = listing(service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, **config)), tun_info=True)
    forward = "Masq   " if info.startswith("n/a") else "Tunnel "
    assert text.splitlines()[1:] == [
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn",
        "TCP  10.0.0.1:80 rr",
        f"  -> 10.0.1.1:80                  {forward} {info} 1      0          0         ",
    ]


# A newer kernel may report numbers this release has no name for; ipvsadm 1.31
# prints NULL for them (glibc: "(null)") or, for the tunnel column, "n/a".


def test_an_unknown_forwarding_method_is_printed_as_ipvsadm_prints_its_null() -> None:
    text = listing(service(tcp("10.0.0.1", 80), real("10.0.1.1", 80, forward=ForwardMethod(5))))
    assert text.splitlines()[4] == (
        "  -> 10.0.1.1:80                  (null)  1      0          0         "
    )


@pytest.mark.parametrize(
    ("config", "info"),
    [
        ({"tunnel_type": TunnelType(7)}, "n/a          "),
        ({"tunnel_type": TunnelType.GUE, "tunnel_port": 6080, "tunnel_flags": 9}, "gue:6080:?   "),
        ({"tunnel_type": TunnelType.GRE, "tunnel_flags": 4}, "gre:?        "),
    ],
)
def test_an_unknown_tunnel_type_or_checksum_mode_does_not_break_tun_info(
    config: dict[str, Any], info: str
) -> None:
    entry = real("10.0.1.1", 80, forward=ForwardMethod.TUNNEL, **config)
    text = listing(service(tcp("10.0.0.1", 80), entry), tun_info=True)
    assert text.splitlines()[4] == (
        f"  -> 10.0.1.1:80                  Tunnel  {info} 1      0          0         "
    )


# ---- order -------------------------------------------------------------------------


def test_services_are_sorted_with_ipvsadm_wrapping_compare_so_192_comes_before_10() -> None:
    text = listing(
        service(tcp("10.0.0.1", 80)), service(tcp("192.168.0.1", 80)), service(tcp("10.0.0.1", 22))
    )
    assert text.splitlines()[3:] == [
        "TCP  192.168.0.1:80 rr",
        "TCP  10.0.0.1:22 rr",
        "TCP  10.0.0.1:80 rr",
    ]


def test_services_sort_by_fwmark_then_family_then_protocol() -> None:
    text = listing(
        service(ServiceKey.for_fwmark(AF_INET6, 1)),
        service(ServiceKey.for_fwmark(AF_INET, 1)),
        service(tcp("10.0.0.1", 80, protocol=UDP)),
        service(tcp("2001:db8::1", 80, family=AF_INET6)),
        service(tcp("10.0.0.1", 80)),
    )
    assert text.splitlines()[3:] == [
        "TCP  10.0.0.1:80 rr",
        "UDP  10.0.0.1:80 rr",
        "TCP  [2001:db8::1]:80 rr",
        "FWM  1 rr",
        "FWM  1 IPv6 rr",
    ]


def test_a_fwmark_above_two_to_the_31_sorts_before_plain_services() -> None:
    text = listing(
        service(tcp("10.0.0.1", 80)), service(ServiceKey.for_fwmark(AF_INET, 0x80000001))
    )
    assert text.splitlines()[3:] == ["FWM  -2147483647 rr", "TCP  10.0.0.1:80 rr"]


def test_real_servers_are_sorted_by_address_then_port() -> None:
    entry = service(
        tcp("10.0.0.1", 80), real("10.0.1.2", 80), real("10.0.1.1", 81), real("10.0.1.1", 80)
    )
    assert [line.split()[1] for line in listing(entry).splitlines()[4:]] == [
        "10.0.1.1:80",
        "10.0.1.1:81",
        "10.0.1.2:80",
    ]


def test_nosort_keeps_kernel_order_for_services_and_real_servers() -> None:
    entry = service(tcp("10.0.0.2", 80), real("10.0.1.2", 80), real("10.0.1.1", 80))
    lines = listing(entry, service(tcp("10.0.0.1", 80)), sort=False).splitlines()
    assert [line.split()[1] for line in lines[3:]] == [
        "10.0.0.2:80",
        "10.0.1.2:80",
        "10.0.1.1:80",
        "10.0.0.1:80",
    ]


# ---- one service, timeouts, selection --------------------------------------------------


def test_service_listing_prints_titles_and_the_service_but_no_version_header() -> None:
    entry = service(tcp("10.0.0.1", 80), real("10.0.1.2", 80), real("10.0.1.1", 80))
    assert render_service_listing(entry, ListingOptions()) == (
        PLAIN_TITLE + "TCP  10.0.0.1:80 rr\n"
        "  -> 10.0.1.1:80                  Masq    1      0          0         \n"
        "  -> 10.0.1.2:80                  Masq    1      0          0         \n"
    )


def test_timeouts_line() -> None:
    assert (
        render_timeouts(Timeouts(tcp=900, tcp_fin=120, udp=300))
        == "Timeout (tcp tcpfin udp): 900 120 300\n"
    )
