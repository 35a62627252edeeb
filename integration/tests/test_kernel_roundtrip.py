"""Every attribute we write is what the kernel stores, read back by us and by ipvsadm."""

from __future__ import annotations

import errno
import subprocess

import pytest

from ipvsctl.kernel import IpvsKernel
from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    Protocol,
    RealServer,
    ServiceFlag,
    ServiceKey,
    Timeouts,
    TunnelFlag,
    TunnelType,
    VirtualServer,
)
from ipvsctl.model.changes import IpvsChange, Op

TCP, UDP, SCTP = int(Protocol.TCP), int(Protocol.UDP), int(Protocol.SCTP)


def ipvsadm(*args: str) -> str:
    return subprocess.run(["ipvsadm", *args], check=True, capture_output=True, text=True).stdout


def add(kernel: IpvsKernel, service: VirtualServer, *reals: RealServer) -> None:
    changes = [IpvsChange(Op.ADD_SERVICE, service)]
    changes += [IpvsChange(Op.ADD_REAL, service, real) for real in reals]
    assert kernel.apply(changes) == []


SERVICES = [
    VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.10", 80), scheduler="rr"),
    VirtualServer(ServiceKey(AF_INET, UDP, "10.96.0.10", 53), scheduler="lc"),
    VirtualServer(ServiceKey(AF_INET, SCTP, "10.96.0.11", 3868), scheduler="wlc"),
    VirtualServer(
        ServiceKey(AF_INET, TCP, "10.96.0.12", 443),
        scheduler="sh",
        flags=ServiceFlag.SCHED1 | ServiceFlag.SCHED2,
    ),
    VirtualServer(
        ServiceKey(AF_INET, TCP, "10.96.0.13", 443),
        scheduler="mh",
        flags=ServiceFlag.SCHED1 | ServiceFlag.SCHED2 | ServiceFlag.SCHED3,
    ),
    VirtualServer(
        ServiceKey(AF_INET, TCP, "10.96.0.14", 8080),
        scheduler="wrr",
        flags=ServiceFlag.PERSISTENT,
        timeout=10800,
        netmask=0xFFFFFF00,
    ),
    VirtualServer(
        ServiceKey(AF_INET, UDP, "10.96.0.15", 5060),
        scheduler="rr",
        flags=ServiceFlag.PERSISTENT | ServiceFlag.ONEPACKET,
        timeout=60,
        pe_name="sip",
    ),
    VirtualServer(ServiceKey.for_fwmark(AF_INET, 7), scheduler="dh"),
    VirtualServer(ServiceKey.for_fwmark(AF_INET6, 0xFFFFFFFF), scheduler="sed"),
    VirtualServer(ServiceKey(AF_INET6, TCP, "fd00::10", 80), scheduler="nq"),
    VirtualServer(
        ServiceKey(AF_INET6, TCP, "fd00::11", 80),
        scheduler="lblc",
        flags=ServiceFlag.PERSISTENT,
        timeout=300,
        netmask=64,
    ),
    VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.16", 1), scheduler="lblcr"),
    VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.17", 65535), scheduler="fo"),
    VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.18", 0), scheduler="ovf", flags=1, timeout=1),
]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: f"{s.scheduler}-{s.key.port}")
def test_service_attributes_round_trip(kernel: IpvsKernel, service: VirtualServer) -> None:
    add(kernel, service)
    entry = kernel.service(service.key)
    assert entry is not None
    assert entry.service == service
    assert [e.service for e in kernel.services()] == [service]


REALS_V4 = [
    RealServer("10.244.1.5", 8080, forward=ForwardMethod.MASQ, weight=1),
    RealServer("10.244.1.6", 8080, forward=ForwardMethod.ROUTE, weight=0),
    RealServer("10.244.1.7", 8080, forward=ForwardMethod.MASQ, weight=65535),
    RealServer(
        "10.244.1.8", 80, forward=ForwardMethod.MASQ, upper_threshold=100, lower_threshold=10
    ),
    RealServer("10.244.1.9", 80, forward=ForwardMethod.TUNNEL, tunnel_type=TunnelType.IPIP),
    RealServer(
        "10.244.1.10",
        80,
        forward=ForwardMethod.TUNNEL,
        tunnel_type=TunnelType.GUE,
        tunnel_port=6080,
        tunnel_flags=TunnelFlag.CSUM,
    ),
    RealServer(
        "10.244.1.11",
        80,
        forward=ForwardMethod.TUNNEL,
        tunnel_type=TunnelType.GRE,
        tunnel_flags=TunnelFlag.REMCSUM,
    ),
    RealServer(
        "10.244.1.12",
        80,
        forward=ForwardMethod.TUNNEL,
        tunnel_type=TunnelType.GUE,
        tunnel_port=5555,
        tunnel_flags=TunnelFlag.NOCSUM,
    ),
]


def test_real_server_attributes_round_trip(kernel: IpvsKernel) -> None:
    service = VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.10", 80), scheduler="wrr")
    add(kernel, service, *REALS_V4)
    entry = kernel.service(service.key)
    assert entry is not None
    assert sorted((e.server for e in entry.real_servers), key=lambda r: r.address) == sorted(
        REALS_V4, key=lambda r: r.address
    )


def test_local_forwarding_round_trips_and_ipvsadm_names_it(kernel: IpvsKernel) -> None:
    # Kernels since 4.x keep the method they are given, also for a local
    # address (older ones forced LOCALNODE there); ipvsadm has no option for it.
    service = VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.10", 80))
    add(kernel, service, RealServer("127.0.0.1", 80, forward=ForwardMethod.LOCAL))
    entry = kernel.service(service.key)
    assert entry is not None
    assert entry.real_servers[0].server.forward == ForwardMethod.LOCAL
    assert any(
        line.split()[1:3] == ["127.0.0.1:80", "Local"] for line in ipvsadm("-Ln").splitlines()
    )


