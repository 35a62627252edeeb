"""Benchmark: program a large table with ipvsctl's batched apply and with ipvsadm-restore.

Runs in a kernel with IPVS (root), both tools in the same kernel run, so the
ratios mean something even inside the kernel lab where every system call is
slow:

    python -m integration.kernel_lab -- \
        .venv/bin/python -m integration.benchmarks.bench_program_table

Prints the times and the ratios; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from ipvsctl.kernel import IpvsKernel
from ipvsctl.model import AF_INET, Protocol, RealServer, ServiceKey, VirtualServer
from ipvsctl.model.changes import IpvsChange, Op


def table(services: int, reals: int) -> list[tuple[VirtualServer, list[RealServer]]]:
    rows = []
    for i in range(services):
        vip = f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}"
        key = ServiceKey(AF_INET, int(Protocol.TCP), vip, 80)
        port = 8080 + i % 256
        servers = [RealServer(f"10.244.{i // 256 % 256}.{j + 1}", port) for j in range(reals)]
        rows.append((VirtualServer(key, scheduler="rr"), servers))
    return rows


def as_changes(rows: list[tuple[VirtualServer, list[RealServer]]]) -> list[IpvsChange]:
    changes = []
    for service, servers in rows:
        changes.append(IpvsChange(Op.ADD_SERVICE, service))
        changes += [IpvsChange(Op.ADD_REAL, service, real) for real in servers]
    return changes


def as_restore_input(rows: list[tuple[VirtualServer, list[RealServer]]]) -> str:
    lines = []
    for service, servers in rows:
        vip = f"{service.key.address}:{service.key.port}"
        lines.append(f"-A -t {vip} -s rr")
        lines += [f"-a -t {vip} -r {r.address}:{r.port} -m -w 1" for r in servers]
    return "\n".join(lines) + "\n"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def count_objects(kernel: IpvsKernel) -> int:
    services = kernel.services()
    return len(services) + sum(len(e.real_servers) for e in services)


def run_quiet(argv: list[str], stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--reals", type=int, default=10)
    parser.add_argument("--show-runs", type=int, default=3)
    args = parser.parse_args()

    rows = table(args.services, args.reals)
    expected = args.services * (1 + args.reals)
    kernel = IpvsKernel()

    kernel.flush()
    restore = timed(lambda: run_quiet(["ipvsadm-restore"], as_restore_input(rows)))
    assert count_objects(kernel) == expected, "ipvsadm-restore did not program the whole table"

    kernel.flush()
    changes = as_changes(rows)
    ours = timed(lambda: kernel.apply(changes))
    assert count_objects(kernel) == expected, "batched apply did not program the whole table"

    # ipvsctl show as a user runs it: a whole process, interpreter start included.
    show_cmd = [sys.executable, "-m", "ipvsctl", "show"]
    listing = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=True)
    shown = subprocess.run(show_cmd, capture_output=True, text=True, check=True)
    assert shown.stdout == listing.stdout, "ipvsctl show differs from ipvsadm -Ln"
    ipvsadm_times, show_times = [], []
    for _ in range(args.show_runs):
        ipvsadm_times.append(timed(lambda: run_quiet(["ipvsadm", "-Ln"])))
        show_times.append(timed(lambda: run_quiet(show_cmd)))
    ipvsadm_list = statistics.median(ipvsadm_times)
    show = statistics.median(show_times)
    kernel.flush()

    print(f"table: {args.services} services x {args.reals} real servers = {expected} objects")
    print(f"ipvsadm-restore            {restore:8.3f} s")
    print(f"ipvsctl batched apply      {ours:8.3f} s   ratio {ours / restore:.3f}")
    print(f"ipvsadm -Ln (median of {args.show_runs})  {ipvsadm_list:8.3f} s")
    print(f"ipvsctl show (median)      {show:8.3f} s   ratio {show / ipvsadm_list:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
