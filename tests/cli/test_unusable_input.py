"""apply/diff/cleanup on input that cannot be used, whatever it is: exit 2, one line per
problem naming file and line (or flag), nothing opened; the unanticipated is exit 70.

Every node here is a `NodeAccess` handed to the command: ports that fail the test if
opened (NO_KERNEL), or fakes (tests/reconcile/fakes.py) whose state is checked after.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import Result

from ipvsctl.model import VirtualServerEntry
from ipvsctl.reconcile import NodeAccess
from ipvsctl.reconcile.ports import NodePorts
from ipvsctl.sources.files.limits import MAX_DEPTH, MAX_FILE_BYTES
from tests.cli.test_engine_commands import GOOD_SERVICE, NO_KERNEL, invoke, manifest
from tests.plan.builders import tcp
from tests.reconcile.fakes import FakeIpvs, FakeLinks, FakeSysctls

ADVERSARIAL = Path(__file__).resolve().parents[1] / "sources" / "files" / "adversarial"


def one_line_per_problem(result: Result) -> list[str]:
    """stderr's lines, each checked to be ipvsctl's own (no traceback, no forged line)."""
    lines = result.stderr.splitlines()
    assert lines, result.output
    assert all(line.startswith("ipvsctl: ") for line in lines), result.stderr
    assert "Traceback" not in result.output
    return lines


def refused(result: Result) -> list[str]:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = one_line_per_problem(result)
    assert lines[-1] in ("ipvsctl: nothing was changed", lines[0])
    return lines


def service_with_port(port: str) -> str:
    return GOOD_SERVICE.replace("SCHED", "rr").replace("PORT", port)


# --- adversarial files (kept under tests/sources/files/adversarial) -----------------------


@pytest.mark.parametrize(
    ("name", "line", "problem"),
    [
        ("deep-flow.yaml", "line 8", "nesting depth"),
        ("long-port.yaml", "line 8", "a number of 5000 characters"),
        ("long-hex-port.yaml", "line 8", "a number of 5002 characters"),
        ("alias-bomb-port.yaml", "line ", "aliases expand to more than 1,000,000 nodes"),
        ("duplicate-key.yaml", "line 6", 'duplicate key "clusterIP"'),
        ("duplicate-key-flow.yaml", "line 3", 'duplicate key "name"'),
        ("duplicate-key.json", "line 2", 'duplicate key "name"'),
    ],
)
@pytest.mark.parametrize("command", ["apply", "diff"])
def test_an_adversarial_file_is_one_line_naming_file_and_line(
    command: str, name: str, line: str, problem: str
) -> None:
    path = ADVERSARIAL / name
    (first, *_) = refused(invoke([command, "-f", str(path)]))
    assert first.startswith(f"ipvsctl: {path}: {line}")
    assert problem in first


def test_a_newline_in_a_name_cannot_forge_a_line() -> None:
    result = invoke(["apply", "-f", str(ADVERSARIAL / "newline-in-name.yaml")])
    (first, _) = refused(result)
    assert first.startswith(r"ipvsctl: Service shop/web\nipvsctl: forged line\x1b[31m: ")
    assert "\x1b" not in result.stderr


BLOCK_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  ports:
  - name: http
    port:"""


def test_deep_block_nesting_under_a_port_is_refused_with_its_line(tmp_path: Path) -> None:
    deep = "".join(f"\n{'  ' * (level + 3)}k{level}:" for level in range(10_000)) + " 1\n"
    path = tmp_path / "deep.yaml"
    path.write_text(BLOCK_SERVICE + deep)
    (first, _) = refused(invoke(["diff", "-f", str(path)]))
    assert first.startswith(f"ipvsctl: {path}: line ")
    assert f"nested deeper than {MAX_DEPTH} levels" in first


def test_deep_json_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"kind": "Service",\n"x": ' + "[" * 10_000 + "]" * 10_000 + "}")
    (first, _) = refused(invoke(["apply", "-f", str(path)]))
    assert first == f"ipvsctl: {path}: line 2: nested deeper than {MAX_DEPTH} levels"


def test_a_long_number_in_json_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    path.write_text('{"kind": "Service",\n"port": ' + "9" * 5000 + "}")
    (first, _) = refused(invoke(["apply", "-f", str(path)]))
    assert first.startswith(f"ipvsctl: {path}: line 2: a number of 5000 characters")


