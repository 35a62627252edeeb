"""show's argv is read in order, as ipvsadm's popt reads it."""

from __future__ import annotations

import pytest

from ipvsctl.model import AF_INET, AF_INET6, Protocol, ServiceKey
from ipvsctl.show.arguments import parse_show_arguments
from ipvsctl.show.service_address import IpvsadmUsageError

TCP_80 = ServiceKey(AF_INET, int(Protocol.TCP), "10.0.0.1", 80)


@pytest.mark.parametrize(
    "argv",
    [
        ["-t", "10.0.0.1:80"],
        ["-t10.0.0.1:80"],
        ["--tcp-service=10.0.0.1:80"],
        ["--tcp-service", "10.0.0.1:80"],
    ],
)
def test_service_option_accepts_every_popt_spelling(argv: list[str]) -> None:
    assert parse_show_arguments(argv).service == TCP_80


def test_no_arguments_list_everything_sorted() -> None:
    request = parse_show_arguments([])
    assert request.service is None
    assert request.options.sort and not request.options.stats
    assert not request.timeout and not request.json


def test_flags_set_their_options() -> None:
    request = parse_show_arguments(["--stats", "-X", "--nosort", "--json", "-n"])
    assert request.options.stats and request.options.exact
    assert not request.options.sort
    assert request.json


def test_ipv6_after_fwmark_makes_an_ipv6_fwmark_service() -> None:
    assert parse_show_arguments(["-f", "7", "-6"]).service == ServiceKey.for_fwmark(AF_INET6, 7)
    assert parse_show_arguments(["-f", "7"]).service == ServiceKey.for_fwmark(AF_INET, 7)


@pytest.mark.parametrize(
    ("argv", "stderr"),
    [
        (["-6", "-f", "7"], "-6 used before -f\n\n"),
        (
            ["-t", "10.0.0.1:80", "-u", "10.0.0.1:53"],
            "multiple 'service-address' options specified\n",
        ),
        (["--stats", "--stats"], "multiple 'stats' options specified\n"),
        (["-X", "--exact"], "multiple 'exact' options specified\n"),
        (["--bogus"], "--bogus: unknown option\n"),
        (["-t"], "-t: missing argument\n"),
    ],
)
def test_refusals_use_ipvsadm_words_and_exit_2(argv: list[str], stderr: str) -> None:
    with pytest.raises(IpvsadmUsageError) as refused:
        parse_show_arguments(argv)
    assert refused.value.stderr == stderr
    assert refused.value.exit_status == 2


def test_host_and_port_names_go_through_the_resolvers() -> None:
    request = parse_show_arguments(
        ["-u", "dns-server:domain"],
        resolve_host=lambda name: "10.0.0.53" if name == "dns-server" else None,
        resolve_port=lambda name, proto: 53 if (name, proto) == ("domain", "udp") else None,
    )
    assert request.service == ServiceKey(AF_INET, int(Protocol.UDP), "10.0.0.53", 53)
