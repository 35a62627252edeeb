"""Real traffic through a table ipvsctl programmed: balanced as told, and counted as ipvsadm counts.

Backends are network namespaces joined to the root namespace by veth pairs,
each serving its own name over HTTP; a client namespace asks the virtual
address. The VIP is bound to a dummy interface, as ipvsctl will bind it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from ipvsctl.kernel import IpvsKernel
from ipvsctl.model import AF_INET, Protocol, RealServer, ServiceKey, VirtualServer
from ipvsctl.model.changes import IpvsChange, Op

# Every test here sends traffic through the namespaces.
pytestmark = pytest.mark.usefixtures("network")

VIP, PORT, BACKEND_PORT = "10.96.0.10", 80, 8080
BACKENDS = ("be1", "be2", "be3")
CLIENT_NS, CLIENT_ADDR = "client", "10.250.0.2"

SERVER = """
import http.server, sys
name = sys.argv[1].encode()
class Name(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(name)))
        self.end_headers(); self.wfile.write(name)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), Name).serve_forever()
"""

CLIENT = """
import sys, urllib.request
for _ in range(int(sys.argv[2])):
    print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True)


def backend_addr(index: int) -> str:
    return f"10.244.{index + 1}.2"


def wire_namespace(name: str, host_addr: str, ns_addr: str) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "link", "add", f"v-{name}", "type", "veth", "peer", "name", "eth0", "netns", name)
    sh("ip", "addr", "add", f"{host_addr}/24", "dev", f"v-{name}")
    sh("ip", "link", "set", f"v-{name}", "up")
    for args in (
        ("ip", "link", "set", "lo", "up"),
        ("ip", "addr", "add", f"{ns_addr}/24", "dev", "eth0"),
        ("ip", "link", "set", "eth0", "up"),
        ("ip", "route", "add", "default", "via", host_addr),
    ):
        sh("ip", "netns", "exec", name, *args)


def wait_for_backend(index: int) -> None:
    url = f"http://{backend_addr(index)}:{BACKEND_PORT}/"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"backend {BACKENDS[index]} never answered")


@pytest.fixture(scope="module")
def network() -> Iterator[None]:
    for path, value in (("net/ipv4/ip_forward", "1"), ("net/ipv4/vs/conntrack", "1")):
        with open(f"/proc/sys/{path}", "w") as sysctl:
            sysctl.write(value)
    sh("ip", "link", "add", "kube-ipvs0", "type", "dummy")
    sh("ip", "addr", "add", f"{VIP}/32", "dev", "kube-ipvs0")
    servers = []
    try:
        for index, name in enumerate(BACKENDS):
            wire_namespace(name, f"10.244.{index + 1}.1", backend_addr(index))
            argv = [sys.executable, "-c", SERVER, name, backend_addr(index), str(BACKEND_PORT)]
            servers.append(subprocess.Popen(["ip", "netns", "exec", name, *argv]))
        wire_namespace(CLIENT_NS, "10.250.0.1", CLIENT_ADDR)
        for index in range(len(BACKENDS)):
            wait_for_backend(index)
        yield
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for name in (*BACKENDS, CLIENT_NS):
            subprocess.run(["ip", "netns", "del", name], check=False)
        subprocess.run(["ip", "link", "del", "kube-ipvs0"], check=False)


def program(kernel: IpvsKernel, scheduler: str, weights: tuple[int, ...]) -> None:
    service = VirtualServer(ServiceKey(AF_INET, int(Protocol.TCP), VIP, PORT), scheduler=scheduler)
    changes = [IpvsChange(Op.ADD_SERVICE, service)]
    changes += [
        IpvsChange(Op.ADD_REAL, service, RealServer(backend_addr(i), BACKEND_PORT, weight=w))
        for i, w in enumerate(weights)
    ]
    assert kernel.apply(changes) == []


def requests_from_client(count: int) -> list[str]:
    argv = [sys.executable, "-c", CLIENT, f"http://{VIP}:{PORT}/", str(count)]
    done = subprocess.run(
        ["ip", "netns", "exec", CLIENT_NS, *argv], check=True, capture_output=True, text=True
    )
    return done.stdout.split()


def test_round_robin_sends_each_request_to_the_next_backend(kernel: IpvsKernel) -> None:
    program(kernel, "rr", (1, 1, 1))
    answers = requests_from_client(9)
    assert len(answers) == 9
    first = answers[:3]
    assert sorted(first) == sorted(BACKENDS)
    assert answers == first * 3


def test_weight_zero_backend_gets_no_new_connections(kernel: IpvsKernel) -> None:
    program(kernel, "wrr", (1, 0, 2))
    answers = requests_from_client(12)
    assert "be2" not in answers
    assert answers.count("be3") == 2 * answers.count("be1")


def show_matches_ipvsadm(*options: str) -> None:
    """ipvsctl between two equal ipvsadm readings must equal them.

    Counters move while traffic and the 2 s rate estimator run; a reading
    bracketed by two identical ipvsadm readings saw the same table they did.
    """
    ours = [sys.executable, "-m", "ipvsctl", "show", *options]
    theirs = ["ipvsadm", "-Ln", *options]
    for _ in range(20):
        before = subprocess.run(theirs, capture_output=True, text=True, check=True).stdout
        got = subprocess.run(ours, capture_output=True, text=True, check=True).stdout
        after = subprocess.run(theirs, capture_output=True, text=True, check=True).stdout
        if before == after:
            assert got == before
            return
    raise AssertionError(f"the table never held still for ipvsadm -Ln {' '.join(options)}")


@pytest.mark.parametrize(
    "options",
    [
        (),
        ("--stats",),
        ("--stats", "--exact"),
        ("--rate",),
        ("--rate", "--exact"),
        ("--persistent-conn",),
        ("-t", f"{VIP}:{PORT}", "--stats"),
    ],
    ids=" ".join,
)
def test_show_matches_ipvsadm_on_live_counters(
    kernel: IpvsKernel, options: tuple[str, ...]
) -> None:
    program(kernel, "rr", (1, 1, 1))
    requests_from_client(30)
    # Let the rate estimator (every 2 s) see the traffic.
    time.sleep(2.5)
    entry = kernel.service(ServiceKey(AF_INET, int(Protocol.TCP), VIP, PORT))
    assert entry is not None
    assert entry.stats.conns == 30
    assert entry.stats.inpkts > 0 and entry.stats.outbytes > 0
    show_matches_ipvsadm(*options)
