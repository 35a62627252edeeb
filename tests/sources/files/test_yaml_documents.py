"""yaml_documents: the fast reader gives exactly what PyYAML's SafeLoader gives, or steps aside."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipvsctl.sources.files.yaml_documents import BadYaml, load_documents, simple_documents

C_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pyyaml(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> list[Any]:
    return [document for document in yaml.load_all(text, Loader=loader) if document is not None]


def same(found: list[Any], expected: list[Any]) -> bool:
    """Equal with types, order and NaN: repr tells 1 from True and 1.0, and nan from nan."""
    return repr(found) == repr(expected)


def check_fast_path(text: str) -> list[Any] | None:
    """If the fast reader takes the text, both PyYAML loaders read it so, without error."""
    fast = simple_documents(text)
    if fast is not None:
        assert same(fast, pyyaml(text)), text
        assert same(fast, pyyaml(text, C_LOADER)), text
    return fast


def check_reads_as_pyyaml(text: str) -> None:
    """load_documents gives what libyaml-backed PyYAML gives, or fails as it does; where
    PyYAML keeps the last of a key given twice, it refuses the stream, as kubectl does."""
    try:
        expected = pyyaml(text, C_LOADER)
    except yaml.YAMLError:
        with pytest.raises(BadYaml):
            list(load_documents(text))
        return
    try:
        found = list(load_documents(text))
    except BadYaml as error:
        assert error.problem.startswith("duplicate key "), error
        assert has_duplicate_key(text), text
        return
    assert same(found, expected)


def has_duplicate_key(text: str) -> bool:
    """Whether a mapping of the stream gives one key twice (PyYAML's node graph says)."""
    loader = C_LOADER(text)
    try:
        while loader.check_node():
            pending = [loader.get_node()]
            while pending:
                node = pending.pop()
                if isinstance(node, yaml.MappingNode):
                    keys = [loader.construct_object(k, deep=True) for k, _ in node.value]
                    if len(keys) != len(set(keys)) or any(k != k for k in keys):
                        return True
                    pending.extend(v for _, v in node.value)
                elif isinstance(node, yaml.SequenceNode):
                    pending.extend(node.value)
    finally:
        loader.dispose()
    return False


TRICKY_SCALARS = [
    "yes",
    "Yes",
    "YES",
    "yEs",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "true",
    "True",
    "TRUE",
    "tRue",
    "false",
    "False",
    "FALSE",
    "y",
    "n",
    "Y",
    "N",
    "~",
    "null",
    "Null",
    "NULL",
    "nUll",
    "0",
    "-0",
    "+1",
    "017",
    "08",
    "0o17",
    "0x1F",
    "0x_1F",
    "0b101",
    "0b2",
    "1_000",
    "1__0",
    "_1",
    "1:20",
    "-1:20:30",
    "1:60",
    "190:20:30.15",
    ".5",
    "1.",
    "-.5",
    "1e3",
    "1.0e3",
    "1.0e+3",
    "6.8523015e+5",
    "685.230_15e+03",
    ".inf",
    "-.inf",
    "+.Inf",
    ".INF",
    ".NaN",
    ".nan",
    ".NAN",
    ".nAn",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2001-12-15T02:59:43.1Z",
    "2002-1-1",
    "10.96.0.1",
    "fd00::1",
    "::1",
    "a:b",
    "a::b",
    "-a",
    "-1",
    "--",
    "a b",
    "a  b",
    "a#b",
    "a,b",
    "a[0]",
    "a{b}",
    "<<",
    "=",
    "a=b",
    "@x",
    "`x",
    "%x",
    "!x",
    "&x",
    "*x",
    "|",
    ">",
    "?x",
    ":x",
    "-",
    "?",
    "x:",
    "x: y",
]
TRICKY_SCALARS += [f'"{s}"' for s in ("yes", "1", "", "~", "a'b")]
TRICKY_SCALARS += [f"'{s}'" for s in ("yes", "1", "", "~", 'a"b', "a''b")]
CONTEXTS = [
    "key: {}\n",
    "{}: value\n",
    "- {}\n",
    "[{}]\n",
    "[a, {}, b]\n",
    "{{k: {}}}\n",
    "{{{}: v}}\n",
    "outer:\n  key: {} # comment\n",
    "{}\n",
    "- - {}\n",
]


@pytest.mark.parametrize("scalar", TRICKY_SCALARS)
@pytest.mark.parametrize("context", CONTEXTS)
def test_a_tricky_scalar_reads_as_pyyaml_reads_it(context: str, scalar: str) -> None:
    text = context.format(scalar)
    check_fast_path(text)
    check_reads_as_pyyaml(text)


@pytest.mark.parametrize(
    "scalar", ["yes", "On", "~", "", "0x1F", "0o17", "017", "1_000", "1:20", ".5", "-.inf", ".NaN"]
)
def test_a_common_resolver_case_takes_the_fast_path(scalar: str) -> None:
    text = f"key: {scalar}\nlist: [{scalar or 'x'}]\n"
    assert check_fast_path(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",
        "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
        "a: !!str 1\n",
        "a: !custom 1\n",
        "a: |+\n  line\n  two\n",
        "a: |\n  line\n\n  two\n",
        "a: |\n  line\n  two",
        "a: |2\n   line\n",
        "- |\n  line\n",
        "a: >-\n  folded\n  text\n",
        "a: plain\n  continued\n",
        "a: [1,\n  2]\n",
        'a: "esc\\taped"\n',
        "%YAML 1.1\n---\na: 1\n",
        "a: 1\n...\n---\nb: 2\n",
        "? complex\n: key\n",
        "a:\tb\n",
        "a: 1\r\nb: 2\r\n",
        "name: caf\u00e9\n",
        "\ufeffa: 1\n",
        "--- text on the marker line\n",
    ],
)
def test_yaml_beyond_the_fast_reader_is_left_to_pyyaml(text: str) -> None:
    assert simple_documents(text) is None
    check_reads_as_pyyaml(text)


