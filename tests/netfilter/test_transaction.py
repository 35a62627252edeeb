"""Plans and `nft -f -` transactions: the whole table when it is missing or not ours as we
make it, element lines only otherwise, and nothing but our table, ever."""

from __future__ import annotations

import re

from ipvsctl.netfilter import (
    ABSENT,
    Element,
    NetfilterOptions,
    NetfilterPlan,
    create_transaction,
    delete_transaction,
    element_changes,
    parse_listing,
    plan_cleanup,
    plan_lines,
    plan_steps,
    plan_table,
    static_ruleset,
    transaction,
    update_transaction,
)
from ipvsctl.netfilter.transaction import ElementChanges
from tests.netfilter.builders import nft_listing

RULESET = static_ruleset(NetfilterOptions(cluster_cidrs=("10.244.0.0/16",)))
WEB = Element("masq-services-v4", ("203.0.113.7", "tcp", "80"))
POD = Element("hairpin-v4", ("10.244.1.5", "10.244.1.5"))
NEW_POD = Element("hairpin-v4", ("10.244.1.6", "10.244.1.6"))
VIP = Element("service-ips-v4", ("10.96.0.10",))
PORT = Element("cluster-ips-v4", ("10.96.0.10", "tcp", "80"))


def test_a_missing_table_is_made_whole_with_every_element() -> None:
    plan = plan_table(ABSENT, RULESET, {WEB, POD})
    assert plan.create and not plan.replace
    text = transaction(plan)
    lines = text.splitlines()
    assert lines[:3] == [
        "add table inet ipvsctl",
        "delete table inet ipvsctl",
        "add table inet ipvsctl",
    ]
    assert lines[3 : 3 + len(RULESET.lines())] == RULESET.lines()
    assert lines[-2:] == [
        "add element inet ipvsctl hairpin-v4 { 10.244.1.5 . 10.244.1.5 }",
        "add element inet ipvsctl masq-services-v4 { 203.0.113.7 . tcp . 80 }",
    ]


def test_a_table_as_we_make_it_gets_element_lines_only() -> None:
    state = parse_listing(nft_listing(RULESET, [VIP, PORT, POD]))
    plan = plan_table(state, RULESET, {VIP, PORT, POD, NEW_POD})
    assert not plan.create
    assert transaction(plan) == (
        "add element inet ipvsctl hairpin-v4 { 10.244.1.6 . 10.244.1.6 }\n"
    )


def test_one_endpoint_moving_is_one_delete_and_one_add_line() -> None:
    changes = element_changes({VIP, PORT, POD}, {VIP, PORT, NEW_POD})
    assert update_transaction(changes) == (
        "delete element inet ipvsctl hairpin-v4 { 10.244.1.5 . 10.244.1.5 }\n"
        "add element inet ipvsctl hairpin-v4 { 10.244.1.6 . 10.244.1.6 }\n"
    )


def test_deletes_come_first_so_a_changed_source_range_never_overlaps_its_old_one() -> None:
    old = Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "80", "10.0.0.0/8"))
    new = Element("lb-source-ranges-v4", ("198.51.100.1", "tcp", "80", "10.0.0.0/16"))
    lines = update_transaction(element_changes({old}, {new})).splitlines()
    assert [line.split()[0] for line in lines] == ["delete", "add"]


def test_changes_to_several_sets_are_one_line_per_set() -> None:
    changes = element_changes(set(), {VIP, PORT, POD, NEW_POD})
    assert update_transaction(changes).splitlines() == [
        "add element inet ipvsctl cluster-ips-v4 { 10.96.0.10 . tcp . 80 }",
        "add element inet ipvsctl hairpin-v4 { 10.244.1.5 . 10.244.1.5, 10.244.1.6 . 10.244.1.6 }",
        "add element inet ipvsctl service-ips-v4 { 10.96.0.10 }",
    ]


def test_a_big_table_sends_its_elements_a_thousand_to_a_line() -> None:
    ports = [Element("cluster-ips-v4", ("10.96.0.10", "tcp", str(p))) for p in range(1, 2501)]
    lines = [line for line in create_transaction(RULESET, ports).splitlines() if "element" in line]
    assert [line.count(" . tcp . ") for line in lines] == [1000, 1000, 500]


def test_nothing_to_change_is_an_empty_plan_and_no_transaction() -> None:
    state = parse_listing(nft_listing(RULESET, [VIP, PORT]))
    plan = plan_table(state, RULESET, {VIP, PORT})
    assert plan.is_empty
    assert transaction(plan) == ""
    assert plan_lines(plan) == []


def test_a_drifted_table_is_replaced_whole() -> None:
    state = parse_listing(nft_listing(static_ruleset(NetfilterOptions()), [VIP, WEB]))
    plan = plan_table(state, RULESET, {VIP})
    assert plan.create and plan.replace
    assert plan.changes == ElementChanges(add=(VIP,))
    lines = plan_lines(plan)
    assert lines[:2] == ["nft delete table inet ipvsctl", "nft add table inet ipvsctl"]
    assert lines[-1] == "nft add element inet ipvsctl service-ips-v4 { 10.96.0.10 }"


def test_plan_lines_read_as_nft_commands_one_element_each() -> None:
    plan = NetfilterPlan(changes=element_changes({POD}, {WEB, NEW_POD}))
    assert plan_lines(plan) == [
        "nft delete element inet ipvsctl hairpin-v4 { 10.244.1.5 . 10.244.1.5 }",
        "nft add element inet ipvsctl hairpin-v4 { 10.244.1.6 . 10.244.1.6 }",
        "nft add element inet ipvsctl masq-services-v4 { 203.0.113.7 . tcp . 80 }",
    ]


def test_plan_steps_match_plan_lines_one_for_one() -> None:
    plan = plan_table(ABSENT, RULESET, {WEB})
    steps = plan_steps(plan)
    assert len(steps) == len(plan_lines(plan))
    assert steps[0] == {"op": "nft add table", "table": "inet ipvsctl"}
    assert steps[-1] == {
        "op": "nft add element",
        "set": "masq-services-v4",
        "element": "203.0.113.7 . tcp . 80",
    }


def test_cleanup_deletes_our_table_only_when_it_is_there() -> None:
    state = parse_listing(nft_listing(RULESET, [VIP]))
    assert plan_lines(plan_cleanup(state)) == ["nft delete table inet ipvsctl"]
    assert plan_cleanup(ABSENT).is_empty
    assert transaction(plan_cleanup(state)) == delete_transaction()
    assert delete_transaction() == "add table inet ipvsctl\ndelete table inet ipvsctl\n"


def test_no_transaction_names_any_table_but_ours() -> None:
    texts = [
        create_transaction(RULESET, [VIP, PORT, WEB, POD]),
        update_transaction(element_changes({POD}, {NEW_POD})),
        delete_transaction(),
    ]
    for line in "".join(texts).splitlines():
        assert re.match(r"^(add|delete) (table|chain|set|rule|element) inet ipvsctl\b", line), line
    assert "flush ruleset" not in "".join(texts)
