"""Hash schedulers across two nodes and through drains, with real traffic.

Two network namespaces are two nodes (hs-node1, hs-node2), each with its own
IPVS table, programmed by `ipvsctl apply` run inside it. Both reach one
backend namespace (hs-be) over a veth pair each; it holds the five backend
addresses and answers HTTP with the address a connection reached, so the
answer names the real server IPVS picked. The clients are 200 source
addresses on each node's loopback; a client connects from its address to the
cluster IP, so sh and mh hash that address. The backends' route back to the
clients points at one node at a time (`route_replies_to`).

The figures (clients agreeing, refused, operations) are printed; run with -s.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from integration.tests.apply_fixtures import (
    Port,
    endpoint_slice,
    ipvs_changes,
    run,
    service,
    write_manifest,
)

NODES = ("hs-node1", "hs-node2")
BACKEND_NS = "hs-be"
VIP = "10.96.8.10"
HTTP = Port("http", 80, 8080)
BACKENDS = tuple(f"10.246.0.{host}" for host in (11, 12, 13, 14, 15))
CLIENTS = tuple(f"10.251.{n // 200}.{n % 200 + 1}" for n in range(200))
TIMEOUT = 5.0  # seconds a socket waits before the test fails: a guard, not a measurement

SERVER = """
import http.server, socketserver

