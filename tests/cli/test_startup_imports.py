"""What every `apply`, `diff` and `cleanup` pays before it starts: the modules it imports.

Each check runs a fresh interpreter, since this process has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ipvsctl.cli.engine_commands import _print_plan
from ipvsctl.plan import Plan
from ipvsctl.reconcile import Outcome


def modules_after(statement: str, candidates: tuple[str, ...]) -> list[str]:
    code = (
        f"import sys; {statement}; print(','.join(m for m in {candidates!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [name for name in done.stdout.strip().split(",") if name]


def test_the_command_line_leaves_manifest_reading_to_apply_and_diff() -> None:
    # PyYAML and the manifest reader: ~0.1 s of a kernel-lab cleanup that reads no manifest.
    assert modules_after("import ipvsctl.cli.commands", ("yaml", "ipvsctl.sources")) == []


def test_the_engine_leaves_the_nft_room_to_those_that_use_it() -> None:
    # `apply --no-netfilter` (the kernel lab, CNIs that filter themselves) and `cleanup`
    # on a node without nft import none of it: six modules, ~20 ms of every cold start.
    loaded = modules_after(
        "import ipvsctl.cli.commands, ipvsctl.cli.engine_commands, ipvsctl.reconcile",
        ("ipvsctl.netfilter", "ipvsctl.reconcile.netfilter_sync", "ipvsctl.agent"),
    )
    assert loaded == []


def test_text_plans_need_none_of_the_json_schema() -> None:
    loaded = modules_after(
        "import ipvsctl.cli.commands, ipvsctl.render.plan_lines",
        ("ipvsctl.render.plan_json", "ipvsctl.model.documents"),
    )
    assert loaded == []


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("text", "link add kube-ipvs0 type dummy\naddr add 10.96.0.10/32 dev kube-ipvs0\n"),
        (
            "json",
            [
                {"op": "link add", "device": "kube-ipvs0", "type": "dummy"},
                {
                    "op": "addr add",
                    "address": "10.96.0.10",
                    "prefix_length": 32,
                    "device": "kube-ipvs0",
                },
            ],
        ),
    ],
)
def test_the_plan_prints_as_text_lines_or_json(
    capsys: pytest.CaptureFixture[str], output: str, expected: object
) -> None:
    plan = Plan(create_interface=True, addresses_add=("10.96.0.10",))
    _print_plan(Outcome(plan=plan), output)
    printed = capsys.readouterr().out
    assert (json.loads(printed) if output == "json" else printed) == expected


def test_a_plain_manifest_is_read_without_pyyaml() -> None:
    # PyYAML's import is ~50 ms in the kernel lab; names, addresses, ports and
    # booleans are all resolved without it.
    manifest = (
        "apiVersion: v1\\nkind: Service\\nmetadata: {name: web, namespace: shop}\\n"
        "spec: {clusterIP: 10.96.0.10, ports: [{port: 80, protocol: TCP}]}\\n"
        "---\\napiVersion: discovery.k8s.io/v1\\nkind: EndpointSlice\\n"
        "metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}\\n"
        "addressType: IPv4\\nendpoints:\\n- addresses: [10.244.1.5]\\n"
        "  conditions: {ready: true}\\n"
    )
    read = (
        "import io; from ipvsctl.sources import read_manifests; "
        f"inputs = read_manifests(['-'], io.StringIO('{manifest}')); "
        "assert len(inputs.services) == 1 and len(inputs.slices) == 1, inputs"
    )
    assert modules_after(read, ("yaml",)) == []


def test_the_links_and_conntrack_rooms_load_pyroute2_only_for_the_conntrack_cleanup() -> None:
    # pyroute2's import is ~0.3 s on a development machine and far more in the
    # kernel lab; only the conntrack cleanup needs it, and loads it when a table
    # is first used.
    loaded = modules_after(
        "import ipvsctl.cli.commands, ipvsctl.links, ipvsctl.conntrack", ("pyroute2",)
    )
    assert loaded == []


def test_apply_loads_no_conntrack_code() -> None:
    assert (
        modules_after(
            "import ipvsctl.cli.commands, ipvsctl.links",
            ("ipvsctl.conntrack", "ipvsctl.conntrack.udp_flows"),
        )
        == []
    )
