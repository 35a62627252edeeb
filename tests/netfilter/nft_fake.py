"""A fake `nft -f` for unit tests: it applies scripts to tables held in memory, which
`packet_tracer` walks packets through. It knows the commands, chains and sets of
ipvsctl's table, and its rules' statements through `nft_rules`.

Anything else raises NftError: a rule the tracer cannot read must fail the tests, never
be skipped, or a changed rule could let them pass without testing it. Where nft itself
refuses a script (a set lookup of another type than the set's, a prefix in a set without
intervals, overlapping intervals, a missing element deleted, a jump to a missing chain,
masquerade outside nat postrouting), so does this, for the same reasons.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from tests.netfilter.nft_rules import (
    SET_TYPES,
    Element,
    Masquerade,
    Network,
    NftError,
    Rule,
    Tokens,
    Verdict,
    parse_element,
    parse_rule,
)

HOOKS = {
    "filter": frozenset({"prerouting", "input", "forward", "output", "postrouting"}),
    "nat": frozenset({"prerouting", "input", "output", "postrouting"}),
}
# The kernel's nft_reject_validate and nft_masq_validate.
REJECT_HOOKS = frozenset({"prerouting", "input", "forward", "output"})
MAX_JUMPS = 16  # NFT_JUMP_STACK_SIZE
_RULE_TEXT = re.compile(r'^add rule \S+ \S+ \S+ (?P<text>.*?)(?: comment "[^"]*")?$')


@dataclass
class Chain:
    name: str
    type: str = ""  # base chains only
    hook: str = ""
    priority: int = 0
    policy: str = "accept"
    rules: list[Rule] = field(default_factory=list)


@dataclass
class NftSet:
    name: str
    type: tuple[str, ...]
    interval: bool = False
    elements: set[Element] = field(default_factory=set)


@dataclass
class Table:
    family: str
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, NftSet] = field(default_factory=dict)


class Fake:
    """The tables the applied scripts made, as nft would hold them."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], Table] = {}

    def apply(self, script: str) -> None:
        """Apply an `nft -f` script all or nothing, as nft does (one kernel transaction)."""
        tables = copy.deepcopy(self.tables)
        for line in script.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                _command(tables, line.strip())
        for table in tables.values():
            _validate(table)
        self.tables = tables


def _command(tables: dict[tuple[str, str], Table], line: str) -> None:
    tokens = Tokens(line)
    verb, kind, family, name = (tokens.take() for _ in range(4))
    if family != "inet":
        raise tokens.error(f"family {family} not supported")
    key = (family, name)
    if kind == "table":
        tokens.end()
        if verb == "add":
            tables.setdefault(key, Table(family, name))
        elif verb == "delete" and key in tables:
            del tables[key]
        else:
            raise tokens.error("no such table, or not a table command the fake knows")
        return
    table = tables.get(key)
    if table is None:
        raise tokens.error("no such table")
    if (verb, kind) == ("add", "chain"):
        chain = _chain(tokens)
        if chain.name in table.chains:
            raise tokens.error("the fake does not merge a chain added twice")
        table.chains[chain.name] = chain
    elif (verb, kind) == ("add", "set"):
        spec = _set(tokens)
        if spec.name in table.sets:
            raise tokens.error("the fake does not merge a set added twice")
        table.sets[spec.name] = spec
    elif (verb, kind) == ("add", "rule"):
        name = tokens.take()
        if name not in table.chains:
            raise tokens.error("no such chain")
        text = _RULE_TEXT.match(line)
        assert text is not None
        set_types = {spec.name: spec.type for spec in table.sets.values()}
        rule = parse_rule(tokens, text["text"], set_types, table.chains)
        table.chains[name].rules.append(rule)
    elif kind == "element" and verb in ("add", "delete"):
        _elements(tokens, table, verb)
    else:
        raise tokens.error(f'"{verb} {kind}" not supported')


