"""The chart README's values table tells the truth about values.yaml."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.chart.manifests import CHART_DIR

_ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| `(?P<default>[^`]*)` \| (?P<description>.+) \|$")
_MISSING = object()


def documented_rows() -> dict[str, tuple[str, str]]:
    """key -> (default as written, description), from the README's values table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in (CHART_DIR / "README.md").read_text().splitlines():
        match = _ROW.match(line)
        if match:
            assert match["key"] not in rows, f"{match['key']} is in the table twice"
            rows[match["key"]] = (match["default"], match["description"])
    return rows


def chart_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return loaded


def value_at(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(leaf_keys(value, f"{dotted}."))
        else:
            keys.append(dotted)
    return keys


def test_values_table_is_found() -> None:
    assert len(documented_rows()) >= 20


@pytest.mark.parametrize("key", sorted(chart_values()))
def test_every_top_level_value_is_in_the_readme_table(key: str) -> None:
    rows = documented_rows()
    assert any(row == key or row.startswith(f"{key}.") for row in rows), key


def test_every_value_is_covered_by_a_readme_row() -> None:
    rows = documented_rows()
    uncovered = [
        leaf
        for leaf in leaf_keys(chart_values())
        if not any(leaf == row or leaf.startswith(f"{row}.") for row in rows)
    ]
    assert uncovered == []


def test_readme_rows_name_real_values_with_their_real_defaults() -> None:
    values = chart_values()
    for key, (default, description) in documented_rows().items():
        actual = value_at(values, key)
        assert actual is not _MISSING, f"README documents {key}, which values.yaml lacks"
        assert yaml.safe_load(default) == actual, f"README default of {key}"
        assert description.strip(), f"README row {key} has no description"
