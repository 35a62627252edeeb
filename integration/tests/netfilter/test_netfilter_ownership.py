"""ipvsctl's nftables table is the only netfilter state it writes: someone else's nftables
table and iptables-nft rules survive `apply`, a changed `apply`, a drifted table made
anew, and `cleanup`, byte for byte; and the table's changes are set elements only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.tests.apply_fixtures import fresh_node, ipvsctl, run

FOREIGN = """\
table ip operator {
\tset blocked {
\t\ttype ipv4_addr
\t\telements = { 198.51.100.7 }
\t}

\tchain input {
\t\ttype filter hook input priority filter + 5; policy accept;
\t\tip saddr @blocked drop
\t\ttcp dport 9999 accept
\t}

\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat + 5; policy accept;
\t\tip saddr 10.99.0.0/16 masquerade
\t}
}
"""
IPTABLES = (
    ("-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "9998", "-j", "ACCEPT"),
    ("-t", "nat", "-A", "POSTROUTING", "-s", "10.98.0.0/16", "-j", "MASQUERADE"),
)


def others() -> dict[str, str]:
    """Every table but ours, as `nft list table` prints it, and iptables-save without
    its comment lines (they carry the time)."""
    listed = run("nft", "list", "tables").splitlines()
    tables = [
        line.split()[1:] for line in listed if line and line.split()[1:] != ["inet", "ipvsctl"]
    ]
    found = {" ".join(t): run("nft", "list", "table", *t) for t in tables}
    found["iptables-save"] = "".join(
        line + "\n" for line in run("iptables-save").splitlines() if not line.startswith("#")
    )
    return found


@contextmanager
def foreign_state() -> Iterator[dict[str, str]]:
    """Someone else's nftables table and iptables-nft rules, and no table of ours, for
    the block; what `others` lists of them is given, and the ruleset flushed after."""
    subprocess.run(["nft", "delete", "table", "inet", "ipvsctl"], capture_output=True)
    subprocess.run(["nft", "-f", "-"], input=FOREIGN, text=True, check=True)
    for rule in IPTABLES:
        run("iptables", *rule)
    try:
        before = others()
        assert "ip operator" in before and "9998" in before["iptables-save"]
        yield before
    finally:
        subprocess.run(["nft", "flush", "ruleset"], check=False)


@pytest.fixture
def foreign() -> Iterator[dict[str, str]]:
    with fresh_node(), foreign_state() as before:
        yield before


def manifest(tmp_path: Path, endpoints: list[tuple[str, str]]) -> str:
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "own"},
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.96.5.10",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30500}],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-1",
                "namespace": "own",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a], "nodeName": n} for a, n in endpoints],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        },
    ]
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return str(path)


def apply(path: str) -> list[str]:
    done = ipvsctl("apply", "-f", path, "--node-name=node-a", netfilter=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_foreign_tables_and_iptables_rules_survive_apply_and_cleanup(
    tmp_path: Path, foreign: dict[str, str]
) -> None:
    apply(manifest(tmp_path, [("10.244.1.2", "node-a"), ("10.244.2.2", "node-b")]))
    assert "table inet ipvsctl" in run("nft", "list", "tables")
    assert others() == foreign
    # A pod on this node leaves: one hairpin element goes, and nothing else changes.
    changed = apply(manifest(tmp_path, [("10.244.2.2", "node-b")]))
    assert [line for line in changed if line.startswith("nft")] == [
        "nft delete element inet ipvsctl hairpin-v4 { 10.244.1.2 . 10.244.1.2 }"
    ]
    assert others() == foreign
    # Someone adds a rule to our table: the next apply makes it anew, theirs untouched.
    run("nft", "add", "rule", "inet", "ipvsctl", "services", "counter")
    remade = apply(manifest(tmp_path, [("10.244.2.2", "node-b")]))
    assert remade[:2] == ["nft delete table inet ipvsctl", "nft add table inet ipvsctl"]
    assert "counter" not in run("nft", "list", "chain", "inet", "ipvsctl", "services")
    assert others() == foreign
    done = ipvsctl("cleanup")
    assert done.returncode == 0, done.stderr
    assert "ipvsctl" not in run("nft", "list", "tables")
    assert others() == foreign
