"""A packet tracer for unit tests: one packet through the base chains of a `Fake` (the
table as ipvsctl's own `nft -f` script made it), hook by hook as the kernel takes it,
and what the rules did to it (as kube-proxy's nftables tests trace theirs).

The model is the few kernel facts our rules depend on, each explicit:

- the path: a packet arriving on an interface takes prerouting, then input when routing
  delivers it here (`Packet.to_node`: a node or service address) or forward then
  postrouting; a packet of this node takes output then postrouting, and when its
  destination is local, comes back in on lo (prerouting, input);
- IPVS: the case says which real server IPVS sends a packet to (`Packet.ipvs_to`). It
  takes it at its own hook priority, in input (99) or output (-98) (ip_vs_core.c), so
  chains ordered before it see the service address, those after the real server's; from
  input it sends the packet on through output and postrouting (ip_vs_nat_send_or_cont);
- conntrack: nat chains see only a connection's first packet, and each kind of NAT
  (destination: prerouting and output; source: input and postrouting) once per
  connection, so a packet IPVS sends on or that comes back in on lo skips them.

Whatever the fake cannot read raised when the script was applied; a selector the walk
cannot read raises here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from tests.netfilter.nft_fake import MAX_JUMPS, Chain, Fake, Table
from tests.netfilter.nft_rules import (
    CT_STATES,
    PROTOCOLS,
    Masquerade,
    Match,
    NftError,
    Rule,
    Selector,
    SetMark,
    Value,
    Verdict,
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
IPVS_PRIORITY = {"input": 99, "output": -98}
_DESTINATION_NAT = frozenset({"prerouting", "output"})
_TERMINAL = frozenset({"accept", "drop", "reject"})


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection (`ct_state` "new"), or a later one ("established").

    `from_node`: a process on this node sends it; else it arrives on an interface.
    `to_node`: routing delivers `destination` to this node; else it is forwarded.
    `ipvs_to`: the real server (address, port) IPVS sends it to; None: no virtual server
    takes it.
    """

    source: str
    destination: str
    port: int
    protocol: str = "tcp"
    ct_state: str = "new"
    from_node: bool = False
    to_node: bool = True
    ipvs_to: tuple[str, int] | None = None
    mark: int = 0


@dataclass(frozen=True)
class Trace:
    """What happened: `verdict` accept (it went all the way), drop or reject; whether a
    rule masqueraded it, whether one set its mark (and the mark it left with), the hooks
    it took ("ipvs" where IPVS rewrote it) and every rule whose matches all held, as
    "chain: rule"."""

    verdict: str
    masqueraded: bool
    marked: bool
    mark: int
    hooks: tuple[str, ...]
    matched: tuple[str, ...]


def trace(fake: Fake, packet: Packet) -> Trace:
    """Walk `packet` through every table of `fake`."""
    return _Walk(fake, packet).run()


