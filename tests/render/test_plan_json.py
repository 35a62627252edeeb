"""The JSON plan: one object per plan line, in the schema plan_json documents."""

from __future__ import annotations

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import ForwardMethod, ServiceFlag, TunnelFlag, TunnelType
from ipvsctl.plan import Plan
from ipvsctl.render.plan_json import change_document, plan_document
from ipvsctl.render.plan_lines import plan_lines
from tests.plan.builders import fwmark, rs, tcp, udp

SVC = tcp("10.96.0.10", 80)
SVC_KEY = {"family": "inet", "protocol": "tcp", "address": "10.96.0.10", "port": 80, "fwmark": None}


def test_an_added_service_carries_its_whole_config() -> None:
    service = tcp(
        "10.96.0.10",
        80,
        scheduler="sh",
        flags=ServiceFlag.PERSISTENT | ServiceFlag.SCHED2 | ServiceFlag.ONEPACKET,
        timeout=60,
        netmask=0xFFFFFF00,
        pe_name="sip",
    )
    assert change_document(IpvsChange(Op.ADD_SERVICE, service)) == {
        "op": "-A",
        "service": {
            **SVC_KEY,
            "scheduler": "sh",
            "flags": ["sh-port"],
            "one_packet": True,
            "persistent": 60,
            "netmask": "255.255.255.0",
            "prefix_length": 24,
            "pe": "sip",
        },
    }


def test_an_edited_ipv6_service_has_its_mask_in_address_syntax() -> None:
    document = change_document(IpvsChange(Op.EDIT_SERVICE, udp("fd00::1", 53, netmask=64)))
    assert document["op"] == "-E"
    assert document["service"] == {
        "family": "inet6",
        "protocol": "udp",
        "address": "fd00::1",
        "port": 53,
        "fwmark": None,
        "scheduler": "rr",
        "flags": [],
        "one_packet": False,
        "persistent": None,
        "netmask": "ffff:ffff:ffff:ffff::",
        "prefix_length": 64,
        "pe": None,
    }


def test_a_deleted_service_is_named_by_its_key_alone() -> None:
    assert change_document(IpvsChange(Op.DELETE_SERVICE, SVC)) == {"op": "-D", "service": SVC_KEY}
    assert change_document(IpvsChange(Op.DELETE_SERVICE, fwmark(7, ipv6=True))) == {
        "op": "-D",
        "service": {
            "family": "inet6",
            "protocol": None,
            "address": None,
            "port": None,
            "fwmark": 7,
        },
    }


def test_an_added_real_server_carries_its_config_and_its_service_key() -> None:
    server = rs("10.244.1.5", weight=3, upper_threshold=10, lower_threshold=2)
    assert change_document(IpvsChange(Op.ADD_REAL, SVC, server)) == {
        "op": "-a",
        "service": SVC_KEY,
        "real_server": {
            "family": "inet",
            "address": "10.244.1.5",
            "port": 8080,
            "forward": "masq",
            "weight": 3,
            "upper_threshold": 10,
            "lower_threshold": 2,
            "tunnel": None,
        },
    }


def test_a_tunnelled_real_server_carries_its_tunnel() -> None:
    server = rs(
        "10.244.1.5",
        forward=ForwardMethod.TUNNEL,
        tunnel_type=TunnelType.GUE,
        tunnel_port=6080,
        tunnel_flags=TunnelFlag.CSUM,
    )
    document = change_document(IpvsChange(Op.EDIT_REAL, SVC, server))
    assert document["op"] == "-e"
    assert document["real_server"]["forward"] == "tunnel"
    assert document["real_server"]["tunnel"] == {"type": "gue", "port": 6080, "checksum": "csum"}


def test_a_deleted_real_server_is_named_by_its_key_alone() -> None:
    server = rs("fd00:244::5", 53, weight=4)
    assert change_document(IpvsChange(Op.DELETE_REAL, udp("fd00::1", 53), server)) == {
        "op": "-d",
        "service": {
            "family": "inet6",
            "protocol": "udp",
            "address": "fd00::1",
            "port": 53,
            "fwmark": None,
        },
        "real_server": {"family": "inet6", "address": "fd00:244::5", "port": 53},
    }


def test_a_non_default_tunnel_setting_is_shown_without_tunnel_forwarding() -> None:
    server = rs("10.244.1.5", tunnel_type=TunnelType.GRE)
    tunnel = change_document(IpvsChange(Op.ADD_REAL, SVC, server))["real_server"]["tunnel"]
    assert tunnel == {"type": "gre", "port": 0, "checksum": "none"}


def test_numbers_without_a_name_are_given_as_numbers_as_show_json_gives_them() -> None:
    server = rs("10.244.1.5", forward=ForwardMethod(5), tunnel_type=TunnelType(9), tunnel_flags=3)
    described = change_document(IpvsChange(Op.ADD_REAL, SVC, server))["real_server"]
    assert described["forward"] == 5
    assert described["tunnel"] == {"type": 9, "port": 0, "checksum": 3}


FULL_PLAN = Plan(
    interface="kube-ipvs0",
    create_interface=True,
    addresses_add=("10.96.0.10", "fd00::10"),
    sysctls=(("net.ipv4.vs.conntrack", "1"),),
    ipvs=(IpvsChange(Op.ADD_SERVICE, SVC), IpvsChange(Op.ADD_REAL, SVC, rs("10.244.1.5"))),
    addresses_del=("10.96.0.11",),
    delete_interface=True,
)


def test_the_document_has_one_step_per_line_in_the_same_order() -> None:
    steps = plan_document(FULL_PLAN)
    assert len(steps) == len(plan_lines(FULL_PLAN))
    assert [step["op"] for step in steps] == [
        "link add",
        "addr add",
        "addr add",
        "sysctl",
        "-A",
        "-a",
        "addr del",
        "link del",
    ]
    assert steps[0] == {"op": "link add", "device": "kube-ipvs0", "type": "dummy"}
    assert steps[2] == {
        "op": "addr add",
        "address": "fd00::10",
        "prefix_length": 128,
        "device": "kube-ipvs0",
    }
    assert steps[3] == {"op": "sysctl", "name": "net.ipv4.vs.conntrack", "value": "1"}
    assert steps[6] == {
        "op": "addr del",
        "address": "10.96.0.11",
        "prefix_length": 32,
        "device": "kube-ipvs0",
    }
    assert steps[7] == {"op": "link del", "device": "kube-ipvs0"}
