"""The conntrack cleanup against real UDP traffic through IPVS.

The traffic fixture of test_apply_traffic: backends answering UDP with their
name, a client namespace whose sockets the test holds open, so every
datagram of a flow leaves from the same source port. The witnesses are the
kernel's own listings, /proc/net/nf_conntrack and `ipvsadm -Lnc`, and who
answers.

Two kernel facts shape these tests (Linux 7.2 in the lab):

- Nothing tracks connections in a fresh namespace until something asks
  netfilter to (on a node, kube-proxy's or the CNI's iptables rules do), and
  the lab kernel has no iptables or nftables for IP. IPVS asks by itself for
  a NAT virtual server on the FTP port (`ip_vs_register_conntrack` in
  `__ip_vs_update_dest`), so one such idle virtual server turns tracking on.
- With `expire_nodest_conn=1` (what ipvsctl sets), Linux 5.9 and later expire
  a deleted real server's IPVS connections within a jiffy and drop their
  conntrack entries with them (`ip_vs_expire_nodest_conn_flush`): the cleanup
  then finds nothing or races the kernel. Kernels before 5.9, or a deletion
  made while the sysctl was 0, leave the entries behind; the tests that need
  a stale entry delete the real server with the sysctl at 0.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from integration.tests.apply_fixtures import INTERFACE, run, sysctl
from integration.tests.test_apply_traffic import (  # the namespaces and backends of that module
    CLIENT6,
    CLIENT_ADDRS,
    UDP_PORT,
    backend6_addr,
    backend_addr,
    client_socket,
    network,  # noqa: F401  (the fixture, set up again for this module)
)
from ipvsctl.conntrack import ConntrackTable, delete_udp_flows, udp_nat_flow
from ipvsctl.kernel import IpvsKernel

pytestmark = pytest.mark.usefixtures("network")

SERVICE_PORT, OTHER_SERVICE_PORT = 53, 54
EXPIRE_NODEST_CONN = "net/ipv4/vs/expire_nodest_conn"
PROC_CONNTRACK = Path("/proc/net/nf_conntrack")
ANSWER_TIMEOUT = 5.0  # a guard: an answered datagram comes back in milliseconds
DROPPED_WAIT = 1.0  # how long a datagram expected to be dropped is waited for


@dataclass(frozen=True)
class Family:
    """One address family's service, client and backends (index 0 and 1 of the fixture)."""

    family: socket.AddressFamily
    vip: str
    ftp_vip: str
    client: str
    backends: tuple[str, str]

    def endpoint(self, address: str, port: int) -> str:
        """`ADDR:PORT`, `[ADDR]:PORT` for IPv6, as ipvsadm spells it."""
        return f"[{address}]:{port}" if self.family == socket.AF_INET6 else f"{address}:{port}"

    def service(self, port: int = SERVICE_PORT) -> str:
        return self.endpoint(self.vip, port)

    def real(self, backend: int) -> str:
        return self.endpoint(self.backends[backend], UDP_PORT)


FAMILIES = {
    "ipv4": Family(
        socket.AF_INET,
        "10.96.8.10",
        "10.96.8.21",
        CLIENT_ADDRS[0],
        (backend_addr(0), backend_addr(1)),
    ),
    "ipv6": Family(
        socket.AF_INET6,
        "fd00:96::8:10",
        "fd00:96::8:21",
        CLIENT6,
        (backend6_addr(0), backend6_addr(1)),
    ),
}


def ipvsadm(*args: str) -> str:
    return run("ipvsadm", *args)


@pytest.fixture(params=sorted(FAMILIES))
def lab(request: pytest.FixtureRequest, kernel: IpvsKernel) -> Iterator[Family]:
    """UDP VIP:53 over backends 0 and 1 (rr), conntrack on, its table empty; all undone after."""
    family: Family = FAMILIES[request.param]
    assert PROC_CONNTRACK.exists(), "the kernel lists no conntrack entries (NF_CONNTRACK_PROCFS)"
    host = ("128", "nodad") if family.family == socket.AF_INET6 else ("32",)
    run("ip", "link", "add", INTERFACE, "type", "dummy")
    try:
        run("ip", "addr", "add", f"{family.vip}/{host[0]}", "dev", INTERFACE, *host[1:])
        with sysctl("net/ipv4/ip_forward", "1"), sysctl("net/ipv4/vs/conntrack", "1"):
            # The FTP-port NAT virtual server that turns tracking on (module docstring).
            ftp = family.endpoint(family.ftp_vip, 21)
            ipvsadm("-A", "-t", ftp, "-s", "rr")
            ipvsadm("-a", "-t", ftp, "-r", family.endpoint(family.backends[1], 21), "-m")
            ipvsadm("-A", "-u", family.service(), "-s", "rr")
            for backend in (0, 1):
                ipvsadm("-a", "-u", family.service(), "-r", family.real(backend), "-m")
            forget_conntrack()
            yield family
    finally:
        run("ip", "link", "del", INTERFACE)