def test_documents_of_a_stream_and_null_ones_dropped() -> None:
    text = "# head\na: 1\n---\n---\nnull\n--- # c\n- x\n---\n"
    assert simple_documents(text) == [{"a": 1}, ["x"]]
    assert check_fast_path(text) is not None


def test_block_layouts_read_as_pyyaml_reads_them() -> None:
    text = (
        "a:\n- x\n- y: 1\n  z:\n  - 2\n-\n- - n\n  - m\nb:\n    deep:\n        v: 1\n"
        "c:\nd: ''\n'q k': \"d v\"\ne: {x: [1, {y: 2}], z: []}\nf: [ a , b ]\ng: { }\n"
        "seq:\n  -   spaced: 1\n      more: 2\n  - plain scalar # comment\n"
    )
    assert check_fast_path(text) is not None


BLOCK_SCALARS = [
    "a: |\n  line\n  two\n",
    "a: |-\n  line\n  two\nb: 1\n",
    'a: |\n  first\n    deeper\n  back # not a comment\n  ---\n  # c\nb: |\n {"k": 1}  \n',
    "- k: |\n   x\n  j: 1\n",
    "- k: |\n  x\n",
    "outer:\n  a: |\n    x\n  b: 2\n---\nc: |\n  y\n",
    "a: |\n  x\n   \nb: 1\n",
    "a: |\n  x\n\n",
    "a: |\nb: 1\n",
    "a: |\n  x\n b: 1\n",
    "a:\n  b: |\n  x\n",
]


@pytest.mark.parametrize("text", BLOCK_SCALARS)
def test_a_literal_block_scalar_reads_as_pyyaml_reads_it(text: str) -> None:
    check_fast_path(text)
    check_reads_as_pyyaml(text)


def test_kubectls_last_applied_configuration_takes_the_fast_path() -> None:
    text = (
        "metadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n"
        '      {"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}}\n'
        "  name: web\n"
    )
    assert check_fast_path(text) is not None


