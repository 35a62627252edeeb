"""The statements of nft rules the fake (`nft_fake`) understands, and their parser: the
subset of nft syntax ipvsctl's table uses, and nothing more.

A construct outside it raises NftError, never is skipped: a rule the tracer cannot read
must fail the tests, or a changed rule could let them pass without testing it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import NamedTuple, TypeAlias

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
# A field of an element or literal: an address is a network of full length, so that a
# lookup treats a prefix and an address alike; protocols and ports are numbers.
Value: TypeAlias = Network | int | str
Element: TypeAlias = tuple[Value, ...]


class NftError(ValueError):
    """A construct the fake does not know, or a script nft would refuse."""


PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132}
CT_STATES = frozenset({"new", "established", "related", "invalid", "untracked"})
SELECTORS: dict[tuple[str, str], str] = {
    ("ip", "saddr"): "ipv4_addr",
    ("ip", "daddr"): "ipv4_addr",
    ("ip6", "saddr"): "ipv6_addr",
    ("ip6", "daddr"): "ipv6_addr",
    ("meta", "l4proto"): "inet_proto",
    ("th", "dport"): "inet_service",
    ("tcp", "dport"): "inet_service",
    ("udp", "dport"): "inet_service",
    ("meta", "mark"): "mark",
    ("ct", "state"): "ct_state",
}
SET_TYPES = frozenset({"ipv4_addr", "ipv6_addr", "inet_proto", "inet_service"})
_SIMPLE_VERDICTS = frozenset({"accept", "drop", "reject", "return"})
TOKEN = re.compile(r'"[^"]*"|[{};,]|[^\s{};,]+')


class Selector(NamedTuple):
    """What a match reads from the packet: `ip saddr`, `meta l4proto`, ..."""

    protocol: str
    field: str

    @property
    def datatype(self) -> str:
        return SELECTORS[(self.protocol, self.field)]


class Match(NamedTuple):
    """`keys` (a concatenation), masked, compared with a named set's elements or `values`."""

    keys: tuple[Selector, ...]
    negate: bool = False
    mask: int | None = None
    set_name: str = ""
    values: tuple[Element, ...] = ()


class SetMark(NamedTuple):
    """`meta mark set meta mark OP value`."""

    operator: str  # "|" or "^"
    value: int


class Masquerade(NamedTuple):
    fully_random: bool = False


class Verdict(NamedTuple):
    kind: str  # accept, drop, reject, return, jump, goto
    chain: str = ""  # jump and goto


Statement: TypeAlias = Match | SetMark | Masquerade | Verdict


class Rule(NamedTuple):
    text: str  # as written, less its comment
    statements: tuple[Statement, ...]


class Tokens:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[str] = TOKEN.findall(text)
        self.at = 0

    def peek(self, ahead: int = 0) -> str:
        index = self.at + ahead
        return self.items[index] if index < len(self.items) else ""

    def take(self) -> str:
        if self.at >= len(self.items):
            raise self.error("it ends too early")
        self.at += 1
        return self.items[self.at - 1]

    def expect(self, *words: str) -> None:
        for word in words:
            if (got := self.take()) != word:
                raise self.error(f'"{word}" expected, "{got}" found')

    def done(self) -> bool:
        return self.at >= len(self.items)

    def end(self) -> None:
        if not self.done():
            raise self.error(f'"{self.peek()}" not understood')

    def error(self, what: str) -> NftError:
        return NftError(f"{what}: {self.text!r}")


def parse_element(tokens: Tokens, datatypes: tuple[str, ...], ranges: bool) -> Element:
    fields: list[Value] = []
    for index, datatype in enumerate(datatypes):
        if index:
            tokens.expect(".")
        fields.append(parse_value(tokens, tokens.take(), datatype, ranges))
    return tuple(fields)


