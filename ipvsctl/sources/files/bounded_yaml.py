"""PyYAML's safe loader with the manifest bounds (`limits`) and kubectl's strictness.

PyYAML's own loaders trust their input: a document nested 10,000 deep
exhausts the stack, a 1 kB alias bomb is a billion nodes to whoever walks the
result, and a key given twice silently keeps the last value. This loader
composes nodes in Python (on libyaml's C events when libyaml is built, about a
third slower than libyaml's own composer, which has no hooks), so that it can
count depth and alias expansion as it goes, and refuses duplicate keys and
over-long numbers with the line they are on, as kubectl's reader does.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.resolver import Resolver

from ipvsctl.sources.files.limits import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    number_too_long,
    too_deep,
)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_Parser: Any
try:
    _Parser = import_module("yaml._yaml").CParser  # libyaml's, as CSafeLoader's
except ImportError:  # no libyaml: PyYAML's own scanner and parser
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _PurePythonParser(Reader, Scanner, Parser):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

    _Parser = _PurePythonParser


class BoundedLoader(Composer, _Parser, SafeConstructor, Resolver):  # type: ignore[misc]
    """A SafeLoader that refuses what `limits` bounds and duplicate keys."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.depth = 0
        self.alias_nodes = 0  # nodes the aliases so far stand for, expanded
        self.sizes: dict[int, int] = {}  # id(anchored node): its node count, expanded
        self.nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Any:
        event: Any = self.peek_event()
        node: Any
        mark: Any = event.start_mark  # libyaml's Mark or PyYAML's
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)  # the anchored node
            size = self.sizes.get(id(node), 1)
            self.alias_nodes += size
            self.nodes += size
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes",
                    mark,
                )
            return node
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, too_deep(), mark)
        before = self.nodes
        node = super().compose_node(parent, index)
        self.depth -= 1
        self.nodes += 1
        if getattr(event, "anchor", None) is not None:
            self.sizes[id(node)] = self.nodes - before
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Only the mapping's own keys: those a merge (`<<`) brings may be overridden.
        # Flattening puts the merged ones first (and is done once: PyYAML's own call
        # below then finds nothing to merge).
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value[len(node.value) - own :]:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: PyYAML's own check below names it
            if duplicate:
                raise ConstructorError(
                    None, None, f"duplicate key {_shown_key(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise ConstructorError(None, None, number_too_long(node.value), node.start_mark)
        value: int = super().construct_yaml_int(node)
        return value

    def construct_yaml_float(self, node: ScalarNode) -> float:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise ConstructorError(None, None, number_too_long(node.value), node.start_mark)
        value: float = super().construct_yaml_float(node)
        return value


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_yaml_float)


def _shown_key(key: Any) -> str:
    return f'"{key}"' if isinstance(key, str) else repr(key)
