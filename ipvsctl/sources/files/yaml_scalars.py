"""What a plain YAML scalar means, as PyYAML's SafeLoader decides it, without importing
PyYAML for the scalars that need none of it.

PyYAML resolves a plain scalar by trying the implicit resolvers registered for
its first character (YAML 1.1's type repository: null, bool, int, float,
timestamp, merge, value). Importing PyYAML costs ~50 ms in the kernel lab, a
sixth of a cold `apply`, and nearly every scalar in a manifest is a name, an
address or a small decimal that needs none of it. So the table lives here too
(tests/sources pins it to PyYAML's), null and bool are built here, and PyYAML
is imported only for the ints, floats and timestamps that its constructors
spell out (hex, octal, sexagesimal, `1_000`, dates).
"""

from __future__ import annotations

import re
import sys
from typing import Any

TAG = "tag:yaml.org,2002:"
NULL, BOOL, INT, FLOAT, TIMESTAMP = (TAG + n for n in ("null", "bool", "int", "float", "timestamp"))
# The tags of plain data; any other resolved tag (merge `<<`, value `=`) is not.
DATA_TAGS = frozenset({NULL, BOOL, INT, FLOAT, TIMESTAMP})
NUMBER_TAGS = frozenset({INT, FLOAT})

_BOOL = re.compile(
    r"""^(?:yes|Yes|YES|no|No|NO
    |true|True|TRUE|false|False|FALSE
    |on|On|ON|off|Off|OFF)$""",
    re.X,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    re.X,
)
_NULL = re.compile(
    r"""^(?: ~
    |null|Null|NULL
    | )$""",
    re.X,
)
_TIMESTAMP = re.compile(
    r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
     (?:[Tt]|[ \t]+)[0-9][0-9]?
     :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
     (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
    re.X,
)
_MERGE = re.compile(r"^(?:<<)$")
_VALUE = re.compile(r"^(?:=)$")
_YAML = re.compile(r"^(?:!|&|\*)$")

# (tag, pattern, first characters), in PyYAML's order of registration.
_RESOLVERS: tuple[tuple[str, re.Pattern[str], list[str]], ...] = (
    (BOOL, _BOOL, list("yYnNtTfFoO")),
    (FLOAT, _FLOAT, list("-+0123456789.")),
    (INT, _INT, list("-+0123456789")),
    (TAG + "merge", _MERGE, ["<"]),
    (NULL, _NULL, ["~", "n", "N", ""]),
    (TIMESTAMP, _TIMESTAMP, list("0123456789")),
    (TAG + "value", _VALUE, ["="]),
    (TAG + "yaml", _YAML, list("!&*")),
)

Resolvers = dict[str, list[tuple[str, re.Pattern[str]]]]


def _by_first_character() -> Resolvers:
    table: Resolvers = {}
    for tag, pattern, first in _RESOLVERS:
        for character in first:
            table.setdefault(character, []).append((tag, pattern))
    return table


IMPLICIT_RESOLVERS: Resolvers = _by_first_character()

_BOOL_VALUES = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}


def pyyaml_agrees() -> bool:
    """False when PyYAML is loaded and its SafeLoader resolves plain scalars otherwise than
    this table does (somebody registered a resolver): then its meaning is PyYAML's to give."""
    yaml = sys.modules.get("yaml")
    if yaml is None:
        return True
    loader = yaml.SafeLoader
    return not loader.yaml_path_resolvers and spelling(loader.yaml_implicit_resolvers) == spelling(
        IMPLICIT_RESOLVERS
    )


def spelling(resolvers: Resolvers) -> dict[str, list[tuple[str, str, int]]]:
    """The table with each pattern's layout whitespace folded (re.X ignores it), to compare."""
    return {
        first: [(tag, " ".join(pattern.pattern.split()), pattern.flags) for tag, pattern in found]
        for first, found in resolvers.items()
    }


def construct(tag: str, text: str) -> Any:
    """The value of a plain scalar `text` that resolved to data tag `tag`."""
    if tag == NULL:
        return None
    if tag == BOOL:
        return _BOOL_VALUES[text.lower()]
    import yaml  # only here: see the module's docstring
    from yaml.nodes import ScalarNode

    loader = yaml.SafeLoader("")
    return loader.yaml_constructors[tag](loader, ScalarNode(tag, text))
