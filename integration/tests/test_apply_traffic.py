"""Real traffic through what `ipvsctl apply` programmed: each scheduler and option does its job.

Three backends are network namespaces (ap-be1..3) joined to the test's
namespace by veth pairs; each answers with its name over HTTP (TCP 8080, on
IPv4 and IPv6) and over UDP (9053). A client namespace (ap-client) has
several IPv4 addresses, so a test can pick the client address of each
connection. The test process opens its client sockets inside ap-client
(setns on its own thread), so connections can stay open across applies.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from integration.tests.apply_fixtures import (
    INTERFACE,
    Port,
    apply_ok,
    endpoint_slice,
    fresh_node,
    ipvs_changes,
    real_servers,
    run,
    service,
    service_line,
    sysctl,
    write_manifest,
)

pytestmark = pytest.mark.usefixtures("network", "node")

BACKENDS = ("ap-be1", "ap-be2", "ap-be3")
CLIENT_NS = "ap-client"
HTTP_PORT, UDP_PORT = 8080, 9053
VIP, VIP6 = "10.96.7.10", "fd00:96::7:10"
CLIENT_ADDRS = tuple(f"10.251.0.{host}" for host in range(2, 18))
CLIENT6 = "fd00:251::2"
DNS = Port("dns", 53, UDP_PORT, "UDP")
TIMEOUT = 5.0  # seconds a socket waits before the test fails: a guard, not a measurement

SERVER = """
import http.server, socket, socketserver, sys, threading
name, http_port, udp_port = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])

class Name(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a connection outlives its first request
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *args): pass

