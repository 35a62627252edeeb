"""One line of block YAML into the events it holds, for `yaml_documents`.

A line is read once per spelling (indent included): manifests repeat most of
their lines (`  namespace: bench`, `    protocol: TCP`), so the events of a
spelling are remembered and the next occurrence costs one dict lookup.

Events are (kind, column, key, value): DASH (a sequence item starts at the
column; what follows it on the line, if anything, is its value), KEY (a mapping
entry: the value is a scalar, NESTED when it is on the next lines, LITERAL or
LITERAL_STRIP for a `|` or `|-` block scalar, or a flow collection) and SCALAR
(a one-line scalar or flow collection as a node of its own). Anything else
raises NotSimple. A line holding a flow collection is not remembered (each
occurrence needs a collection of its own): its collection is, by its spelling,
and copied for the next occurrence.

Plain scalars are resolved and constructed by PyYAML's own resolver table and
SafeConstructor (YAML 1.1: `yes` is True, `0x1F` is 31, `2001-12-14` a date).
"""

from __future__ import annotations

import re
from typing import Any

from ipvsctl.sources.files.limits import MAX_DEPTH, MAX_NUMBER_CHARS
from ipvsctl.sources.files.yaml_scalars import (
    DATA_TAGS,
    IMPLICIT_RESOLVERS,
    NUMBER_TAGS,
    construct,
    pyyaml_agrees,
)

# One-line plain scalars, more conservative than YAML (so libyaml and PyYAML agree
# on every one): no `?` or `:` first, no `#` or `:` after a space, and in flow
# context none of `,?[]{}#` and a `:` only before a character a scalar may hold.
_BLOCK_RUN = r"[^: ]*(?::+[^: ]+)*"
_BLOCK_PLAIN = rf"(?:[^-?:,\[\]{{}}#&*!|>'\"%@` ]|-(?=[^ ])){_BLOCK_RUN}(?: +[^:# ]{_BLOCK_RUN})*"
_FLOW_CHAR = r"[^ ,?\[\]{}#:]"
_FLOW_RUN = rf"{_FLOW_CHAR}*(?::+{_FLOW_CHAR}+)*"
_FLOW_PLAIN = (
    rf"(?:[^-?:,\[\]{{}}#&*!|>'\"%@` ]|-(?={_FLOW_CHAR})){_FLOW_RUN}(?: +{_FLOW_CHAR}{_FLOW_RUN})*"
)
_SINGLE = r"'((?:[^']|'')*)'"
_DOUBLE = r'"([^"\\]*)"'
_COMMENT = r"(?: +#.*)?"
# A block mapping entry: the key, `:`, and the value text after it (maybe empty).
_KEY = re.compile(rf"(?:({_BLOCK_PLAIN})|{_SINGLE}|{_DOUBLE}) *:(?: +|$)")
_PLAIN_VALUE = re.compile(rf"({_BLOCK_PLAIN}){_COMMENT}")
_SINGLE_VALUE = re.compile(_SINGLE + _COMMENT)
_DOUBLE_VALUE = re.compile(_DOUBLE + _COMMENT)
# A flow token: an indicator, a plain, single- or double-quoted scalar, or anything else.
_FLOW_TOKENS = re.compile(rf" *(?:([\[\]{{}},]|:(?= ))|({_FLOW_PLAIN})|{_SINGLE}|{_DOUBLE}|(.))")
# One plain scalar of a flow collection of plain scalars only (`[10.0.0.1]`,
# `{name: web, namespace: shop}`), the common ones: a flow plain scalar holds no `,`
# and no `: `, so such a collection is split at its commas and at the first `: ` of
# each pair, and then each piece, spaces dropped, must be one of these.
_FLOW_PLAIN_SCALAR = re.compile(_FLOW_PLAIN)
# What comes before the first `: ` of the commonest lines, `  key` or `  - key`: the
# indent, one `-`, and a plain key. A plain key holds no `: `, so it ends where `_KEY`
# ends it, and the rest of the line is the entry's value.
_HEAD = re.compile(rf"( *)(?:(-) +)?({_BLOCK_PLAIN}) *")
# `  - plain`: a plain scalar holds no `: `, so it cannot be read as a key.
_PLAIN_ITEM = re.compile(rf"( *)(- +)({_BLOCK_PLAIN}) *")
_DOCUMENT_START = re.compile(r"--- *(?: #.*)?")
# PyYAML drops a simple key longer than 1024 characters (then fails): leave those to it.
_MAX_KEY = 1000
# Common digit-led plain scalars, resolved without trying each resolver: dotted
# quads (IPv4 addresses, versions) match none, so are strings; decimals are ints.
_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
_DECIMAL = re.compile(r"[1-9][0-9]{0,17}|0")
# `[10.0.0.1]`, the commonest flow collection, in one step.
_DOTTED_ITEM = re.compile(r"\[ *([0-9]+(?:\.[0-9]+){2,}) *\]")

