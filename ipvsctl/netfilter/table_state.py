"""What ipvsctl's table holds, from `nft -j list table inet ipvsctl` (pure).

The listing follows libnftables' JSON schema (man libnftables-json): a
top-level `{"nftables": [...]}` of one-key objects (`metainfo`, `table`,
`chain`, `rule`, `set`, ...). Two things are read from it:

- the elements of our sets, in the spelling `desired.py` uses, so the two
  compare as equal values;
- the static part's shape: chains (type, hook, priority, policy and the
  comments of their rules, in order) and sets (type, interval flag). The
  first rule's comment carries the fingerprint of the rule text
  (`ruleset.py`), so comparing comments finds rules written by another
  release or for other options, and rules added or removed by hand. Rule
  expressions themselves are not compared: nft lists them in its own normal
  form, which changes between versions.

Anything else in the table (a map, a chain we do not make, an element that
cannot be read) is drift: the next transaction makes the table anew.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from ipvsctl.model import canonical_address
from ipvsctl.model.names import PROTOCOL_KEYWORDS
from ipvsctl.netfilter.desired import Element
from ipvsctl.netfilter.ruleset import FAMILY, TABLE, ChainSpec, SetSpec, StaticRuleset

_ADDRESS_TYPES = frozenset({"ipv4_addr", "ipv6_addr"})


class ListedChain(NamedTuple):
    name: str
    type: str = ""  # base chains only
    hook: str = ""
    priority: int = 0
    policy: str = ""
    comments: tuple[str, ...] = ()  # of its rules, in order ("" for a rule without one)


class TableState(NamedTuple):
    """The table as listed; `problems` are the parts of it that could not be read."""

    exists: bool
    chains: tuple[ListedChain, ...] = ()
    sets: tuple[SetSpec, ...] = ()
    elements: frozenset[Element] = frozenset()
    problems: tuple[str, ...] = ()

    def drift(self, ruleset: StaticRuleset) -> tuple[str, ...]:
        """How the table's static part differs from `ruleset`, one line each; empty when
        it is as `ruleset` makes it."""
        if not self.exists:
            return ("no table",)
        found = list(self.problems)
        want = {chain.name: _expected_chain(chain) for chain in ruleset.chains}
        have = {chain.name: chain for chain in self.chains}
        found.extend(_differences("chain", want, have))
        found.extend(
            _differences("set", {s.name: s for s in ruleset.sets}, {s.name: s for s in self.sets})
        )
        return tuple(found)


ABSENT = TableState(exists=False)


def parse_listing(text: str) -> TableState:
    """The table in `nft -j list table inet ipvsctl` output. ValueError when the output is
    not that listing at all (not JSON, no `nftables` list)."""
    try:
        document = json.loads(text)
        items = document["nftables"]
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"not an nft JSON listing: {error}") from None
    if not isinstance(items, list):
        raise ValueError("not an nft JSON listing: `nftables` is not a list")
    exists = False
    chains: dict[str, ListedChain] = {}
    sets: list[SetSpec] = []
    elements: set[Element] = set()
    problems: list[str] = []
    for item in items:
        if not isinstance(item, Mapping) or len(item) != 1:
            problems.append(f"unreadable object {_short(item)}")
            continue
        ((kind, body),) = item.items()
        if kind == "metainfo":
            continue
        if not isinstance(body, Mapping) or not _ours(body, kind):
            problems.append(f"{kind} {_short(body)}: not in table {FAMILY} {TABLE}")
            continue
        if kind == "table":
            exists = True
        elif kind == "chain":
            name = str(body.get("name", ""))
            chains[name] = _chain(body, chains.get(name))
        elif kind == "rule":
            name = str(body.get("chain", ""))
            chain = chains.get(name, ListedChain(name))
            comment = str(body.get("comment", ""))
            chains[name] = chain._replace(comments=(*chain.comments, comment))
        elif kind == "set":
            spec, members, unread = _set(body)
            sets.append(spec)
            elements.update(members)
            problems.extend(unread)
        else:
            problems.append(f"{kind} {body.get('name', '')}: not made by ipvsctl")
    return TableState(
        exists, tuple(chains.values()), tuple(sets), frozenset(elements), tuple(problems)
    )


def _ours(body: Mapping[str, Any], kind: str) -> bool:
    table = body.get("name") if kind == "table" else body.get("table")
    return body.get("family") == FAMILY and table == TABLE


def _chain(body: Mapping[str, Any], listed: ListedChain | None) -> ListedChain:
    # A rule listed before its chain (nft lists chains first) keeps its comment.
    comments = listed.comments if listed else ()
    priority = body.get("prio", 0)
    return ListedChain(
        str(body.get("name", "")),
        str(body.get("type", "")),
        str(body.get("hook", "")),
        priority if isinstance(priority, int) else 0,
        str(body.get("policy", "")),
        comments,
    )


def _expected_chain(spec: ChainSpec) -> ListedChain:
    return ListedChain(
        spec.name,
        spec.type,
        spec.hook,
        spec.priority,
        "accept" if spec.hook else "",
        tuple(rule.comment for rule in spec.rules),
    )


def _differences(what: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for name in sorted(set(want) | set(have)):
        if name not in have:
            found.append(f"{what} {name}: missing")
        elif name not in want:
            found.append(f"{what} {name}: not made by ipvsctl")
        elif want[name] != have[name]:
            found.append(f"{what} {name}: not as ipvsctl makes it")
    return found


def _set(body: Mapping[str, Any]) -> tuple[SetSpec, list[Element], list[str]]:
    name = str(body.get("name", ""))
    raw_type = body.get("type", ())
    types = (raw_type,) if isinstance(raw_type, str) else tuple(str(t) for t in raw_type)
    # nft before 1.0.7 prints a single flag as a string, later ones as a list.
    flags = body.get("flags", ())
    flags = (flags,) if isinstance(flags, str) else tuple(flags)
    spec = SetSpec(name, types, "interval" in flags)
    raw = body.get("elem", [])
    members: list[Element] = []
    unread: list[str] = []
    for item in raw if isinstance(raw, list) else [raw]:
        try:
            members.append(Element(name, _element_value(item, spec)))
        except (ValueError, TypeError, KeyError, AttributeError):
            unread.append(f"set {name}: unreadable element {_short(item)}")
    return spec, members, unread


def _element_value(item: Any, spec: SetSpec) -> tuple[str, ...]:
    """One element's fields in `desired.py`'s spelling. In an interval set (ours have
    one: lb-source-ranges) the last field is a CIDR, the others single values."""
    if isinstance(item, Mapping) and "elem" in item:
        item = item["elem"]["val"]
    fields = item["concat"] if isinstance(item, Mapping) and "concat" in item else [item]
    if len(fields) != len(spec.type):
        raise ValueError("field count")
    last = len(fields) - 1
    return tuple(
        _field(value, kind, spec.interval and index == last)
        for index, (value, kind) in enumerate(zip(fields, spec.type, strict=True))
    )


def _field(value: Any, kind: str, cidr: bool) -> str:
    if kind in _ADDRESS_TYPES:
        if cidr:
            return _cidr(value)
        if not isinstance(value, str):
            raise ValueError("address")
        return canonical_address(value)
    if kind == "inet_proto":
        return PROTOCOL_KEYWORDS.get(value, str(value)) if isinstance(value, int) else str(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(kind)
    return str(value)


def _cidr(value: Any) -> str:
    if isinstance(value, str):
        return str(ipaddress.ip_network(value))  # a single address: its host network
    if "prefix" in value:
        prefix = value["prefix"]
        return str(ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}"))
    low, high = (ipaddress.ip_address(v) for v in value["range"])
    networks = list(ipaddress.summarize_address_range(low, high))
    return str(networks[0]) if len(networks) == 1 else f"{low}-{high}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