KUBECTL_LIST = """\
apiVersion: v1
items:
- apiVersion: v1
  kind: Service
  metadata:
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"name":"web"}}
    creationTimestamp: "2024-05-01T10:00:00Z"
    labels:
      app: web
    name: web
    namespace: default
    resourceVersion: "1001"
    uid: 5c8e0001-1b2c-4d5e-8f90-a1b2c3d4e5f6
  spec:
    clusterIP: 10.96.0.10
    clusterIPs:
    - 10.96.0.10
    ipFamilies:
    - IPv4
    ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 8080
    sessionAffinity: None
    type: ClusterIP
  status:
    loadBalancer: {}
- addressType: IPv4
  apiVersion: discovery.k8s.io/v1
  endpoints:
  - addresses:
    - 10.128.0.1
    conditions:
      ready: true
      serving: true
      terminating: false
    nodeName: node-1
    targetRef:
      kind: Pod
      name: web-0
      uid: 7a1b0001-0001-4d5e-8f90-a1b2c3d4e5f6
    zone: zone-a
  kind: EndpointSlice
  metadata:
    generation: 3
    labels:
      kubernetes.io/service-name: web
    name: web-abcde
    ownerReferences:
    - apiVersion: v1
      blockOwnerDeletion: true
      kind: Service
      name: web
  ports:
  - name: http
    port: 8080
    protocol: TCP
kind: List
metadata:
  resourceVersion: ""
"""


def test_a_kubectl_get_list_takes_the_fast_path() -> None:
    found = check_fast_path(KUBECTL_LIST)
    assert found is not None
    assert [item["kind"] for item in found[0]["items"]] == ["Service", "EndpointSlice"]


@pytest.mark.parametrize(
    "line",
    [
        "  key: 10.1.2.3",
        "  key: 1.2.3.4.5",
        "  key: 1.2",
        "  key: 0",
        "  key: 007",
        "  key: 123456789012345678901234",
        "  key: 2001-12-14",
        "  key: 1_0",
        '  key: ""',
        "  key:   ",
        "  - 10.0.0.1",
        "  -   word",
        "  - 12",
        "  - a: b",
        "  10: ten",
        "  yes: no",
        "  - addresses: [10.0.0.1]",
        "  - addresses: [ 10.0.0.1 ]",
        "  - addresses: [10.0.0.1, fd00::1,a:b]",
        "  - addresses: [10.0.0.1,]",
        "  - addresses: [10.0.0.1] # c",
        "  - addresses: [10.0.01]",
        "  - k: {a: b, c : d,e: f:g}",
        "  - k: {a: b,}",
        "  - k: {a: 1, a: 2}",
        "  - k: {a:b: c, d: [e]}",
        "  - k: {<<: x}",
        "  - k:",
        "  - k:   # c",
        "  -   k: v",
        "  - - k: v",
        "  k: 10.0.0.1 # c",
        "  k: 10.0.0.1:80",
        "  k: 1.2.3 4",
        "  a:b: c",
        "  a #b: c",
        "  a: b: c",
        "  a:: b",
        "  'a': b",
        "  --- a: b",
        "  ...: b",
        "  k: |",
        "  - k: |-",
    ],
)
def test_a_common_line_reads_as_pyyaml_reads_it(line: str) -> None:
    text = f"outer:\n{line}\n"
    check_fast_path(text)
    check_reads_as_pyyaml(text)


