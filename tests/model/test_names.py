"""One table per name, and the stats field order the codec relies on."""

from __future__ import annotations

from ipvsctl.model import (
    RATE_FIELDS,
    STATS_FIELDS,
    TOTAL_FIELDS,
    ForwardMethod,
    Stats,
    TunnelFlag,
    TunnelType,
)
from ipvsctl.model.names import (
    CHECKSUM_NAMES,
    FORWARD_NAMES,
    IPVSADM_CHECKSUM_NAMES,
    IPVSADM_FORWARD_NAMES,
    TUNNEL_TYPE_NAMES,
)


def test_stats_fields_are_in_the_kernels_attribute_order() -> None:
    # IPVS_STATS_ATTR_CONNS = 1 ... IPVS_STATS_ATTR_OUTBPS = 10 (include/uapi/linux/ip_vs.h)
    assert STATS_FIELDS == (
        "conns",
        "inpkts",
        "outpkts",
        "inbytes",
        "outbytes",
        "cps",
        "inpps",
        "outpps",
        "inbps",
        "outbps",
    )
    assert Stats._fields == STATS_FIELDS
    assert TOTAL_FIELDS + RATE_FIELDS == STATS_FIELDS


def test_every_named_forwarding_method_has_a_name() -> None:
    assert set(FORWARD_NAMES) == set(ForwardMethod)
    assert set(IPVSADM_FORWARD_NAMES) == set(ForwardMethod) - {ForwardMethod.BYPASS}


def test_every_tunnel_type_and_checksum_mode_has_both_names() -> None:
    assert set(TUNNEL_TYPE_NAMES) == set(TunnelType)
    every_mode = {TunnelFlag.NOCSUM, *TunnelFlag}  # iterating a flag skips its zero
    assert set(CHECKSUM_NAMES) == set(IPVSADM_CHECKSUM_NAMES) == every_mode


def test_a_value_a_newer_kernel_reports_is_an_unnamed_member() -> None:
    forward = ForwardMethod(6)
    assert forward == 6 and int(forward) == 6
    assert isinstance(forward, ForwardMethod)
    assert forward not in FORWARD_NAMES
    assert TunnelType(9) == 9 and TunnelType(9) not in TUNNEL_TYPE_NAMES
    assert ForwardMethod(0) is ForwardMethod.MASQ


def test_a_value_no_kernel_can_report_is_still_refused() -> None:
    import pytest

    with pytest.raises(ValueError):
        ForwardMethod(8)  # the method is 3 bits
    with pytest.raises(ValueError):
        TunnelType(256)  # the type is a u8
    with pytest.raises(ValueError):
        ForwardMethod("masq")