def parse_value(tokens: Tokens, text: str, datatype: str, ranges: bool) -> Value:
    if datatype in ("ipv4_addr", "ipv6_addr"):
        try:
            network = ipaddress.ip_network(text)  # strict: host bits are a mistake here
        except ValueError:
            raise tokens.error(f"{text} is not a canonical address or prefix") from None
        if network.version != (4 if datatype == "ipv4_addr" else 6):
            raise tokens.error(f"{text} is not of type {datatype}")
        if not ranges and network.prefixlen != network.max_prefixlen:
            raise tokens.error(f"{text}: a prefix needs a set with flags interval")
        return network
    if datatype == "inet_proto" and text in PROTOCOLS:
        return PROTOCOLS[text]
    if datatype == "inet_service" and text.isdigit() and int(text) < 65536:
        return int(text)
    if datatype == "mark" and re.fullmatch(r"0x[0-9a-fA-F]+|\d+", text):
        return int(text, 0)
    if datatype == "ct_state" and text in CT_STATES:
        return text
    raise tokens.error(f'"{text}" is not a {datatype} the fake knows')


def parse_rule(
    tokens: Tokens, text: str, sets: Mapping[str, tuple[str, ...]], chains: Collection[str]
) -> Rule:
    """The rest of `tokens` as a rule: `sets` are the table's sets' types, `chains` its chains."""
    statements: list[Statement] = []
    while not tokens.done():
        word = tokens.peek()
        if word == "comment" and tokens.peek(1).startswith('"'):
            tokens.at += 2
            tokens.end()
            break
        if statements and isinstance(statements[-1], Verdict | Masquerade):
            raise tokens.error(f'"{word}" after a terminal statement')
        if word in _SIMPLE_VERDICTS:
            statements.append(Verdict(tokens.take()))
        elif word in ("jump", "goto"):
            kind, target = tokens.take(), tokens.take()
            if target not in chains:
                raise tokens.error(f"no chain {target} to {kind} to")
            statements.append(Verdict(kind, target))
        elif word == "masquerade":
            tokens.take()
            random = tokens.peek() == "fully-random"
            if random:
                tokens.take()
            statements.append(Masquerade(random))
        elif [tokens.peek(i) for i in range(3)] == ["meta", "mark", "set"]:
            tokens.expect("meta", "mark", "set", "meta", "mark")
            operator = tokens.take()
            if operator not in ("|", "^"):
                raise tokens.error(f'mark operator "{operator}" not supported')
            value = parse_value(tokens, tokens.take(), "mark", False)
            assert isinstance(value, int)
            statements.append(SetMark(operator, value))
        else:
            statements.append(_match(tokens, sets))
    return Rule(text, tuple(statements))


def _selector(tokens: Tokens) -> Selector:
    selector = Selector(tokens.peek(), tokens.peek(1))
    if selector not in SELECTORS:
        raise tokens.error(f'"{" ".join(selector).strip()}" not understood')
    tokens.at += 2
    return selector


def _match(tokens: Tokens, sets: Mapping[str, tuple[str, ...]]) -> Match:
    keys = [_selector(tokens)]
    while tokens.peek() == ".":
        tokens.take()
        keys.append(_selector(tokens))
    datatypes = tuple(key.datatype for key in keys)
    mask: int | None = None
    if tokens.peek() == "&":
        if datatypes != ("mark",):
            raise tokens.error("a mask on anything but meta mark is not supported")
        tokens.take()
        value = parse_value(tokens, tokens.take(), "mark", False)
        assert isinstance(value, int)
        mask = value
    negate = False
    if tokens.peek() in ("==", "!="):
        negate = tokens.take() == "!="
    if tokens.peek().startswith("@"):
        name = tokens.take()[1:]
        if name not in sets:
            raise tokens.error(f"no set {name}")
        if sets[name] != datatypes:
            raise tokens.error(f"datatype mismatch: {' . '.join(datatypes)} in @{name}")
        return Match(tuple(keys), negate, mask, set_name=name)
    if tokens.peek() != "{":
        return Match(tuple(keys), negate, mask, values=(parse_element(tokens, datatypes, True),))
    tokens.take()
    values = [parse_element(tokens, datatypes, True)]
    while (separator := tokens.take()) != "}":
        if separator != ",":
            raise tokens.error(f'"{separator}" in an anonymous set')
        values.append(parse_element(tokens, datatypes, True))
    return Match(tuple(keys), negate, mask, values=tuple(values))
