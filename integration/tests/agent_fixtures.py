"""What the `ipvsctl run` tests share: an emulated API server, the agent as a process,
and ipvsadm / ip as witnesses.

The agent runs as users run it (`ipvsctl run --kubeconfig ...`, a subprocess),
against kmock's emulator with a real API server's semantics
(tests/sources/api_emulator.py) on loopback, in the test's own network
namespace. Objects are written through the official client, as kubectl does.
What the agent did is read from the kernel (`ipvsadm`, `ip`) and from its own
metrics endpoint (how many netlink operations it sent).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.tests.apply_fixtures import forget_everything, run
from tests.sources.kube_api import KubeApi, node, wait_for

NODE = "node-1"
NODE_ADDRESS = "10.250.0.10"  # on a dummy link of its own: a node address for NodePorts
METRICS, HEALTHZ = "127.0.0.1:19249", "127.0.0.1:19256"
SYNC_PERIOD = 2.0
WAIT = 20.0  # seconds a test waits for the agent to catch up: a guard, not a measurement


def wait_until(probe: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """`probe()`'s first truthy result; fails naming `what` after `timeout` s. Polls every
    50 ms: most probes here run ipvsadm or ip, each a process in the kernel lab."""
    return wait_for(probe, timeout, what, every=0.05)


def table() -> str:
    return run("ipvsadm", "-Ln")


def bound_addresses() -> set[str]:
    try:
        listing = run("ip", "-o", "addr", "show", "dev", "kube-ipvs0")
    except subprocess.CalledProcessError:
        return set()
    return {match for match in re.findall(r"inet6? ([0-9a-f.:]+)/", listing)}


def real_server_lines(protocol_flag: str, address: str) -> list[str]:
    """`ADDR:PORT Fwd Weight` of each real server of one virtual server, sorted; [] if none."""
    try:
        listing = run("ipvsadm", "-Ln", protocol_flag, address)
    except subprocess.CalledProcessError:
        return []
    rows = re.findall(r"^\s+->\s+(\S+)\s+(\w+)\s+(\d+)", listing, re.M)
    return sorted(f"{a} {f} {w}" for a, f, w in rows if a != "RemoteAddress:Port")


def read_metrics(address: str, timeout: float = 5) -> dict[str, float]:
    """Every sample of the agent's /metrics at `address`, by `name{labels}`."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as answer:
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def counter_total(samples: dict[str, float], counter: str) -> int:
    """A counter's `_total` summed over its labels (never its `_created` timestamps)."""
    return int(sum(v for k, v in samples.items() if k.startswith(f"{counter}_total")))


def netlink_operations(samples: dict[str, float]) -> int:
    """The netlink operations the agent sent (ok and refused), from its metrics."""
    return counter_total(samples, "ipvsctl_netlink_operations")


class Agent:
    """`ipvsctl run` as a process; `metrics()` and `healthz()` read its endpoints."""

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        *flags: str,
        netfilter: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "ipvsctl",
            "run",
            f"--kubeconfig={kubeconfig}",
            f"--node-name={NODE}",
            f"--sync-period={SYNC_PERIOD}s",
            f"--metrics-address={METRICS}",
            f"--healthz-address={HEALTHZ}",
            "--log-format=json",
            # UML has no nftables for IP traffic (see apply_fixtures.NETFILTER_COMMANDS).
            *(() if netfilter else ("--no-netfilter",)),
            *flags,
        ]
        self.log = log
        self.env = {**os.environ, **env} if env else None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = WAIT) -> Agent:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=log, env=self.env)
        try:
            wait_until(lambda: self._healthz_answers(), "the agent's first sync", timeout)
        except AssertionError as error:
            # Not left running: it would hold the ports of every agent after it.
            self.kill()
            raise AssertionError(f"{error}; its log:\n{self.logs()}") from None
        return self

    def stop(self, how: int = signal.SIGTERM) -> float:
        """Signal the agent; the seconds it took to exit (it must exit)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(how)
        self.process.wait(timeout=10)
        return time.monotonic() - started

    def metrics(self) -> dict[str, float]:
        return read_metrics(METRICS)

    def operations(self) -> int:
        """Netlink operations sent so far (ok and refused)."""
        return netlink_operations(self.metrics())

    def healthz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://{HEALTHZ}/healthz", timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def _healthz_answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the agent exited {self.process.returncode}:\n{self.logs()}")
        try:
            return self.healthz()[0] == 200
        except OSError:
            return False

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def node_link() -> Iterator[None]:
    """A link holding the node's address (NodePorts are served on it)."""
    run("ip", "link", "add", "node0", "type", "dummy")
    run("ip", "addr", "add", f"{NODE_ADDRESS}/24", "dev", "node0")
    run("ip", "link", "set", "node0", "up")
    try:
        yield
    finally:
        run("ip", "link", "del", "node0")


@pytest.fixture
def api(node_link: None) -> Iterator[KubeApi]:
    forget_everything()
    with KubeApi() as emulated:
        emulated.create(node(NODE, (("InternalIP", NODE_ADDRESS),), zone="zone-a"))
        yield emulated
    forget_everything()


AGENT_FLAGS = "agent_flags"


@pytest.fixture
def agent(api: KubeApi, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Agent]:
    """An agent started against `api` (and killed after the test if still running), with
    the flags of the test's `agent_flags` mark, if any."""
    mark = request.node.get_closest_marker(AGENT_FLAGS)
    flags = mark.args if mark is not None else ()
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    process = Agent(kubeconfig, tmp_path / "agent.log", *flags)
    process.start()
    try:
        yield process
    finally:
        process.kill()
