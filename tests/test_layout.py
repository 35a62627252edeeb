"""The package's rooms import only downwards, and pure rooms do no I/O.

    sources -> translate -> plan -> kernel / links / netfilter   (show reads the kernel side)
                 reconcile: the one engine; it alone joins translate and plan to the I/O rooms
    agent (run) and cli (apply, diff, cleanup) drive that engine; the agent reaches the
    node only through it
    kernel and links speak netlink through the netlink room, which imports no other room
    render writes a plan out; conntrack (UDP flows) and events (Events) serve the agent

A pure room (model, translate, plan, render, show) may import only the model,
itself and (render) the plan it renders, and none of the libraries that reach
outside the process. Each I/O library has its named homes (one, but for the
kubernetes client: sources reads, events writes). An import that breaks this
fails here, naming the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ipvsctl"

# room -> the ipvsctl rooms it may import (itself always allowed)
ALLOWED: dict[str, frozenset[str]] = {
    "model": frozenset(),
    "translate": frozenset({"model"}),
    "plan": frozenset({"model"}),
    "render": frozenset({"model", "plan"}),  # plan: the `Plan` it renders
    "show": frozenset({"model"}),
    "netlink": frozenset(),
    "kernel": frozenset({"model", "netlink"}),
    "links": frozenset({"model", "netlink"}),
    "conntrack": frozenset({"model", "links"}),  # links: the LinkError it raises
    "netfilter": frozenset({"model"}),
    "state": frozenset({"model"}),
    "sources": frozenset({"model"}),
    "events": frozenset({"model", "sources"}),  # sources: the API's request helpers
    # conntrack: the host's `forget_udp_flow`, handed to the engine as a port.
    "reconcile": frozenset(
        {"model", "translate", "plan", "render", "kernel", "links", "netfilter", "state"}
        | {"conntrack"}
    ),
    # Not translate, plan, kernel, links, netfilter or conntrack: the agent is a shell
    # around the engine.
    "agent": frozenset({"model", "sources", "state", "reconcile", "events"}),
    "cli": frozenset(
        {"model", "sources", "translate", "plan", "render", "show", "kernel", "links"}
        | {"netfilter", "state", "reconcile", "agent"}
    ),
}
PURE_ROOMS = frozenset({"model", "translate", "plan", "render", "show"})

# Libraries that reach outside the process, and the only rooms that may import them.
IO_LIBRARIES: dict[str, frozenset[str]] = {
    "pyroute2": frozenset({"conntrack"}),
    "kubernetes": frozenset({"sources", "events"}),
    "yaml": frozenset({"sources"}),
    "click": frozenset({"cli"}),
    "prometheus_client": frozenset({"agent"}),
    # kernel: modprobe of a scheduler module, before apply changes anything.
    "subprocess": frozenset({"netfilter", "links", "kernel"}),
    "urllib": frozenset({"sources"}),
    "http": frozenset({"agent"}),
}
# Top-level modules of the package that belong to no room.
ROOTLESS = frozenset({"__init__", "__main__"})


def _room_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_lives_in_a_known_room() -> None:
    unknown = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if _room_of(p) not in ALLOWED and _room_of(p) not in ROOTLESS
    ]
    assert unknown == []


def violations(room: str, imports: list[str]) -> list[str]:
    """The imports of a module in `room` that break the layering."""
    wrong = []
    for name in imports:
        parts = name.split(".")
        if parts[0] == "ipvsctl" and len(parts) > 1:
            if parts[1] != room and parts[1] not in ALLOWED[room]:
                wrong.append(name)
        elif parts[0] in IO_LIBRARIES and room not in IO_LIBRARIES[parts[0]]:
            wrong.append(name)
    return wrong


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_only_down(path: Path) -> None:
    room = _room_of(path)
    if room not in ROOTLESS:
        assert violations(room, _imports(path)) == [], f"{path.relative_to(PACKAGE)}"


def test_pure_rooms_have_no_io_library_home() -> None:
    for library, homes in IO_LIBRARIES.items():
        assert not homes & PURE_ROOMS, library


def test_a_planner_importing_the_kernel_or_pyroute2_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from ipvsctl.kernel import IpvsKernel\nimport pyroute2.iproute\nimport json\n")
    assert violations("plan", _imports(bad)) == ["ipvsctl.kernel", "pyroute2.iproute"]
    assert violations("cli", _imports(bad)) == ["pyroute2.iproute"]


def test_the_agent_reaching_past_the_engine_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from ipvsctl.translate import translate_service\n"
        "from ipvsctl.plan import plan_node\n"
        "from ipvsctl.kernel import IpvsKernel\n"
        "from ipvsctl.links import DummyInterface\n"
        "def f():\n    from ipvsctl.netfilter import NftTable\n"
        "from ipvsctl.reconcile.engine import NodeEngine\n"
    )
    assert violations("agent", _imports(bad)) == [
        "ipvsctl.translate",
        "ipvsctl.plan",
        "ipvsctl.kernel",
        "ipvsctl.links",
        "ipvsctl.netfilter",
    ]
