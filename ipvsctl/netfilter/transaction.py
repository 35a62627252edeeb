"""The `nft -f -` transactions that bring ipvsctl's table to the desired state, and their
plan lines (pure).

nft applies a whole file as one kernel transaction: everything in it happens,
or nothing does, and packets never see a half-changed table.

- When the table is missing, or its chains, rules or sets are not exactly ours
  (an older release, other options, or someone's edits), it is made anew:
  `add table` then `delete table` (together idempotent: no error whether or not
  it exists), then the table with every chain, set, rule and element. knftables
  flushes chains instead; deleting the table also replaces a set whose type
  changed, which `add set` cannot, and leaves nothing stale. Connections keep
  their NAT (conntrack holds it).
- Otherwise only elements change: `delete element` then `add element`
  (deletes first: a changed source range may overlap the one it replaces, and
  nft refuses overlapping intervals). One endpoint change is one or two lines.
- `cleanup` deletes the table, and nothing else (`delete_transaction`).

Plan lines (`diff`, `--dry-run`) read like the nft commands, one element each:

    nft add element inet ipvsctl masq-services-v4 { 203.0.113.7 . tcp . 80 }
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from itertools import groupby, islice
from typing import NamedTuple

from ipvsctl.netfilter.desired import Element
from ipvsctl.netfilter.ruleset import FAMILY, TABLE, StaticRuleset
from ipvsctl.netfilter.table_state import TableState

# Elements per `add element` line of a table made anew: nft sends each line as
# one netlink message per set (split as needed), so 30,000 elements cost 30
# lines, not 30,000.
ELEMENTS_PER_LINE = 1000
_WHERE = f"{FAMILY} {TABLE}"


class ElementChanges(NamedTuple):
    """Elements to delete and to add, each sorted (set, then value)."""

    delete: tuple[Element, ...] = ()
    add: tuple[Element, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.delete and not self.add


def element_changes(current: Collection[Element], desired: Collection[Element]) -> ElementChanges:
    """What turns the `current` elements into the `desired` ones, element by element."""
    have, want = set(current), set(desired)
    return ElementChanges(tuple(sorted(have - want)), tuple(sorted(want - have)))


class NetfilterPlan(NamedTuple):
    """What to do to the table. `create`: make it anew as `ruleset` has it (with
    `changes.add` its every element); `replace`: it exists and is made anew;
    `delete`: remove it (cleanup)."""

    create: bool = False
    replace: bool = False
    changes: ElementChanges = ElementChanges()
    delete: bool = False
    ruleset: StaticRuleset | None = None

    @property
    def is_empty(self) -> bool:
        return not self.create and not self.delete and self.changes.is_empty


def plan_table(
    state: TableState, ruleset: StaticRuleset, desired: Collection[Element]
) -> NetfilterPlan:
    """The plan that makes the table hold `ruleset` and exactly the `desired` elements."""
    if not state.exists or state.drift(ruleset):
        return NetfilterPlan(
            create=True,
            replace=state.exists,
            changes=ElementChanges(add=tuple(sorted(desired))),
            ruleset=ruleset,
        )
    return NetfilterPlan(changes=element_changes(state.elements, desired))


def plan_cleanup(state: TableState) -> NetfilterPlan:
    """The plan that removes our table (nothing when there is none)."""
    return NetfilterPlan(delete=state.exists)


def transaction(plan: NetfilterPlan) -> str:
    """The `nft -f -` text that carries out `plan`; empty when there is nothing to do."""
    if plan.delete:
        return delete_transaction()
    if plan.create:
        return create_transaction(_ruleset(plan), plan.changes.add)
    return update_transaction(plan.changes)


def create_transaction(ruleset: StaticRuleset, elements: Iterable[Element]) -> str:
    """The whole table, made anew whether or not it exists, holding `elements`."""
    lines = [f"add table {_WHERE}", f"delete table {_WHERE}", f"add table {_WHERE}"]
    lines.extend(ruleset.lines())
    lines.extend(_element_lines("add", sorted(elements), ELEMENTS_PER_LINE))
    return "\n".join(lines) + "\n"


def update_transaction(changes: ElementChanges) -> str:
    """Element lines only: deletes first, then adds, one line per set."""
    lines = list(_element_lines("delete", changes.delete, ELEMENTS_PER_LINE))
    lines.extend(_element_lines("add", changes.add, ELEMENTS_PER_LINE))
    return "\n".join(lines) + "\n" if lines else ""


def delete_transaction() -> str:
    """Remove our table, and nothing else; no error when it is already gone."""
    return f"add table {_WHERE}\ndelete table {_WHERE}\n"


def element_line(verb: str, element: Element) -> str:
    """`add element inet ipvsctl masq-services-v4 { 203.0.113.7 . tcp . 80 }`."""
    return f"{verb} element {_WHERE} {element.set} {{ {element.text} }}"


def _ruleset(plan: NetfilterPlan) -> StaticRuleset:
    if plan.ruleset is None:
        raise ValueError("a plan that makes the table anew needs its ruleset")
    return plan.ruleset


def plan_lines(plan: NetfilterPlan) -> list[str]:
    """The plan as nft commands, one element per line, in the order they are carried out."""
    if plan.delete:
        return [f"nft delete table {_WHERE}"]
    lines: list[str] = []
    if plan.create:
        if plan.replace:
            lines.append(f"nft delete table {_WHERE}")
        lines.append(f"nft add table {_WHERE}")
        lines.extend(f"nft {line}" for line in _ruleset(plan).lines())
    lines.extend(f"nft {element_line('delete', e)}" for e in plan.changes.delete)
    lines.extend(f"nft {element_line('add', e)}" for e in plan.changes.add)
    return lines


def plan_steps(plan: NetfilterPlan) -> list[dict[str, str]]:
    """The plan as JSON-ready steps (`-o json`), one per plan line, same order:
    `{"op": "nft add element", "set": str, "element": str}` (or "nft delete element"),
    `{"op": "nft add table" | "nft delete table", "table": "inet ipvsctl"}`, and
    `{"op": "nft", "command": str}` for a chain, set or rule of a table made anew."""
    if plan.delete:
        return [{"op": "nft delete table", "table": _WHERE}]
    steps: list[dict[str, str]] = []
    if plan.create:
        if plan.replace:
            steps.append({"op": "nft delete table", "table": _WHERE})
        steps.append({"op": "nft add table", "table": _WHERE})
        steps.extend({"op": "nft", "command": line} for line in _ruleset(plan).lines())
    for verb, elements in (("delete", plan.changes.delete), ("add", plan.changes.add)):
        steps.extend(
            {"op": f"nft {verb} element", "set": e.set, "element": e.text} for e in elements
        )
    return steps


def _element_lines(verb: str, elements: Iterable[Element], per_line: int) -> Iterator[str]:
    """One line per set (and per `per_line` elements) for `elements` sorted by set."""
    for name, group in groupby(elements, key=lambda element: element.set):
        members = iter(group)
        while chunk := list(islice(members, per_line)):
            texts = ", ".join(element.text for element in chunk)
            yield f"{verb} element {_WHERE} {name} {{ {texts} }}"