@dataclass
class _Walk:
    fake: Fake
    packet: Packet
    source: Address = field(init=False)
    destination: Address = field(init=False)
    port: int = field(init=False)
    mark: int = field(init=False)
    marked: bool = False
    masqueraded: bool = False
    rewritten: bool = False
    nat_done: set[bool] = field(default_factory=set)  # True: destination NAT
    hooks: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        packet = self.packet
        self.source = ipaddress.ip_address(packet.source)
        self.destination = ipaddress.ip_address(packet.destination)
        if self.source.version != self.destination.version:
            raise ValueError(f"{packet}: source and destination of two families")
        if packet.protocol not in PROTOCOLS or packet.ct_state not in CT_STATES:
            raise ValueError(f"{packet}: protocol or ct state the tracer does not model")
        self.port, self.mark = packet.port, packet.mark

    def run(self) -> Trace:
        hook: str | None = "output" if self.packet.from_node else "prerouting"
        while hook:
            self.hooks.append(hook)
            outcome = self._hook(hook)
            if outcome in ("drop", "reject"):
                return self._trace(outcome)
            hook = self._next(hook, stolen=outcome == "stolen")
        return self._trace("accept")

    def _trace(self, verdict: str) -> Trace:
        hooks, matched = tuple(self.hooks), tuple(self.matched)
        return Trace(verdict, self.masqueraded, self.marked, self.mark, hooks, matched)

    def _next(self, hook: str, stolen: bool) -> str | None:
        if stolen:
            return "output"
        local = self.packet.to_node and not self.rewritten
        if hook == "prerouting":
            return "input" if local else "forward"
        if hook in ("forward", "output"):
            return "postrouting"
        if hook == "postrouting" and local and "prerouting" not in self.hooks:
            return "prerouting"  # back in on lo
        return None

    def _hook(self, hook: str) -> str:
        """accept, drop, reject, or stolen (IPVS took it in input)."""
        chains = sorted(
            (
                (table, chain)
                for table in self.fake.tables.values()
                for chain in table.chains.values()
                if chain.hook == hook
            ),
            key=lambda pair: pair[1].priority,
        )
        ipvs_at = IPVS_PRIORITY.get(hook) if self.packet.ipvs_to and not self.rewritten else None
        nat = self.packet.ct_state == "new" and (hook in _DESTINATION_NAT) not in self.nat_done
        for table, chain in chains:
            if ipvs_at is not None and chain.priority >= ipvs_at:
                if chain.priority == ipvs_at:
                    raise NftError(f"{chain.name}: same priority as IPVS, order undefined")
                ipvs_at = None
                if self._ipvs(hook):
                    return "stolen"
            if chain.type == "nat":
                if not nat:
                    continue
                self.nat_done.add(hook in _DESTINATION_NAT)
            verdict = self._base_chain(table, chain)
            if verdict != "accept":
                return verdict
        if ipvs_at is not None and self._ipvs(hook):
            return "stolen"
        return "accept"

    def _ipvs(self, hook: str) -> bool:
        """Rewrite the destination to the real server; True when IPVS takes the packet out
        of its hook (input)."""
        assert self.packet.ipvs_to is not None
        address, port = self.packet.ipvs_to
        real = ipaddress.ip_address(address)
        if real.version != self.destination.version:
            raise ValueError(f"{self.packet}: a real server of another family")
        self.destination, self.port, self.rewritten = real, port, True
        self.hooks.append("ipvs")
        return hook == "input"

    def _base_chain(self, table: Table, chain: Chain) -> str:
        verdict = self._chain(table, chain, 0)
        return chain.policy if verdict in (None, "return") else verdict

    def _chain(self, table: Table, chain: Chain, depth: int) -> str | None:
        """A terminal verdict, "return" when a goto ended in a return, or None: the
        chain ran out or returned."""
        for rule in chain.rules:
            outcome = self._rule(table, chain, rule, depth)
            if outcome == "return":
                return None
            if outcome is not None:
                return outcome
        return None

    def _rule(self, table: Table, chain: Chain, rule: Rule, depth: int) -> str | None:
        for index, statement in enumerate(rule.statements):
            if isinstance(statement, Match):
                if not self._matches(table, statement):
                    return None
                continue
            if not index or isinstance(rule.statements[index - 1], Match):
                self.matched.append(f"{chain.name}: {rule.text}")
            if isinstance(statement, SetMark):
                self.marked = True
                if statement.operator == "|":
                    self.mark |= statement.value
                else:
                    self.mark ^= statement.value
            elif isinstance(statement, Masquerade):
                self.masqueraded = True
                return "accept"  # a NAT statement ends the chain, as a verdict does
            elif isinstance(statement, Verdict):
                return self._verdict(table, statement, depth)
        if all(isinstance(statement, Match) for statement in rule.statements):
            self.matched.append(f"{chain.name}: {rule.text}")
        return None

    def _verdict(self, table: Table, verdict: Verdict, depth: int) -> str | None:
        if verdict.kind in _TERMINAL or verdict.kind == "return":
            return verdict.kind
        if depth + 1 > MAX_JUMPS:
            raise NftError(f"more than {MAX_JUMPS} jumps")
        outcome = self._chain(table, table.chains[verdict.chain], depth + 1)
        if verdict.kind == "goto":
            return outcome or "return"  # a goto never comes back to this chain
        return outcome

    def _matches(self, table: Table, match: Match) -> bool:
        values = [self._value(key) for key in match.keys]
        if any(value is None for value in values):
            # nft's implicit dependency (an `ip` selector on an IPv6 packet, `tcp dport`
            # on UDP) fails the rule whether the match is negated or not.
            return False
        if match.mask is not None:
            assert isinstance(values[0], int)
            values[0] &= match.mask
        elements = table.sets[match.set_name].elements if match.set_name else match.values
        found = any(
            all(_holds(expected, value) for expected, value in zip(element, values, strict=True))
            for element in elements
        )
        return found != match.negate

    def _value(self, selector: Selector) -> Address | int | str | None:
        protocol, name = selector
        if protocol in ("ip", "ip6"):
            if self.source.version != (4 if protocol == "ip" else 6):
                return None
            return self.source if name == "saddr" else self.destination
        if selector == ("meta", "l4proto"):
            return PROTOCOLS[self.packet.protocol]
        if selector == ("th", "dport"):
            return self.port
        if name == "dport" and protocol in PROTOCOLS:
            return self.port if protocol == self.packet.protocol else None
        if selector == ("meta", "mark"):
            return self.mark
        if selector == ("ct", "state"):
            return self.packet.ct_state
        raise NftError(f"the tracer cannot read {protocol} {name}")


def _holds(expected: Value, value: Address | int | str | None) -> bool:
    if isinstance(expected, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return isinstance(value, Address) and value in expected
    return expected == value
