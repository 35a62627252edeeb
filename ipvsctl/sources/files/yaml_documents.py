"""A YAML stream into its documents, several times faster than PyYAML for manifests.

PyYAML, even with libyaml's C parser, spends most of `load_all` in Python:
composing a node per scalar, resolving it, constructing it. Manifests as
kubectl, Helm and people write them use a small part of YAML: block mappings
and sequences, one-line plain or quoted scalars, one-line flow collections,
and `|` block scalars (kubectl's last-applied-configuration). `simple_documents`
parses exactly that part itself and says "not mine" (None) for anything else;
`load_documents` then leaves the whole stream to PyYAML, so a stream means what
PyYAML says it means either way.

The parse is one pass over the lines: `yaml_lines` says what each line holds
(once per spelling), and a stack of the open collections, each with the column
it starts at, places it. What it produces is what `yaml.load_all(text,
SafeLoader)` does; what PyYAML's bounded loader (`bounded_yaml`) refuses (a
duplicate key, a number too long, nesting too deep) it leaves to that loader to
name, with its line. Not handled here, so left to PyYAML: anchors, aliases, tags,
merge keys, folded or indented block scalars and blank lines in them,
multi-line plain scalars and flow collections, escapes in double quotes,
complex keys, directives, `...`, tabs, CR, and any non-ASCII or control
character.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from typing import Any

from ipvsctl.sources.files.yaml_lines import (
    DASH,
    DOCUMENT_START,
    HALF_DEPTH,
    KEY,
    LITERAL,
    LITERAL_STRIP,
    NESTED,
    SCALAR,
    LineReader,
    NotSimple,
)

# Control characters (tabs and CR included) send the whole stream to PyYAML.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")

# An open collection: the column it starts at, the dict or list, whether a dict.
_Frame = tuple[int, Any, bool]


class BadYaml(Exception):
    """A stream PyYAML cannot load: where (`line N`, or `yaml` when it cannot tell) and
    the problem, on one line."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = where, problem


def load_documents(text: str) -> Iterator[Any]:
    """The stream's documents, except empty (null) ones, as `yaml.load_all` gives them.

    Raises BadYaml for a stream PyYAML cannot load, after yielding the documents
    before the bad one.
    """
    documents = simple_documents(text)
    if documents is not None:
        yield from documents
        return
    import yaml  # only here: most manifests never need it (see yaml_scalars)

    from ipvsctl.sources.files.bounded_yaml import BoundedLoader

    try:
        for document in yaml.load_all(text, Loader=BoundedLoader):
            if document is not None:
                yield document
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        problem = error.problem or "not YAML"
        if error.context:
            problem = f"{problem} ({error.context})"
        raise BadYaml(where, " ".join(problem.split())) from error
    except yaml.YAMLError as error:
        raise BadYaml("yaml", " ".join(str(error).split())) from error


def simple_documents(text: str) -> list[Any] | None:
    """The stream's non-null documents if it uses only the YAML this module parses,
    else None (then only PyYAML can tell what it means, or what is wrong with it)."""
    if not text.isascii() or _CONTROL.search(text):
        return None
    # The documents are trees of fresh dicts and lists, never cycles: collecting
    # garbage while they grow only re-traverses them (about a sixth of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(text.split("\n"), LineReader())
    except (NotSimple, IndexError):
        return None
    finally:
        if collecting:
            gc.enable()


def _parse(lines: list[str], reader: LineReader) -> list[Any]:
    """The documents of the lines (hot: every line of every manifest passes here).

    A "slot" is where the next node goes when its line starts right of
    `slot_column` (the value of a `key:` or `-` with nothing after it; at first,
    the document itself): None until then, as PyYAML gives an empty value.
    """
    known_lines = reader.known_lines
    documents: list[Any] = []
    root: list[Any] = [None]
    stack: list[_Frame] = [(-1, None, False)]  # below every collection: ends the document
    column, top, is_map = stack[-1]
    slot: Any = root
    slot_key: Any = 0
    slot_column = -1
    slot_is_map = False
    for index, line in enumerate(lines):
        events = known_lines.get(line)
        if events is None:
            events = reader.events(line)
        if events is DOCUMENT_START:
            if root[0] is not None:
                documents.append(root[0])
            root = [None]
            stack = [(-1, None, False)]
            column, top, is_map = stack[-1]
            slot, slot_key, slot_column, slot_is_map = root, 0, -1, False
            continue
        for kind, at, key, value in events:
            if slot is not None and (
                at > slot_column or (kind == DASH and at == slot_column and slot_is_map)
            ):  # a node starts in the slot (a sequence at a key's column: indentless)
                if kind == SCALAR:
                    slot[slot_key] = value
                    slot = None
                    continue
                is_map = kind == KEY
                top = {} if is_map else []
                column = at
                slot[slot_key] = top
                slot = None
                stack.append((at, top, is_map))
                if len(stack) > HALF_DEPTH:
                    raise NotSimple  # deep: PyYAML's bounded loader counts it exactly
            else:  # the line continues an open collection
                slot = None
                if at != column:
                    while column > at:
                        stack.pop()
                        column, top, is_map = stack[-1]
                    if at != column:
                        raise NotSimple  # between two indents: an error for PyYAML to name
                if kind == KEY:
                    if not is_map:  # an indentless sequence ends at its mapping's next key
                        stack.pop()
                        column, top, is_map = stack[-1]
                        if at != column or not is_map:
                            raise NotSimple
                elif kind != DASH or is_map:
                    raise NotSimple
            if kind == KEY:
                if key in top:
                    raise NotSimple  # a duplicate key: PyYAML names it (bounded_yaml)
                if value is NESTED:
                    top[key] = None
                    slot, slot_key, slot_column, slot_is_map = top, key, at, True
                elif value is LITERAL or value is LITERAL_STRIP:
                    top[key] = _block_scalar(lines, index + 1, at, value is LITERAL)
                else:
                    top[key] = value
            else:
                slot, slot_key, slot_column, slot_is_map = top, len(top), at, False
                top.append(None)
    if root[0] is not None:
        documents.append(root[0])
    return documents


def _block_scalar(lines: list[str], start: int, column: int, keep_newline: bool) -> str:
    """The `|` (keep_newline) or `|-` block scalar on lines[start:], of an entry at
    `column`; its lines are then blanked, so the parse passes over them.

    Only the plain case: indented by its first line, no blank or whitespace-only
    line in it, and a line after it (kubectl ends every line with a newline).
    """
    first = lines[start]
    indent = len(first) - len(first.lstrip(" "))
    if indent <= column or indent == len(first):
        raise NotSimple
    prefix = " " * indent
    end = start
    while lines[end].startswith(prefix):  # IndexError: no newline after it
        if lines[end].isspace():
            raise NotSimple
        end += 1
    after = lines[end]
    if (not after or after.isspace()) and not (after == "" and end == len(lines) - 1):
        raise NotSimple
    value = "\n".join([line[indent:] for line in lines[start:end]])
    lines[start:end] = [""] * (end - start)
    return value + "\n" if keep_newline else value