def test_a_symlink_in_a_directory_to_a_deep_file_is_refused_by_its_own_path(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "deep.yaml").symlink_to(ADVERSARIAL / "deep-flow.yaml")
    (first, _) = refused(invoke(["diff", "-f", str(directory)]))
    assert first.startswith(f"ipvsctl: {directory / 'deep.yaml'}: line 8: ")


def test_a_ten_megabyte_annotation_is_cut_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(GOOD_SERVICE.replace("SCHED", "x" * 10_000_000).replace("PORT", "80"))
    result = invoke(["apply", "-f", str(path)])
    (first, _) = refused(result)
    assert len(result.stderr) < 2000
    assert "(10,000,000 characters)" in first


# --- what is read at all ------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_before_it_is_read(device: str) -> None:
    (first, _) = refused(invoke(["apply", "-f", device]))
    assert (
        first == f"ipvsctl: {device}: file: a character device, not a regular file (- reads stdin)"
    )


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    (first, _) = refused(invoke(["apply", "-f", str(fifo)]))
    assert first == f"ipvsctl: {fifo}: file: a FIFO, not a regular file (- reads stdin)"


def test_stdin_beyond_the_size_limit_is_refused(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ipvsctl.cli.commands import cli

    big = "#" * (MAX_FILE_BYTES + 1)
    result = CliRunner().invoke(cli, ["apply", "-f", "-"], input=big, obj=NO_KERNEL)
    (first, _) = refused(result)
    assert first == "ipvsctl: stdin: file: larger than 256 MiB, the limit"


def test_dangling_and_looping_symlinks_in_a_directory_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "missing.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text(service_with_port("80"))
    lines = refused(invoke(["diff", "-f", str(tmp_path)]))
    assert lines == [
        f"ipvsctl: {tmp_path / 'a.yaml'}: file: cannot read (a symlink): No such file or directory",
        f"ipvsctl: {tmp_path / 'b.yaml'}: file: cannot read (a symlink): "
        "Too many levels of symbolic links",
        "ipvsctl: nothing was changed",
    ]


def test_bytes_that_are_not_utf8_are_refused_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: Service\nmetadata: {name: caf\xe9}\n")
    (first, _) = refused(invoke(["apply", "-f", str(path)]))
    assert first == f"ipvsctl: {path}: line 3: not UTF-8 (byte 0xe9)"


# --- no Service at all ------------------------------------------------------------------


def node_owning_one_server() -> tuple[NodeAccess, FakeIpvs, FakeLinks]:
    ipvs = FakeIpvs([VirtualServerEntry(tcp("10.96.0.10", 80))])
    links = FakeLinks()
    links.interface, links.addresses = True, {"10.96.0.10"}
    ports = NodePorts(ipvs, links, FakeSysctls())
    node = NO_KERNEL._replace(
        open_ports=lambda netfilter: nullcontext(ports), load_scheduler=lambda name: None
    )
    return node, ipvs, links


@pytest.mark.parametrize("text", ["", "---\n", "# nothing\n", "---\n---\n"])
@pytest.mark.parametrize("command", ["apply", "diff"])
def test_an_input_without_a_service_deletes_nothing(
    tmp_path: Path, command: str, text: str
) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    (first,) = refused(invoke([command, "--no-netfilter", "-f", str(path)]))
    assert first.startswith("ipvsctl: no Service in the input: ")
    assert "--allow-empty" in first


def test_an_empty_directory_deletes_nothing(tmp_path: Path) -> None:
    refused(invoke(["apply", "--no-netfilter", "-f", str(tmp_path)]))


def test_allow_empty_deletes_what_ipvsctl_owns(tmp_path: Path) -> None:
    node, ipvs, links = node_owning_one_server()
    path = tmp_path / "empty.yaml"
    path.write_text("")
    result = invoke(["diff", "--no-netfilter", "--allow-empty", "-f", str(path)], node)
    assert result.exit_code == 1, result.output
    assert "-D -t 10.96.0.10:80" in result.stdout
    result = invoke(["apply", "--no-netfilter", "--allow-empty", "-f", str(path)], node)
    assert result.exit_code == 0, result.output
    assert ipvs.table.listing() == () and links.addresses == set()


# --- a scheduler that cannot load -------------------------------------------------------


def test_a_scheduler_that_cannot_load_changes_nothing(tmp_path: Path) -> None:
    node, ipvs, links = node_owning_one_server()
    asked: list[str] = []

    def cannot_load(name: str) -> str | None:
        asked.append(name)
        return "modprobe ip_vs_sh: ERROR: could not insert 'ip_vs_sh': Exec format error"

    sysctls = FakeSysctls({"net.ipv4.ip_forward": "1"})
    ports = NodePorts(ipvs, links, sysctls)
    node = node._replace(
        open_ports=lambda netfilter: nullcontext(ports), load_scheduler=cannot_load
    )
    path = manifest(tmp_path, scheduler="sh")
    result = invoke(["apply", "--no-netfilter", "-f", path], node)
    (first, _) = refused(result)
    assert first == (
        'ipvsctl: Service shop/api: metadata.annotations["ipvsctl.io/scheduler"]: '
        "scheduler \"sh\" cannot be loaded (modprobe ip_vs_sh: ERROR: could not insert 'ip_vs_sh': "
        "Exec format error)"
    )
    assert asked == ["sh"]
    assert ipvs.sent == [] and sysctls.written == [] and links.addresses == {"10.96.0.10"}


def test_the_default_scheduler_that_cannot_load_names_the_flag(tmp_path: Path) -> None:
    node, ipvs, _ = node_owning_one_server()
    node = node._replace(load_scheduler=lambda name: f"modprobe ip_vs_{name}: not found")
    path = tmp_path / "plain.yaml"
    path.write_text(
        GOOD_SERVICE.replace(", annotations: {ipvsctl.io/scheduler: SCHED}", "").replace(
            "PORT", "81"
        )
    )
    result = invoke(["apply", "--no-netfilter", "--scheduler", "lc", "-f", str(path)], node)
    (first, _) = refused(result)
    assert (
        first
        == 'ipvsctl: --scheduler: scheduler "lc" cannot be loaded (modprobe ip_vs_lc: not found)'
    )
    assert ipvs.sent == []


@pytest.mark.parametrize("args", [["diff"], ["apply", "--dry-run"]])
def test_a_plan_that_is_only_shown_loads_no_module(tmp_path: Path, args: list[str]) -> None:
    node, _, _ = node_owning_one_server()
    node = node._replace(load_scheduler=NO_KERNEL.load_scheduler)  # fails the test if called
    result = invoke([*args, "--no-netfilter", "-f", manifest(tmp_path, scheduler="sh")], node)
    assert result.exit_code in (0, 1), result.output


# --- --interface as the kernel takes it ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("kube ipvs0", "a link name holds no space, '/', ':' or NUL"),
        ("kube/ipvs0", "a link name holds no space, '/', ':' or NUL"),
        ("kube:ipvs0", "a link name holds no space, '/', ':' or NUL"),
        ("..", "not a link name the kernel takes"),
        ("a-very-long-name", "16 bytes; a link name has at most 15"),
        ("kube-ipvsé-0123", "16 bytes; a link name has at most 15"),
    ],
)
@pytest.mark.parametrize("command", [["apply"], ["diff"], ["cleanup"]])
def test_a_bad_interface_is_refused_before_anything_is_opened(
    tmp_path: Path, command: list[str], name: str, why: str
) -> None:
    files = [] if command == ["cleanup"] else ["-f", manifest(tmp_path)]
    result = invoke([*command, "--interface", name, *files])
    assert result.exit_code == 2, result.output
    assert result.stderr == f'ipvsctl: --interface: "{name}": {why}\n'