@pytest.mark.parametrize(
    "flow",
    [
        "[a, b ,c]",
        "[ a,b ]",
        "[a b, c  d]",
        "[a,,b]",
        "[a,]",
        "[,a]",
        "[]",
        "[ ]",
        "[a]b",
        "[a",
        "[a]]",
        "[[a]]",
        "[a, [b]]",
        "[a, {b: c}]",
        "[a #b]",
        "[a] #c",
        "[a:b, a: b]",
        "[-a, - a]",
        "[-]",
        "[1.5, 2001-12-14, ~, yes, 0x1F, 1_000, .nan]",
        "[<<]",
        "[a'b, 'c']",
        '[a"b, "c"]',
        "{a: b, c: d e}",
        "{a: b c: d}",
        "{a:b: c}",
        "{a : b}",
        "{a :b}",
        "{a:  b,c:d}",
        "{a: b, a: c}",
        "{.nan: 1, .nan: 2}",
        "{1.5: x, 2001-12-14: y, ~: z}",
        "{a: b",
        "{a: b}}",
        "{a: b,}",
        "{: b}",
        "{a: }",
        "{a: b, c}",
        "{a: [b]}",
        "{<<: a}",
        "{a: <<}",
        "{a: =}",
        "{a: -}",
    ],
)
def test_a_flow_collection_reads_as_pyyaml_reads_it(flow: str) -> None:
    # Twice, in a mapping and as a sequence item: the second reading of a spelling
    # is a copy of the first.
    text = f"k: {flow}\nl:\n- {flow}\nm: {flow}\n"
    check_fast_path(text)
    check_reads_as_pyyaml(text)


def test_a_flow_collection_spelled_again_is_a_new_object_equal_to_the_first() -> None:
    text = "a: {k: [1.5, x]}\nb: {k: [1.5, x]}\nc:\n- {k: [1.5, x]}\n"
    found = check_fast_path(text)
    assert found is not None
    (document,) = found
    first, second, third = document["a"], document["b"], document["c"][0]
    assert first == second == third == {"k": [1.5, "x"]}
    assert first is not second and first["k"] is not second["k"] and third is not first


@pytest.mark.parametrize(
    "text",
    [
        "--- a: b\n",
        "...: b\n",
        "---: b\n",
        "--- - a\n",
    ],
)
def test_a_document_marker_is_never_read_as_a_key_or_item(text: str) -> None:
    assert simple_documents(text) is None
    check_reads_as_pyyaml(text)


@pytest.mark.parametrize(
    ("key_length", "spaces"), [(990, 1), (990, 100), (1020, 1), (1024, 1), (1025, 1), (1030, 40)]
)
def test_a_long_key_reads_as_pyyaml_reads_it(key_length: int, spaces: int) -> None:
    # PyYAML takes a simple key of up to 1024 characters up to its `:`; what follows
    # the `:` does not count.
    entry = "k" * key_length + ":" + " " * spaces + "v"
    for text in (f"{entry}\n", f"- {entry}\n", f"outer:\n  - {entry}\n  - {entry}\n"):
        check_fast_path(text)
        check_reads_as_pyyaml(text)


def test_manifest_lines_take_the_fast_path() -> None:
    text = (
        "metadata: {name: web, namespace: shop}\n"
        "spec:\n  clusterIPs: [10.96.0.10]\n  ports: [{name: http, port: 80}]\n"
        "endpoints:\n  - addresses: [10.128.0.1]\n  - addresses: [10.128.0.2, 10.128.0.3]\n"
    )
    assert check_fast_path(text) is not None


def test_each_occurrence_of_a_flow_collection_is_its_own_object() -> None:
    (found,) = simple_documents("- [10.0.0.1]\n- [10.0.0.1]\n- {a: [b]}\n- {a: [b]}\n") or [None]
    assert found == [["10.0.0.1"], ["10.0.0.1"], {"a": ["b"]}, {"a": ["b"]}]
    assert found[0] is not found[1]
    assert found[2] is not found[3] and found[2]["a"] is not found[3]["a"]


def test_a_line_error_is_pyyamls_error() -> None:
    text = "a: 1\nb: [x\nc: 3\n"
    assert simple_documents(text) is None
    with pytest.raises(BadYaml) as caught:
        list(load_documents(text))
    mark = caught.value.__cause__.problem_mark  # type: ignore[union-attr]
    assert mark is not None and caught.value.where == f"line {mark.line + 1}"


