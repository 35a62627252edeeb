"""Benchmark: `ipvsctl run` against an emulated API server holding a big cluster.

Runs in a kernel with IPVS (root), every figure from the same kernel run, so
the ratios mean something even inside the kernel lab:

    python -m integration.kernel_lab -- .venv/bin/python -m integration.benchmarks.bench_agent

`--services` ClusterIP Services with 10 endpoints each (cluster_manifests, the
cluster bench_apply applies) are loaded into the emulator
(tests/sources/api_emulator.py), which the agent lists and watches over HTTP
on loopback, in a network namespace of its own. Measured:

1. initial sync: from the agent's start to its first full sync done (its log),
   against a cold `ipvsctl apply -f` of the same manifests in another fresh
   namespace;
2. the agent's resident memory (VmRSS) right after it;
3. single-endpoint changes (one EndpointSlice patched, one at a time, each
   waited for in the agent's log): netlink operations each (the metrics
   endpoint) and the event-to-kernel latency the agent logs (`latency_ms`);
4. periodic full syncs with no drift: their mean duration (the agent's
   reconcile histogram) against one `ipvsadm -Ln` of the same table, and the
   operations they sent.

Prints the figures and their targets; it asserts nothing about speed, only
that the tables are right.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from integration.benchmarks.cluster_manifests import endpoint_ip, manifests
from integration.benchmarks.timed_runs import compile_package, in_fresh_namespace, run
from integration.tests.agent_fixtures import netlink_operations, read_metrics
from ipvsctl.sources.files.yaml_documents import load_documents
from tests.sources.kube_api import KubeApi, node

NODE = "node-1"
NAMESPACE = "bench"
METRICS, HEALTHZ = "127.0.0.1:19349", "127.0.0.1:19356"
WAIT = 600.0  # seconds the benchmark waits for the agent: a guard, not a measurement


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=200, help="single-endpoint changes")
    parser.add_argument("--sync-period", type=float, default=30.0, help="the agent's, seconds")
    parser.add_argument("--runs", type=int, default=1, help="timed cold applies")
    parser.add_argument("--agent-phase", metavar="MANIFEST", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.changes <= args.services:
        parser.error("--changes must be between 1 and --services")
    if args.agent_phase:  # in the fresh namespace the parent made: print figures as JSON
        print(json.dumps(agent_phase(args, Path(args.agent_phase))))
        return 0
    compile_package()
    with tempfile.TemporaryDirectory(prefix="ipvsctl-bench-") as scratch:
        manifest = Path(scratch) / "cluster.yaml"
        manifest.write_text(manifests(args.services, args.endpoints))
        expected = args.services * (1 + args.endpoints) + 1  # + ipvsadm's title line
        # IPVS only: the User-Mode Linux lab has no nftables for IP traffic.
        apply = [sys.executable, "-m", "ipvsctl", "apply", "--no-netfilter", "-f", str(manifest)]
        colds = [in_fresh_namespace(apply, "", expected) for _ in range(args.runs)]
        # The emulator and the agent in one new namespace: they meet on its loopback.
        child = [sys.executable, "-m", "integration.benchmarks.bench_agent", *sys.argv[1:]]
        output = run(["unshare", "--net", *child, f"--agent-phase={manifest}"])
    report(args, statistics.median(colds), json.loads(output.splitlines()[-1]))
    return 0


def agent_phase(args: argparse.Namespace, manifest: Path) -> dict[str, Any]:
    run(["ip", "link", "set", "lo", "up"])
    objects = [node(NODE), *load_documents(manifest.read_text())]
    with KubeApi() as api:
        started = time.perf_counter()
        api.load(objects)
        figures: dict[str, Any] = {"load_s": time.perf_counter() - started}
        kubeconfig = api.write_kubeconfig(manifest.with_name("kubeconfig"))
        log_path = manifest.with_name("agent.log")
        with log_path.open("wb") as written, log_path.open("rb") as lines:
            started = time.time()  # the log's clock
            argv = agent_argv(kubeconfig, args.sync_period)
            agent = subprocess.Popen(argv, stdout=written, stderr=written)
            try:
                log = AgentLog(lines, agent)
                figures.update(initial_sync(api, log, started))
                figures.update(measure_agent(args, api, log))
            finally:
                agent.terminate()
                agent.wait(timeout=30)
    return figures


def initial_sync(api: KubeApi, log: AgentLog, started: float) -> dict[str, float]:
    """Seconds from `started` to the agent's first log line, to its last first list
    (all its watches open), to its first full sync done."""
    first = log.next_line("waiting for the first list")
    watches = first["resources"]
    wait_until(lambda: api.call(lambda: api.emulator.watching) >= watches, "lists", log, 0.005)
    listed = time.time()
    synced = log.next_line("synced", sync="full")
    return {
        "startup_s": log_time(first) - started,
        "listed_s": listed - started,
        "initial_s": log_time(synced) - started,
    }


def agent_argv(kubeconfig: Path, sync_period: float) -> list[str]:
    return [
        *(sys.executable, "-m", "ipvsctl", "run", f"--kubeconfig={kubeconfig}"),
        f"--node-name={NODE}",
        "--log-format=json",
        f"--sync-period={sync_period}s",
        f"--metrics-address={METRICS}",
        f"--healthz-address={HEALTHZ}",
        "--no-netfilter",
    ]


def measure_agent(args: argparse.Namespace, api: KubeApi, log: AgentLog) -> dict[str, Any]:
    """Figures 2 to 4, from right after the agent's first full sync."""
    figures: dict[str, Any] = {"rss_mb": rss_mb(log.agent.pid)}
    expected = args.services * (1 + args.endpoints) + 1
    figures["table_lines"] = ipvs_lines()
    assert figures["table_lines"] == expected, f"{figures['table_lines']} of {expected} lines"
    full = full_syncs()

    operations_before = operations()
    changes = []
    for k in range(args.changes):
        index = k * args.services // args.changes
        addresses = [endpoint_ip(index, j) for j in range(args.endpoints + 1)]
        patch = {"endpoints": [{"addresses": [a]} for a in addresses]}
        api.patch("EndpointSlice", NAMESPACE, f"svc-{index}-abcde", patch)
        changes.append(log.next_line("synced", sync="incremental"))
    figures["operations"] = [line["operations"] for line in changes]
    figures["latencies_ms"] = [line["latency_ms"] for line in changes]
    figures["operations_sent"] = operations() - operations_before
    figures["full_syncs_meanwhile"] = full_syncs()[0] - full[0]
    assert ipvs_lines() == expected + args.changes, "not every added endpoint is in the kernel"

    # Periodic full syncs of the same (converged) table: none may change anything.
    before, operations_before = full_syncs(), operations()
    wait_until(lambda: full_syncs()[0] >= before[0] + 2, "two periodic full syncs", log)
    after = full_syncs()
    figures["resync_s"] = (after[1] - before[1]) / (after[0] - before[0])
    figures["resync_operations"] = operations() - operations_before
    figures["ipvsadm_s"] = statistics.median(timed_listing() for _ in range(3))
    return figures


