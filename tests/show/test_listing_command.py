"""`ipvsctl show` outcomes: stdout, stderr and exit status exactly as `ipvsadm -Ln` gives them."""

from __future__ import annotations

import json

import pytest

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    KernelInfo,
    KernelTable,
    Protocol,
    RealServer,
    RealServerEntry,
    ServiceKey,
    Timeouts,
    VirtualServer,
    VirtualServerEntry,
)
from ipvsctl.show.listing import ListingOptions
from ipvsctl.show.listing_command import (
    ShowOutcome,
    ShowRequest,
    check_show_request,
    run_show,
    select_service,
    usage_failure,
)
from ipvsctl.show.service_address import IpvsadmUsageError, parse_service_address

KEY = ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80)
TABLE = KernelTable(
    KernelInfo(0x010201, 4096),
    (
        VirtualServerEntry(
            VirtualServer(KEY), real_servers=(RealServerEntry(RealServer("10.0.1.1", 80)),)
        ),
    ),
)
TIMEOUTS = Timeouts(900, 120, 300)
TITLE = (
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
)


def test_full_listing_has_header_titles_and_services() -> None:
    outcome = run_show(ShowRequest(), TABLE)
    assert outcome.stdout.startswith("IP Virtual Server version 1.2.1 (size=4096)\n" + TITLE)
    assert (outcome.stderr, outcome.exit_status) == ("", 0)


def test_one_service_prints_titles_and_that_service_without_header() -> None:
    outcome = run_show(
        ShowRequest(service=parse_service_address("10.0.0.1:80", Protocol.TCP)), TABLE
    )
    assert outcome == ShowOutcome(
        stdout=TITLE
        + "TCP  10.0.0.1:80 rr\n"
        + "  -> 10.0.1.1:80                  Masq    1      0          0         \n"
    )


def test_missing_service_prints_nothing_on_stdout_and_no_such_service_exit_1() -> None:
    request = ShowRequest(service=ServiceKey(AF_INET, Protocol.UDP, "10.0.0.1", 80))
    assert run_show(request, TABLE) == ShowOutcome(
        stdout="", stderr="No such service\n", exit_status=1
    )


def test_missing_service_with_json_fails_the_same_way() -> None:
    request = ShowRequest(service=ServiceKey.for_fwmark(AF_INET, 9), json=True)
    assert run_show(request, TABLE) == ShowOutcome(stderr="No such service\n", exit_status=1)


def test_timeout_prints_only_the_timeouts_line() -> None:
    outcome = run_show(
        ShowRequest(timeout=True, options=ListingOptions(exact=True, tun_info=True)),
        timeouts=TIMEOUTS,
    )
    assert outcome == ShowOutcome(stdout="Timeout (tcp tcpfin udp): 900 120 300\n")


def test_timeout_with_a_service_is_refused_by_the_generic_option_check() -> None:
    request = ShowRequest(service=KEY, timeout=True, options=ListingOptions(stats=True))
    assert check_show_request(request) == ShowOutcome(
        stderr="The option 'timeout' conflicts with the 'service-address' option"
        " in the 'list' command\n",
        exit_status=2,
    )


@pytest.mark.parametrize("column", ["stats", "rate", "thresholds", "persistent_conn"])
def test_timeout_with_a_column_option_is_an_options_conflict(column: str) -> None:
    request = ShowRequest(timeout=True, options=ListingOptions(**{column: True}))
    assert run_show(request, TABLE, TIMEOUTS) == ShowOutcome(
        stderr="options conflicts in the list command\n", exit_status=2
    )


def test_json_for_one_service_lists_just_that_service() -> None:
    outcome = run_show(ShowRequest(service=KEY, json=True), TABLE)
    assert [s["port"] for s in json.loads(outcome.stdout)["services"]] == [80]


def test_json_timeouts() -> None:
    outcome = run_show(ShowRequest(timeout=True, json=True), timeouts=TIMEOUTS)
    assert json.loads(outcome.stdout) == {"tcp": 900, "tcp_fin": 120, "udp": 300}


def test_usage_failure_carries_ipvsadms_text_and_status() -> None:
    assert usage_failure(IpvsadmUsageError("-6 used before -f\n")) == ShowOutcome(
        stderr="-6 used before -f\n\n", exit_status=2
    )


def test_run_show_needs_the_data_it_renders() -> None:
    with pytest.raises(ValueError, match="timeouts"):
        run_show(ShowRequest(timeout=True), TABLE)
    with pytest.raises(ValueError, match="table"):
        run_show(ShowRequest(), timeouts=TIMEOUTS)


def entry(key: ServiceKey) -> VirtualServerEntry:
    return VirtualServerEntry(VirtualServer(key))


def test_select_service_matches_family_protocol_address_and_port() -> None:
    wanted = entry(ServiceKey(AF_INET6, Protocol.TCP, "2001:db8::1", 80))
    udp = entry(ServiceKey(AF_INET6, Protocol.UDP, "2001:db8::1", 80))
    table = KernelTable(TABLE.info, (udp, wanted))
    found = select_service(table, ServiceKey(AF_INET6, Protocol.TCP, "2001:db8:0:0::1", 80))
    assert found is wanted
    assert select_service(table, ServiceKey(AF_INET6, Protocol.TCP, "2001:db8::1", 81)) is None


def test_select_service_finds_fwmark_only_in_the_same_family() -> None:
    v6 = entry(ServiceKey.for_fwmark(AF_INET6, 7))
    table = KernelTable(TABLE.info, (v6,))
    assert select_service(table, ServiceKey.for_fwmark(AF_INET6, 7)) is v6
    assert select_service(table, ServiceKey.for_fwmark(AF_INET, 7)) is None
