"""The fake nft and the packet tracer themselves: they refuse what they cannot read, and what
nft would refuse, so that no rule change can let the packet tests pass without testing
it; and they walk chains and hooks as the kernel does."""

from __future__ import annotations

import re

import pytest

from tests.netfilter.nft_fake import Fake
from tests.netfilter.nft_rules import NftError
from tests.netfilter.packet_tracer import Packet, trace

HEAD = """
add table inet t
add chain inet t in { type filter hook input priority 0; policy accept; }
add chain inet t post { type nat hook postrouting priority 100; policy accept; }
add chain inet t sub
add set inet t ports { type inet_service; }
add set inet t pairs { type ipv4_addr . inet_proto . inet_service; }
add set inet t ranges { type ipv4_addr . ipv4_addr; flags interval; }
"""
INBOUND = Packet("10.0.0.1", "10.96.0.1", 80)


def fake(*lines: str) -> Fake:
    made = Fake()
    made.apply(HEAD + "\n".join(lines))
    return made


# name: (script, what the error says)
UNKNOWN = {
    "a counter": ("add rule inet t in counter", '"counter" not understood'),
    "fib": ("add rule inet t in fib daddr type local accept", '"fib daddr" not'),
    "a statement after a match": ("add rule inet t in ip saddr 10.0.0.1 log", '"log" not'),
    "another selector": ("add rule inet t in ip protocol tcp accept", '"ip protocol" not'),
    "reject with": ("add rule inet t in reject with tcp reset", '"with" after a terminal'),
    "a mark set to a constant": ("add rule inet t in meta mark set 0x1", '"0x1" found'),
    "a list of ct states": ("add rule inet t in ct state new,related accept", '", related" not'),
    "a port range": ("add rule inet t in tcp dport { 80-90 } accept", '"80-90" is not'),
    "snat": ("add rule inet t post ip daddr 10.0.0.1 snat to 10.0.0.2", '"snat to" not'),
    "a verdict map": ("add rule inet t in meta l4proto . th dport vmap @ports", '"vmap" is not'),
    "a map": ("add map inet t m { type ipv4_addr : verdict; }", '"add map" not supported'),
    "flush": ("flush chain inet t in", '"flush chain" not supported'),
    "insert": ("insert rule inet t in accept", '"insert rule" not supported'),
    "another family": ("add table ip other", "family ip not supported"),
    "a named priority": (
        "add chain inet t x { type filter hook input priority filter; }",
        "priority filter not supported",
    ),
    "a set flag": ("add set inet t s { type ipv4_addr; flags dynamic; }", '"flags" not'),
    "a set type": ("add set inet t s { type ether_addr; }", "ether_addr not supported"),
}
REFUSED_BY_NFT = {
    "a lookup of another type than the set's": (
        "add rule inet t in ip daddr . th dport @pairs",
        "datatype mismatch",
    ),
    "a prefix in a set without intervals": (
        "add element inet t pairs { 10.0.0.0/8 . tcp . 80 }",
        "a prefix needs a set with flags interval",
    ),
    "overlapping intervals": (
        "add element inet t ranges { 10.0.0.1 . 10.0.0.0/8, 10.0.0.1 . 10.1.0.0/16 }",
        "overlaps an element of ranges",
    ),
    "a missing element deleted": ("delete element inet t ports { 80 }", "no such element"),
    "a jump to a missing chain": ("add rule inet t in jump nowhere", "no chain nowhere"),
    "masquerade outside nat postrouting": (
        "add rule inet t sub masquerade\nadd rule inet t in jump sub",
        "masquerade in sub",
    ),
    "reject in postrouting": ("add rule inet t post reject", "reject in post"),
    "a jump loop": ("add rule inet t sub jump sub\nadd rule inet t in jump sub", "jump loop"),
    "a statement after a verdict": (
        "add rule inet t in accept ip saddr 10.0.0.1",
        '"ip" after a terminal',
    ),
    "an address of the other family": (
        "add rule inet t in ip saddr ::1 accept",
        "::1 is not of type ipv4_addr",
    ),
    "host bits in a prefix": (
        "add rule inet t in ip saddr 10.0.0.1/8 accept",
        "not a canonical address or prefix",
    ),
    "a hook nat chains lack": (
        "add chain inet t f { type nat hook forward priority 0; }",
        "no nat chain hooks forward",
    ),
    "a rule in a missing chain": ("add rule inet t nowhere accept", "no such chain"),
}


@pytest.mark.parametrize(("lines", "error"), UNKNOWN.values(), ids=UNKNOWN.keys())
def test_a_construct_the_fake_does_not_know_raises(lines: str, error: str) -> None:
    with pytest.raises(NftError, match=re.escape(error)):
        fake(lines)