class AgentLog:
    """The agent's JSON log lines, read as they come."""

    def __init__(self, lines: IO[bytes], agent: subprocess.Popen[bytes]) -> None:
        self.lines, self.agent, self.pending = lines, agent, b""

    def next_line(self, msg: str, **fields: Any) -> dict[str, Any]:
        """The next line of `msg` with those `fields`; fails if the agent exits or logs
        an error."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self.pending += self.lines.readline()
            if not self.pending.endswith(b"\n"):
                if self.agent.poll() is not None:
                    raise SystemExit(f"the agent exited {self.agent.returncode}")
                time.sleep(0.002)
                continue
            text, self.pending = self.pending.decode(), b""
            line = json.loads(text) if text.startswith("{") else {}
            if line.get("level") == "error":
                raise SystemExit(f"the agent: {text}")
            if line.get("msg") == msg and fields.items() <= line.items():
                return line
        raise SystemExit("timed out waiting for the agent's log")


def log_time(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["time"].replace("Z", "+00:00")).timestamp()


def metrics() -> dict[str, float]:
    return read_metrics(METRICS, timeout=30)


def operations() -> int:
    return netlink_operations(metrics())


def full_syncs() -> tuple[int, float]:
    """How many full syncs the agent made, and the seconds they took in all."""
    samples = metrics()
    name = "ipvsctl_reconcile_duration_seconds"
    return int(samples[f'{name}_count{{kind="full"}}']), samples[f'{name}_sum{{kind="full"}}']


def wait_until(probe: Callable[[], bool], what: str, log: AgentLog, every: float = 0.2) -> None:
    deadline = time.monotonic() + WAIT
    while not probe():
        if log.agent.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(every)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS")


def ipvs_lines() -> int:
    listing = run(["ipvsadm", "-Ln"]).splitlines()
    return sum(1 for line in listing if line[:4] in ("TCP ", "  ->"))


def timed_listing() -> float:
    started = time.perf_counter()
    subprocess.run(["ipvsadm", "-Ln"], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def report(args: argparse.Namespace, cold: float, f: dict[str, Any]) -> None:
    latencies = sorted(f["latencies_ms"])
    p99 = latencies[math.ceil(0.99 * len(latencies)) - 1]
    single = sum(1 for ops in f["operations"] if ops == 1)
    objects = args.services * (1 + args.endpoints)
    print(f"{args.services} Services x {args.endpoints} endpoints ({objects} IPVS objects)")
    print(f"  emulator loaded in                 {f['load_s']:8.3f} s (not timed below)")
    print("1. initial sync")
    print(f"  agent start to first full sync     {f['initial_s']:8.3f} s")
    print(f"    started (first log line)         {f['startup_s']:8.3f} s")
    print(f"    listed (3 watches open)          {f['listed_s']:8.3f} s")
    print(f"  ipvsctl apply -f, cold             {cold:8.3f} s (median of {args.runs})")
    print(f"  ratio                              {f['initial_s'] / cold:8.3f}   (target <= 2.0)")
    print("2. agent memory after the initial sync")
    print(f"  VmRSS                              {f['rss_mb']:8.1f} MB (target <= 150)")
    print(f"3. {args.changes} single-endpoint changes, one at a time")
    print(f"  syncs with exactly 1 operation     {single} of {args.changes}")
    print(f"  netlink operations sent            {f['operations_sent']}")
    print(f"  event-to-kernel p50                {statistics.median(latencies):8.3f} ms")
    print(f"  event-to-kernel p99                {p99:8.3f} ms (target < 50)")
    print(f"  event-to-kernel max                {latencies[-1]:8.3f} ms")
    if f["full_syncs_meanwhile"]:
        print(f"  (full syncs during the changes: {f['full_syncs_meanwhile']})")
    print("4. periodic full sync, no drift")
    print(f"  one full sync (mean of periodic)   {f['resync_s']:8.3f} s")
    print(f"  one ipvsadm -Ln (median of 3)      {f['ipvsadm_s']:8.3f} s")
    ratio = f["resync_s"] / f["ipvsadm_s"]
    print(f"  ratio                              {ratio:8.3f}   (target <= 1.0)")
    print(f"  operations sent                    {f['resync_operations']} (target 0)")


if __name__ == "__main__":
    sys.exit(main())