def test_documents_before_a_bad_one_are_still_given() -> None:
    found: list[Any] = []
    with pytest.raises(BadYaml):
        found.extend(load_documents("a: 1\n---\nb: [\n"))
    assert found == [{"a": 1}]


# Generated documents: random trees written in random YAML styles.

WORDS = st.sampled_from(
    [*TRICKY_SCALARS, "web", "kind", "10.0.0.1", "a b c", "x-y_z.1", "Service", "ports"]
)


@st.composite
def scalars(draw: st.DrawFn) -> str:
    word = draw(WORDS | st.text(alphabet="ab1:-.# '\"[]{},!&*?", min_size=0, max_size=6))
    style = draw(st.sampled_from(["plain", "single", "double"]))
    if style == "single":
        return "'" + word.replace("'", "''") + "'"
    if style == "double" and '"' not in word:
        return f'"{word}"'
    return word


Tree = Any
trees = st.recursive(
    scalars(),
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: ("seq", items))
        | st.lists(st.tuples(scalars(), children), max_size=4).map(lambda items: ("map", items))
    ),
    max_leaves=12,
)


def flow(tree: Tree) -> str:
    if isinstance(tree, str):
        return tree
    kind, items = tree
    if kind == "seq":
        return "[" + ", ".join(flow(item) for item in items) + "]"
    return "{" + ", ".join(f"{flow(key)}: {flow(value)}" for key, value in items) + "}"


def block(tree: Tree, indent: int, step: int, data: st.DataObject) -> list[str]:
    """Lines of `tree` as a block node at `indent` (scalars, and at random collections, in flow)."""
    pad = " " * indent
    if isinstance(tree, str) or not tree[1] or data.draw(st.integers(0, 4)) == 0:
        return [pad + flow(tree)]
    kind, items = tree
    lines: list[str] = []
    for item in items:
        if kind == "seq":
            head, value = pad + "-", item
        else:
            key, value = item
            head = f"{pad}{key}:"
        if isinstance(value, str) or not value[1]:
            lines.append(f"{head} {flow(value)}")
            continue
        compact = kind == "seq" and data.draw(st.booleans())
        if compact:  # `- key: value` or `- - item`: the node starts on the entry's line
            inner = block(value, indent + 2, step, data)
            lines.append(f"{head} {inner[0].lstrip(' ')}")
            lines += inner[1:]
            continue
        indentless = kind == "map" and value[0] == "seq" and data.draw(st.booleans())
        lines.append(head + data.draw(st.sampled_from(["", " # note"])))
        lines += block(value, indent if indentless else indent + step, step, data)
    return lines


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trees, min_size=1, max_size=3), st.integers(1, 4), st.data())
def test_generated_documents_read_as_pyyaml_reads_them(
    documents: list[Tree], step: int, data: st.DataObject
) -> None:
    text = "---\n".join("\n".join(block(tree, 0, step, data)) + "\n" for tree in documents)
    check_fast_path(text)
    check_reads_as_pyyaml(text)


FRAGMENTS = st.sampled_from(
    [
        "- ",
        "-",
        "a",
        "b: ",
        "c:",
        " ",
        "  ",
        "# x",
        " #",
        "'q'",
        '"d"',
        "'",
        '"',
        "[",
        "]",
        "{",
        "}",
        ", ",
        ":",
        ": ",
        "1",
        "yes",
        "~",
        "---",
        "&a ",
        "*a",
        "!t ",
        "|",
        ">",
        "?",
        "x:y",
        "10.0.0.1",
        "[1.2.3]",
        "{a: b, c: d}",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.lists(FRAGMENTS, max_size=6).map("".join), min_size=1, max_size=8))
def test_the_fast_reader_takes_nothing_pyyaml_reads_otherwise(lines: list[str]) -> None:
    check_fast_path("\n".join(lines) + "\n")


def test_a_lone_dash_value_is_pyyamls_even_after_a_dash_key() -> None:
    # Found by hypothesis: `-` read as a key first was then taken as a value too.
    check_reads_as_pyyaml("yes: yes\n-: yes\nyes: -\n")