@pytest.mark.parametrize(("lines", "error"), REFUSED_BY_NFT.values(), ids=REFUSED_BY_NFT.keys())
def test_what_nft_would_refuse_raises(lines: str, error: str) -> None:
    with pytest.raises(NftError, match=re.escape(error)):
        fake(lines)


def test_a_refused_script_changes_nothing() -> None:
    made = fake()
    with pytest.raises(NftError):
        made.apply("add element inet t ports { 80 }\nadd rule inet t in counter")
    assert made.tables["inet", "t"].sets["ports"].elements == set()


def test_an_ip_match_never_holds_for_an_ipv6_packet_even_negated() -> None:
    # nft's implicit `meta nfproto ipv4` fails before the comparison does.
    made = fake("add rule inet t in ip saddr != { 10.0.0.0/8 } drop")
    assert trace(made, Packet("fd00::1", "fd00::2", 80)).verdict == "accept"
    assert trace(made, Packet("192.0.2.1", "10.96.0.1", 80)).verdict == "drop"


@pytest.mark.parametrize(("kind", "verdict"), [("jump", "drop"), ("goto", "accept")])
def test_a_jump_comes_back_and_a_goto_does_not(kind: str, verdict: str) -> None:
    made = fake(
        "add rule inet t sub return", f"add rule inet t in {kind} sub", "add rule inet t in drop"
    )
    assert trace(made, INBOUND).verdict == verdict


def test_a_return_from_a_base_chain_takes_its_policy() -> None:
    made = fake(
        "add chain inet t strict { type filter hook input priority 10; policy drop; }",
        "add rule inet t strict return",
        "add rule inet t strict accept",
    )
    assert trace(made, INBOUND).verdict == "drop"


def test_set_lookups_match_concatenations_and_prefixes() -> None:
    made = fake(
        "add element inet t ranges { 10.96.0.1 . 10.0.0.0/8 }",
        "add rule inet t in ip daddr . ip saddr @ranges return",
        "add rule inet t in drop",
    )
    assert trace(made, INBOUND).verdict == "accept"
    assert trace(made, Packet("192.0.2.1", "10.96.0.1", 80)).verdict == "drop"


def test_nat_chains_see_only_the_first_packet_of_a_connection() -> None:
    made = fake("add rule inet t post masquerade")
    routed = Packet("10.0.0.1", "192.0.2.1", 80, to_node=False)
    assert trace(made, routed).masqueraded
    assert not trace(
        made, Packet("10.0.0.1", "192.0.2.1", 80, "tcp", "established", to_node=False)
    ).masqueraded


@pytest.mark.parametrize(("priority", "verdict"), [(-110, "drop"), (-90, "accept")])
def test_output_chains_before_ipvs_see_the_service_address_and_after_it_the_real_server(
    priority: int, verdict: str
) -> None:
    made = fake(
        f"add chain inet t out {{ type filter hook output priority {priority}; policy accept; }}",
        "add rule inet t out ip daddr 10.96.0.1 drop",
    )
    packet = Packet("10.0.0.1", "10.96.0.1", 80, from_node=True, ipvs_to=("10.244.0.5", 8080))
    assert trace(made, packet).verdict == verdict


def test_a_chain_at_ipvss_own_priority_raises() -> None:
    made = fake("add chain inet t tie { type filter hook input priority 99; policy accept; }")
    with pytest.raises(NftError):
        trace(made, Packet("10.0.0.1", "10.96.0.1", 80, ipvs_to=("10.244.0.5", 8080)))


@pytest.mark.parametrize(
    ("packet", "hooks"),
    [
        (INBOUND, ("prerouting", "input")),
        (
            Packet("10.0.0.1", "10.244.0.5", 80, to_node=False),
            ("prerouting", "forward", "postrouting"),
        ),
        (
            Packet("10.0.0.1", "10.96.0.1", 80, ipvs_to=("10.244.0.5", 8080)),
            ("prerouting", "input", "ipvs", "output", "postrouting"),
        ),
        (
            Packet("10.0.0.1", "10.96.0.1", 80, from_node=True, ipvs_to=("10.244.0.5", 8080)),
            ("output", "ipvs", "postrouting"),
        ),
        (
            Packet("10.0.0.1", "10.96.0.1", 22, from_node=True),
            ("output", "postrouting", "prerouting", "input"),
        ),
    ],
    ids=["delivered", "forwarded", "ipvs from input", "ipvs from output", "back in on lo"],
)
def test_the_hooks_a_packet_takes(packet: Packet, hooks: tuple[str, ...]) -> None:
    assert trace(fake(), packet).hooks == hooks
