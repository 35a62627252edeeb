"""ipvsadm's -t/-u/--sctp-service and -f arguments, as ipvsadm 1.31's parse_service reads them."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model import AF_INET, AF_INET6, Protocol, ServiceKey
from ipvsctl.show.service_address import (
    ILLEGAL_SERVICE,
    IPV6_BEFORE_FWMARK,
    IpvsadmUsageError,
    conflict_message,
    fwmark_service_key,
    inet_aton,
    multiple_options_message,
    parse_fwmark,
    parse_service_address,
)

TCP = Protocol.TCP


@pytest.mark.parametrize(
    ("text", "family", "address", "port"),
    [
        ("10.0.0.1:80", AF_INET, "10.0.0.1", 80),
        ("10.0.0.1", AF_INET, "10.0.0.1", 0),
        ("[2001:db8::1]:443", AF_INET6, "2001:db8::1", 443),
        ("[::ffff:1.2.3.4]:1", AF_INET6, "::ffff:1.2.3.4", 1),
        # an unbracketed IPv6 address never carries a port: this is the address ::1:80
        ("::1:80", AF_INET6, "::0.1.0.128", 0),
        # inside brackets only IPv6 keeps its port; ipvsadm drops it for IPv4
        ("[1.2.3.4]:80", AF_INET, "1.2.3.4", 0),
        # inet_aton shorthand: a, a.b, a.b.c, octal and hex parts
        ("10:80", AF_INET, "0.0.0.10", 80),
        ("10.1:80", AF_INET, "10.0.0.1", 80),
        ("10.1.2:80", AF_INET, "10.1.0.2", 80),
        ("0x0a.010.0.1:80", AF_INET, "10.8.0.1", 80),
        # inet_aton ignores anything after whitespace
        ("1.2.3.4 junk:80", AF_INET, "1.2.3.4", 80),
        # the port is strtol'ed: leading blanks and a sign are fine
        ("1.2.3.4: 80", AF_INET, "1.2.3.4", 80),
        ("1.2.3.4:+80", AF_INET, "1.2.3.4", 80),
        ("1.2.3.4:-0", AF_INET, "1.2.3.4", 0),
        ("1.2.3.4:65535", AF_INET, "1.2.3.4", 65535),
    ],
)
def test_accepted_service_addresses(text: str, family: int, address: str, port: int) -> None:
    assert parse_service_address(text, TCP) == ServiceKey(family, TCP, address, port)


@pytest.mark.parametrize(
    "text",
    [
        "",  # str_is_digit("") is true
        "80",  # all digits: refused before any address parsing
        "[::1]",  # brackets demand ":PORT"
        "[::1]x",
        "[::1",
        "[::1]:",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:-1",
        "1.2.3.4:80 ",
        "1.2.3.256:80",
        "09.0.0.1:80",  # 09 is not octal
        " 1.2.3.4:80",  # inet_aton wants a digit first
        "[fe80::1%eth0]:80",  # no zone ids in inet_pton
        "1.2.3.4:http",  # names need a resolver
        "example.org:80",
    ],
)
def test_rejected_service_addresses_fail_like_ipvsadm(text: str) -> None:
    with pytest.raises(IpvsadmUsageError) as failure:
        parse_service_address(text, TCP)
    assert failure.value.stderr == ILLEGAL_SERVICE + "\n"
    assert failure.value.exit_status == 2


def test_error_text_is_ipvsadms() -> None:
    assert ILLEGAL_SERVICE == "illegal virtual server address[:port] specified"


def test_names_are_looked_up_only_through_the_given_resolvers() -> None:
    key = parse_service_address(
        "web:http",
        Protocol.UDP,
        resolve_host=lambda name: "192.0.2.7" if name == "web" else None,
        resolve_port=lambda name, proto: 80 if (name, proto) == ("http", "udp") else None,
    )
    assert key == ServiceKey(AF_INET, Protocol.UDP, "192.0.2.7", 80)


def test_numeric_port_does_not_consult_the_port_resolver() -> None:
    def refuse(name: str, proto: str) -> int | None:
        raise AssertionError("resolver called")

    assert parse_service_address("1.2.3.4:80", TCP, resolve_port=refuse).port == 80


@given(
    st.lists(
        st.sampled_from(
            ["0", "1", "7", "8", "9", "255", "256", "0x", "0xff", "00", ".", " ", "x", "4294967295"]
        ),
        max_size=8,
    ).map("".join)
)
def test_inet_aton_agrees_with_the_c_library(text: str) -> None:
    try:
        expected: str | None = socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        expected = None
    assert inet_aton(text) == expected


@pytest.mark.parametrize(("text", "mark"), [("1", 1), ("4294967295", 4294967295), (" +7", 7)])
def test_accepted_fwmarks(text: str, mark: int) -> None:
    assert parse_fwmark(text) == mark


@pytest.mark.parametrize("text", ["0", "-1", "4294967296", "", "1x", "0x10", "-0"])
def test_rejected_fwmarks_name_the_value(text: str) -> None:
    with pytest.raises(IpvsadmUsageError) as failure:
        parse_fwmark(text)
    assert failure.value.stderr == f"invalid fwmark value `{text}' specified\n"
    assert failure.value.exit_status == 2


def test_fwmark_is_ipv4_unless_ipv6_is_asked_for() -> None:
    assert fwmark_service_key(5) == ServiceKey.for_fwmark(AF_INET, 5)
    assert fwmark_service_key(5, ipv6=True) == ServiceKey.for_fwmark(AF_INET6, 5)


def test_ipv6_before_fwmark_message_ends_in_a_blank_line_like_ipvsadm() -> None:
    assert IpvsadmUsageError(IPV6_BEFORE_FWMARK).stderr == "-6 used before -f\n\n"


def test_usage_messages_for_repeated_and_conflicting_options() -> None:
    assert multiple_options_message("service-address") == (
        "multiple 'service-address' options specified"
    )
    assert conflict_message("timeout", "service-address") == (
        "The option 'timeout' conflicts with the 'service-address' option in the 'list' command"
    )
