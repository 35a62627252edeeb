"""The QEMU lab's kernel is fit for the netfilter tests: an `inet` table with
NAT and filter chains loads, IPVS works beside it, and masquerade and reject
act on real traffic between network namespaces."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from subprocess import PIPE

import pytest

from integration.tests.apply_fixtures import sysctl

TABLE = "ipvsctl"
RULESET = f"""
table inet {TABLE} {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "kl-srv0" masquerade
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        ct state new tcp dport 8081 reject with tcp reset
    }}
}}
"""
# The test's namespace routes between a client and a server namespace.
CLIENT, ROUTER_TO_CLIENT = "10.77.1.2", "10.77.1.1"
SERVER, ROUTER_TO_SERVER = "10.77.2.2", "10.77.2.1"
PORT = 8080
# The router's own service, which the input chain rejects new connections to.
GUARDED_PORT = 8081

ECHO_PEER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(8)
print("listening", flush=True)
while True:
    conn, peer = server.accept()
    conn.sendall(peer[0].encode())
    conn.close()
"""
CONNECT = """
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(sock.recv(64).decode())
"""


def run(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"
    return done.stdout


def in_ns(namespace: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv]


@contextmanager
def ruleset_loaded() -> Iterator[None]:
    run("nft", "-f", "-", stdin=RULESET)
    try:
        yield
    finally:
        run("nft", "delete", "table", "inet", TABLE)


@pytest.fixture
def routed() -> Iterator[None]:
    """kl-client and kl-server namespaces on two veth links, this namespace forwarding."""
    with sysctl("net/ipv4/ip_forward", "1"):
        try:
            for name, router, far in (
                ("cli", ROUTER_TO_CLIENT, CLIENT),
                ("srv", ROUTER_TO_SERVER, SERVER),
            ):
                ns, link = f"kl-{name}", f"kl-{name}0"
                run("ip", "netns", "add", ns)
                run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
                run("ip", "addr", "add", f"{router}/24", "dev", link)
                run("ip", "link", "set", link, "up")
                run(*in_ns(ns, "ip", "addr", "add", f"{far}/24", "dev", "eth0"))
                run(*in_ns(ns, "ip", "link", "set", "eth0", "up"))
                run(*in_ns(ns, "ip", "route", "add", "default", "via", router))
            yield
        finally:
            for ns in ("kl-cli", "kl-srv"):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@contextmanager
def echo_server(namespace: str | None, port: int) -> Iterator[None]:
    """A server answering each connection with the address it came from
    (in ``namespace``, or in the test's own, the router, for None)."""
    argv = [sys.executable, "-c", ECHO_PEER, str(port)]
    server = subprocess.Popen(
        in_ns(namespace, *argv) if namespace else argv, stdout=PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == "listening\n"
        yield
    finally:
        server.kill()
        server.wait()


def peer_seen(address: str, port: int) -> str:
    """What a server answers a connection from kl-cli with (the client address it
    saw), or the client's traceback."""
    argv = in_ns("kl-cli", sys.executable, "-c", CONNECT, address, str(port))
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return done.stdout.strip() or done.stderr.strip()


def test_inet_table_with_nat_and_filter_chains_loads() -> None:
    with ruleset_loaded():
        listing = run("nft", "list", "table", "inet", TABLE)
    assert "type nat hook postrouting" in listing
    assert "masquerade" in listing
    assert f"ct state new tcp dport {GUARDED_PORT} reject with tcp reset" in listing


def test_ipvs_works_beside_nftables() -> None:
    with ruleset_loaded():
        run("ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr")
        try:
            assert "TCP  10.0.0.1:80 rr" in run("ipvsadm", "-Ln")
        finally:
            run("ipvsadm", "-D", "-t", "10.0.0.1:80")


def test_masquerade_makes_forwarded_connections_come_from_the_router(routed: None) -> None:
    with echo_server("kl-srv", PORT):
        assert peer_seen(SERVER, PORT) == CLIENT
        with ruleset_loaded():
            assert peer_seen(SERVER, PORT) == ROUTER_TO_SERVER


def test_reject_answers_a_new_connection_to_the_router_with_a_reset(routed: None) -> None:
    with echo_server(None, GUARDED_PORT):
        assert peer_seen(ROUTER_TO_CLIENT, GUARDED_PORT) == CLIENT
        with ruleset_loaded():
            assert "ConnectionRefusedError" in peer_seen(ROUTER_TO_CLIENT, GUARDED_PORT)