class Address(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a connection outlives its first request
    def do_GET(self):
        body = self.connection.getsockname()[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    def server_bind(self):  # HTTPServer's would resolve a host name
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "backend", 8080

Server(("0.0.0.0", 8080), Address).serve_forever()
"""


def node_link(index: int) -> tuple[str, str]:
    """(node side, backend side) addresses of node `index`'s veth pair."""
    return f"10.247.{index + 1}.1", f"10.247.{index + 1}.2"


def ip_batch(namespace: str, commands: list[str]) -> None:
    subprocess.run(
        ["ip", "-n", namespace, "-batch", "-"],
        input="\n".join(commands) + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


def route_replies_to(index: int) -> None:
    """The backends answer clients through node `index`."""
    ip_batch(BACKEND_NS, [f"route replace 10.251.0.0/16 via {node_link(index)[0]}"])


@pytest.fixture(scope="module")
def lab() -> Iterator[None]:
    server = None
    try:
        run("ip", "netns", "add", BACKEND_NS)
        ip_batch(BACKEND_NS, ["link set lo up", *(f"addr add {a}/32 dev lo" for a in BACKENDS)])
        for index, node in enumerate(NODES):
            near, far = node_link(index)
            run("ip", "netns", "add", node)
            run("ip", "-n", node, "link", "add", "eth0", "type", "veth",
                "peer", "name", f"to-n{index + 1}", "netns", BACKEND_NS)  # fmt: skip
            ip_batch(
                node,
                [
                    "link set lo up",
                    f"addr add {near}/24 dev eth0",
                    "link set eth0 up",
                    f"route add 10.246.0.0/24 via {far}",
                    *(f"addr add {client}/32 dev lo" for client in CLIENTS),
                ],
            )
            ip_batch(BACKEND_NS, [f"addr add {far}/24 dev to-n{index + 1}",
                                  f"link set to-n{index + 1} up"])  # fmt: skip
        argv = ["ip", "netns", "exec", BACKEND_NS, sys.executable, "-c", SERVER]
        server = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        route_replies_to(0)
        for _ in range(200):
            if subprocess.run(
                ["ip", "netns", "exec", NODES[0], sys.executable, "-c",
                 f"import socket; socket.create_connection(('{BACKENDS[0]}', 8080), 1)"],
                capture_output=True, check=False,
            ).returncode == 0:  # fmt: skip
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the backends never answered")
        yield
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for name in (*NODES, BACKEND_NS):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
def nodes(lab: None) -> Iterator[None]:
    """Both nodes with no virtual server and no kube-ipvs0, before and after the test."""

    def clear() -> None:
        for node in NODES:
            subprocess.run(["ip", "netns", "exec", node, "ipvsadm", "-C"], check=True)
            subprocess.run(["ip", "-n", node, "link", "del", "kube-ipvs0"],
                           capture_output=True, check=False)  # fmt: skip

    clear()
    try:
        yield
    finally:
        clear()


# --- sockets in a node's namespace --------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def in_namespace(name: str) -> Iterator[None]:
    """This thread in network namespace NAME; sockets made here stay in it for good."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(Path("/run/netns", name), os.O_RDONLY)
    try:
        if _libc.setns(target, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            yield
        finally:
            _libc.setns(own, 0x40000000)
    finally:
        os.close(target)
        os.close(own)


class Connection:
    """A keep-alive HTTP connection from `client` on `node` to the VIP; `ask` returns the
    backend address that answered."""

    def __init__(self, node: str, client: str) -> None:
        with in_namespace(node):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.bind((client, 0))
        self.sock.connect((VIP, 80))
        self.reader = self.sock.makefile("rb")

    def ask(self) -> str:
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: service\r\n\r\n")
        status = self.reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        length = 0
        while (header := self.reader.readline()) not in (b"\r\n", b""):
            key, _, value = header.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        return self.reader.read(length).decode()

    def close(self) -> None:
        # By RST: no TIME_WAIT entry left to count as an inactive connection.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        self.reader.close()
        self.sock.close()


REFUSED = "refused"


def backends_by_client(node_index: int) -> dict[str, str]:
    """Every client's backend through node `node_index` (a new connection each), or
    REFUSED."""
    route_replies_to(node_index)
    answers = {}
    for client in CLIENTS:
        try:
            connection = Connection(NODES[node_index], client)
        except ConnectionRefusedError:
            answers[client] = REFUSED
            continue
        try:
            answers[client] = connection.ask()
        finally:
            connection.close()
    return answers


# --- programming the nodes -----------------------------------------------------


def apply(node_index: int, scheduler: str, backends: tuple[str, ...], tmp_path: Path) -> list[str]:
    """`ipvsctl apply` inside node `node_index` of Service ap/web over `backends`; its IPVS
    plan lines."""
    manifest = write_manifest(
        tmp_path / f"web-{node_index}.yaml",
        service("web", VIP, (HTTP,), annotations={"ipvsctl.io/scheduler": scheduler}),
        endpoint_slice("web", list(backends), (HTTP,)),
    )
    argv = ["ip", "netns", "exec", NODES[node_index], sys.executable, "-m", "ipvsctl",
            "apply", "--no-netfilter", "-f", manifest]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return ipvs_changes(result.stdout.splitlines())


def ipvsadm(node_index: int, *args: str) -> str:
    return run("ip", "netns", "exec", NODES[node_index], "ipvsadm", *args)


def program_by_hand(node_index: int, scheduler: str, order: tuple[str, ...]) -> None:
    """The VIP bound and its virtual server made with ipvsadm, real servers added in
    `order`: a node with a history of its own (kube-proxy's, or an older ipvsctl's)."""
    node = NODES[node_index]
    ip_batch(node, ["link add kube-ipvs0 type dummy", f"addr add {VIP}/32 dev kube-ipvs0"])
    ipvsadm(node_index, "-A", "-t", f"{VIP}:80", "-s", scheduler)
    for backend in order:
        ipvsadm(node_index, "-a", "-t", f"{VIP}:80", "-r", f"{backend}:8080", "-m")


def agreeing(first: dict[str, str], second: dict[str, str]) -> int:
    return sum(first[client] == second[client] != REFUSED for client in CLIENTS)


# --- the tests -----------------------------------------------------------------


@pytest.mark.usefixtures("nodes")
@pytest.mark.parametrize("scheduler", ["sh", "mh"])
def test_two_nodes_with_different_histories_send_every_client_to_the_same_backend(
    scheduler: str, tmp_path: Path
) -> None:
    b = BACKENDS
    program_by_hand(0, scheduler, (b[2], b[0], b[4], b[1], b[3]))
    program_by_hand(1, scheduler, (b[1], b[4], b[0], b[3], b[2]))
    before = agreeing(backends_by_client(0), backends_by_client(1))
    # node 1 adopts its table as it is; node 2 starts over and grows in steps
    node1_plan = apply(0, scheduler, BACKENDS, tmp_path)
    ipvsadm(1, "-C")
    apply(1, scheduler, BACKENDS[3:], tmp_path)
    apply(1, scheduler, BACKENDS[1:], tmp_path)
    apply(1, scheduler, BACKENDS, tmp_path)
    first, second = backends_by_client(0), backends_by_client(1)
    after = agreeing(first, second)
    print(
        f"\n{scheduler}: clients agreeing across two nodes: {before}/200 with their own "
        f"histories, {after}/200 after ipvsctl apply (adoption took {len(node1_plan)} changes)"
    )
    assert REFUSED not in first.values()
    assert after == len(CLIENTS)
    assert set(first.values()) == set(BACKENDS)  # every backend has clients


@pytest.mark.usefixtures("nodes")
@pytest.mark.parametrize("scheduler", ["sh", "mh"])
def test_a_drain_on_one_node_refuses_no_client_and_moves_only_the_drained_ones(
    scheduler: str, tmp_path: Path
) -> None:
    apply(0, scheduler, BACKENDS, tmp_path)
    before = backends_by_client(0)
    drained = BACKENDS[2]
    theirs = [client for client in CLIENTS if before[client] == drained]
    held = Connection(NODES[0], theirs[0])
    try:
        assert held.ask() == drained
        plan = apply(0, scheduler, tuple(b for b in BACKENDS if b != drained), tmp_path)
        assert plan == [f"-e -t {VIP}:80 -r {drained}:8080 -m -w 0"]
        during = backends_by_client(0)
        refused = sum(answer == REFUSED for answer in during.values())
        moved = [c for c in CLIENTS if c not in theirs and during[c] != before[c]]
        assert held.ask() == drained  # the drained server's connection goes on
        # The kernel without the fallback flag: the drained server's clients are refused.
        ipvsadm(0, "-E", "-t", f"{VIP}:80", "-s", scheduler)
        without_fallback = sum(a == REFUSED for a in backends_by_client(0).values())
    finally:
        held.close()
    print(
        f"\n{scheduler}: draining 1 of 5 backends ({len(theirs)} of 200 clients): "
        f"{refused} refused with ipvsctl (fallback), {without_fallback} without the flag; "
        f"{len(moved)} other clients moved"
    )
    assert refused == 0
    assert moved == []
    assert all(during[client] not in (drained, REFUSED) for client in theirs)
    assert without_fallback == len(theirs)


@pytest.mark.usefixtures("nodes")
def test_a_dh_server_leaves_at_once_so_no_new_client_is_refused(tmp_path: Path) -> None:
    apply(0, "dh", BACKENDS, tmp_path)
    chosen = backends_by_client(0)[CLIENTS[0]]  # dh hashes the VIP: one backend for all
    held = Connection(NODES[0], CLIENTS[0])
    try:
        assert held.ask() == chosen
        plan = apply(0, "dh", tuple(b for b in BACKENDS if b != chosen), tmp_path)
    finally:
        held.close()
    assert plan == [f"-d -t {VIP}:80 -r {chosen}:8080"]
    after = backends_by_client(0)
    assert REFUSED not in after.values()
    assert chosen not in after.values()


@pytest.mark.usefixtures("nodes")
def test_established_connections_that_keep_sending_survive_reorders(tmp_path: Path) -> None:
    route_replies_to(0)
    outer = (BACKENDS[0], BACKENDS[2], BACKENDS[4])
    apply(0, "sh", outer, tmp_path)
    first = backends_by_client(0)
    # two held connections on each of the three backends
    clients = [c for b in outer for c in [c for c in CLIENTS if first[c] == b][:2]]
    held = [Connection(NODES[0], client) for client in clients]
    expected = [connection.ask() for connection in held]
    stop = threading.Event()
    asked = [0] * len(held)
    wrong: list[str] = []

    def keep_asking(index: int) -> None:
        try:
            while not stop.is_set():
                answer = held[index].ask()
                if answer != expected[index]:
                    wrong.append(f"{clients[index]}: {answer}, not {expected[index]}")
                asked[index] += 1
        except (OSError, AssertionError) as error:
            wrong.append(f"{clients[index]}: {error!r}")

    threads = [threading.Thread(target=keep_asking, args=(i,)) for i in range(len(held))]
    for thread in threads:
        thread.start()
    moves = 0
    try:
        for _ in range(4):
            # 10.246.0.12 and .14 join: .13 and .15 (listed before them) move
            plan = apply(0, "sh", BACKENDS, tmp_path)
            moves += sum(line.startswith("-d") for line in plan)
            assert f"-d -t {VIP}:80 -r {BACKENDS[4]}:8080" in plan
            apply(0, "sh", outer, tmp_path)
    finally:
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT * 2)
        for connection in held:
            connection.close()
    print(
        f"\nsh reorder: {len(held)} connections kept sending across 8 applies ({moves} moves "
        f"of a real server with connections): {sum(asked)} requests, {len(wrong)} failed"
    )
    assert moves >= 8
    assert wrong == []
    assert min(asked) > 0
