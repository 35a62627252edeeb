"""The manifest bounds (sources/files/limits): what reaches them is refused with its line,
what stays within them reads as before."""

from __future__ import annotations

import pytest

from ipvsctl.sources.files.json_documents import BadJson, load_json
from ipvsctl.sources.files.limits import MAX_DEPTH
from ipvsctl.sources.files.yaml_documents import BadYaml, load_documents


def nested_flow(depth: int) -> str:
    return "a: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"


def test_yaml_nested_to_the_bound_reads() -> None:
    (document,) = load_documents(nested_flow(MAX_DEPTH))
    assert isinstance(document["a"], list)


def test_yaml_nested_past_the_bound_is_refused_with_its_line() -> None:
    with pytest.raises(BadYaml) as raised:
        list(load_documents("x: 1\n" + nested_flow(MAX_DEPTH + 1)))
    assert (raised.value.where, raised.value.problem) == (
        "line 2",
        f"nested deeper than {MAX_DEPTH} levels",
    )


def test_a_few_aliases_read_as_pyyaml_reads_them() -> None:
    (document,) = load_documents("a: &p {port: 80}\nb: *p\nc: [*p, *p]\n")
    assert document == {"a": {"port": 80}, "b": {"port": 80}, "c": [{"port": 80}] * 2}


def test_a_merge_key_may_be_overridden_without_a_duplicate() -> None:
    (document,) = load_documents("a: &p {port: 80, name: x}\nb:\n  <<: *p\n  port: 81\n")
    assert document["b"] == {"port": 81, "name": "x"}


def test_json_nested_to_the_bound_reads() -> None:
    assert load_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_json_nested_past_the_bound_is_refused_with_its_line() -> None:
    with pytest.raises(BadJson) as raised:
        load_json("{\n\n" + '"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}")
    assert (raised.value.line, raised.value.problem) == (
        3,
        f"nested deeper than {MAX_DEPTH} levels",
    )


def test_a_json_key_given_twice_is_refused_at_its_object() -> None:
    with pytest.raises(BadJson) as raised:
        load_json('{"a": 1,\n "b": {\n  "c": 1, "c": 2}}')
    assert (raised.value.line, raised.value.problem) == (2, 'duplicate key "c"')
