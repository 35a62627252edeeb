"""User text made safe to print in a one-line message.

Names, keys and values in error lines come from the input: a newline in a
Service's name would forge a second `ipvsctl:` line, an escape sequence would
drive the terminal, and a 10 MB annotation would be echoed whole. Every line
that quotes input passes it through `printable` (ObjectRef, ObjectError and
the CLI's own lines do it once for all).
"""

from __future__ import annotations

MAX_SHOWN = 200  # characters of one value a message shows
MAX_MESSAGE = 1000  # characters of a whole message, which may quote a value or two
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` on one line: every character that is not printable (controls, line and
    paragraph separators, bidi overrides, lone surrogates) escaped as Python writes it,
    and anything past `limit` characters cut, saying how long it was."""
    if text.isprintable() and len(text) <= limit:
        return text  # nearly always: nothing to do
    cut = text[:limit]
    shown = "".join(char if char.isprintable() else _escaped(char) for char in cut)
    if len(text) > limit:
        shown += f"... ({len(text):,} characters)"
    return shown


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