def test_a_fifteen_byte_interface_is_accepted(tmp_path: Path) -> None:
    node, _, _ = node_owning_one_server()
    result = invoke(
        ["diff", "--no-netfilter", "--interface", "i" * 15, "-f", manifest(tmp_path)], node
    )
    assert result.exit_code in (0, 1) and result.stderr == "", result.output


# --- the unanticipated ------------------------------------------------------------------


def broken_node() -> NodeAccess:
    def schedulers() -> frozenset[str] | None:
        raise RuntimeError("a bug\nwith a second line")

    return NO_KERNEL._replace(schedulers=schedulers)


def test_an_unanticipated_error_is_one_line_and_exit_70(tmp_path: Path) -> None:
    result = invoke(["diff", "-f", manifest(tmp_path)], broken_node())
    assert result.exit_code == 70
    assert result.stderr == (
        "ipvsctl: internal error: RuntimeError: a bug\\nwith a second line "
        "(--debug prints the traceback)\n"
    )


def test_debug_prints_the_traceback_of_an_unanticipated_error(tmp_path: Path) -> None:
    result = invoke(["--debug", "diff", "-f", manifest(tmp_path)], broken_node())
    assert result.exit_code == 70
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.endswith(
        "ipvsctl: internal error: RuntimeError: a bug\\nwith a second line\n"
    )
