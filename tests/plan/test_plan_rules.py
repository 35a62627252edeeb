"""plan_ipvs_changes, rule by rule: each row is (kernel, desired, ownership) -> plan lines."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ipvsctl.model.desired import DesiredVirtualServer
from ipvsctl.model.ipvs import (
    ForwardMethod,
    ServiceFlag,
    ServiceKey,
    TunnelFlag,
    TunnelType,
    VirtualServer,
    VirtualServerEntry,
)
from ipvsctl.plan import Ownership, plan_ipvs_changes
from ipvsctl.render.plan_lines import change_line
from tests.plan.builders import conns, fwmark, have, rs, sctp, tcp, udp, want

VIP = "10.96.0.10"
NODE = "192.168.1.5"  # a node address: never bound
FOREIGN = "172.16.0.1"  # neither bound nor ours
A, B, C = "10.244.1.5", "10.244.2.6", "10.244.3.7"


@dataclass(frozen=True)
class Case:
    name: str
    actual: tuple[VirtualServerEntry, ...]
    desired: tuple[DesiredVirtualServer, ...]
    lines: tuple[str, ...]
    bound: frozenset[str] = frozenset({VIP})
    nodeports: frozenset[ServiceKey] = field(default_factory=frozenset)


CASES = [
    # --- adding -----------------------------------------------------------
    Case(
        "a new service comes before its real servers",
        actual=(),
        desired=(want(tcp(VIP, 80), rs(B), rs(A)),),
        lines=(
            "-A -t 10.96.0.10:80 -s rr",
            "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",
            "-a -t 10.96.0.10:80 -r 10.244.2.6:8080 -m -w 1",
        ),
    ),
    Case(
        "a new real server in an existing service is one -a",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 80), rs(A), rs(B)),),
        lines=("-a -t 10.96.0.10:80 -r 10.244.2.6:8080 -m -w 1",),
    ),
    # --- nothing to do ----------------------------------------------------
    Case(
        "a converged table plans nothing",
        actual=(have(tcp(VIP, 80), rs(A), rs(B)), have(udp(VIP, 53), rs(C, 53))),
        desired=(want(tcp(VIP, 80), rs(A), rs(B)), want(udp(VIP, 53), rs(C, 53))),
        lines=(),
    ),
    Case(
        "real servers dumped newest first are still converged",
        actual=(have(tcp(VIP, 80), rs(C), rs(B), rs(A)),),
        desired=(want(tcp(VIP, 80), rs(A), rs(B), rs(C)),),
        lines=(),
    ),
    Case(
        "real servers in any other order are still converged",
        actual=(have(tcp(VIP, 80), rs(B), rs(C), rs(A)),),
        desired=(want(tcp(VIP, 80), rs(A), rs(B), rs(C)),),
        lines=(),
    ),
    # --- service config: edited in place, never re-created ---------------
    Case(
        "another scheduler is an -E",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 80, scheduler="wrr"), rs(A)),),
        lines=("-E -t 10.96.0.10:80 -s wrr",),
    ),
    Case(
        "other scheduler flags are an -E",
        actual=(have(tcp(VIP, 80, scheduler="sh", flags=ServiceFlag.SCHED1), rs(A)),),
        desired=(want(tcp(VIP, 80, scheduler="sh", flags=ServiceFlag.SCHED2), rs(A)),),
        lines=("-E -t 10.96.0.10:80 -s sh -b sh-fallback,sh-port",),
    ),
    Case(
        "becoming persistent is an -E",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 80, flags=ServiceFlag.PERSISTENT, timeout=10800), rs(A)),),
        lines=("-E -t 10.96.0.10:80 -s rr -p 10800",),
    ),
    Case(
        "another persistence timeout is an -E",
        actual=(have(tcp(VIP, 80, flags=ServiceFlag.PERSISTENT, timeout=10800), rs(A)),),
        desired=(want(tcp(VIP, 80, flags=ServiceFlag.PERSISTENT, timeout=60), rs(A)),),
        lines=("-E -t 10.96.0.10:80 -s rr -p 60",),
    ),
    Case(
        "another persistence netmask is an -E",
        actual=(have(tcp(VIP, 80, flags=ServiceFlag.PERSISTENT, timeout=60), rs(A)),),
        desired=(
            want(tcp(VIP, 80, flags=ServiceFlag.PERSISTENT, timeout=60, netmask=0xFFFFFF00), rs(A)),
        ),
        lines=("-E -t 10.96.0.10:80 -s rr -p 60 -M 255.255.255.0",),
    ),
    Case(
        "another persistence engine is an -E",
        actual=(have(tcp(VIP, 80, flags=ServiceFlag.PERSISTENT, timeout=60), rs(A)),),
        desired=(
            want(tcp(VIP, 80, flags=ServiceFlag.PERSISTENT, timeout=60, pe_name="sip"), rs(A)),
        ),
        lines=("-E -t 10.96.0.10:80 -s rr -p 60 --pe sip",),
    ),
    Case(
        "an -E comes before the real-server edits of its service",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 80, scheduler="lc"), rs(A), rs(B)),),
        lines=(
            "-E -t 10.96.0.10:80 -s lc",
            "-a -t 10.96.0.10:80 -r 10.244.2.6:8080 -m -w 1",
        ),
    ),
    # --- real-server config: -e ------------------------------------------
    Case(
        "another weight is an -e",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 80), rs(A, weight=5)),),
        lines=("-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 5",),
    ),
    Case(
        "another forwarding method is an -e",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 80), rs(A, forward=ForwardMethod.ROUTE)),),
        lines=("-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -g -w 1",),
    ),
    Case(
        "another upper threshold is an -e",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 80), rs(A, upper_threshold=100)),),
        lines=("-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1 -x 100",),
    ),
    Case(
        "another lower threshold is an -e",
        actual=(have(tcp(VIP, 80), rs(A, lower_threshold=3)),),
        desired=(want(tcp(VIP, 80), rs(A)),),
        lines=("-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",),
    ),
    Case(
        "other tunnel settings are an -e",
        actual=(have(tcp(VIP, 80), rs(A, forward=ForwardMethod.TUNNEL)),),
        desired=(
            want(
                tcp(VIP, 80),
                rs(
                    A,
                    forward=ForwardMethod.TUNNEL,
                    tunnel_type=TunnelType.GUE,
                    tunnel_port=6080,
                    tunnel_flags=TunnelFlag.CSUM,
                ),
            ),
        ),
        lines=(
            "-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -i -w 1 --tun-type gue --tun-port 6080"
            " --tun-csum",
        ),
    ),
    # --- deleting ---------------------------------------------------------
    Case(
        "an owned service no longer desired is one -D, real servers and all",
        actual=(have(tcp(VIP, 80), conns(rs(A), active=4), rs(B)),),
        desired=(),
        lines=("-D -t 10.96.0.10:80",),
    ),
    Case(
        "a recorded NodePort no longer desired is deleted",
        actual=(have(tcp(NODE, 30080), rs(A)),),
        desired=(),
        nodeports=frozenset({tcp(NODE, 30080).key}),
        lines=("-D -t 192.168.1.5:30080",),
    ),
    Case(
        "a recorded fwmark service no longer desired is deleted",
        actual=(have(fwmark(7), rs(A, 0)),),
        desired=(),
        nodeports=frozenset({fwmark(7).key}),
        lines=("-D -f 7",),
    ),
    Case(
        "an idle real server no longer desired is deleted",
        actual=(have(tcp(VIP, 80), rs(A), rs(B)),),
        desired=(want(tcp(VIP, 80), rs(A)),),
        lines=("-d -t 10.96.0.10:80 -r 10.244.2.6:8080",),
    ),
    # --- foreign virtual servers -----------------------------------------
    Case(
        "a foreign service on an address that is not bound is untouched",
        actual=(have(tcp(FOREIGN, 80), conns(rs(A), active=1)),),
        desired=(),
        lines=(),
    ),
    Case(
        "a foreign service on a node address, not in the record, is untouched",
        actual=(have(tcp(NODE, 30080), rs(A)),),
        desired=(want(tcp(NODE, 30081), rs(A), bound=False),),
        nodeports=frozenset({tcp(NODE, 30081).key}),
        lines=(
            "-A -t 192.168.1.5:30081 -s rr",
            "-a -t 192.168.1.5:30081 -r 10.244.1.5:8080 -m -w 1",
        ),
    ),
    Case(
        "a fwmark service is not ours by address, even with a bound address about",
        actual=(have(fwmark(7), rs(A, 0)),),
        desired=(),
        lines=(),
    ),
    Case(
        "a desired key someone else made is adopted: edited, its real servers made ours",
        actual=(have(tcp(FOREIGN, 80, scheduler="wlc"), rs(C), rs(A, weight=3)),),
        desired=(want(tcp(FOREIGN, 80), rs(A), rs(B)),),
        lines=(
            "-E -t 172.16.0.1:80 -s rr",
            "-e -t 172.16.0.1:80 -r 10.244.1.5:8080 -m -w 1",
            "-a -t 172.16.0.1:80 -r 10.244.2.6:8080 -m -w 1",
            "-d -t 172.16.0.1:80 -r 10.244.3.7:8080",
        ),
    ),
    # --- graceful termination ---------------------------------------------
    Case(
        "a leaving TCP real server with active connections drains at weight 0",
        actual=(have(tcp(VIP, 80), rs(A), conns(rs(B, weight=2), active=3)),),
        desired=(want(tcp(VIP, 80), rs(A)),),
        lines=("-e -t 10.96.0.10:80 -r 10.244.2.6:8080 -m -w 0",),
    ),
    Case(
        "inactive connections count too",
        actual=(have(tcp(VIP, 80), rs(A), conns(rs(B), inactive=1)),),
        desired=(want(tcp(VIP, 80), rs(A)),),
        lines=("-e -t 10.96.0.10:80 -r 10.244.2.6:8080 -m -w 0",),
    ),
    Case(
        "a real server already draining with connections is left alone",
        actual=(have(tcp(VIP, 80), rs(A), conns(rs(B, weight=0), active=3)),),
        desired=(want(tcp(VIP, 80), rs(A)),),
        lines=(),
    ),
    Case(
        "a draining real server whose connections ended is deleted",
        actual=(have(tcp(VIP, 80), rs(A), rs(B, weight=0)),),
        desired=(want(tcp(VIP, 80), rs(A)),),
        lines=("-d -t 10.96.0.10:80 -r 10.244.2.6:8080",),
    ),
    Case(
        "a UDP real server goes at once, connections or not",
        actual=(have(udp(VIP, 53), rs(A, 53), conns(rs(B, 53), active=2, inactive=9)),),
        desired=(want(udp(VIP, 53), rs(A, 53)),),
        lines=("-d -u 10.96.0.10:53 -r 10.244.2.6:53",),
    ),
    Case(
        "an SCTP real server goes at once, connections or not",
        actual=(have(sctp(VIP, 9), rs(A, 9), conns(rs(B, 9), active=2)),),
        desired=(want(sctp(VIP, 9), rs(A, 9)),),
        lines=("-d --sctp-service 10.96.0.10:9 -r 10.244.2.6:9",),
    ),
    Case(
        "a fwmark service's real servers drain as TCP ones do",
        actual=(have(fwmark(7), rs(A, 0), conns(rs(B, 0), active=1)),),
        desired=(want(fwmark(7), rs(A, 0)),),
        lines=("-e -f 7 -r 10.244.2.6:0 -m -w 0",),
    ),
    Case(
        "a drained real server that is desired again gets its weight back",
        actual=(have(tcp(VIP, 80), conns(rs(A, weight=0), active=5)),),
        desired=(want(tcp(VIP, 80), rs(A)),),
        lines=("-e -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1",),
    ),
    # --- order --------------------------------------------------------------
    Case(
        "within a service, additions come before drains and deletes",
        actual=(have(tcp(VIP, 80), conns(rs(C), active=1), rs(A)),),
        desired=(want(tcp(VIP, 80), rs(B)),),
        lines=(
            "-a -t 10.96.0.10:80 -r 10.244.2.6:8080 -m -w 1",
            "-e -t 10.96.0.10:80 -r 10.244.3.7:8080 -m -w 0",
            "-d -t 10.96.0.10:80 -r 10.244.1.5:8080",
        ),
    ),
    Case(
        "a service moving to another port is served on the new one before the old goes",
        actual=(have(tcp(VIP, 80), rs(A)),),
        desired=(want(tcp(VIP, 8080), rs(A)),),
        lines=(
            "-A -t 10.96.0.10:8080 -s rr",
            "-a -t 10.96.0.10:8080 -r 10.244.1.5:8080 -m -w 1",
            "-D -t 10.96.0.10:80",
        ),
    ),
    Case(
        "services are planned in key order, whatever order they come in",
        actual=(have(tcp("10.96.0.2", 80)), have(tcp("10.96.0.1", 80))),
        desired=(want(udp(VIP, 53)), want(tcp(VIP, 443)), want(tcp(VIP, 80))),
        bound=frozenset({VIP, "10.96.0.1", "10.96.0.2"}),
        lines=(
            "-A -t 10.96.0.10:80 -s rr",
            "-A -t 10.96.0.10:443 -s rr",
            "-A -u 10.96.0.10:53 -s rr",
            "-D -t 10.96.0.1:80",
            "-D -t 10.96.0.2:80",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_plan_rule(case: Case) -> None:
    ownership = Ownership(bound_addresses=case.bound, nodeport_keys=case.nodeports)
    changes = plan_ipvs_changes(case.desired, case.actual, ownership)
    assert tuple(change_line(change) for change in changes) == case.lines


def test_an_expired_drain_is_deleted_despite_its_connections() -> None:
    actual = (have(tcp(VIP, 80), rs(A), conns(rs(B, weight=0), active=3)),)
    desired = (want(tcp(VIP, 80), rs(A)),)
    ownership = Ownership(frozenset({VIP}), frozenset())
    expired = frozenset({(tcp(VIP, 80).key, (B, 8080))})
    changes = plan_ipvs_changes(desired, actual, ownership, expired_drains=expired)
    assert [change_line(c) for c in changes] == ["-d -t 10.96.0.10:80 -r 10.244.2.6:8080"]


def test_an_expired_drain_in_another_service_changes_nothing_here() -> None:
    actual = (have(tcp(VIP, 80), rs(A), conns(rs(B, weight=0), active=3)),)
    desired = (want(tcp(VIP, 80), rs(A)),)
    ownership = Ownership(frozenset({VIP}), frozenset())
    expired = frozenset({(tcp(VIP, 443).key, (B, 8080))})
    assert plan_ipvs_changes(desired, actual, ownership, expired_drains=expired) == ()


@pytest.mark.parametrize("present", [False, True], ids=["new", "present"])
def test_a_key_desired_twice_is_refused(present: bool) -> None:
    actual = (have(tcp(VIP, 80)),) if present else ()
    desired = (want(tcp(VIP, 80), rs(A)), want(tcp(VIP, 80), rs(B)))
    with pytest.raises(ValueError, match="desired twice"):
        plan_ipvs_changes(desired, actual, Ownership(frozenset({VIP}), frozenset()))


def test_an_edit_carries_the_desired_config_and_a_drain_the_present_one() -> None:
    drained = rs(B, forward=ForwardMethod.ROUTE, weight=7, upper_threshold=9)
    actual = (have(tcp(VIP, 80, scheduler="lc"), rs(A), conns(drained, active=1)),)
    desired = (want(tcp(VIP, 80, scheduler="sed"), rs(A)),)
    edit, drain = plan_ipvs_changes(desired, actual, Ownership(frozenset({VIP}), frozenset()))
    assert edit.service == tcp(VIP, 80, scheduler="sed")
    assert drain.service == tcp(VIP, 80, scheduler="sed")
    assert drain.real_server == rs(B, forward=ForwardMethod.ROUTE, weight=0, upper_threshold=9)


@pytest.mark.parametrize(
    ("service", "lines"),
    [
        (tcp(VIP, 80), ["-e -t 10.96.0.10:80 -r 10.244.2.6:8080 -m -w 0"]),
        (udp(VIP, 53), ["-d -u 10.96.0.10:53 -r 10.244.2.6:8080"]),
    ],
    ids=["tcp drains", "udp goes"],
)
def test_with_unknown_counts_an_idle_tcp_leaver_drains_and_udp_goes(
    service: VirtualServer, lines: list[str]
) -> None:
    # The agent's copy of the table has stale counts: an idle-looking TCP server
    # may have connections by now, so it drains; the drain check deletes it later.
    actual = (have(service, rs(A), rs(B)),)
    desired = (want(service, rs(A)),)
    ownership = Ownership(frozenset({VIP}), frozenset())
    changes = plan_ipvs_changes(desired, actual, ownership, counts_known=False)
    assert [change_line(c) for c in changes] == lines
    assert [change_line(c) for c in plan_ipvs_changes(desired, actual, ownership)] == [
        lines[0].replace("-e", "-d").replace(" -m -w 0", "")
    ]
