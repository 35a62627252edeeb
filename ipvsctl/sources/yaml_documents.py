"""A YAML stream into its documents, several times faster than PyYAML for manifests.

PyYAML, even with libyaml's C parser, spends most of `load_all` in Python:
composing a node per scalar, resolving it, constructing it. Manifests as
kubectl, Helm and people write them use a small part of YAML: block mappings
and sequences, one-line plain or quoted scalars, one-line flow collections.
`simple_documents` parses exactly that part itself, line by line, and says
"not mine" (None) for anything else; `load_documents` then leaves the whole
stream to PyYAML, so a stream means what PyYAML says it means either way.

What the fast part produces is what `yaml.load_all(text, SafeLoader)` does:
plain scalars are resolved and constructed by PyYAML's own resolver table and
SafeConstructor (YAML 1.1: `yes` is True, `0x1F` is 31, `2001-12-14` a date).
Not handled here, so left to PyYAML: anchors, aliases, tags, merge keys,
block scalars (`|`, `>`), multi-line scalars and flow collections, escapes in
double quotes, complex keys, directives, `...`, tabs, CR, and any non-ASCII
or control character.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import ScalarNode

# libyaml's C parser is an order of magnitude faster; fall back when it is missing.
Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Anything here sends the whole stream to PyYAML: control characters (tabs and
# CR included), and lines starting with a directive, a document end, or a
# document start with content on its line.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_NOT_SIMPLE_LINE = re.compile(r"^(?:%|\.\.\.|---(?! *(?: #.*)?$))", re.M)
_DOCUMENT_START = re.compile(r"^--- *(?: #.*)?$", re.M)

# One-line plain scalars, more conservative than YAML (so libyaml and PyYAML agree
# on every one): no `?` or `:` first, no `#` or `:` after a space, and in flow
# context none of `,?[]{}#` and a `:` only before a character a scalar may hold.
_BLOCK_RUN = r"[^: ]*(?::+[^: ]+)*"
_BLOCK_PLAIN = rf"(?:[^-?:,\[\]{{}}#&*!|>'\"%@` ]|-(?=[^ ])){_BLOCK_RUN}(?: +[^:# ]{_BLOCK_RUN})*"
_FLOW_RUN = r"[^ ,?\[\]{}#:]*(?::+[^ ,?\[\]{}#:]+)*"
_FLOW_PLAIN = (
    rf"(?:[^-?:,\[\]{{}}#&*!|>'\"%@` ]|-(?=[^ ,?\[\]{{}}#:])){_FLOW_RUN}"
    rf"(?: +[^ ,?\[\]{{}}#:]{_FLOW_RUN})*"
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
# PyYAML drops a simple key longer than 1024 characters (then fails): leave those to it.
_MAX_KEY = 1000

# The tags PyYAML's implicit resolvers give plain scalars that mean plain data.
_DATA_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "timestamp")
)
# Immutable and equal by value: one object may serve every occurrence of a spelling.
_SHARED_TYPES: tuple[type, ...] = (str, int, type(None))
_NESTED = object()  # a mapping entry whose value is on the next lines


class _Flow:
    """A flow collection as parsed once: each occurrence gets its own copy."""

    def __init__(self, template: Any) -> None:
        self.template = template


_SHARED_VALUES = (*_SHARED_TYPES, _Flow)


def _fresh(value: Any) -> Any:
    if type(value) is list:
        return [_fresh(item) for item in value]
    if type(value) is dict:
        return {key: _fresh(item) for key, item in value.items()}
    return value


class _NotSimple(Exception):
    """The text uses YAML that this module leaves to PyYAML."""


def load_documents(text: str) -> Iterator[Any]:
    """The stream's documents, except empty (null) ones, as `yaml.load_all` gives them.

    Raises yaml.YAMLError (with its marks) for a stream PyYAML cannot load, after
    yielding the documents before the bad one.
    """
    documents = simple_documents(text)
    if documents is not None:
        yield from documents
        return
    for document in yaml.load_all(text, Loader=Loader):
        if document is not None:
            yield document


def simple_documents(text: str) -> list[Any] | None:
    """The stream's non-null documents if it uses only the YAML this module parses,
    else None (then only PyYAML can tell what it means, or what is wrong with it)."""
    if not text.isascii() or _CONTROL.search(text) or _NOT_SIMPLE_LINE.search(text):
        return None
    documents: list[Any] = []
    # The documents are trees of fresh dicts and lists, never cycles: collecting
    # garbage while they grow only re-traverses them (about a sixth of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        scalars = _Scalars()
        for chunk in _DOCUMENT_START.split(text):
            lines: list[tuple[int, str]] = []
            for line in chunk.split("\n"):
                content = line.lstrip(" ")
                if content and content[0] != "#":
                    lines.append((len(line) - len(content), content.rstrip(" ")))
            if lines:
                value = _Document(lines, scalars).parse()
                if value is not None:
                    documents.append(value)
    except (_NotSimple, IndexError):
        return None
    finally:
        if collecting:
            gc.enable()
    return documents


class _Scalars:
    """Plain scalars resolved and constructed as PyYAML's SafeLoader does it, each
    spelling once; and mapping entries, each spelling once."""

    def __init__(self) -> None:
        self.resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = (
            yaml.SafeLoader.yaml_implicit_resolvers
        )
        if None in self.resolvers or yaml.SafeLoader.yaml_path_resolvers:
            raise _NotSimple  # somebody extended the resolver: stay out of its way
        self.constructors = yaml.SafeLoader.yaml_constructors
        self.constructor = yaml.SafeLoader("")
        self.known: dict[str, Any] = {}
        self.entries: dict[str, tuple[Any, Any]] = {}

    def plain(self, text: str) -> Any:
        try:
            return self.known[text]
        except KeyError:
            pass
        for tag, pattern in self.resolvers.get(text[:1], ()):
            if pattern.match(text):
                if tag not in _DATA_TAGS:
                    raise _NotSimple  # `<<` (merge) or `=` (value)
                construct = self.constructors[tag]
                value = construct(self.constructor, ScalarNode(tag, text))
                break
        else:
            value = text
        if isinstance(value, _SHARED_TYPES):
            self.known[text] = value
        return value


class _Document:
    """One document's significant lines, as (indent, text without the indent), parsed
    into plain data; raises _NotSimple for anything beyond one-line scalars and flow
    collections in block mappings and sequences."""

    def __init__(self, lines: list[tuple[int, str]], scalars: _Scalars) -> None:
        self.lines = lines
        self.pos = 0
        self.plain = scalars.plain
        self.entries = scalars.entries

    def parse(self) -> Any:
        value = self.node(self.lines[0][0])
        if self.pos != len(self.lines):  # a line indented less than the first
            raise _NotSimple
        return value

    def node(self, indent: int) -> Any:
        """The block node starting at the current line, which is at `indent`."""
        text = self.lines[self.pos][1]
        if text[0] == "-" and (len(text) == 1 or text[1] == " "):
            return self.sequence(indent)
        if text in self.entries or _KEY.match(text):
            return self.mapping(indent)
        self.pos += 1
        return self.inline(text)

    def nested(self, indent: int, indentless: bool) -> Any:
        """The value of an entry with nothing after its `key:` (indentless: a sequence
        may start at the key's own indent) or its `-`."""
        if self.pos < len(self.lines):
            line_indent, text = self.lines[self.pos]
            if line_indent > indent:
                return self.node(line_indent)
            if indentless and line_indent == indent and _is_entry(text):
                return self.sequence(indent)
        return None

    def sequence(self, indent: int) -> list[Any]:
        lines = self.lines
        items: list[Any] = []
        while self.pos < len(lines):
            line_indent, text = lines[self.pos]
            if line_indent != indent or not _is_entry(text):
                break
            content = text[1:].lstrip(" ")
            if not content or content[0] == "#":
                self.pos += 1
                items.append(self.nested(indent, indentless=False))
            else:  # `- key: value` or `- - item`: a node starting inside this line
                column = indent + len(text) - len(content)
                lines[self.pos] = (column, content)
                items.append(self.node(column))
        self.check_dedent(indent)
        return items

    def mapping(self, indent: int) -> dict[Any, Any]:
        lines = self.lines
        entries = self.entries
        items: dict[Any, Any] = {}
        while self.pos < len(lines):
            line_indent, text = lines[self.pos]
            if line_indent != indent:
                break
            entry = entries.get(text)
            if entry is None:
                entry = self.entry(text)
            key, value = entry
            self.pos += 1
            if value is _NESTED:
                items[key] = self.nested(indent, indentless=True)
            elif type(value) is _Flow:
                items[key] = _fresh(value.template)
            else:
                items[key] = value
        self.check_dedent(indent)
        return items

    def entry(self, text: str) -> tuple[Any, Any]:
        """A mapping entry's key and value: a scalar, _NESTED (on the next lines) or a
        _Flow; remembered for the next line spelled the same, if safe to share."""
        match = _KEY.match(text)
        if match is None or match.end() > _MAX_KEY:
            raise _NotSimple
        plain, single, double = match.groups()
        if plain is not None:
            key = self.plain(plain)
        else:
            key = single.replace("''", "'") if single is not None else double
        rest = text[match.end() :]
        value: Any
        if not rest or rest[0] == "#":
            value = _NESTED
        elif rest[0] in "[{":
            value = _Flow(self.flow(rest))
        else:
            value = self.inline(rest)
        entry = (key, value)
        # A float may be NaN, unequal to itself: two NaN keys are two entries, as in PyYAML.
        if isinstance(key, _SHARED_TYPES) and (
            value is _NESTED or isinstance(value, _SHARED_VALUES)
        ):
            self.entries[text] = entry
        return entry

    def check_dedent(self, indent: int) -> None:
        """After a block collection, the next line belongs to an enclosing one."""
        if self.pos < len(self.lines) and self.lines[self.pos][0] > indent:
            raise _NotSimple  # a continued scalar, or an error for PyYAML to name

    def inline(self, text: str) -> Any:
        """A value written on one line: a plain or quoted scalar or a flow collection."""
        first = text[0]
        if first == "'":
            match = _SINGLE_VALUE.fullmatch(text)
            if match is None:
                raise _NotSimple
            return match.group(1).replace("''", "'")
        if first == '"':
            match = _DOUBLE_VALUE.fullmatch(text)
            if match is None:
                raise _NotSimple
            return match.group(1)
        if first in "[{":
            return self.flow(text)
        match = _PLAIN_VALUE.fullmatch(text)
        if match is None:
            raise _NotSimple
        return self.plain(match.group(1))

    def flow(self, text: str) -> Any:
        if "#" in text:  # a comment after the collection: rare, leave it to PyYAML
            raise _NotSimple
        tokens = _FLOW_TOKENS.findall(text)
        value, end = self.flow_node(tokens, 0)
        if end != len(tokens):
            raise _NotSimple
        return value

    def flow_node(
        self, tokens: list[tuple[str, str, str, str, str]], index: int
    ) -> tuple[Any, int]:
        """The flow node at tokens[index], and the index after it."""
        indicator, plain, single, double, other = tokens[index]
        if plain:
            return self.plain(plain), index + 1
        if indicator == "[":
            items: list[Any] = []
            index += 1
            if tokens[index][0] == "]":
                return items, index + 1
            while True:
                item, index = self.flow_node(tokens, index)
                items.append(item)
                indicator = tokens[index][0]
                index += 1
                if indicator == "]":
                    return items, index
                if indicator != ",":
                    raise _NotSimple
        if indicator == "{":
            mapping: dict[Any, Any] = {}
            index += 1
            if tokens[index][0] == "}":
                return mapping, index + 1
            while True:
                if tokens[index][0] or tokens[index][4] or tokens[index + 1][0] != ":":
                    raise _NotSimple  # not a scalar key and `: `
                key, _ = self.flow_node(tokens, index)
                mapping[key], index = self.flow_node(tokens, index + 2)
                indicator = tokens[index][0]
                index += 1
                if indicator == "}":
                    return mapping, index
                if indicator != ",":
                    raise _NotSimple
        if indicator or other:
            raise _NotSimple
        return (single.replace("''", "'") if "'" in single else single or double), index + 1


def _is_entry(text: str) -> bool:
    return text[0] == "-" and (len(text) == 1 or text[1] == " ")
