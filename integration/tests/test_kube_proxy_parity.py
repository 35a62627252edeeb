"""kube-proxy parity: each case of kube-proxy's IPVS proxier tests, run through
`ipvsctl apply` on a node ipvsctl never ran on, must leave the table kube-proxy's
fake IPVS holds, as `ipvsadm -Sn` prints it (sorted: the kernel lists in hash
order).

The cases are in kube_proxy_cases.py, kube_proxy_endpoint_cases.py and
kube_proxy_service_cases.py, each
named by its Go test (`go test -run` spelling). The node's addresses go on a
dummy link of the test's own, kp-node0; `--nodeport-addresses` stands for
kube-proxy's nodePortAddresses and `--node-name test-hostname` for its test
node. A case whose `differs` is set is a strict xfail: its reason says which
known difference (docs/services-to-ipvs.md, "Where ipvsctl differs from
kube-proxy") or which pending fix keeps ipvsctl from that table, and it fails
loudly the day it passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.tests.apply_fixtures import forget_everything, ipvsctl, run, write_manifest
from integration.tests.kube_proxy_cases import CASES as ADDRESS_CASES
from integration.tests.kube_proxy_cases import DIFFERENCES
from integration.tests.kube_proxy_endpoint_cases import CASES as ENDPOINT_CASES
from integration.tests.kube_proxy_objects import TEST_HOSTNAME, Case
from integration.tests.kube_proxy_service_cases import CASES as SERVICE_CASES

NODE_LINK = "kp-node0"
CASES = (*ADDRESS_CASES, *ENDPOINT_CASES, *SERVICE_CASES)


def _param(case: Case) -> object:
    if case.differs is None:
        return pytest.param(case, id=case.id)
    reason = DIFFERENCES[case.differs]
    return pytest.param(case, id=case.id, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.fixture
def node(request: pytest.FixtureRequest) -> Iterator[Case]:
    """A node ipvsctl never ran on, with the case's addresses on kp-node0 and its
    starting table; all of it gone again afterwards."""
    case: Case = request.param
    forget_everything()
    run("ip", "link", "add", NODE_LINK, "type", "dummy")
    try:
        for address in case.node_addresses:
            # nodad: an IPv6 address is usable at once, not tentative for a second.
            extra = ("nodad",) if ":" in address else ()
            run("ip", "addr", "add", address, "dev", NODE_LINK, *extra)
        run("ip", "link", "set", NODE_LINK, "up")
        for command in case.before:
            run(*command)
        yield case
    finally:
        forget_everything()
        run("ip", "link", "del", NODE_LINK)


def saved_table() -> list[str]:
    """`ipvsadm -Sn`, one rule a line, sorted."""
    return sorted(line for line in run("ipvsadm", "-Sn").splitlines() if line.strip())


@pytest.mark.parametrize("node", [_param(case) for case in CASES], indirect=True)
def test_apply_leaves_the_table_kube_proxy_expects(node: Case, tmp_path: Path) -> None:
    case = node
    manifest = write_manifest(tmp_path / "objects.yaml", *case.objects)
    nodeports = ("--nodeport-addresses", ",".join(case.nodeport_addresses))
    result = ipvsctl("apply", "-f", manifest, "--node-name", TEST_HOSTNAME, *nodeports, *case.flags)
    assert result.returncode == 0, f"apply: exit {result.returncode}\n{result.stderr}"
    assert saved_table() == sorted(case.expected)


def test_every_case_names_its_kube_proxy_test_once() -> None:
    ids = [case.id for case in CASES]
    assert len(CASES) >= 30
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    assert all(case.id.startswith("Test") for case in CASES)
    assert all(case.differs in (None, *DIFFERENCES) for case in CASES)