def _chain(tokens: Tokens) -> Chain:
    chain = Chain(tokens.take())
    if tokens.done():
        return chain
    tokens.expect("{")
    while tokens.peek() != "}":
        word = tokens.take()
        if word == "type":
            chain.type = tokens.take()
            tokens.expect("hook")
            chain.hook = tokens.take()
            tokens.expect("priority")
            priority = tokens.take()
            if not re.fullmatch(r"-?\d+", priority):
                raise tokens.error(f"priority {priority} not supported (numbers only)")
            chain.priority = int(priority)
        elif word == "policy" and tokens.peek() in ("accept", "drop"):
            chain.policy = tokens.take()
        else:
            raise tokens.error(f'chain clause "{word}" not supported')
        tokens.expect(";")
    tokens.expect("}")
    tokens.end()
    if chain.hook not in HOOKS.get(chain.type, ()):
        raise tokens.error(f"no {chain.type} chain hooks {chain.hook}")
    return chain


def _set(tokens: Tokens) -> NftSet:
    spec = NftSet(tokens.take(), ())
    tokens.expect("{")
    while tokens.peek() != "}":
        word = tokens.take()
        if word == "type":
            types = [tokens.take()]
            while tokens.peek() == ".":
                tokens.take()
                types.append(tokens.take())
            if not set(types) <= SET_TYPES:
                raise tokens.error(f"set type {' . '.join(types)} not supported")
            spec.type = tuple(types)
        elif word == "flags" and tokens.peek() == "interval":
            tokens.take()
            spec.interval = True
        else:
            raise tokens.error(f'set clause "{word}" not supported')
        tokens.expect(";")
    tokens.expect("}")
    tokens.end()
    if not spec.type:
        raise tokens.error("a set needs a type")
    return spec


def _elements(tokens: Tokens, table: Table, verb: str) -> None:
    spec = table.sets.get(tokens.take())
    if spec is None:
        raise tokens.error("no such set")
    tokens.expect("{")
    while True:
        element = parse_element(tokens, spec.type, spec.interval)
        if verb == "delete":
            if element not in spec.elements:
                raise tokens.error(f"no such element {element}")
            spec.elements.remove(element)
        elif element not in spec.elements:
            if spec.interval and any(_overlap(element, e) for e in spec.elements):
                raise tokens.error(f"{element} overlaps an element of {spec.name}")
            spec.elements.add(element)
        separator = tokens.take()
        if separator == "}":
            break
        if separator != ",":
            raise tokens.error(f'"{separator}" between elements')
    tokens.end()


def _overlap(one: Element, other: Element) -> bool:
    return all(
        a.overlaps(b) if isinstance(a, Network) and isinstance(b, Network) else a == b
        for a, b in zip(one, other, strict=True)
    )


def _validate(table: Table) -> None:
    """What nft checks when it commits: every chain a base chain reaches may hold its
    statements there, and no jump loops."""
    for base in table.chains.values():
        if base.hook:
            _check_reach(table, base, base, ())


def _check_reach(table: Table, base: Chain, chain: Chain, path: tuple[str, ...]) -> None:
    if chain.name in path or len(path) > MAX_JUMPS:
        raise NftError(f"jump loop or too deep: {' -> '.join((*path, chain.name))}")
    where = f"{chain.name} (from {base.type} {base.hook})"
    nat_postrouting = (base.type, base.hook) == ("nat", "postrouting")
    for rule in chain.rules:
        for statement in rule.statements:
            if isinstance(statement, Masquerade) and not nat_postrouting:
                raise NftError(f"masquerade in {where}: nat postrouting only")
            if isinstance(statement, Verdict):
                if statement.kind == "reject" and base.hook not in REJECT_HOOKS:
                    raise NftError(f"reject in {where}")
                if statement.chain:
                    target = table.chains[statement.chain]
                    _check_reach(table, base, target, (*path, chain.name))
