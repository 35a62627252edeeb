"""Benchmark: `ipvsctl apply -f` of a cluster's manifests against ipvsadm-restore of its table.

Runs in a kernel with IPVS (root), both tools in the same kernel run, so the
ratios mean something even inside the kernel lab:

    python -m integration.kernel_lab -- .venv/bin/python -m integration.benchmarks.bench_apply

For each size: a cold `ipvsctl apply -f` (a fresh process: interpreter start,
YAML parsing, validation, translation, planning, addresses and the batched
IPVS apply) against `ipvsadm-restore` of the same virtual and real servers on
the same, already bound, addresses; then `diff` on the converged table (must
plan nothing) and after one endpoint is added (must plan exactly one
operation). Prints the times and the ratios; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from integration.benchmarks.cluster_manifests import endpoint_ip, manifests, service_ip
from integration.benchmarks.timed_runs import compile_package, in_fresh_namespace, run


def restore_input(services: int, endpoints: int) -> str:
    lines = []
    for i in range(services):
        vip = f"{service_ip(i)}:80"
        lines.append(f"-A -t {vip} -s rr")
        lines += [f"-a -t {vip} -r {endpoint_ip(i, j)}:8080 -m -w 1" for j in range(endpoints)]
    return "\n".join(lines) + "\n"


def measure(services: int, endpoints: int, runs: int, scratch: Path) -> None:
    # IPVS only, as ipvsadm-restore does (the lab's UML kernel has no IP nftables).
    ipvsctl = [sys.executable, "-m", "ipvsctl"]
    manifest = scratch / f"cluster-{services}.yaml"
    manifest.write_text(manifests(services, endpoints))
    expected = services * (1 + endpoints) + 1  # + ipvsadm's "-> RemoteAddress" title line

    # Each timed run in a network namespace of its own, so both tools start from
    # an empty IPVS table: the kernel keeps deleted real servers in a trash
    # list for two minutes and scans it on every add, which makes whoever
    # comes after a flush several times slower. Median of alternating runs:
    # the kernel lab's timings drift by 20%.
    colds, restores = [], []
    for _ in range(runs):
        colds.append(
            in_fresh_namespace(
                [*ipvsctl, "apply", "--no-netfilter", "-f", str(manifest)], "", expected
            )
        )
        restores.append(
            in_fresh_namespace(["ipvsadm-restore"], restore_input(services, endpoints), expected)
        )
    cold, restore = statistics.median(colds), statistics.median(restores)

    run(["ipvsadm", "-C"])
    run([*ipvsctl, "apply", "--no-netfilter", "-f", str(manifest)])
    converged = run([*ipvsctl, "diff", "--no-netfilter", "-f", str(manifest)], ok=(0,))
    changed = scratch / f"changed-{services}.yaml"
    changed.write_text(manifests(services, endpoints, grown=services // 2))
    one = run([*ipvsctl, "diff", "--no-netfilter", "-f", str(changed)], ok=(1,))
    ipvs_ops = [line for line in one.splitlines() if line.startswith("-")]
    run([*ipvsctl, "cleanup"])

    print(f"{services} Services x {endpoints} endpoints ({expected - 1} IPVS objects)")
    print(f"  ipvsadm-restore (median of {runs})  {restore:8.3f} s   {_spread(restores)}")
    print(f"  ipvsctl apply -f, cold (median) {cold:8.3f} s   {_spread(colds)}")
    print(f"  ratio                           {cold / restore:8.3f}")
    print(f"  diff, converged table        {len(converged.splitlines())} plan lines")
    print(f"  diff, one endpoint added     {len(ipvs_ops)} IPVS operations: {ipvs_ops}")


def _spread(times: list[float]) -> str:
    return "(" + ", ".join(f"{t:.2f}" for t in times) + ")"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000", help="comma-separated Service counts")
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each tool")
    args = parser.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="ipvsctl-bench-") as scratch:
        for size in args.sizes.split(","):
            measure(int(size), args.endpoints, args.runs, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
