"""Benchmark: `ipvsctl apply -f` of a cluster's manifests against ipvsadm-restore of its table.

Runs in a kernel with IPVS (root), both tools in the same kernel run, so the
ratios mean something even inside the kernel lab:

    python -m integration.kernel_lab -- .venv/bin/python integration/bench_apply.py

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
import subprocess
import sys
import tempfile
from pathlib import Path

INTERFACE = "kube-ipvs0"


def service_ip(index: int) -> str:
    return f"10.96.{index // 250}.{index % 250 + 1}"


def endpoint_ip(index: int, endpoint: int) -> str:
    return f"10.{128 + index // 256 % 64}.{index % 256}.{endpoint + 1}"


def manifests(services: int, endpoints: int, grown: int | None = None) -> str:
    """`services` ClusterIP Services with `endpoints` ready endpoints each, as one YAML stream.

    `grown`: the index of a Service that has one endpoint more.
    """
    documents = []
    for i in range(services):
        name = f"svc-{i}"
        documents.append(
            f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: bench}}
spec:
  clusterIP: {service_ip(i)}
  clusterIPs: [{service_ip(i)}]
  ports: [{{name: http, port: 80, protocol: TCP, targetPort: 8080}}]
"""
        )
        addresses = [endpoint_ip(i, j) for j in range(endpoints + (grown == i))]
        listed = "".join(f"  - addresses: [{a}]\n" for a in addresses)
        documents.append(
            f"""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abcde
  namespace: bench
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints:
{listed}"""
        )
    return "---\n".join(documents)


def restore_input(services: int, endpoints: int) -> str:
    lines = []
    for i in range(services):
        vip = f"{service_ip(i)}:80"
        lines.append(f"-A -t {vip} -s rr")
        lines += [f"-a -t {vip} -r {endpoint_ip(i, j)}:8080 -m -w 1" for j in range(endpoints)]
    return "\n".join(lines) + "\n"


# Run by python in the fresh namespace: lo up, the tool timed, the table counted,
# then the table and ipvsctl's interface removed, untimed: left to the
# namespace's teardown, which the kernel runs in the background, that work
# would slow whichever timed run comes next (by as much as a second in the lab).
_TIMED = f"""
import subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
stdin = sys.stdin.read()
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], input=stdin, text=True, stdout=subprocess.DEVNULL)
elapsed = time.perf_counter() - start
listing = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True).stdout.splitlines()
subprocess.run(["ipvsadm", "-C"], check=True)
subprocess.run(["ip", "link", "del", {INTERFACE!r}], stderr=subprocess.DEVNULL)
print(done.returncode, elapsed, sum(1 for line in listing if line[:4] in ("TCP ", "  ->")))
"""


def in_fresh_namespace(argv: list[str], stdin: str, expected: int) -> float:
    """Seconds `argv` took in a new, empty network namespace; checks what it programmed."""
    output = run(["unshare", "--net", sys.executable, "-c", _TIMED, *argv], stdin)
    status, elapsed, objects = output.split()
    assert status == "0", f"{argv[:4]} exited {status}"
    assert int(objects) == expected, f"{argv[:4]} programmed {objects} of {expected} lines"
    return float(elapsed)


def run(argv: list[str], stdin: str | None = None, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(argv, input=stdin, text=True, capture_output=True, check=False)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:3])}: exit {done.returncode}: {done.stderr[-500:]}")
    return done.stdout


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


def compile_package() -> None:
    """Byte-compile ipvsctl as an install would (pip writes the .pyc files), so the
    cold apply is timed as users run it even where PYTHONDONTWRITEBYTECODE is set."""
    package = Path(__file__).resolve().parent.parent / "ipvsctl"
    run([sys.executable, "-m", "compileall", "-q", str(package)])


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
