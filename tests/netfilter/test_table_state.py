"""parse_listing and drift: what `nft -j list table inet ipvsctl` says the table holds, and
whether its chains, rules and sets are ours as this release makes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipvsctl.netfilter import Element, NetfilterOptions, parse_listing, static_ruleset
from tests.netfilter.builders import nft_listing

FIXTURES = Path(__file__).parent / "fixtures"
RULESET = static_ruleset(NetfilterOptions(cluster_cidrs=("10.244.0.0/16",)))
ELEMENTS = frozenset(
    {
        Element("service-ips-v4", ("10.96.0.10",)),
        Element("cluster-ips-v4", ("10.96.0.10", "tcp", "80")),
        Element("cluster-ips-v6", ("fd00:10:96::a", "udp", "53")),
        Element("masq-services-v4", ("192.168.0.10", "sctp", "30080")),
        Element("hairpin-v4", ("10.244.1.5", "10.244.1.5")),
        Element("lb-filtered-v4", ("198.51.100.1", "tcp", "443")),
        Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "443", "192.0.2.0/24")),
        Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "443", "198.51.100.1/32")),
        Element("lb-source-ranges-v6", ("2001:db8::7", "tcp", "443", "2001:db8:1::/48")),
        Element("health-check-ports", ("32000",)),
    }
)


def older_release() -> str:
    return (FIXTURES / "listing-older-release.json").read_text()


def test_a_table_as_we_make_it_reads_back_its_elements_with_no_drift() -> None:
    state = parse_listing(nft_listing(RULESET, ELEMENTS))
    assert state.exists
    assert state.elements == ELEMENTS
    assert state.drift(RULESET) == ()


def test_a_single_set_flag_printed_as_a_string_is_understood() -> None:
    state = parse_listing(nft_listing(RULESET, ELEMENTS, single_flag_as_string=True))
    assert state.drift(RULESET) == () and state.elements == ELEMENTS


def test_elements_are_read_in_every_form_nft_prints() -> None:
    state = parse_listing(older_release())
    assert state.elements == {
        Element("masq-services-v4", ("192.168.0.10", "tcp", "30080")),
        Element("masq-services-v4", ("203.0.113.7", "udp", "53")),
        Element("service-ips-v6", ("fd00:10:96::a",)),
        Element("service-ips-v6", ("2001:db8::7",)),  # an element with a comment
        Element("hairpin-v4", ("10.244.1.5", "10.244.1.5")),
        Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "80", "192.0.2.0/24")),
        # a single address in the interval field is its host network
        Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "80", "198.51.100.1/32")),
        # a range that is a prefix reads as the prefix; any other stays a range
        Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "80", "203.0.113.0/25")),
        Element(
            "lb-source-ranges-v4", ("198.51.100.1", "tcp", "80", "203.0.113.200-203.0.113.202")
        ),
        Element("health-check-ports", ("32000",)),
        Element("health-check-ports", ("32001",)),
    }


def test_a_table_of_an_older_release_drifts_so_it_is_made_anew() -> None:
    drift = parse_listing(older_release()).drift(RULESET)
    assert "chain nat-prerouting: not as ipvsctl makes it" in drift  # its fingerprint
    assert "chain filter-input: missing" in drift
    assert "set cluster-ips-v4: missing" in drift


def test_other_options_make_other_rules() -> None:
    state = parse_listing(nft_listing(RULESET, ELEMENTS))
    other = static_ruleset(NetfilterOptions(masquerade_all=True))
    assert "chain nat-prerouting: not as ipvsctl makes it" in state.drift(other)


def listing_without(kind: str, name: str) -> str:
    document = json.loads(nft_listing(RULESET, ELEMENTS))
    kept = []
    removed = False
    for item in document["nftables"]:
        body = item.get(kind)
        matches = body is not None and (body.get("name") == name or body.get("chain") == name)
        if matches and not removed:
            removed = kind == "rule"  # one rule; every object of other kinds
            continue
        kept.append(item)
    return json.dumps({"nftables": kept})


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        (listing_without("rule", "services"), "chain services: not as ipvsctl makes it"),
        (listing_without("set", "hairpin-v6"), "set hairpin-v6: missing"),
        (
            nft_listing(
                RULESET,
                ELEMENTS,
                extra=[{"chain": {"family": "inet", "table": "ipvsctl", "name": "mine"}}],
            ),
            "chain mine: not made by ipvsctl",
        ),
        (
            nft_listing(
                RULESET,
                extra=[
                    {
                        "map": {
                            "family": "inet",
                            "table": "ipvsctl",
                            "name": "m",
                            "type": "ipv4_addr",
                            "map": "verdict",
                        }
                    }
                ],
            ),
            "map m: not made by ipvsctl",
        ),
    ],
    ids=["a rule removed", "a set removed", "a chain added", "a map added"],
)
def test_hand_edits_are_drift(listing: str, expected: str) -> None:
    assert expected in parse_listing(listing).drift(RULESET)


def test_a_base_chain_whose_policy_was_changed_is_drift() -> None:
    listing = nft_listing(RULESET).replace('"policy": "accept"', '"policy": "drop"', 1)
    assert parse_listing(listing).drift(RULESET) == (
        "chain nat-prerouting: not as ipvsctl makes it",
    )


def test_a_set_of_another_type_is_drift() -> None:
    listing = nft_listing(RULESET).replace('"type": "inet_service"', '"type": "ipv4_addr"')
    assert parse_listing(listing).drift(RULESET) == (
        "set health-check-ports: not as ipvsctl makes it",
    )


def test_an_element_that_cannot_be_read_is_drift_not_an_error() -> None:
    listing = nft_listing(RULESET).replace(
        '"name": "hairpin-v4", "table": "ipvsctl", "type": ["ipv4_addr", "ipv4_addr"]',
        '"name": "hairpin-v4", "table": "ipvsctl", "type": ["ipv4_addr", "ipv4_addr"],'
        ' "elem": [{"concat": ["10.244.1.5"]}]',
    )
    state = parse_listing(listing)
    assert state.elements == frozenset()
    assert state.drift(RULESET) == (
        'set hairpin-v4: unreadable element {"concat": ["10.244.1.5"]}',
    )


def test_a_listing_without_our_table_is_absent() -> None:
    state = parse_listing('{"nftables": [{"metainfo": {"json_schema_version": 1}}]}')
    assert not state.exists
    assert state.drift(RULESET) == ("no table",)


@pytest.mark.parametrize("text", ["", "not json", '{"tables": []}', '{"nftables": {}}'])
def test_output_that_is_no_listing_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an nft JSON listing"):
        parse_listing(text)
