"""apply/diff with an external IP that holds someone else's virtual server: one warning
line per skipped port, the rest applied, exit 0, the foreign server untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ipvsctl.cli.commands import cli
from ipvsctl.model import ForwardMethod, RealServer, RealServerEntry, VirtualServerEntry
from ipvsctl.reconcile.ports import NodePorts
from ipvsctl.state.nodeport_record import DIRECTORY_ENV
from tests.plan.builders import tcp
from tests.reconcile.fakes import FakeIpvs, FakeLinks, FakeSysctls, fake_node

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  externalIPs: [192.0.2.10]
  ports:
  - {name: http, port: 80, protocol: TCP}
  - {name: https, port: 443, protocol: TCP}
"""
FOREIGN = VirtualServerEntry(
    tcp("192.0.2.10", 80, scheduler="wlc"),
    real_servers=(RealServerEntry(RealServer("198.51.100.7", 80, forward=ForwardMethod.ROUTE)),),
)
WARNING = (
    "ipvsctl: warning: Service shop/api: spec.externalIPs: TCP 192.0.2.10:{port} skipped:"
    " 192.0.2.10 holds a virtual server ipvsctl did not create (TCP 192.0.2.10:80);"
    " it is left as it is"
)


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeIpvs:
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))  # the NodePort record's lock
    return FakeIpvs([FOREIGN])


def invoke(command: list[str], kernel: FakeIpvs, tmp_path: Path) -> tuple[int, str, str]:
    path = tmp_path / "m.yaml"
    path.write_text(SERVICE)
    ports = NodePorts(kernel, FakeLinks(), FakeSysctls(), None)
    node = fake_node(ports)
    argv = [*command, "--no-netfilter", "-f", str(path)]
    result = CliRunner().invoke(cli, argv, obj=node)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", [["apply"], ["apply", "--dry-run"], ["diff"]])
def test_each_skipped_port_is_one_warning_line_and_the_rest_is_planned(
    command: list[str], kernel: FakeIpvs, tmp_path: Path
) -> None:
    code, stdout, stderr = invoke(command, kernel, tmp_path)
    assert code == (1 if command == ["diff"] else 0), stderr
    assert stderr.splitlines() == [WARNING.format(port=80), WARNING.format(port=443)]
    assert "-A -t 10.96.0.10:80 -s rr" in stdout and "-A -t 10.96.0.10:443 -s rr" in stdout
    assert "192.0.2.10" not in stdout


def test_apply_leaves_the_foreign_virtual_server_as_it_was(
    kernel: FakeIpvs, tmp_path: Path
) -> None:
    invoke(["apply"], kernel, tmp_path)
    assert kernel.table.get(FOREIGN.service.key) == FOREIGN
    assert {key.address for key in kernel.table.entries} == {"10.96.0.10", "192.0.2.10"}
    assert len(kernel.table) == 3