def forget_conntrack() -> None:
    """An empty conntrack table: entries of earlier tests (30 s for UDP) would be counted."""
    from pyroute2 import NFCTSocket

    with NFCTSocket(nfgen_family=socket.AF_UNSPEC) as nfct:
        nfct.flush()


# --- flows and witnesses ------------------------------------------------------


class Client:
    """One UDP socket in the client namespace: one source port, so one flow per service."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.sock = client_socket(family.family, socket.SOCK_DGRAM)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def ask(self, port: int = SERVICE_PORT, wait: float = ANSWER_TIMEOUT) -> str | None:
        """Send one datagram to VIP:port; the backend that answered, None if none did."""
        self.sock.settimeout(wait)
        self.sock.sendto(b"who", (self.family.vip, port))
        try:
            return self.sock.recv(512).decode()
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def clients(lab: Family) -> Iterator[list[Client]]:
    made = [Client(lab) for _ in range(3)]
    try:
        yield made
    finally:
        for client in made:
            client.close()


def backend_index(name: str | None) -> int:
    assert name in ("ap-be1", "ap-be2"), name
    return int(name[-1]) - 1


def _endpoint(address: str, port: str) -> str:
    spelled = ipaddress.ip_address(address).compressed  # /proc writes IPv6 in full
    return f"[{spelled}]:{port}" if ":" in spelled else f"{spelled}:{port}"


def tracked(client: Client) -> set[tuple[str, str]]:
    """(service, real server) of each UDP entry of the client's port in /proc/net/nf_conntrack.

    The service is the original direction's destination, the real server the
    reply direction's source: the pair IPVS records for a NAT connection.
    """
    found = set()
    for line in PROC_CONNTRACK.read_text().splitlines():
        fields = line.split()
        if "udp" not in fields:
            continue
        values: dict[str, list[str]] = {}
        for key, _, value in (field.partition("=") for field in fields if "=" in field):
            values.setdefault(key, []).append(value)
        if values["sport"][0] == str(client.port):
            found.add(
                (
                    _endpoint(values["dst"][0], values["dport"][0]),
                    _endpoint(values["src"][1], values["sport"][1]),
                )
            )
    return found


def ipvs_connections(client: Client) -> set[tuple[str, str]]:
    """(virtual, destination) of the client's port in `ipvsadm -Lnc`."""
    source = client.family.endpoint(client.family.client, client.port)
    rows = (line.split() for line in ipvsadm("-Lnc").splitlines())
    return {(row[4], row[5]) for row in rows if len(row) == 6 and row[3] == source}


def listed_by_us(family: Family, backend: int) -> set[int]:
    """Client ports of our own listing of the service's flows to `backend`."""
    flow = udp_nat_flow(family.vip, SERVICE_PORT, family.backends[backend], UDP_PORT)
    with ConntrackTable() as table:
        return {entry.original.source_port or 0 for entry in table.udp_nat_entries(flow)}


def two_flows(family: Family, clients: list[Client]) -> tuple[int, int]:
    """Flows of clients 0 and 1 to VIP:53, on different backends (rr); (A, B): their backends."""
    first, second = (backend_index(c.ask()) for c in clients[:2])
    assert first != second, "rr gave both flows one backend"
    assert tracked(clients[0]) == {(family.service(), family.real(first))}
    assert tracked(clients[1]) == {(family.service(), family.real(second))}
    return first, second


def delete_real_server(family: Family, backend: int, expire_nodest_conn: str) -> None:
    with sysctl(EXPIRE_NODEST_CONN, expire_nodest_conn):
        ipvsadm("-d", "-u", family.service(), "-r", family.real(backend))


# --- tests ---------------------------------------------------------------------


