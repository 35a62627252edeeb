"""Addresses in the model are canonical: however written, one address is one string."""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model import AF_INET, AF_INET6, RealServer, ServiceKey, canonical_address


@given(st.integers(0, 2**128 - 1))
def test_ipv6_is_spelled_as_glibc_inet_ntop_spells_it(number: int) -> None:
    packed = IPv6Address(number).packed
    assert canonical_address(str(IPv6Address(number))) == socket.inet_ntop(AF_INET6, packed)


@given(st.integers(0, 2**32 - 1))
def test_ipv4_in_dotted_quads_is_already_canonical(number: int) -> None:
    text = str(IPv4Address(number))
    assert canonical_address(text) == socket.inet_ntop(AF_INET, socket.inet_pton(AF_INET, text))
    assert canonical_address(text) == text


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("::ffff:102:304", "::ffff:1.2.3.4"),
        ("::FFFF:1.2.3.4", "::ffff:1.2.3.4"),
        ("::102:304", "::1.2.3.4"),
        ("FD00:0:0::0001", "fd00::1"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("::ffff:0:0", "::ffff:0.0.0.0"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_an_address_comes_out_in_inet_ntop_spelling(written: str, canonical: str) -> None:
    assert canonical_address(written) == canonical


@pytest.mark.parametrize(
    "text", ["10.0.0.01", "10.1", "1.2.3.4 ", "256.0.0.1", "fd00::1::2", "fd00::1%eth0", "web", ""]
)
def test_text_that_is_not_an_ip_address_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address") as refused:
        canonical_address(text)
    assert repr(text) in str(refused.value)


def test_an_embedded_nul_is_refused_like_any_other_bad_text() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        canonical_address("10.0.0.1\0")


def test_real_servers_written_differently_are_equal_and_share_a_key() -> None:
    upper, lower = RealServer("FD00::0A", 80), RealServer("fd00::a", 80)
    assert upper == lower
    assert upper.key == ("fd00::a", 80)
    assert hash(upper) == hash(lower)


def test_service_keys_written_differently_are_equal() -> None:
    mapped = ServiceKey(AF_INET6, 6, "::FFFF:102:304", 80)
    assert mapped == ServiceKey(AF_INET6, 6, "::ffff:1.2.3.4", 80)
    assert mapped.address == "::ffff:1.2.3.4"


def test_a_fwmark_key_keeps_its_empty_address() -> None:
    assert ServiceKey.for_fwmark(AF_INET, 7).address == ""


def test_a_real_server_with_a_bad_address_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.01'")):
        RealServer("10.0.0.01", 80)
    with pytest.raises(ValueError, match=re.escape("'svc.local'")):
        ServiceKey(AF_INET, 6, "svc.local", 80)


def test_a_real_servers_family_is_its_own_or_else_the_services() -> None:
    assert RealServer("10.0.0.1", 80).family_in(AF_INET6) == AF_INET6
    assert RealServer("10.0.0.1", 80, family=AF_INET).family_in(AF_INET6) == AF_INET


def test_a_hundred_thousand_real_servers_keep_their_addresses() -> None:
    # Speed is measured by integration/benchmarks/bench_plan.py, not asserted here.
    addresses = [str(IPv4Address(0x0A000000 + i)) for i in range(100_000)]
    servers = [RealServer(address, 8080) for address in addresses]
    assert [server.address for server in servers] == addresses


@pytest.mark.parametrize("address", ["10.244.1.5", "fd00:10:244::5", "::ffff:1.2.3.4"])
def test_a_real_server_from_a_canonical_address_equals_the_checked_one(address: str) -> None:
    from ipvsctl.model import ForwardMethod, RealServer

    (fast,) = RealServer.endpoints([address], 8080, ForwardMethod.ROUTE)
    (keyed,) = RealServer.from_keys([(address, 8080)], ForwardMethod.ROUTE)
    assert fast == keyed == RealServer(address, 8080, 0, ForwardMethod.ROUTE)
    assert type(fast) is type(keyed) is RealServer
    assert fast.key == (address, 8080) and fast.weight == 1
