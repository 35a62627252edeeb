"""A JSON manifest into its value, held to `limits` and refusing duplicate keys.

The C decoder reads it (ten times the pure-Python one's speed), refusing a key
given twice and an over-long number through its hooks, and a walk then checks
the nesting (a sixth of the decode's time). The C decoder knows no positions,
so when something is wrong the text is read again by the pure-Python decoder,
with hooks that know where each object starts, to name the line.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from collections.abc import Callable
from typing import Any, cast

from ipvsctl.sources.files.limits import MAX_DEPTH, MAX_NUMBER_CHARS, number_too_long, too_deep


class BadJson(Exception):
    """Text that is not a manifest's JSON: the line and the problem."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line, self.problem = line, problem


class _Refused(ValueError):
    """What a hook of the fast decode refuses; the slow one finds its line."""


def load_json(text: str) -> Any:
    """The JSON value of `text`; BadJson names the line of what is wrong with it."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise BadJson(error.lineno, error.msg) from None
    except (_Refused, RecursionError):
        value = None
    else:
        if _depth_within(value):
            return value
    _locate_problem(text)
    raise BadJson(1, too_deep())  # not reached: the slow decode names it first


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _Refused
    return mapping


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused
    return int(text)


def _depth_within(value: Any) -> bool:
    """Whether no container in `value` is nested deeper than MAX_DEPTH (walked without
    recursion, so that any depth is safe to ask about)."""
    if type(value) is not dict and type(value) is not list:
        return True
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if type(item) is dict else item
        for child in children:
            if type(child) is dict or type(child) is list:
                if depth >= MAX_DEPTH:
                    return False
                pending.append((child, depth + 1))
    return True


def _locate_problem(text: str) -> None:
    """Decode `text` again, slowly, with hooks that raise BadJson at the first refused
    key, number or level."""
    decoder: Any = json.JSONDecoder()  # its pure-Python parts are not in typeshed
    depth = 0

    def line_at(index: int) -> int:
        return text.count("\n", 0, index) + 1

    def nested(parse: Callable[..., tuple[Any, int]]) -> Callable[..., tuple[Any, int]]:
        def parse_nested(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
            nonlocal depth
            start = s_and_end[1] - 1  # just after the bracket: point at it
            depth += 1
            if depth > MAX_DEPTH:
                raise BadJson(line_at(start), too_deep())
            try:
                return parse(s_and_end, *args)
            except _Duplicate as duplicate:
                raise BadJson(
                    line_at(start), f"duplicate key {json.dumps(duplicate.key)}"
                ) from None
            finally:
                depth -= 1

        return parse_nested

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key, value in pairs:
            if key in mapping:
                raise _Duplicate(key)
            mapping[key] = value
        return mapping

    def bounded_int(number: str) -> int:
        if len(number) > MAX_NUMBER_CHARS:
            raise BadJson(line_at(text.find(number)), number_too_long(number))
        return int(number)

    decoder.object_pairs_hook = unique_keys
    decoder.parse_int = bounded_int
    pure: Any = json.decoder
    decoder.parse_object = nested(pure.JSONObject)
    decoder.parse_array = nested(pure.JSONArray)
    decoder.scan_once = cast(Any, json.scanner).py_make_scanner(decoder)
    decoder.decode(text)


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key
