"""Plan lines read as the ipvsadm, ip and sysctl commands that carry them out."""

from __future__ import annotations

import pytest

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import ForwardMethod, ServiceFlag, TunnelFlag, TunnelType
from ipvsctl.plan import Plan
from ipvsctl.render.plan_lines import address_line, change_line, plan_lines, plan_text
from tests.plan.builders import fwmark, rs, sctp, tcp, udp

PERSISTENT = ServiceFlag.PERSISTENT


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (IpvsChange(Op.ADD_SERVICE, tcp("10.96.0.10", 80)), "-A -t 10.96.0.10:80 -s rr"),
        (IpvsChange(Op.ADD_SERVICE, udp("10.96.0.10", 53)), "-A -u 10.96.0.10:53 -s rr"),
        (
            IpvsChange(Op.ADD_SERVICE, sctp("10.96.0.10", 9)),
            "-A --sctp-service 10.96.0.10:9 -s rr",
        ),
        (IpvsChange(Op.ADD_SERVICE, tcp("fd00::1", 80)), "-A -t [fd00::1]:80 -s rr"),
        (IpvsChange(Op.ADD_SERVICE, fwmark(7)), "-A -f 7 -s rr"),
        (IpvsChange(Op.ADD_SERVICE, fwmark(7, ipv6=True)), "-A -f 7 -6 -s rr"),
        (
            IpvsChange(Op.ADD_SERVICE, tcp("10.96.0.10", 80, flags=PERSISTENT, timeout=10800)),
            "-A -t 10.96.0.10:80 -s rr -p 10800",
        ),
        (
            IpvsChange(
                Op.ADD_SERVICE,
                tcp("10.96.0.10", 80, flags=PERSISTENT, timeout=60, netmask=0xFFFF0000),
            ),
            "-A -t 10.96.0.10:80 -s rr -p 60 -M 255.255.0.0",
        ),
        (
            IpvsChange(
                Op.ADD_SERVICE, tcp("fd00::1", 80, flags=PERSISTENT, timeout=60, netmask=64)
            ),
            "-A -t [fd00::1]:80 -s rr -p 60 -M 64",
        ),
        (
            IpvsChange(
                Op.ADD_SERVICE,
                tcp("10.96.0.10", 80, flags=PERSISTENT, timeout=60, pe_name="sip"),
            ),
            "-A -t 10.96.0.10:80 -s rr -p 60 --pe sip",
        ),
        (
            IpvsChange(
                Op.ADD_SERVICE,
                tcp(
                    "10.96.0.10", 80, scheduler="sh", flags=ServiceFlag.SCHED1 | ServiceFlag.SCHED2
                ),
            ),
            "-A -t 10.96.0.10:80 -s sh -b sh-fallback,sh-port",
        ),
        (
            IpvsChange(
                Op.ADD_SERVICE, tcp("10.96.0.10", 80, scheduler="mh", flags=ServiceFlag.SCHED2)
            ),
            "-A -t 10.96.0.10:80 -s mh -b mh-port",
        ),
        (
            IpvsChange(
                Op.ADD_SERVICE,
                tcp(
                    "10.96.0.10", 80, scheduler="wrr", flags=ServiceFlag.SCHED1 | ServiceFlag.SCHED3
                ),
            ),
            "-A -t 10.96.0.10:80 -s wrr -b flag-1,flag-3",
        ),
        (
            IpvsChange(Op.ADD_SERVICE, udp("10.96.0.10", 53, flags=ServiceFlag.ONEPACKET)),
            "-A -u 10.96.0.10:53 -s rr -o",
        ),
        (
            IpvsChange(Op.EDIT_SERVICE, tcp("10.96.0.10", 80, scheduler="wlc")),
            "-E -t 10.96.0.10:80 -s wlc",
        ),
        (IpvsChange(Op.DELETE_SERVICE, tcp("10.96.0.10", 80)), "-D -t 10.96.0.10:80"),
        (IpvsChange(Op.DELETE_SERVICE, udp("fd00::1", 53)), "-D -u [fd00::1]:53"),
        (IpvsChange(Op.DELETE_SERVICE, fwmark(7, ipv6=True)), "-D -f 7 -6"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_service_change_reads_as_ipvsadm(change: IpvsChange, line: str) -> None:
    assert change_line(change) == line


SVC = tcp("10.96.0.10", 80)


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5")),
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",
        ),
        (
            IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5", forward=ForwardMethod.ROUTE)),
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -g -w 1",
        ),
        (
            IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5", forward=ForwardMethod.LOCAL)),
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -g -w 1",
        ),
        (
            IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5", forward=ForwardMethod.TUNNEL)),
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -i -w 1",
        ),
        (
            IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5", forward=ForwardMethod.BYPASS)),
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -w 1",
        ),
        (
            IpvsChange(
                Op.ADD_REAL,
                SVC,
                rs("10.244.1.5", weight=3, upper_threshold=100, lower_threshold=10),
            ),
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 3 -x 100 -y 10",
        ),
        (
            IpvsChange(
                Op.ADD_REAL,
                SVC,
                rs(
                    "10.244.1.5",
                    forward=ForwardMethod.TUNNEL,
                    tunnel_type=TunnelType.GRE,
                    tunnel_flags=TunnelFlag.REMCSUM,
                ),
            ),
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -i -w 1 --tun-type gre --tun-remcsum",
        ),
        (
            IpvsChange(Op.ADD_REAL, tcp("fd00::1", 80), rs("fd00:244::5", 8080)),
            "-a -t [fd00::1]:80 -r [fd00:244::5]:8080 -m -w 1",
        ),
        (
            IpvsChange(Op.ADD_REAL, fwmark(7), rs("10.244.1.5", 0)),
            "-a -f 7 -r 10.244.1.5:0 -m -w 1",
        ),
        (
            IpvsChange(Op.EDIT_REAL, SVC, rs("10.244.1.5", weight=0)),
            "-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 0",
        ),
        (
            IpvsChange(Op.DELETE_REAL, SVC, rs("10.244.1.5", weight=9)),
            "-d -t 10.96.0.10:80 -r 10.244.1.5:8080",
        ),
        (
            IpvsChange(Op.DELETE_REAL, udp("fd00::1", 53), rs("fd00:244::5", 53)),
            "-d -u [fd00::1]:53 -r [fd00:244::5]:53",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_real_server_change_reads_as_ipvsadm(change: IpvsChange, line: str) -> None:
    assert change_line(change) == line


@pytest.mark.parametrize(
    ("verb", "address", "line"),
    [
        ("add", "10.96.0.10", "addr add 10.96.0.10/32 dev kube-ipvs0"),
        ("add", "fd00::10", "addr add fd00::10/128 dev kube-ipvs0"),
        ("del", "10.96.0.10", "addr del 10.96.0.10/32 dev kube-ipvs0"),
    ],
)
def test_an_address_line_names_its_prefix_and_device(verb: str, address: str, line: str) -> None:
    assert address_line(verb, address, "kube-ipvs0") == line


def test_plan_lines_come_in_the_order_they_are_carried_out() -> None:
    plan = Plan(
        interface="ipvs0",
        create_interface=True,
        addresses_add=("10.96.0.10", "fd00::10"),
        sysctls=(("net.ipv4.vs.conntrack", "1"),),
        ipvs=(
            IpvsChange(Op.ADD_SERVICE, SVC),
            IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5")),
        ),
        addresses_del=("10.96.0.11",),
        delete_interface=True,
    )
    assert plan_lines(plan) == [
        "link add ipvs0 type dummy",
        "addr add 10.96.0.10/32 dev ipvs0",
        "addr add fd00::10/128 dev ipvs0",
        "sysctl net.ipv4.vs.conntrack=1",
        "-A -t 10.96.0.10:80 -s rr",
        "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",
        "addr del 10.96.0.11/32 dev ipvs0",
        "link del ipvs0",
    ]


def test_an_empty_plan_has_no_lines() -> None:
    assert plan_lines(Plan()) == []
    assert plan_text(Plan()) == ""


def test_the_plan_text_is_its_lines_each_ending_in_a_newline() -> None:
    plan = Plan(
        addresses_add=("10.96.0.10",),
        ipvs=(IpvsChange(Op.ADD_SERVICE, SVC), IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5"))),
    )
    assert plan_text(plan) == "".join(f"{line}\n" for line in plan_lines(plan))
    assert plan_text(plan).count("\n") == 3