def test_ipv6_real_servers_and_ipv4_in_ipv6_tunnel_round_trip(kernel: IpvsKernel) -> None:
    service = VirtualServer(ServiceKey(AF_INET6, TCP, "fd00::10", 80), scheduler="rr")
    reals = [
        RealServer("fd00:1::5", 8080, forward=ForwardMethod.MASQ, weight=3),
        RealServer("10.244.1.5", 8080, family=AF_INET, forward=ForwardMethod.TUNNEL),
    ]
    add(kernel, service, *reals)
    entry = kernel.service(service.key)
    assert entry is not None
    assert {e.server for e in entry.real_servers} == set(reals)


def test_edits_replace_every_attribute(kernel: IpvsKernel) -> None:
    before = VirtualServer(
        ServiceKey(AF_INET, TCP, "10.96.0.10", 80),
        scheduler="sh",
        flags=ServiceFlag.SCHED1 | ServiceFlag.PERSISTENT,
        timeout=100,
    )
    after = VirtualServer(before.key, scheduler="rr")
    real = RealServer("10.244.1.5", 80, weight=5, upper_threshold=9)
    edited = RealServer("10.244.1.5", 80, forward=ForwardMethod.ROUTE, weight=2)
    add(kernel, before, real)
    assert (
        kernel.apply([IpvsChange(Op.EDIT_SERVICE, after), IpvsChange(Op.EDIT_REAL, after, edited)])
        == []
    )
    entry = kernel.service(before.key)
    assert entry is not None
    assert entry.service == after
    assert [e.server for e in entry.real_servers] == [edited]


def test_deletes_remove_exactly_what_they_name(kernel: IpvsKernel) -> None:
    keep = VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.1", 80))
    gone = VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.2", 80))
    reals = [RealServer("10.244.1.5", 80), RealServer("10.244.1.6", 80)]
    add(kernel, keep, *reals)
    add(kernel, gone, *reals)
    assert (
        kernel.apply(
            [IpvsChange(Op.DELETE_REAL, keep, reals[0]), IpvsChange(Op.DELETE_SERVICE, gone)]
        )
        == []
    )
    assert [e.service.key for e in kernel.services()] == [keep.key]
    kept = kernel.service(keep.key)
    assert kept is not None
    assert [e.server for e in kept.real_servers] == [reals[1]]
    assert "10.96.0.2" not in ipvsadm("-Ln")


def test_ipvsadm_sees_what_we_wrote(kernel: IpvsKernel) -> None:
    service = VirtualServer(
        ServiceKey(AF_INET, UDP, "10.96.0.10", 53),
        scheduler="lc",
        flags=ServiceFlag.PERSISTENT,
        timeout=77,
    )
    add(kernel, service, RealServer("10.244.1.5", 5353, forward=ForwardMethod.ROUTE, weight=9))
    lines = ipvsadm("-Ln").splitlines()
    assert "UDP  10.96.0.10:53 lc persistent 77" in lines
    assert any(line.split()[:4] == ["->", "10.244.1.5:5353", "Route", "9"] for line in lines)


def test_timeouts_round_trip_and_zero_keeps_a_value(kernel: IpvsKernel) -> None:
    original = kernel.timeouts()
    try:
        kernel.set_timeouts(Timeouts(901, 121, 301))
        assert kernel.timeouts() == Timeouts(901, 121, 301)
        kernel.set_timeouts(Timeouts(0, 0, 299))
        assert kernel.timeouts() == Timeouts(901, 121, 299)
        assert "Timeout (tcp tcpfin udp): 901 121 299" in ipvsadm("-Ln", "--timeout")
    finally:
        kernel.set_timeouts(original)


def test_info_reports_version_and_table_size(kernel: IpvsKernel) -> None:
    info = kernel.info()
    header = ipvsadm("-Ln").splitlines()[0]
    assert header == f"IP Virtual Server version {info.version_text} (size={info.conn_tab_size})"


def test_missing_service_reads_as_none(kernel: IpvsKernel) -> None:
    assert kernel.service(ServiceKey(AF_INET, TCP, "10.1.2.3", 80)) is None


def test_unknown_scheduler_is_refused_with_enoent(kernel: IpvsKernel) -> None:
    # ip_vs_scheduler_get finds no "fastest" (nor a module ip_vs_fastest to load).
    service = VirtualServer(ServiceKey(AF_INET, TCP, "10.96.0.10", 80), scheduler="fastest")
    [failure] = kernel.apply([IpvsChange(Op.ADD_SERVICE, service)])
    assert failure.change.service == service
    assert failure.errno == errno.ENOENT
    assert kernel.services() == ()


def test_real_servers_of_a_missing_service_are_none(kernel: IpvsKernel) -> None:
    # The kernel answers a dest dump for an unknown service with an empty dump.
    assert kernel.real_servers(ServiceKey(AF_INET, TCP, "10.9.9.9", 9)) == ()


def test_deleting_a_missing_service_is_refused_with_esrch(kernel: IpvsKernel) -> None:
    missing = VirtualServer(ServiceKey(AF_INET, TCP, "10.9.9.9", 9))
    [failure] = kernel.apply([IpvsChange(Op.DELETE_SERVICE, missing)])
    assert failure.change.service == missing
    assert failure.errno == errno.ESRCH
