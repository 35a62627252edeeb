"""static_ruleset: the table's chains, rules and sets, and how the options change them."""

from __future__ import annotations

import re

import pytest

from ipvsctl.netfilter import NetfilterOptions, static_ruleset
from ipvsctl.netfilter.ruleset import MASQUERADE_MARK, ChainSpec, StaticRuleset


def chain(ruleset: StaticRuleset, name: str) -> ChainSpec:
    return next(c for c in ruleset.chains if c.name == name)


def cluster_ip_rules(options: NetfilterOptions) -> list[str]:
    rules = chain(static_ruleset(options), "services").rules
    return [rule.text for rule in rules if "@cluster-ips" in rule.text]


def test_clusterip_traffic_from_outside_the_cluster_cidrs_is_marked() -> None:
    options = NetfilterOptions(cluster_cidrs=("10.244.0.0/16", "10.245.0.0/16", "fd00:10::/56"))
    assert cluster_ip_rules(options) == [
        "ip saddr != { 10.244.0.0/16, 10.245.0.0/16 } ip daddr . meta l4proto . th dport"
        " @cluster-ips-v4 jump mark-for-masquerade",
        "ip6 saddr != { fd00:10::/56 } ip6 daddr . meta l4proto . th dport"
        " @cluster-ips-v6 jump mark-for-masquerade",
    ]


def test_masquerade_all_marks_all_clusterip_traffic() -> None:
    options = NetfilterOptions(cluster_cidrs=("10.244.0.0/16",), masquerade_all=True)
    assert cluster_ip_rules(options) == [
        "ip daddr . meta l4proto . th dport @cluster-ips-v4 jump mark-for-masquerade",
        "ip6 daddr . meta l4proto . th dport @cluster-ips-v6 jump mark-for-masquerade",
    ]


def test_without_cluster_cidrs_only_traffic_sent_from_a_service_ip_is_marked() -> None:
    # kube-proxy's `--match-set KUBE-CLUSTER-IP src,dst` when it cannot tell pods apart.
    assert cluster_ip_rules(NetfilterOptions()) == [
        "ip saddr . meta l4proto . th dport @cluster-ips-v4 jump mark-for-masquerade",
        "ip6 saddr . meta l4proto . th dport @cluster-ips-v6 jump mark-for-masquerade",
    ]


def test_each_family_without_a_cidr_of_its_own_falls_back_alone() -> None:
    rules = cluster_ip_rules(NetfilterOptions(cluster_cidrs=("10.244.0.0/16",)))
    assert rules[0].startswith("ip saddr != { 10.244.0.0/16 }")
    assert rules[1].startswith("ip6 saddr . meta l4proto")


def test_marked_traffic_is_masqueraded_in_postrouting_and_the_mark_cleared() -> None:
    rules = [
        rule.text for rule in chain(static_ruleset(NetfilterOptions()), "nat-postrouting").rules
    ]
    mark = f"0x{MASQUERADE_MARK:08x}"
    assert rules == [
        "ip saddr . ip daddr @hairpin-v4 masquerade",
        "ip6 saddr . ip6 daddr @hairpin-v6 masquerade",
        f"meta mark & {mark} == {mark} meta mark set meta mark ^ {mark} masquerade fully-random",
    ]


# IPVS's hooks (ip_vs_core.c): LOCAL_IN NF_IP_PRI_NAT_SRC - 1, LOCAL_OUT NF_IP_PRI_NAT_DST + 2.
IPVS_LOCAL_IN, IPVS_LOCAL_OUT = 99, -98


@pytest.mark.parametrize(
    ("name", "hook", "before"),
    [
        ("nat-prerouting", "prerouting", None),  # routing, let alone IPVS, comes later
        ("nat-output", "output", IPVS_LOCAL_OUT),
        ("filter-input", "input", IPVS_LOCAL_IN),
        ("filter-output", "output", IPVS_LOCAL_OUT),
    ],
)
def test_marks_and_filters_see_the_service_address_before_ipvs_rewrites_it(
    name: str, hook: str, before: int | None
) -> None:
    spec = chain(static_ruleset(NetfilterOptions()), name)
    assert spec.hook == hook
    assert before is None or spec.priority < before


def test_masquerade_happens_in_postrouting_after_ipvs() -> None:
    spec = chain(static_ruleset(NetfilterOptions()), "nat-postrouting")
    assert (spec.type, spec.hook, spec.priority) == ("nat", "postrouting", 100)


def test_the_filters_see_only_new_connections() -> None:
    ruleset = static_ruleset(NetfilterOptions())
    for name in ("filter-input", "filter-output"):
        assert all(rule.text.startswith("ct state new ") for rule in chain(ruleset, name).rules)


def test_the_port_filter_rejects_service_ips_only_after_every_allowed_port() -> None:
    rules = [r.text for r in chain(static_ruleset(NetfilterOptions()), "service-ip-filter").rules]
    assert rules[-2:] == ["ip daddr @service-ips-v4 reject", "ip6 daddr @service-ips-v6 reject"]
    assert all(rule.endswith(" return") for rule in rules[:-2])


def test_every_set_a_rule_names_is_declared_and_every_declared_set_is_used() -> None:
    ruleset = static_ruleset(NetfilterOptions())
    used = {
        name for c in ruleset.chains for r in c.rules for name in re.findall(r"@([\w-]+)", r.text)
    }
    assert used == {spec.name for spec in ruleset.sets}


def test_every_jump_goes_to_a_chain_of_the_table() -> None:
    ruleset = static_ruleset(NetfilterOptions())
    names = {c.name for c in ruleset.chains}
    targets = {
        t for c in ruleset.chains for r in c.rules for t in re.findall(r"jump ([\w-]+)", r.text)
    }
    assert targets <= names
    regular = {c.name for c in ruleset.chains if not c.hook}
    assert regular <= targets  # none is unreachable


def test_rule_comments_fit_nft_and_need_no_escaping() -> None:
    ruleset = static_ruleset(NetfilterOptions(cluster_cidrs=("10.244.0.0/16",)))
    for spec in ruleset.chains:
        for rule in spec.rules:
            assert rule.comment and len(rule.comment) <= 128 and '"' not in rule.comment


def test_the_fingerprint_follows_the_options_and_signs_the_first_rule() -> None:
    plain = static_ruleset(NetfilterOptions())
    again = static_ruleset(NetfilterOptions())
    other = static_ruleset(NetfilterOptions(masquerade_all=True))
    assert plain == again
    assert plain.fingerprint != other.fingerprint
    assert plain.chains[0].rules[0].comment.endswith(f"(ipvsctl static {plain.fingerprint})")
