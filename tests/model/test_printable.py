"""printable: input quoted in a message stays on one line, readable, and short."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.model.inputs import ObjectError, ObjectRef
from ipvsctl.model.printable import MAX_SHOWN, printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("web", "web"),
        ("café ünïcode", "café ünïcode"),
        ("a\nb", "a\\nb"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x00\x7f\x85", "\\x00\\x7f\\x85"),
        ("line\u2028sep", "line\\u2028sep"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("\U000e0001tag", "\\U000e0001tag"),
    ],
)
def test_unprintable_characters_are_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_a_long_value_is_cut_saying_how_long_it_was() -> None:
    assert printable("x" * 10_000_000) == "x" * MAX_SHOWN + "... (10,000,000 characters)"


@given(st.text())
def test_the_result_is_always_one_printable_line(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    assert len(shown) <= MAX_SHOWN + len("... (1,000,000,000 characters)")


def test_an_object_error_escapes_name_field_and_message() -> None:
    error = ObjectError(ObjectRef("Service", "ns\n", "web\nipvsctl: x"), "a\tb", "bad\x1b")
    assert str(error) == "Service ns\\n/web\\nipvsctl: x: a\\tb: bad\\x1b"
