"""`ipvsctl show` against `ipvsadm -Ln` on a real kernel: the same bytes, the same exit status.

Runs as root in a kernel with IPVS (the kernel lab); it flushes the IPVS table.
Each table is built with the real ipvsadm, then every listing option is run
through both programs: stdout must match byte for byte, the exit status must
match, and where ipvsadm fails its stderr must match too. A missing ipvsadm is
a failure, not a skip: without the witness nothing is proven.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

IPVSADM = shutil.which("ipvsadm") or "/usr/sbin/ipvsadm"
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf")


def ipvsadm(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    assert os.path.exists(IPVSADM), f"ipvsadm not found at {IPVSADM}: install the ipvsadm package"
    done = subprocess.run([IPVSADM, *args], capture_output=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"ipvsadm {' '.join(args)} failed: {done.stderr.decode()!r}")
    return done


def ipvsctl_show(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ipvsctl", "show", *args], capture_output=True, check=False
    )


def assert_same_output(options: Sequence[str]) -> None:
    want = ipvsadm("-L", "-n", *options, check=False)
    got = ipvsctl_show(*options)
    shown = " ".join(options) or "(no options)"
    assert got.stdout == want.stdout, f"stdout differs for {shown}"
    assert got.returncode == want.returncode, f"exit status differs for {shown}: {got.stderr!r}"
    if want.returncode != 0:
        assert got.stderr == want.stderr, f"stderr differs for {shown}"


@dataclass(frozen=True)
class Table:
    """An IPVS table as ipvsadm commands, and the -t/-u/--sctp-service/-f lookups to try on it."""

    name: str
    commands: tuple[tuple[str, ...], ...]
    present: tuple[tuple[str, ...], ...] = ()
    absent: tuple[tuple[str, ...], ...] = ()


def service_with_servers(
    kind: str, vip: str, scheduler: str, servers: Sequence[str], *extra: str
) -> list[tuple[str, ...]]:
    commands: list[tuple[str, ...]] = [("-A", kind, vip, "-s", scheduler, *extra)]
    commands += [
        ("-a", kind, vip, "-r", server, "-m", "-w", str(i + 1)) for i, server in enumerate(servers)
    ]
    return commands


def every_scheduler() -> tuple[tuple[str, ...], ...]:
    commands: list[tuple[str, ...]] = []
    for index, scheduler in enumerate(SCHEDULERS, start=1):
        servers = [f"10.11.{index}.2:8080", f"10.11.{index}.1:8080"]
        commands += service_with_servers("-t", f"10.10.0.{index}:80", scheduler, servers)
    return tuple(commands)


TABLES = (
    Table("empty", (), absent=(("-t", "10.0.0.1:80"), ("-f", "1"))),
    Table(
        "every-scheduler",
        every_scheduler(),
        present=(("-t", "10.10.0.1:80"), ("-t", "10.10.0.13:80")),
        absent=(("-u", "10.10.0.1:80"), ("-t", "10.10.0.1:81")),
    ),
    Table(
        "scheduler-flags",
        (
            ("-A", "-t", "10.20.0.1:80", "-s", "sh", "-b", "sh-fallback,sh-port"),
            ("-A", "-t", "10.20.0.2:80", "-s", "sh", "-b", "sh-port"),
            ("-A", "-t", "10.20.0.3:80", "-s", "mh", "-b", "mh-fallback,mh-port"),
            ("-A", "-u", "10.20.0.4:53", "-s", "mh", "-b", "mh-port"),
            ("-A", "-t", "10.20.0.5:80", "-s", "rr", "-b", "flag-3"),
            ("-A", "-t", "10.20.0.6:80", "-s", "wlc", "-b", "flag-1,flag-2"),
            # sh names only its own two flags: ipvsadm prints "sh ()"
            ("-A", "-t", "10.20.0.7:80", "-s", "sh", "-b", "flag-3"),
        ),
        present=(("-t", "10.20.0.1:80"), ("-u", "10.20.0.4:53")),
    ),
    Table(
        "persistence-ipv4",
        (
            ("-A", "-t", "10.30.0.1:0", "-s", "rr", "-p", "300"),
            ("-a", "-t", "10.30.0.1:0", "-r", "10.31.0.1", "-g"),
            ("-A", "-t", "10.30.0.2:443", "-s", "wlc", "-p", "60", "-M", "255.255.255.0"),
            ("-a", "-t", "10.30.0.2:443", "-r", "10.31.0.2:443", "-m"),
            ("-A", "-t", "10.30.0.3:80", "-s", "lc", "-p", "30", "-M", "255.255.0.0"),
            ("-A", "-u", "10.30.0.4:53", "-s", "rr", "-p"),
        ),
        # "-t 10.30.0.1" without a port means port 0
        present=(
            ("-t", "10.30.0.1:0"),
            ("-t", "10.30.0.1"),
            ("-t", "10.30.0.2:443"),
            ("-u", "10.30.0.4:53"),
        ),
        absent=(("-t", "10.30.0.9:0"), ("-t", "10.30.0.2")),
    ),
    Table(
        "persistence-ipv6",
        (
            ("-A", "-t", "[2001:db8:30::1]:80", "-s", "rr", "-p", "120", "-M", "64"),
            ("-a", "-t", "[2001:db8:30::1]:80", "-r", "[2001:db8:31::2]:8080", "-m"),
            ("-a", "-t", "[2001:db8:30::1]:80", "-r", "[2001:db8:31::1]:8080", "-m"),
            ("-A", "-t", "[2001:db8:30::2]:80", "-s", "sh", "-p", "120"),
            ("-A", "-u", "[2001:db8:30::3]:0", "-s", "wrr", "-p", "10", "-M", "128"),
        ),
        present=(("-t", "[2001:db8:30::1]:80"), ("-u", "[2001:db8:30::3]:0")),
        absent=(("-t", "[2001:db8:30::1]:81"), ("-u", "[2001:db8:30::1]:80")),
    ),
    Table(
        "fwmark",
        (
            ("-A", "-f", "1", "-s", "rr"),
            ("-a", "-f", "1", "-r", "10.40.0.2:80", "-m"),
            ("-a", "-f", "1", "-r", "10.40.0.1:80", "-g", "-w", "0"),
            ("-A", "-f", "2", "-6", "-s", "wlc", "-p", "100", "-M", "96"),
            ("-a", "-f", "2", "-6", "-r", "[2001:db8:40::1]:80", "-m"),
            ("-A", "-f", "3", "-s", "sh", "-p", "50", "-M", "255.255.255.0"),
            ("-A", "-f", "3", "-6", "-s", "rr"),
            # printed with %d: negative; and sorted before the others by the wrapping compare
            ("-A", "-f", "4294967295", "-s", "rr"),
            ("-A", "-f", "2147483649", "-s", "rr"),
            ("-A", "-t", "10.40.9.1:80", "-s", "rr"),
        ),
        present=(
            ("-f", "1"),
            ("-f", "2", "-6"),
            ("-f", "3"),
            ("-f", "3", "-6"),
            ("-f", "4294967295"),
        ),
        absent=(("-f", "2"), ("-f", "1", "-6"), ("-f", "99")),
    ),
    Table(
        "ipv6-udp-sctp",
        (
            *service_with_servers(
                "-t", "[2001:db8::1]:443", "rr", ["[2001:db8:1::2]:8443", "[2001:db8:1::1]:8443"]
            ),
            *service_with_servers("-u", "[2001:db8::1]:53", "wrr", ["[2001:db8:1::3]:53"]),
            *service_with_servers(
                "--sctp-service", "[2001:db8::1]:3868", "rr", ["[2001:db8:1::4]:3868"]
            ),
            *service_with_servers("--sctp-service", "10.50.0.1:3868", "lc", ["10.50.1.1:3868"]),
            *service_with_servers("-u", "10.50.0.1:53", "rr", ["10.50.1.2:53"]),
            # glibc spells IPv4-compatible IPv6 with a dotted quad; Python's ipaddress does not
            *service_with_servers("-t", "[2001:db8::2]:80", "rr", ["[::10.50.2.1]:80"]),
        ),
        present=(
            ("-t", "[2001:db8::1]:443"),
            ("-u", "[2001:db8::1]:53"),
            ("--sctp-service", "[2001:db8::1]:3868"),
            ("--sctp-service", "10.50.0.1:3868"),
        ),
        absent=(("--sctp-service", "10.50.0.1:53"), ("-t", "[2001:db8::1]:53")),
    ),
    Table(
        "forwarding-methods",
        (
            ("-A", "-t", "10.60.0.1:80", "-s", "wlc"),
            ("-a", "-t", "10.60.0.1:80", "-r", "10.60.1.1:8080", "-m"),
            ("-a", "-t", "10.60.0.1:80", "-r", "10.60.1.2", "-g"),
            ("-a", "-t", "10.60.0.1:80", "-r", "10.60.1.3", "-i"),
            (
                "-a",
                "-t",
                "10.60.0.1:80",
                "-r",
                "10.60.1.4",
                "-i",
                "--tun-type",
                "gue",
                "--tun-port",
                "6080",
                "--tun-nocsum",
            ),
            (
                "-a",
                "-t",
                "10.60.0.1:80",
                "-r",
                "10.60.1.5",
                "-i",
                "--tun-type",
                "gue",
                "--tun-port",
                "6081",
                "--tun-csum",
            ),
            (
                "-a",
                "-t",
                "10.60.0.1:80",
                "-r",
                "10.60.1.6",
                "-i",
                "--tun-type",
                "gue",
                "--tun-port",
                "6082",
                "--tun-remcsum",
            ),
            (
                "-a",
                "-t",
                "10.60.0.1:80",
                "-r",
                "10.60.1.7",
                "-i",
                "--tun-type",
                "gre",
                "--tun-csum",
            ),
            ("-a", "-t", "10.60.0.1:80", "-r", "10.60.1.8", "-i", "--tun-type", "gre"),
            ("-a", "-t", "10.60.0.1:80", "-r", "10.60.1.9", "-i", "--tun-type", "ipip"),
            # an IPv4 real server behind an IPv6 service: allowed for tunnels only
            ("-A", "-t", "[2001:db8:60::1]:80", "-s", "rr"),
            ("-a", "-t", "[2001:db8:60::1]:80", "-r", "10.60.2.1", "-i"),
            ("-a", "-t", "[2001:db8:60::1]:80", "-r", "[2001:db8:60::2]:80", "-g"),
        ),
        present=(("-t", "10.60.0.1:80"), ("-t", "[2001:db8:60::1]:80")),
    ),
    Table(
        "weights-and-thresholds",
        (
            ("-A", "-t", "10.70.0.1:80", "-s", "wrr"),
            ("-a", "-t", "10.70.0.1:80", "-r", "10.70.1.1:80", "-m", "-w", "0"),
            ("-a", "-t", "10.70.0.1:80", "-r", "10.70.1.2:80", "-m", "-w", "65535"),
            ("-a", "-t", "10.70.0.1:80", "-r", "10.70.1.3:80", "-m", "-x", "100", "-y", "50"),
            ("-a", "-t", "10.70.0.1:80", "-r", "10.70.1.4:80", "-m", "-x", "2147483647", "-y", "0"),
            (
                "-a",
                "-t",
                "10.70.0.1:80",
                "-r",
                "10.70.1.5:81",
                "-m",
                "-w",
                "7",
                "-x",
                "1",
                "-y",
                "1",
            ),
        ),
        present=(("-t", "10.70.0.1:80"),),
    ),
    Table(
        "one-packet",
        (
            ("-A", "-u", "10.80.0.1:53", "-s", "rr", "-o"),
            ("-a", "-u", "10.80.0.1:53", "-r", "10.80.1.1:53", "-m"),
            ("-A", "-u", "10.80.0.2:53", "-s", "sh", "-o", "-p", "30", "-b", "sh-port"),
            ("-A", "-f", "8", "-s", "rr", "-o"),
        ),
        present=(("-u", "10.80.0.1:53"), ("-f", "8")),
        absent=(("-t", "10.80.0.1:53"),),
    ),
    Table(
        "sort-order",
        (
            # the wrapping compare in libipvs puts 192.168/16 and 200/8 before 10/8
            *service_with_servers(
                "-t",
                "10.90.0.1:80",
                "rr",
                ["192.168.90.1:80", "10.91.0.1:80", "200.0.0.1:80", "1.1.1.1:80", "128.0.0.1:80"],
            ),
            ("-A", "-t", "192.168.90.10:80", "-s", "rr"),
            ("-A", "-t", "1.1.1.1:443", "-s", "rr"),
            ("-A", "-t", "1.1.1.1:80", "-s", "rr"),
            ("-A", "-t", "128.0.0.1:80", "-s", "rr"),
            ("-A", "-t", "200.0.0.1:80", "-s", "rr"),
            ("-A", "-u", "10.90.0.1:80", "-s", "rr"),
            ("-A", "-t", "[8000::1]:80", "-s", "rr"),
            ("-A", "-t", "[ffff::1]:80", "-s", "rr"),
            ("-A", "-t", "[1::1]:80", "-s", "rr"),
            ("-A", "-t", "[2001:db8::1]:80", "-s", "rr"),
        ),
        present=(("-t", "10.90.0.1:80"),),
    ),
    Table(
        "timeouts-set",
        (("--set", "900", "120", "300"), ("-A", "-t", "10.100.0.1:80", "-s", "rr")),
    ),
    Table(
        "persistence-engine",
        (("-A", "-u", "10.110.0.1:5060", "-s", "rr", "-p", "60", "--pe", "sip"),),
        present=(("-u", "10.110.0.1:5060"),),
    ),
)

LISTING_OPTIONS = (
    (),
    ("--stats",),
    ("--rate",),
    ("--exact",),
    ("--stats", "--exact"),
    ("--rate", "--exact"),
    ("--timeout",),
    ("--thresholds",),
    ("--persistent-conn",),
    ("--tun-info",),
    ("--nosort",),
    ("--sort",),
    ("-X", "--stats"),
    ("--stats", "--rate"),
    ("--thresholds", "--persistent-conn"),
)
SELECTED_OPTIONS = (
    (),
    ("--stats",),
    ("--rate", "--exact"),
    ("--thresholds",),
    ("--persistent-conn",),
)
REFUSED = (
    ("-t", "10.0.0.1:65536"),
    ("-t", "[::1]"),
    ("-t", "80"),
    ("-u", "not an address"),
    ("-f", "0"),
    ("-f", "-1"),
    ("-f", "4294967296"),
    ("-6", "-f", "1"),
    ("-t", "10.0.0.1:80", "-6"),
    ("--timeout", "-t", "10.0.0.1:80"),
    ("--timeout", "--stats"),
    ("--timeout", "--persistent-conn"),
    ("-t", "10.0.0.1:80", "-u", "10.0.0.1:80"),
)


def _timeouts() -> tuple[str, str, str]:
    text = ipvsadm("-L", "--timeout").stdout.decode()
    found = re.search(r"Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)", text)
    assert found, text
    tcp, tcp_fin, udp = found.groups()
    return tcp, tcp_fin, udp


@pytest.fixture(scope="module", autouse=True)
def kernel_timeouts_restored() -> Iterator[None]:
    saved = _timeouts()
    yield
    ipvsadm("--set", *saved)


@pytest.fixture(scope="module", params=TABLES, ids=lambda table: table.name)
def table(request: pytest.FixtureRequest) -> Iterator[Table]:
    built: Table = request.param
    ipvsadm("-C")
    for command in built.commands:
        done = ipvsadm(*command, check=False)
        if (
            done.returncode != 0
            and b"persistence engine not found" in done.stderr
            and "--pe" in command
        ):
            ipvsadm("-C")
            pytest.skip("this kernel has no ip_vs_pe_sip")
        assert done.returncode == 0, f"ipvsadm {' '.join(command)}: {done.stderr.decode()!r}"
    yield built
    ipvsadm("-C")


def test_ipvsadm_is_installed() -> None:
    assert os.access(IPVSADM, os.X_OK), f"ipvsadm not found at {IPVSADM}"


@pytest.mark.parametrize("options", LISTING_OPTIONS, ids=lambda o: " ".join(o) or "plain")
def test_listing_matches_ipvsadm(table: Table, options: tuple[str, ...]) -> None:
    assert_same_output(options)


@pytest.mark.parametrize("options", SELECTED_OPTIONS, ids=lambda o: " ".join(o) or "plain")
def test_one_service_matches_ipvsadm(table: Table, options: tuple[str, ...]) -> None:
    for lookup in table.present:
        assert ipvsadm("-L", "-n", *lookup, check=False).returncode == 0, lookup
        assert_same_output((*lookup, *options))
    for lookup in table.absent:
        assert ipvsadm("-L", "-n", *lookup, check=False).returncode == 1, lookup
        assert_same_output((*lookup, *options))


# Refusals do not depend on the table; one non-empty table is enough.
@pytest.mark.parametrize("table", [TABLES[1]], ids=[TABLES[1].name], indirect=True)
@pytest.mark.parametrize("options", REFUSED, ids=" ".join)
def test_refused_options_fail_like_ipvsadm(table: Table, options: tuple[str, ...]) -> None:
    assert_same_output(options)
