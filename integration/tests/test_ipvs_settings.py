"""kube-proxy's IPVS flags in the kernel, with ipvsadm as witness: the connection
timeouts (`ipvsadm -L --timeout`) and --ipvs-exclude-cidrs (a virtual server on an
excluded address survives `apply`).

IPVS keeps its timeouts per network namespace: the test's own are set, and put back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.tests.apply_fixtures import (
    apply_ok,
    endpoint_slice,
    fresh_node,
    ipvsctl,
    run,
    service,
    write_manifest,
)


def timeouts() -> tuple[int, int, int]:
    line = run("ipvsadm", "-L", "--timeout")
    match = re.search(r"Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)", line)
    assert match, line
    tcp, fin, udp = match.groups()
    return int(tcp), int(fin), int(udp)


@pytest.fixture
def node() -> Iterator[None]:
    with fresh_node():
        before = timeouts()
        try:
            yield
        finally:
            run("ipvsadm", "--set", *(str(value) for value in before))


pytestmark = pytest.mark.usefixtures("node")


def web(tmp_path: Path) -> str:
    return write_manifest(
        tmp_path / "m.yaml", service("web", "10.96.8.1"), endpoint_slice("web", ["10.246.8.2"])
    )


def test_the_given_timeouts_are_set_and_zero_leaves_one_as_it_is(tmp_path: Path) -> None:
    run("ipvsadm", "--set", "900", "120", "300")
    lines = apply_ok("-f", web(tmp_path), "--ipvs-tcp-timeout=1h", "--ipvs-udp-timeout=90s")
    assert "--set 3600 0 90" in lines
    assert timeouts() == (3600, 120, 90)
    # Set already: the next apply plans nothing.
    diff = ipvsctl("diff", "-f", web(tmp_path), "--ipvs-tcp-timeout=1h", "--ipvs-udp-timeout=90s")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    # Someone sets them back: apply sets them again; without the flags it leaves them.
    run("ipvsadm", "--set", "900", "120", "300")
    assert "--set 3600 0 90" in apply_ok(
        "-f", web(tmp_path), "--ipvs-tcp-timeout=1h", "--ipvs-udp-timeout=90s"
    )
    run("ipvsadm", "--set", "111", "22", "33")
    assert not [line for line in apply_ok("-f", web(tmp_path)) if line.startswith("--set")]
    assert timeouts() == (111, 22, 33)


def test_a_virtual_server_on_an_excluded_address_survives_apply(tmp_path: Path) -> None:
    manifest = web(tmp_path)
    apply_ok("-f", manifest)
    # Someone's virtual server on the Service's own (bound) address, another port.
    run("ipvsadm", "-A", "-t", "10.96.8.1:9000", "-s", "wlc")
    apply_ok("-f", manifest, "--ipvs-exclude-cidrs", "10.96.8.0/24,fd00:8::/64")
    assert "TCP  10.96.8.1:9000 wlc" in run("ipvsadm", "-Ln")
    # Without the flag it is ours, on our address, and unwanted: it goes.
    assert "-D -t 10.96.8.1:9000" in apply_ok("-f", manifest)
    assert "10.96.8.1:9000" not in run("ipvsadm", "-Ln")
