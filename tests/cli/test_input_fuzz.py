"""Any input, generated or mutated: a plan, or exit 2 with one `ipvsctl:` line per problem;
never a traceback, an internal error (70), or a hang.

The commands run in-process against fake ports (tests/reconcile/fakes.py), so a
plan is really carried out; nothing here reaches the host's kernel. The budget is
fixed (CI's profile also makes the draws the same every run); the per-example
guard is generous, as it is there to catch hangs, not slowness.
"""

from __future__ import annotations

import json
import string
import tempfile
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import yaml
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipvsctl.reconcile.ports import NodePorts
from tests.cli.test_engine_commands import NO_KERNEL, invoke
from tests.reconcile.fakes import FakeIpvs, FakeLinks, FakeSysctls

HANG = 120.0  # seconds: far beyond any example's time, even on a busy 2-core machine
BUDGET = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    st.text(max_size=30),  # control characters, newlines, non-ASCII
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    NAMES,
    st.sampled_from(["10.96.0.10", "fd00::10", "None", "TCP", "UDP", "rr", "sh", "0x50"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(NAMES, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def services(draw: st.DrawFn) -> dict[str, Any]:
    port: dict[str, Any] = {"name": draw(NAMES), "port": draw(SCALARS | st.integers(1, 65535))}
    if draw(st.booleans()):
        port["protocol"] = draw(SCALARS)
    metadata: dict[str, Any] = {"name": draw(NAMES), "namespace": draw(NAMES)}
    if draw(st.booleans()):
        metadata["annotations"] = {"ipvsctl.io/scheduler": draw(SCALARS)}
    spec: dict[str, Any] = {"clusterIP": draw(SCALARS), "ports": [port]}
    if draw(st.booleans()):
        spec[draw(NAMES)] = draw(VALUES)
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


@st.composite
def endpoint_slices(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": draw(NAMES),
            "namespace": draw(NAMES),
            "labels": {"kubernetes.io/service-name": draw(NAMES)},
        },
        "addressType": draw(st.sampled_from(["IPv4", "IPv6", "FQDN"]) | SCALARS),
        "ports": [{"name": draw(NAMES), "port": draw(SCALARS)}],
        "endpoints": [{"addresses": draw(st.lists(SCALARS, max_size=3))}],
    }


OBJECTS = st.lists(st.one_of(services(), endpoint_slices(), VALUES), max_size=4)
# What the inputs of issue 17 were made of, and what YAML's corners are made of.
FRAGMENTS = st.sampled_from(
    [
        "&a ",
        "*a",
        "<<: *a\n",
        "[" * 200,
        "{" * 50,
        "]",
        ": ",
        "- ",
        "\n  ",
        "\t",
        '"\\',
        "'",
        "!!python/object:os.system ",
        "!!binary ",
        "---\n",
        "...\n",
        "9" * 5000,
        "0x" + "f" * 200,
        "\x00",
        "\x1b[31m",
        "\u2028",
        "\ufeff",
        "%YAML 1.1\n",
        "? ",
        "|\n",
        "#",
    ]
)


def as_text(objects: list[Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(objects[0] if len(objects) == 1 else objects, default=str)
    return yaml.safe_dump_all(objects, allow_unicode=True)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    as_json = draw(st.booleans())
    text = as_text(draw(OBJECTS), as_json)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "repeat", "cut"]))
        if kind == "insert":
            text = text[:at] + draw(FRAGMENTS) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif kind == "repeat":
            line_start = text.rfind("\n", 0, at) + 1
            line_end = text.find("\n", at) + 1 or len(text)
            text = text[:line_end] + text[line_start:line_end] + text[line_end:]
        else:
            text = text[:at]
    return text, ".json" if as_json else ".yaml"


def fake_node() -> Any:
    ports = NodePorts(FakeIpvs(), FakeLinks(), FakeSysctls())
    return NO_KERNEL._replace(
        open_ports=lambda netfilter: nullcontext(ports),
        load_scheduler=lambda name: None,
    )


def run_guarded(args: list[str]) -> Result:
    """The command, failing the test if it has not finished within HANG seconds."""
    results: list[Result] = []
    worker = threading.Thread(target=lambda: results.append(invoke(args, fake_node())), daemon=True)
    worker.start()
    worker.join(HANG)
    assert not worker.is_alive(), f"{args} still running after {HANG} s"
    return results[0]


def check_outcome(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert all(line.startswith("ipvsctl: ") for line in lines), result.stderr
    if result.exit_code == 2:
        assert lines, "exit 2 without a word"


def run_on(text: str, suffix: str, command: list[str]) -> Result:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"input{suffix}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        return run_guarded([*command, "--no-netfilter", "-f", str(path)])


@BUDGET
@given(mutated())
def test_diff_of_any_mutated_manifest_is_a_plan_or_exit_2(case: tuple[str, str]) -> None:
    check_outcome(run_on(*case, ["diff"]))


@BUDGET
@given(mutated())
def test_apply_of_any_mutated_manifest_is_a_plan_or_exit_2(case: tuple[str, str]) -> None:
    check_outcome(run_on(*case, ["apply"]))


@BUDGET
@given(st.text(alphabet=string.printable + "\x00\x1b\u2028[]{}&*!|>", max_size=400))
def test_any_text_is_a_plan_or_exit_2(text: str) -> None:
    check_outcome(run_on(text, ".yaml", ["apply"]))
