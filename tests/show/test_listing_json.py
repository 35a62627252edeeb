"""`ipvsctl show --json`: a stable schema carrying the same data as the text listing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

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
from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.render.plan_json import change_document
from ipvsctl.show.listing import ListingOptions
from ipvsctl.show.listing_json import render_json, render_timeouts_json

INFO = KernelInfo(version=0x010201, conn_tab_size=4096)
STAT_NAMES = [
    "conns",
    "in_pkts",
    "out_pkts",
    "in_bytes",
    "out_bytes",
    "cps",
    "in_pps",
    "out_pps",
    "in_bps",
    "out_bps",
]


def document(*services: VirtualServerEntry, **options: bool) -> Any:
    return json.loads(render_json(KernelTable(INFO, services), ListingOptions(**options)))


def test_empty_table_carries_version_and_table_size() -> None:
    assert document() == {"version": "1.2.1", "conn_tab_size": 4096, "services": []}


def test_service_and_real_server_fields() -> None:
    real = RealServerEntry(
        server=RealServer(
            "10.0.1.1", 8080, forward=ForwardMethod.ROUTE, weight=3, upper_threshold=9
        ),
        active_conns=1,
        inactive_conns=2,
        persistent_conns=4,
    )
    service = VirtualServerEntry(
        service=VirtualServer(
            ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80),
            scheduler="sh",
            flags=ServiceFlag.PERSISTENT | ServiceFlag.SCHED1 | ServiceFlag.SCHED2,
            timeout=300,
            netmask=0xFFFFFF00,
        ),
        real_servers=(real,),
    )
    (svc,) = document(service)["services"]
    zero = dict.fromkeys(STAT_NAMES, 0)
    assert svc == {
        "family": "inet",
        "protocol": "tcp",
        "address": "10.0.0.1",
        "port": 80,
        "fwmark": None,
        "scheduler": "sh",
        "flags": ["sh-fallback", "sh-port"],
        "one_packet": False,
        "persistent": 300,
        "netmask": "255.255.255.0",
        "prefix_length": 24,
        "pe": None,
        "stats": zero,
        "real_servers": [
            {
                "family": "inet",
                "address": "10.0.1.1",
                "port": 8080,
                "forward": "route",
                "weight": 3,
                "upper_threshold": 9,
                "lower_threshold": 0,
                "active_conns": 1,
                "inactive_conns": 2,
                "persistent_conns": 4,
                "tunnel": None,
                "stats": zero,
            }
        ],
    }


def test_fwmark_service_has_no_protocol_address_or_port() -> None:
    service = VirtualServerEntry(
        service=VirtualServer(ServiceKey.for_fwmark(AF_INET6, 7), pe_name="sip")
    )
    (svc,) = document(service)["services"]
    assert (svc["family"], svc["protocol"], svc["address"], svc["port"], svc["fwmark"]) == (
        "inet6",
        None,
        None,
        None,
        7,
    )
    assert (svc["persistent"], svc["netmask"], svc["prefix_length"], svc["pe"]) == (
        None,
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        128,
        "sip",
    )


def test_ipv6_netmask_is_a_mask_and_a_prefix_length() -> None:
    key = ServiceKey(AF_INET6, Protocol.UDP, "2001:db8::1", 53)
    service = VirtualServerEntry(
        service=VirtualServer(key, flags=ServiceFlag.PERSISTENT, netmask=64)
    )
    (svc,) = document(service)["services"]
    assert (svc["netmask"], svc["prefix_length"]) == ("ffff:ffff:ffff:ffff::", 64)


def test_non_contiguous_ipv4_mask_has_no_prefix_length() -> None:
    key = ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80)
    service = VirtualServerEntry(service=VirtualServer(key, netmask=0xFF00FF00))
    (svc,) = document(service)["services"]
    assert (svc["netmask"], svc["prefix_length"]) == ("255.0.255.0", None)


def test_all_scheduler_flags_are_named_even_where_the_text_listing_drops_one() -> None:
    key = ServiceKey(AF_INET, Protocol.UDP, "10.0.0.1", 80)
    flags = ServiceFlag.SCHED1 | ServiceFlag.SCHED3 | ServiceFlag.ONEPACKET
    service = VirtualServerEntry(service=VirtualServer(key, scheduler="mh", flags=flags))
    (svc,) = document(service)["services"]
    assert (svc["flags"], svc["one_packet"]) == (["mh-fallback", "flag-3"], True)


def test_tunnel_details_appear_only_for_tunnelled_real_servers() -> None:
    gue = RealServer(
        "10.0.1.1",
        80,
        forward=ForwardMethod.TUNNEL,
        tunnel_type=TunnelType.GUE,
        tunnel_port=6080,
        tunnel_flags=TunnelFlag.CSUM,
    )
    gre = RealServer("10.0.1.2", 80, forward=ForwardMethod.TUNNEL, tunnel_type=TunnelType.GRE)
    ipip = RealServer("10.0.1.3", 80, forward=ForwardMethod.TUNNEL)
    key = ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80)
    service = VirtualServerEntry(
        service=VirtualServer(key),
        real_servers=tuple(RealServerEntry(server=s) for s in (gue, gre, ipip)),
    )
    (svc,) = document(service)["services"]
    assert [rs["tunnel"] for rs in svc["real_servers"]] == [
        {"type": "gue", "port": 6080, "checksum": "csum"},
        {"type": "gre", "port": None, "checksum": "none"},
        {"type": "ipip", "port": None, "checksum": None},
    ]


def test_services_and_real_servers_follow_the_text_listing_order() -> None:
    def svc(address: str) -> VirtualServerEntry:
        real = tuple(RealServerEntry(server=RealServer(a, 80)) for a in ("10.9.0.2", "10.9.0.1"))
        return VirtualServerEntry(
            service=VirtualServer(ServiceKey(AF_INET, 6, address, 80)), real_servers=real
        )

    sorted_doc = document(svc("10.0.0.1"), svc("192.168.0.1"))["services"]
    assert [s["address"] for s in sorted_doc] == ["192.168.0.1", "10.0.0.1"]
    assert [r["address"] for r in sorted_doc[0]["real_servers"]] == ["10.9.0.1", "10.9.0.2"]
    unsorted_doc = document(svc("10.0.0.1"), svc("192.168.0.1"), sort=False)["services"]
    assert [s["address"] for s in unsorted_doc] == ["10.0.0.1", "192.168.0.1"]


@given(st.lists(st.integers(0, 2**64 - 1), min_size=20, max_size=20))
def test_counters_round_trip_as_full_64_bit_numbers(numbers: list[int]) -> None:
    service_stats, real_stats = Stats(*numbers[:10]), Stats(*numbers[10:])
    key = ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80)
    service = VirtualServerEntry(
        service=VirtualServer(key),
        stats=service_stats,
        real_servers=(RealServerEntry(server=RealServer("10.0.1.1", 80), stats=real_stats),),
    )
    (svc,) = document(service)["services"]
    assert list(svc["stats"].values()) == numbers[:10]
    assert list(svc["real_servers"][0]["stats"].values()) == numbers[10:]


def test_listing_options_do_not_change_the_json_fields() -> None:
    key = ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80)
    service = VirtualServerEntry(service=VirtualServer(key))
    assert document(service) == document(service, stats=True, exact=True, thresholds=True)


def test_timeouts_json() -> None:
    assert json.loads(render_timeouts_json(Timeouts(900, 120, 300))) == {
        "tcp": 900,
        "tcp_fin": 120,
        "udp": 300,
    }


def test_json_output_ends_with_a_newline() -> None:
    assert render_json(KernelTable(INFO, ()), ListingOptions()).endswith("}\n")


def _only_real_server(**config: Any) -> Any:
    entry = RealServerEntry(server=RealServer("10.0.1.1", 80, **config))
    key = ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80)
    (service,) = document(VirtualServerEntry(VirtualServer(key), real_servers=(entry,)))["services"]
    return service["real_servers"][0]


def test_an_unknown_forwarding_method_is_carried_as_its_number() -> None:
    assert _only_real_server(forward=ForwardMethod(5))["forward"] == 5


def test_an_unknown_tunnel_type_is_carried_as_its_number() -> None:
    tunnel = _only_real_server(forward=ForwardMethod.TUNNEL, tunnel_type=TunnelType(7))["tunnel"]
    assert tunnel["type"] == 7


def test_an_unknown_checksum_mode_is_carried_as_its_number() -> None:
    server = _only_real_server(
        forward=ForwardMethod.TUNNEL, tunnel_type=TunnelType.GUE, tunnel_port=6080, tunnel_flags=9
    )
    assert server["tunnel"] == {"type": "gue", "port": 6080, "checksum": 9}


SCHEDULERS = st.sampled_from(["rr", "wrr", "sh", "mh", "lc"])


@st.composite
def _services(draw: st.DrawFn) -> VirtualServer:
    family = draw(st.sampled_from([AF_INET, AF_INET6]))
    address = "10.0.0.1" if family == AF_INET else "2001:db8::1"
    if draw(st.booleans()):
        key = ServiceKey.for_fwmark(family, draw(st.integers(1, 2**32 - 1)))
    else:
        protocol = draw(st.sampled_from(list(Protocol)))
        key = ServiceKey(family, protocol, address, draw(st.integers(0, 65535)))
    netmask_range = (0, 2**32 - 1) if family == AF_INET else (0, 128)
    return VirtualServer(
        key,
        scheduler=draw(SCHEDULERS),
        flags=draw(st.integers(0, 63)),
        timeout=draw(st.integers(0, 3600)),
        netmask=draw(st.integers(*netmask_range)),
        pe_name=draw(st.sampled_from(["", "sip"])),
    )


@given(_services(), st.sampled_from(list(ForwardMethod)), st.integers(0, 100))
def test_show_and_the_plan_print_a_service_and_real_server_alike(
    service: VirtualServer, forward: ForwardMethod, weight: int
) -> None:
    address = "10.0.1.1" if service.key.family == AF_INET else "fd00::2"
    server = RealServer(address, 8080, forward=forward, weight=weight)
    entry = VirtualServerEntry(service, real_servers=(RealServerEntry(server),))
    (shown,) = document(entry)["services"]
    planned_service = change_document(IpvsChange(Op.ADD_SERVICE, service))["service"]
    planned_server = change_document(IpvsChange(Op.ADD_REAL, service, server))["real_server"]
    assert {k: v for k, v in shown.items() if k in planned_service} == planned_service
    (shown_server,) = shown["real_servers"]
    shared = {k: v for k, v in shown_server.items() if k in planned_server and k != "tunnel"}
    assert shared == {k: v for k, v in planned_server.items() if k != "tunnel"}