class DualStack(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family, daemon_threads = socket.AF_INET6, True
    def server_bind(self):  # HTTPServer's would resolve a host name
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "backend", http_port

def udp():
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", udp_port))
    while True:
        _, peer = sock.recvfrom(512)
        sock.sendto(name, peer)

threading.Thread(target=udp, daemon=True).start()
DualStack(("::", http_port), Name).serve_forever()
"""


def backend_addr(index: int) -> str:
    return f"10.245.{index + 1}.2"


def backend6_addr(index: int) -> str:
    return f"fd00:245:{index + 1}::2"


def ns_exec(namespace: str, *argv: str) -> None:
    run("ip", "netns", "exec", namespace, *argv)


def wire_namespace(name: str, v4: tuple[str, str], v6: tuple[str, str]) -> None:
    """Namespace NAME behind a veth pair; (host, namespace) addresses of each family."""
    host_link = f"v-{name}"
    run("ip", "netns", "add", name)
    run("ip", "link", "add", host_link, "type", "veth", "peer", "name", "eth0", "netns", name)
    run("ip", "addr", "add", f"{v4[0]}/24", "dev", host_link)
    run("ip", "-6", "addr", "add", f"{v6[0]}/64", "dev", host_link, "nodad")
    run("ip", "link", "set", host_link, "up")
    ns_exec(name, "ip", "link", "set", "lo", "up")
    ns_exec(name, "ip", "addr", "add", f"{v4[1]}/24", "dev", "eth0")
    ns_exec(name, "ip", "-6", "addr", "add", f"{v6[1]}/64", "dev", "eth0", "nodad")
    ns_exec(name, "ip", "link", "set", "eth0", "up")
    ns_exec(name, "ip", "route", "add", "default", "via", v4[0])
    ns_exec(name, "ip", "-6", "route", "add", "default", "via", v6[0])


# --- sockets in the client namespace ---------------------------------------

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextmanager
def in_namespace(name: str) -> Iterator[None]:
    """This thread in network namespace NAME; sockets made here stay in it for good."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(Path("/run/netns", name), os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def client_socket(family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
    with in_namespace(CLIENT_NS):
        sock = socket.socket(family, kind)
    sock.settimeout(TIMEOUT)
    return sock


class HttpConnection:
    """A keep-alive HTTP connection from the client namespace; `ask` returns who answered."""

    def __init__(self, address: str, port: int = 80, source: str | None = None) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = client_socket(family, socket.SOCK_STREAM)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((address, port))
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

    def close(self, reset: bool = False) -> None:
        """Close; with `reset`, by RST, so IPVS moves the entry to CLOSE (10 s), not TIME_WAIT."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        self.reader.close()
        self.sock.close()


def ask_once(address: str, source: str | None = None) -> str:
    """One request on a connection of its own (so the scheduler picks anew)."""
    connection = HttpConnection(address, source=source)
    try:
        return connection.ask()
    finally:
        connection.close()


def ask_udp(address: str, port: int) -> str:
    """One datagram from a fresh socket (a new IPVS connection); the answer."""
    sock = client_socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(b"who", (address, port))
        return sock.recv(512).decode()
    finally:
        sock.close()


# --- fixtures --------------------------------------------------------------


def wait_for_backends() -> None:
    """Each backend answers HTTP on both families, straight (not through IPVS)."""
    for index in range(len(BACKENDS)):
        for address in (backend_addr(index), backend6_addr(index)):
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            for _ in range(200):
                try:
                    socket.create_connection((address, HTTP_PORT), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                raise AssertionError(f"{BACKENDS[index]} never answered on {address} ({family})")


@pytest.fixture(scope="module")
def network() -> Iterator[None]:
    servers: list[subprocess.Popen[bytes]] = []
    try:
        with sysctl("net/ipv6/conf/all/forwarding", "1"):
            for index, name in enumerate(BACKENDS):
                wire_namespace(
                    name,
                    (f"10.245.{index + 1}.1", backend_addr(index)),
                    (f"fd00:245:{index + 1}::1", backend6_addr(index)),
                )
                argv = [sys.executable, "-c", SERVER, name, str(HTTP_PORT), str(UDP_PORT)]
                # Quiet: a connection closed by RST makes http.server print a traceback.
                servers.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", name, *argv], stderr=subprocess.DEVNULL
                    )
                )
            wire_namespace(CLIENT_NS, ("10.251.0.1", CLIENT_ADDRS[0]), ("fd00:251::1", CLIENT6))
            for address in CLIENT_ADDRS[1:]:
                ns_exec(CLIENT_NS, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            wait_for_backends()
            yield
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for name in (*BACKENDS, CLIENT_NS):
            # The host's end first: deleting a veth takes its peer with it at once,
            # while a namespace whose sockets are still held (the client's, in this
            # process) outlives `netns del`, its veth with it, and the next module's
            # `link add` of the same name would fail.
            subprocess.run(["ip", "link", "del", f"v-{name}"], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture
def node() -> Iterator[None]:
    with fresh_node():
        yield


def apply_service(
    tmp_path: Path,
    *,
    scheduler: str | None = None,
    backends: tuple[int, ...] = (0, 1, 2),
    extra_annotations: dict[str, str] | None = None,
    affinity_timeout: int | None = None,
    udp: bool = False,
) -> list[str]:
    """Service ap/web on VIP:80 (and UDP 53 when `udp`) over the given backends; the plan."""
    annotations = dict(extra_annotations or {})
    if scheduler is not None:
        annotations["ipvsctl.io/scheduler"] = scheduler
    ports = (Port("http", 80, HTTP_PORT), DNS) if udp else (Port("http", 80, HTTP_PORT),)
    manifest = write_manifest(
        tmp_path / "web.yaml",
        service("web", VIP, ports, annotations=annotations, affinity_timeout=affinity_timeout),
        endpoint_slice("web", [backend_addr(i) for i in backends], ports),
    )
    return apply_ok("-f", manifest)


def rs(index: int) -> str:
    return f"{backend_addr(index)}:{HTTP_PORT}"


# --- schedulers ------------------------------------------------------------


def test_rr_sends_each_new_connection_to_the_next_backend_in_turn(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="rr")
    answers = [ask_once(VIP) for _ in range(9)]
    first = answers[:3]
    assert sorted(first) == sorted(BACKENDS)
    assert answers == first * 3


def test_wrr_with_the_weights_apply_gives_spreads_evenly(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="wrr")
    assert {row.weight for row in real_servers("-t", f"{VIP}:80").values()} == {1}
    answers = Counter(ask_once(VIP) for _ in range(12))
    assert answers == dict.fromkeys(BACKENDS, 4)


def test_wrr_gives_a_draining_backend_no_new_connections(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="wrr")
    held = HttpConnection(VIP)
    try:
        drained = BACKENDS.index(held.ask())
        apply_service(
            tmp_path, scheduler="wrr", backends=tuple(i for i in range(3) if i != drained)
        )
        assert real_servers("-t", f"{VIP}:80")[rs(drained)].weight == 0
        answers = Counter(ask_once(VIP) for _ in range(8))
        assert answers == {BACKENDS[i]: 4 for i in range(3) if i != drained}
    finally:
        held.close()


def test_lc_sends_new_connections_to_the_backends_with_fewer_open_ones(tmp_path: Path) -> None:
    # be1 alone gets three connections that stay open; then be2 and be3 join.
    # lc must give the next six to be2 and be3 (three each) until they catch
    # up; rr or wrr would send two of them to be1.
    apply_service(tmp_path, scheduler="lc", backends=(0,))
    held = [HttpConnection(VIP) for _ in range(3)]
    try:
        assert [c.ask() for c in held] == ["ap-be1"] * 3
        assert real_servers("-t", f"{VIP}:80")[rs(0)].active == 3
        apply_service(tmp_path, scheduler="lc", backends=(0, 1, 2))
        for _ in range(6):
            held.append(HttpConnection(VIP))
            held[-1].ask()
        answers = Counter(c.ask() for c in held[3:])
        assert answers == {"ap-be2": 3, "ap-be3": 3}
        rows = real_servers("-t", f"{VIP}:80")
        assert [rows[rs(i)].active for i in range(3)] == [3, 3, 3]
    finally:
        for connection in held:
            connection.close()


def test_sh_keeps_one_client_address_on_one_backend_and_spreads_many(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="sh")
    one_client = {ask_once(VIP, source=CLIENT_ADDRS[0]) for _ in range(6)}
    assert len(one_client) == 1
    by_client = {
        address: {ask_once(VIP, source=address) for _ in range(3)} for address in CLIENT_ADDRS
    }
    assert all(len(answers) == 1 for answers in by_client.values()), by_client
    assert len(set.union(*by_client.values())) > 1, by_client


def test_dh_keeps_one_destination_on_one_backend_whoever_asks(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="dh")
    answers = {ask_once(VIP, source=address) for address in CLIENT_ADDRS for _ in range(2)}
    assert len(answers) == 1
    assert answers <= set(BACKENDS)


def test_client_ip_affinity_keeps_a_client_on_its_backend_under_rr(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="rr", affinity_timeout=600)
    assert service_line("-t", f"{VIP}:80").split()[2:] == ["rr", "persistent", "600"]
    first, second, third = CLIENT_ADDRS[:3]
    stays = {ask_once(VIP, source=first) for _ in range(9)}
    assert len(stays) == 1
    # Each new client is scheduled by rr once, then stays: three clients, three backends.
    others = [{ask_once(VIP, source=address) for _ in range(4)} for address in (second, third)]
    assert all(len(answers) == 1 for answers in others)
    assert sorted(stays | others[0] | others[1]) == sorted(BACKENDS)


# --- graceful termination ---------------------------------------------------


def wait_until_connections_end(service_address: str, real_server: str) -> None:
    """Until IPVS has no entry (active or inactive) left for REAL_SERVER."""
    for _ in range(600):
        row = real_servers("-t", service_address)[real_server]
        if row.active == 0 and row.inactive == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{real_server} kept its connections: {row}")


def test_a_removed_backend_drains_at_weight_zero_then_goes_once_idle(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="rr")
    held = HttpConnection(VIP)
    closed = False
    try:
        index = BACKENDS.index(held.ask())
        others = tuple(i for i in range(3) if i != index)
        plan = apply_service(tmp_path, scheduler="rr", backends=others)
        assert ipvs_changes(plan) == [f"-e -t {VIP}:80 -r {rs(index)} -m -w 0"]
        rows = real_servers("-t", f"{VIP}:80")
        assert rows[rs(index)].weight == 0 and rows[rs(index)].active == 1

        # The established connection keeps working; new ones go elsewhere.
        assert held.ask() == BACKENDS[index]
        assert Counter(ask_once(VIP) for _ in range(6)) == {BACKENDS[i]: 3 for i in others}

        # Still connected: a later apply keeps it draining.
        assert ipvs_changes(apply_service(tmp_path, scheduler="rr", backends=others)) == []
        assert real_servers("-t", f"{VIP}:80")[rs(index)].weight == 0
        assert held.ask() == BACKENDS[index]

        held.close(reset=True)
        closed = True
        wait_until_connections_end(f"{VIP}:80", rs(index))
        plan = apply_service(tmp_path, scheduler="rr", backends=others)
        assert [line.split()[:5] for line in ipvs_changes(plan)] == [
            ["-d", "-t", f"{VIP}:80", "-r", rs(index)]
        ]
        assert sorted(real_servers("-t", f"{VIP}:80")) == sorted(rs(i) for i in others)
    finally:
        if not closed:
            held.close()


# --- protocols and families -------------------------------------------------


def test_udp_service_answers_from_every_backend_in_turn(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="rr", udp=True)
    assert len(real_servers("-u", f"{VIP}:53")) == 3
    answers = [ask_udp(VIP, 53) for _ in range(6)]
    assert sorted(answers[:3]) == sorted(BACKENDS)
    assert answers == answers[:3] * 2


def test_ipv6_service_answers_from_its_ipv6_endpoints(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "web6.yaml",
        service("web6", VIP6, annotations={"ipvsctl.io/scheduler": "rr"}),
        endpoint_slice("web6", [backend6_addr(i) for i in range(3)]),
    )
    apply_ok("-f", manifest)
    assert f"inet6 {VIP6}/128" in run("ip", "-o", "addr", "show", "dev", INTERFACE)
    assert sorted(real_servers("-t", f"[{VIP6}]:80")) == sorted(
        f"[{backend6_addr(i)}]:{HTTP_PORT}" for i in range(3)
    )
    answers = [ask_once(VIP6) for _ in range(6)]
    assert sorted(answers[:3]) == sorted(BACKENDS)
    assert answers == answers[:3] * 2


# --- forwarding methods (programming only) ----------------------------------


@pytest.mark.parametrize(
    ("method", "shown"), [("tunnel", "Tunnel"), ("route", "Route"), ("masq", "Masq")]
)
def test_forwarding_method_annotation_programs_that_method(
    tmp_path: Path, method: str, shown: str
) -> None:
    apply_service(tmp_path, extra_annotations={"ipvsctl.io/forwarding-method": method}, udp=True)
    for flag, address in (("-t", f"{VIP}:80"), ("-u", f"{VIP}:53")):
        rows = real_servers(flag, address)
        assert len(rows) == 3
        assert {row.forward for row in rows.values()} == {shown}


def test_a_draining_backend_that_comes_back_gets_its_weight_back(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="rr")
    held = HttpConnection(VIP)
    try:
        index = BACKENDS.index(held.ask())
        apply_service(tmp_path, scheduler="rr", backends=tuple(i for i in range(3) if i != index))
        assert real_servers("-t", f"{VIP}:80")[rs(index)].weight == 0
        plan = apply_service(tmp_path, scheduler="rr")
        assert ipvs_changes(plan) == [f"-e -t {VIP}:80 -r {rs(index)} -m -w 1"]
        assert real_servers("-t", f"{VIP}:80")[rs(index)].weight == 1
        assert held.ask() == BACKENDS[index]
        assert Counter(ask_once(VIP) for _ in range(6)) == dict.fromkeys(BACKENDS, 2)
    finally:
        held.close()


def test_a_removed_udp_backend_is_deleted_at_once_though_it_has_entries(tmp_path: Path) -> None:
    apply_service(tmp_path, scheduler="rr", udp=True)
    answers = [ask_udp(VIP, 53) for _ in range(3)]
    assert sorted(answers) == sorted(BACKENDS)
    udp_rs = f"{backend_addr(0)}:{UDP_PORT}"
    assert real_servers("-u", f"{VIP}:53")[udp_rs].inactive == 1
    plan = apply_service(tmp_path, scheduler="rr", backends=(1, 2), udp=True)
    # TCP be1 has no connection left open either: both go at once.
    assert sorted(line.split()[:5] for line in ipvs_changes(plan)) == [
        ["-d", "-t", f"{VIP}:80", "-r", rs(0)],
        ["-d", "-u", f"{VIP}:53", "-r", udp_rs],
    ]
    assert udp_rs not in real_servers("-u", f"{VIP}:53")
    assert Counter(ask_udp(VIP, 53) for _ in range(4)) == {"ap-be2": 2, "ap-be3": 2}