def test_the_cleanup_deletes_the_gone_real_servers_flows_and_no_others(
    lab: Family, clients: list[Client]
) -> None:
    gone, stays = two_flows(lab, clients)
    # Another service on the same VIP, with the same real server: not ours to delete.
    other = lab.service(OTHER_SERVICE_PORT)
    ipvsadm("-A", "-u", other, "-s", "rr")
    ipvsadm("-a", "-u", other, "-r", lab.real(gone), "-m")
    assert backend_index(clients[2].ask(OTHER_SERVICE_PORT)) == gone
    assert tracked(clients[2]) == {(other, lab.real(gone))}
    assert listed_by_us(lab, gone) == {clients[0].port}
    assert listed_by_us(lab, stays) == {clients[1].port}

    # Deleted while expire_nodest_conn=0: the kernel leaves the entry (module docstring).
    delete_real_server(lab, gone, "0")
    time.sleep(0.1)  # many jiffies: had the kernel meant to drop it, it would have
    assert tracked(clients[0]) == {(lab.service(), lab.real(gone))}

    assert delete_udp_flows(lab.vip, SERVICE_PORT, lab.backends[gone], UDP_PORT) == 1

    assert tracked(clients[0]) == set()
    assert listed_by_us(lab, gone) == set()
    assert tracked(clients[1]) == {(lab.service(), lab.real(stays))}
    assert tracked(clients[2]) == {(other, lab.real(gone))}
    assert delete_udp_flows(lab.vip, SERVICE_PORT, lab.backends[gone], UDP_PORT) == 0


@pytest.mark.parametrize("cleanup", [True, False], ids=["cleaned", "not-cleaned"])
def test_the_next_datagram_of_the_flow_goes_to_the_other_backend_once_cleaned(
    lab: Family, clients: list[Client], cleanup: bool
) -> None:
    """The stale entry, not the IPVS connection, is what costs the flow its next datagram.

    The real server goes while expire_nodest_conn=0, so its IPVS connection
    and conntrack entry stay (as on a kernel without the flush); then the
    sysctl is 1, as ipvsctl sets it. The next datagram finds the IPVS
    connection to the gone real server and expires it; if the datagram's
    conntrack entry is that connection's old, confirmed one, IPVS drops the
    datagram (`ip_vs_conn_uses_old_conntrack` in `ip_vs_in_hook`), else it
    schedules the datagram to a live real server at once.
    """
    gone, stays = two_flows(lab, clients)
    delete_real_server(lab, gone, "0")
    assert ipvs_connections(clients[0]) == {(lab.service(), lab.real(gone))}
    with sysctl(EXPIRE_NODEST_CONN, "1"):
        if cleanup:
            deleted = delete_udp_flows(lab.vip, SERVICE_PORT, lab.backends[gone], UDP_PORT)
            assert deleted == 1
            assert tracked(clients[0]) == set()
            assert backend_index(clients[0].ask()) == stays
        else:
            assert clients[0].ask(wait=DROPPED_WAIT) is None
            assert backend_index(clients[0].ask()) == stays
    assert tracked(clients[0]) == {(lab.service(), lab.real(stays))}
    # IPVS lists the new connection; the old one may linger a tick, expiring.
    assert (lab.service(), lab.real(stays)) in ipvs_connections(clients[0])
    assert backend_index(clients[1].ask()) == stays


def test_with_ipvsctls_sysctls_the_flow_moves_on_whoever_deletes_the_entry_first(
    lab: Family, clients: list[Client]
) -> None:
    with sysctl(EXPIRE_NODEST_CONN, "1"):
        gone, stays = two_flows(lab, clients)
        ipvsadm("-d", "-u", lab.service(), "-r", lab.real(gone))
        # The kernel's own flush is a jiffy behind the deletion: called at once, the
        # cleanup got there first on every lab run (1); called later, it finds
        # nothing (0). An entry the kernel drops meanwhile answers ENOENT: no error.
        deleted = delete_udp_flows(lab.vip, SERVICE_PORT, lab.backends[gone], UDP_PORT)
        assert deleted in (0, 1)
        assert tracked(clients[0]) == set()
        assert backend_index(clients[0].ask()) == stays
    assert tracked(clients[0]) == {(lab.service(), lab.real(stays))}
    # IPVS lists the new connection; the old one may linger a tick, expiring.
    assert (lab.service(), lab.real(stays)) in ipvs_connections(clients[0])
