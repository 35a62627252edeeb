"""The suite leaves the network namespace it is started from exactly as it was.

This test's own namespace stands in for a node's: it gets a sentinel virtual
server and a sentinel address on a sentinel dummy link, then the host-mode
harness (`python -m integration` with IPVSCTL_LAB=host, the path a
privileged container with IPVS takes) runs tests that flush the IPVS table,
set its timeouts, and make links, addresses, sysctls and named namespaces.
Afterwards every reading of this namespace is the same, byte for byte.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SENTINEL_LINK = "kl-sentinel0"
# TEST-NET-1: never a real service on anyone's host.
SENTINEL_VIP = "192.0.2.10"
SENTINEL_SERVICE = f"{SENTINEL_VIP}:80"
# Flushes and timeouts (roundtrip); a dummy link (dummy_links); a dummy with
# the VIP, veths with addresses, ip_forward and named namespaces (round_robin).
NESTED_TESTS = (
    "test_kernel_roundtrip or dummy_links or round_robin or cleanup_removes"
    " or foreign_virtual_servers"
)
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/vs/conntrack",
    "net/ipv4/vs/expire_nodest_conn",
    "net/ipv4/conf/all/arp_ignore",
    "net/ipv4/conf/all/arp_announce",
)


def run(*argv: str) -> bytes:
    return subprocess.run(argv, check=True, capture_output=True).stdout


def namespace_view() -> dict[str, bytes]:
    """What a node's operator would read: table, timeouts, addresses, links, namespaces."""
    view = {
        "ipvsadm -Ln": run("ipvsadm", "-Ln"),
        "ipvsadm -Ln --timeout": run("ipvsadm", "-Ln", "--timeout"),
        "ip -o addr show": run("ip", "-o", "addr", "show"),
        "ip -o link show": run("ip", "-o", "link", "show"),
        "ip netns list": run("ip", "netns", "list"),
        "ls -lR /run": run("ls", "-lR", "--time-style=+", "/run"),
    }
    for sysctl in SYSCTLS:
        view[sysctl] = Path("/proc/sys", sysctl).read_bytes()
    return view


@pytest.fixture
def sentinels() -> Iterator[None]:
    try:
        run("ip", "link", "add", SENTINEL_LINK, "type", "dummy")
        run("ip", "addr", "add", f"{SENTINEL_VIP}/32", "dev", SENTINEL_LINK)
        run("ip", "link", "set", SENTINEL_LINK, "up")
        run("ipvsadm", "-A", "-t", SENTINEL_SERVICE, "-s", "wrr")
        run("ipvsadm", "-a", "-t", SENTINEL_SERVICE, "-r", "10.244.9.9:8080", "-m", "-w", "3")
        yield
    finally:
        subprocess.run(["ipvsadm", "-D", "-t", SENTINEL_SERVICE], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", SENTINEL_LINK], capture_output=True, check=False)


def test_host_mode_suite_leaves_the_starting_namespace_byte_for_byte(
    sentinels: None, tmp_path: Path
) -> None:
    before = namespace_view()
    assert f"TCP  {SENTINEL_SERVICE} wrr".encode() in before["ipvsadm -Ln"]
    assert f"inet {SENTINEL_VIP}/32".encode() in before["ip -o addr show"]

    # Its scratch files go to a cache of its own, out of the caller's way.
    env = {**os.environ, "IPVSCTL_LAB": "host", "IPVSCTL_LAB_CACHE": str(tmp_path)}
    argv = [sys.executable, "-m", "integration", "--integration-only", "-p", "no:cacheprovider"]
    nested = subprocess.run(
        [*argv, "-k", NESTED_TESTS], cwd=REPO, env=env, capture_output=True, text=True
    )
    output = nested.stdout + nested.stderr
    assert nested.returncode == 0, output[-3000:]
    # The nested run did its damage somewhere: it ran and passed real tests.
    summary = re.search(r"^(\d+) passed, 0 failed$", nested.stdout, re.MULTILINE)
    assert summary and int(summary.group(1)) >= 20, output[-3000:]

    after = namespace_view()
    for reading, text in before.items():
        assert after[reading] == text, f"{reading} changed:\n{text!r}\n->\n{after[reading]!r}"
