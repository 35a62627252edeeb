"""The service and real server fields both JSON schemas (show, plan) are built from."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    Protocol,
    RealServer,
    ServiceFlag,
    ServiceKey,
    TunnelFlag,
    TunnelType,
    VirtualServer,
)
from ipvsctl.model.documents import (
    name_or_unnamed,
    persistence_mask,
    real_server_fields,
    real_server_key_fields,
    scheduler_flag_names,
    service_fields,
    service_key_fields,
    tunnel_fields,
    unnamed_as_number,
    unnamed_as_text,
)
from ipvsctl.model.names import FORWARD_NAMES


@pytest.mark.parametrize(
    ("netmask", "expected"),
    [
        (0xFFFFFFFF, ("255.255.255.255", 32)),
        (0xFFFFFF00, ("255.255.255.0", 24)),
        (0, ("0.0.0.0", 0)),
        (0xFF00FF00, ("255.0.255.0", None)),
        (0x1_FFFFFF00, ("255.255.255.0", 24)),  # only the low 32 bits are the mask
    ],
)
def test_ipv4_mask_is_address_text_and_prefix_length_when_contiguous(
    netmask: int, expected: tuple[str, int | None]
) -> None:
    assert persistence_mask(AF_INET, netmask) == expected


@pytest.mark.parametrize(
    ("netmask", "expected"),
    [
        (128, ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128)),
        (64, ("ffff:ffff:ffff:ffff::", 64)),
        (0, ("::", 0)),
        (200, ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128)),
        (-5, ("::", 0)),
    ],
)
def test_ipv6_mask_is_a_prefix_length_clamped_to_0_to_128(
    netmask: int, expected: tuple[str, int | None]
) -> None:
    assert persistence_mask(AF_INET6, netmask) == expected


@given(st.integers(min_value=0, max_value=32))
def test_every_ipv4_prefix_round_trips_through_the_mask(prefix: int) -> None:
    network = ipaddress.IPv4Network(f"0.0.0.0/{prefix}")
    assert persistence_mask(AF_INET, int(network.netmask)) == (str(network.netmask), prefix)


@pytest.mark.parametrize(
    ("scheduler", "flags", "names"),
    [
        (
            "sh",
            ServiceFlag.SCHED1 | ServiceFlag.SCHED2 | ServiceFlag.SCHED3,
            ["sh-fallback", "sh-port", "flag-3"],
        ),
        ("mh", ServiceFlag.SCHED2, ["mh-port"]),
        ("rr", ServiceFlag.SCHED1 | ServiceFlag.SCHED3, ["flag-1", "flag-3"]),
        ("sh", ServiceFlag.PERSISTENT | ServiceFlag.ONEPACKET, []),
    ],
)
def test_scheduler_flags_are_named_as_ipvsadm_names_them_under_the_scheduler(
    scheduler: str, flags: int, names: list[str]
) -> None:
    assert scheduler_flag_names(scheduler, flags) == names


def test_a_port_key_has_no_fwmark_and_an_unknown_protocol_is_its_number() -> None:
    assert service_key_fields(ServiceKey(AF_INET6, Protocol.SCTP, "2001:db8::1", 9)) == {
        "family": "inet6",
        "protocol": "sctp",
        "address": "2001:db8::1",
        "port": 9,
        "fwmark": None,
    }
    assert service_key_fields(ServiceKey(AF_INET, 99, "10.0.0.1", 9))["protocol"] == "99"


def test_a_fwmark_key_has_no_protocol_address_or_port() -> None:
    assert service_key_fields(ServiceKey.for_fwmark(AF_INET, 7)) == {
        "family": "inet",
        "protocol": None,
        "address": None,
        "port": None,
        "fwmark": 7,
    }


def test_service_fields_follow_the_key_in_schema_order() -> None:
    service = VirtualServer(
        ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80),
        scheduler="sh",
        flags=ServiceFlag.PERSISTENT | ServiceFlag.ONEPACKET | ServiceFlag.SCHED1,
        timeout=300,
        netmask=0xFFFFFF00,
        pe_name="sip",
    )
    fields = service_fields(service)
    assert list(fields.items()) == [
        ("family", "inet"),
        ("protocol", "tcp"),
        ("address", "10.0.0.1"),
        ("port", 80),
        ("fwmark", None),
        ("scheduler", "sh"),
        ("flags", ["sh-fallback"]),
        ("one_packet", True),
        ("persistent", 300),
        ("netmask", "255.255.255.0"),
        ("prefix_length", 24),
        ("pe", "sip"),
    ]


def test_a_service_without_persistence_or_pe_has_nulls() -> None:
    fields = service_fields(VirtualServer(ServiceKey(AF_INET, Protocol.UDP, "10.0.0.1", 53)))
    assert (fields["persistent"], fields["pe"], fields["one_packet"]) == (None, None, False)


def test_real_server_family_is_the_one_the_caller_gives() -> None:
    server = RealServer("10.0.1.1", 8080)
    assert real_server_key_fields(server, AF_INET6) == {
        "family": "inet6",
        "address": "10.0.1.1",
        "port": 8080,
    }
    assert real_server_key_fields(server, 77)["family"] == "77"


def test_real_server_fields_follow_the_key_in_schema_order() -> None:
    server = RealServer(
        "fd00::2", 80, forward=ForwardMethod.ROUTE, weight=5, upper_threshold=9, lower_threshold=3
    )
    assert list(real_server_fields(server, AF_INET6, unnamed_as_number).items()) == [
        ("family", "inet6"),
        ("address", "fd00::2"),
        ("port", 80),
        ("forward", "route"),
        ("weight", 5),
        ("upper_threshold", 9),
        ("lower_threshold", 3),
    ]


def test_an_unnamed_number_is_spelt_as_each_schema_asks() -> None:
    newer = ForwardMethod(6)
    assert name_or_unnamed(FORWARD_NAMES, newer, unnamed_as_number) == 6
    assert name_or_unnamed(FORWARD_NAMES, newer, unnamed_as_text) == "6"
    assert name_or_unnamed(FORWARD_NAMES, ForwardMethod.MASQ, unnamed_as_text) == "masq"
    server = RealServer("10.0.1.1", 80, forward=newer)
    assert real_server_fields(server, AF_INET, unnamed_as_number)["forward"] == 6
    assert real_server_fields(server, AF_INET, unnamed_as_text)["forward"] == "6"


def test_tunnel_fields_carry_every_setting_as_set() -> None:
    gue = RealServer(
        "10.0.1.1",
        80,
        forward=ForwardMethod.TUNNEL,
        tunnel_type=TunnelType.GUE,
        tunnel_port=6080,
        tunnel_flags=TunnelFlag.REMCSUM,
    )
    assert tunnel_fields(gue, unnamed_as_number) == {
        "type": "gue",
        "port": 6080,
        "checksum": "remcsum",
    }
    newer = RealServer("10.0.1.1", 80, tunnel_type=TunnelType(9), tunnel_flags=3)
    assert tunnel_fields(newer, unnamed_as_number) == {"type": 9, "port": 0, "checksum": 3}
    assert tunnel_fields(newer, unnamed_as_text) == {"type": "9", "port": 0, "checksum": "3"}