# Immutable and equal by value: one object may serve every occurrence of a spelling.
_SHARED_TYPES: tuple[type, ...] = (str, int, type(None))

# Block and flow nesting are counted apart here (a flow collection is read once per
# spelling, wherever it sits), each to half the bound, so that together they stay
# within it; deeper streams are PyYAML's, whose loader counts them exactly.
HALF_DEPTH = MAX_DEPTH // 2

DASH, KEY, SCALAR = 1, 2, 3
Event = tuple[int, int, Any, Any]
_UNKNOWN = object()
NESTED = object()  # a mapping entry whose value is on the next lines
LITERAL = object()  # `key: |`
LITERAL_STRIP = object()  # `key: |-`
BLOCK_SCALARS = {"|": LITERAL, "|-": LITERAL_STRIP}
DOCUMENT_START: tuple[Event, ...] = ((0, 0, None, None),)


class NotSimple(Exception):
    """The text uses YAML that `yaml_documents` leaves to PyYAML."""


def fresh(value: Any) -> Any:
    """A copy of a flow collection, each list and dict in it new."""
    if type(value) is list:
        return [fresh(item) for item in value]
    if type(value) is dict:
        return {key: fresh(item) for key, item in value.items()}
    return value


class LineReader:
    """The events of lines (`events`, remembered per spelling in `known_lines`) and
    plain scalars resolved as PyYAML's SafeLoader does it, each spelling once."""

    def __init__(self) -> None:
        if not pyyaml_agrees():
            raise NotSimple  # somebody extended PyYAML's resolver: stay out of its way
        self.resolvers = IMPLICIT_RESOLVERS
        self.known: dict[str, Any] = {}
        self.known_lines: dict[str, tuple[Event, ...]] = {"": (), "---": DOCUMENT_START}
        self.heads: dict[str, tuple[tuple[Event, ...], int, Any]] = {}
        self.flows: dict[str, Any] = {}
        self.flow_plains: dict[str, Any] = {}

    def plain(self, text: str) -> Any:
        value: Any = self.known.get(text, _UNKNOWN)
        if value is not _UNKNOWN:
            return value
        value = text
        if text[:1].isdigit() and _DOTTED.fullmatch(text):
            pass
        elif text[:1].isdigit() and _DECIMAL.fullmatch(text):
            value = int(text)
        else:
            for tag, pattern in self.resolvers.get(text[:1], ()):
                if pattern.match(text):
                    if tag not in DATA_TAGS:
                        raise NotSimple  # `<<` (merge) or `=` (value)
                    if len(text) > MAX_NUMBER_CHARS and tag in NUMBER_TAGS:
                        raise NotSimple  # PyYAML's bounded loader refuses it, with its line
                    value = construct(tag, text)
                    break
        if isinstance(value, _SHARED_TYPES):
            self.known[text] = value
        return value

    def events(self, line: str) -> tuple[Event, ...]:
        """What the line says; remembered for the next line spelled the same, if safe.

        Hot: each distinct line of a manifest passes here once. Most are a `key: value`,
        `- key: value` or `key:` with a plain key, read here: their head (`  - key`)
        repeats, so its reading is remembered apart (`heads`), and the commonest values
        (a plain scalar read before, an address, `[10.0.0.1]`) are read inline. Other
        lines are read by `item_events` and `other_events`.
        """
        head, colon, rest = line.partition(": ")
        if not colon:
            if line[-1:] != ":":
                return self.item_events(line)
            head = line[:-1]
        known = self.heads.get(head)
        if known is None:
            known = self.head(head)
            if known is None:
                return self.other_events(line)
        before, column, key = known
        text = rest.strip(" ")
        first = text[:1]
        if first == "[" or first == "{":
            # Not remembered: a collection is not shared (`flow` copies it for a repeat).
            return (*before, (KEY, column, key, self.flow(text)))
        value: Any = self.known.get(text, _UNKNOWN)
        if value is _UNKNOWN or text == "-":  # `-` may be a known key, but is no value
            # A dotted quad (an address) is a string: no resolver takes it.
            value = text if first.isdigit() and _DOTTED.fullmatch(text) else self.value(text)
        events = (*before, (KEY, column, key, value))
        if type(value) is object or isinstance(value, _SHARED_TYPES):
            self.known_lines[line] = events
        return events

    def other_events(self, line: str) -> tuple[Event, ...]:
        """The events of a line `events` does not read itself."""
        content = line.lstrip(" ")
        if not content or content[0] == "#":
            return ()
        column = len(line) - len(content)
        if column == 0 and content[0] in "%.-" and content.startswith(("%", "...", "---")):
            if _DOCUMENT_START.fullmatch(content) is None:
                raise NotSimple  # a directive, a document end, or content after `---`
            return DOCUMENT_START
        content = content.rstrip(" ")
        found: list[Event] = []
        while content[0] == "-" and (len(content) == 1 or content[1] == " "):
            found.append((DASH, column, None, None))
            rest = content[1:].lstrip(" ")
            if not rest or rest[0] == "#":
                self.known_lines[line] = events = tuple(found)
                return events
            column += len(content) - len(rest)
            content = rest
        shared = True
        match = _KEY.match(content)
        if match is None:
            value = self.inline(content)
            found.append((SCALAR, column, None, value))
            shared = isinstance(value, _SHARED_TYPES)
        else:
            if match.end() > _MAX_KEY:
                raise NotSimple
            plain, single, double = match.groups()
            if plain is not None:
                key = self.plain(plain)
            else:
                key = single.replace("''", "'") if single is not None else double
            value = self.value(content[match.end() :])
            found.append((KEY, column, key, value))
            # A float may be NaN, unequal to itself: two NaN keys are two entries, as in PyYAML.
            shared = isinstance(key, _SHARED_TYPES) and (
                type(value) is object or isinstance(value, _SHARED_TYPES)
            )
        events = tuple(found)
        if shared:
            self.known_lines[line] = events
        return events

    def head(self, text: str) -> tuple[tuple[Event, ...], int, Any] | None:
        """The events before the key of a `_HEAD`, its column and its key; remembered."""
        if len(text) > _MAX_KEY:  # PyYAML's limit is from the key to its `:`, within this
            return None
        match = _HEAD.fullmatch(text)
        if match is None or text.startswith(("...", "---")):  # a document marker, not a key
            return None
        key = self.plain(match.group(3))
        if not isinstance(key, _SHARED_TYPES):
            return None
        before: tuple[Event, ...] = ()
        if match.group(2) is not None:
            before = ((DASH, match.start(2), None, None),)
        self.heads[text] = known = (before, match.start(3), key)
        return known

    def item_events(self, line: str) -> tuple[Event, ...]:
        """The events of a `_PLAIN_ITEM` line (`  - plain`); `other_events` reads others."""
        if "- " not in line:
            return self.other_events(line)
        match = _PLAIN_ITEM.fullmatch(line)
        if match is None:
            return self.other_events(line)
        indent, dash, plain = match.groups()
        column = len(indent)
        value = self.plain(plain)
        events = (DASH, column, None, None), (SCALAR, column + len(dash), None, value)
        if isinstance(value, _SHARED_TYPES):
            self.known_lines[line] = events
        return events

    def value(self, text: str) -> Any:
        """A mapping entry's value, from the text after its `: ` (no spaces around it):
        a scalar, NESTED, a block scalar or a flow collection."""
        if not text or text[0] == "#":
            return NESTED
        if text[0] in "[{":
            return self.flow(text)
        if text in BLOCK_SCALARS:
            return BLOCK_SCALARS[text]
        return self.inline(text)

    def inline(self, text: str) -> Any:
        """A value written on one line: a plain or quoted scalar or a flow collection."""
        first = text[0]
        if first == "'":
            match = _SINGLE_VALUE.fullmatch(text)
            if match is None:
                raise NotSimple
            return match.group(1).replace("''", "'")
        if first == '"':
            match = _DOUBLE_VALUE.fullmatch(text)
            if match is None:
                raise NotSimple
            return match.group(1)
        if first in "[{":
            return self.flow(text)
        if first in "-?:" and (len(text) == 1 or text[1] == " "):
            # An indicator, not a scalar (`a: -` is a sequence where PyYAML refuses one),
            # even if the same spelling was read before as a key (`-: x` is a key).
            raise NotSimple
        # A plain scalar read before, or a dotted quad: plain, without the comment check.
        value = self.known.get(text, _UNKNOWN)
        if value is not _UNKNOWN:
            return value
        if first.isdigit() and _DOTTED.fullmatch(text):
            return text
        match = _PLAIN_VALUE.fullmatch(text)
        if match is None:
            raise NotSimple
        return self.plain(match.group(1))

    def flow(self, text: str) -> Any:
        """The flow collection `text`: the one read from the same text before, copied, or
        (the first time, as for most, since each holds a name or an address) a new one.
        Nothing changes a collection while the documents are parsed, so copying from the
        first one is safe."""
        if text[0] == "[":
            dotted = _DOTTED_ITEM.fullmatch(text)
            if dotted is not None:  # one match reads it: cheaper than remembering each
                return [dotted.group(1)]
        template = self.flows.get(text)
        if template is not None:
            return fresh(template)
        self.flows[text] = collection = self.read_flow(text)
        return collection

    def read_flow(self, text: str) -> Any:
        """A flow collection read for the first time: split if flat, else tokenized."""
        flat = self.flat_flow(text)
        if flat is not None:
            return flat
        if "#" in text:  # a comment after the collection: rare, leave it to PyYAML
            raise NotSimple
        tokens = _FLOW_TOKENS.findall(text)
        value, end = self.flow_node(tokens, 0)
        if end != len(tokens):
            raise NotSimple
        return value

    def flat_flow(self, text: str) -> list[Any] | dict[Any, Any] | None:
        """A flow collection of plain scalars only, or None for another."""
        pieces = text[1:-1].split(",")
        flow_plain = self.flow_plain
        if text[0] == "[":
            if text[-1] != "]":
                return None
            items: list[Any] = []
            for piece in pieces:
                item = flow_plain(piece)
                if item is _UNKNOWN:
                    return None
                items.append(item)
            return items
        if text[-1] != "}":
            return None
        mapping: dict[Any, Any] = {}
        for pair in pieces:
            key_text, colon, value_text = pair.partition(": ")
            key = flow_plain(key_text) if colon else _UNKNOWN
            value = flow_plain(value_text)
            if key is _UNKNOWN or value is _UNKNOWN or key in mapping:
                return None
            mapping[key] = value
        return mapping

    def flow_plain(self, piece: str) -> Any:
        """The value of `piece`, spaces around it dropped, if it is a flow plain scalar;
        else _UNKNOWN. Remembered per spelling, as `plain` remembers it."""
        text = piece.strip(" ")
        value = self.flow_plains.get(text, _UNKNOWN)
        if value is _UNKNOWN and _FLOW_PLAIN_SCALAR.fullmatch(text):
            value = self.plain(text)
            if isinstance(value, _SHARED_TYPES):
                self.flow_plains[text] = value
        return value

    def flow_node(
        self, tokens: list[tuple[str, str, str, str, str]], index: int, depth: int = 1
    ) -> tuple[Any, int]:
        """The flow node at tokens[index], and the index after it."""
        if depth > HALF_DEPTH:
            raise NotSimple  # deep: PyYAML's bounded loader counts it exactly
        indicator, plain, single, double, other = tokens[index]
        if plain:
            return self.plain(plain), index + 1
        if indicator == "[":
            items: list[Any] = []
            index += 1
            if tokens[index][0] == "]":
                return items, index + 1
            while True:
                item, index = self.flow_node(tokens, index, depth + 1)
                items.append(item)
                indicator = tokens[index][0]
                index += 1
                if indicator == "]":
                    return items, index
                if indicator != ",":
                    raise NotSimple
        if indicator == "{":
            mapping: dict[Any, Any] = {}
            index += 1
            if tokens[index][0] == "}":
                return mapping, index + 1
            while True:
                if tokens[index][0] or tokens[index][4] or tokens[index + 1][0] != ":":
                    raise NotSimple  # not a scalar key and `: `
                key, _ = self.flow_node(tokens, index, depth + 1)
                if key in mapping:
                    raise NotSimple  # a duplicate key: PyYAML's bounded loader names it
                mapping[key], index = self.flow_node(tokens, index + 2, depth + 1)
                indicator = tokens[index][0]
                index += 1
                if indicator == "}":
                    return mapping, index
                if indicator != ",":
                    raise NotSimple
        if indicator or other:
            raise NotSimple
        return (single.replace("''", "'") if "'" in single else single or double), index + 1
