"""apply/diff/cleanup on bad input: one line per problem, exit 2, and no kernel touched.

The commands reach a node handed to them (`NodeAccess`) whose ports fail the test
if opened: validation must finish before they are.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ipvsctl.cli.commands import cli
from ipvsctl.cli.engine_commands import split_list
from ipvsctl.reconcile import NodeAccess
from ipvsctl.reconcile.ports import NodePorts

GOOD_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop, annotations: {ipvsctl.io/scheduler: SCHED}}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ports: [{name: http, port: PORT, protocol: TCP}]
"""


def manifest(tmp_path: Path, scheduler: str = "rr", port: str = "80") -> str:
    path = tmp_path / "m.yaml"
    path.write_text(GOOD_SERVICE.replace("SCHED", scheduler).replace("PORT", port))
    return str(path)


def refuse(netfilter: bool) -> AbstractContextManager[NodePorts]:
    raise AssertionError("the kernel or links were opened before validation finished")


def refuse_to_load(scheduler: str) -> str | None:
    raise AssertionError("a scheduler module was loaded by a unit test")


NO_KERNEL = NodeAccess(
    schedulers=lambda: None,
    addresses=lambda interface: (),
    open_ports=refuse,
    load_scheduler=refuse_to_load,
)


def invoke(args: list[str], node: NodeAccess = NO_KERNEL) -> Result:
    return CliRunner().invoke(cli, args, obj=node)


@pytest.mark.parametrize("command", ["apply", "diff"])
def test_unknown_scheduler_is_one_line_naming_service_and_annotation(
    tmp_path: Path, command: str
) -> None:
    result = invoke([command, "-f", manifest(tmp_path, scheduler="fastest")])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        'ipvsctl: Service shop/api: metadata.annotations["ipvsctl.io/scheduler"]: '
        'unknown scheduler "fastest" (known: rr, wrr, lc,'
    )
    assert lines[-1] == "ipvsctl: nothing was changed"
    assert result.stdout == ""


def test_port_out_of_range_names_the_field(tmp_path: Path) -> None:
    result = invoke(["apply", "-f", manifest(tmp_path, port="70000")])
    assert result.exit_code == 2
    assert "Service shop/api: spec.ports[0].port: " in result.stderr
    assert "70000" in result.stderr


def test_unparsable_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: [\n")
    result = invoke(["diff", "-f", str(path)])
    assert result.exit_code == 2
    assert f"{path}: line " in result.stderr


def test_unknown_default_scheduler_names_the_flag(tmp_path: Path) -> None:
    result = invoke(["apply", "-f", manifest(tmp_path), "--scheduler", "fastest"])
    assert result.exit_code == 2
    assert result.stderr.startswith('ipvsctl: --scheduler: unknown scheduler "fastest"')


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    bad = tmp_path / "two.yaml"
    bad.write_text(
        GOOD_SERVICE.replace("SCHED", "fastest").replace("PORT", "80")
        + "---\n"
        + GOOD_SERVICE.replace("SCHED", "rr").replace("PORT", "0").replace("name: api", "name: b")
    )
    result = invoke(["apply", "-f", str(bad)])
    assert result.exit_code == 2
    assert "Service shop/api:" in result.stderr and "Service shop/b:" in result.stderr


def test_a_bad_nodeport_cidr_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["diff", "-f", manifest(tmp_path), "--nodeport-addresses", "10.0.0.0/8,garbage"]
    )
    assert result.exit_code == 2
    assert result.stderr == "ipvsctl: --nodeport-addresses: 'garbage' is not a CIDR\n"


@pytest.mark.parametrize("command", ["apply", "diff"])
def test_a_bad_cluster_cidr_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    argv = [command, "-f", manifest(tmp_path), "--cluster-cidr", "10.244.0.0/16,nope"]
    result = invoke(argv)
    assert result.exit_code == 2
    assert result.stderr == "ipvsctl: --cluster-cidr: 'nope' is not a CIDR\n"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["10.0.0.0/8,192.168.0.0/16"], ("10.0.0.0/8", "192.168.0.0/16")),
        (["10.0.0.0/8", "fd00::/8"], ("10.0.0.0/8", "fd00::/8")),
        (["10.0.0.0/8, ,fd00::/8", ""], ("10.0.0.0/8", "fd00::/8")),
        ([], ()),
    ],
)
def test_list_flags_take_commas_and_repeats(given: list[str], expected: tuple[str, ...]) -> None:
    assert split_list(given) == expected


def node_missing_one_element() -> NodeAccess:
    """A node where the manifest's Service is in IPVS, bound, and in the netfilter table,
    but for one element of it."""
    from ipvsctl.model import VirtualServerEntry
    from ipvsctl.netfilter import Element, NetfilterOptions, parse_listing, static_ruleset
    from tests.netfilter.builders import nft_listing
    from tests.plan.builders import tcp
    from tests.reconcile.fakes import FakeIpvs, FakeLinks, FakeNft, FakeSysctls

    ipvs = FakeIpvs([VirtualServerEntry(tcp("10.96.0.10", 80))])
    links = FakeLinks()
    links.interface, links.addresses = True, {"10.96.0.10"}
    held = [Element("cluster-ips-v4", ("10.96.0.10", "tcp", "80"))]  # no service-ips-v4
    nft = FakeNft(parse_listing(nft_listing(static_ruleset(NetfilterOptions()), held)))
    ports = NodePorts(ipvs, links, FakeSysctls(), nft)
    return NO_KERNEL._replace(open_ports=lambda netfilter: nullcontext(ports))


def test_a_pending_netfilter_change_is_a_diff_and_reads_as_nft(tmp_path: Path) -> None:
    node = node_missing_one_element()
    result = invoke(["diff", "-f", manifest(tmp_path)], node)
    assert result.exit_code == 1, result.output
    assert result.stdout == "nft add element inet ipvsctl service-ips-v4 { 10.96.0.10 }\n"
    result = invoke(["apply", "--dry-run", "-o", "json", "-f", manifest(tmp_path)], node)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {"op": "nft add element", "set": "service-ips-v4", "element": "10.96.0.10"}
    ]


def test_a_warning_is_said_on_stderr_and_the_rest_of_the_service_is_applied(
    tmp_path: Path,
) -> None:
    from tests.reconcile.fakes import fake_ports

    path = tmp_path / "m.yaml"
    path.write_text(
        GOOD_SERVICE.replace("SCHED", "rr").replace("PORT", "80")
        + "  externalIPs: [203.0.113.7, '2001:db8::77']\n"
    )
    ports = fake_ports()
    node = NO_KERNEL._replace(open_ports=lambda netfilter: nullcontext(ports))
    result = invoke(["diff", "--no-netfilter", "-f", str(path)], node)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "ipvsctl: warning: Service shop/api: spec.externalIPs: 2001:db8::77 is IPv6, not a"
        " family of the Service (IPv4): skipped\n"
    )
    assert "-A -t 203.0.113.7:80 -s rr" in result.stdout
    assert "2001:db8::77" not in result.stdout


def test_ipvs_timeout_flags_are_durations_and_plan_an_ipvsadm_set(tmp_path: Path) -> None:
    from tests.reconcile.fakes import fake_ports

    ports = fake_ports()
    node = NO_KERNEL._replace(open_ports=lambda netfilter: nullcontext(ports))
    args = ["diff", "--no-netfilter", "--ipvs-tcp-timeout=1h", "--ipvs-udp-timeout", "90s"]
    result = invoke([*args, "-f", manifest(tmp_path)], node)
    assert result.exit_code == 1, result.output
    assert "--set 3600 0 90\n" in result.stdout
