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
import subprocess
import sys
import tempfile
import time
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


def run(argv: list[str], stdin: str | None = None, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(argv, input=stdin, text=True, capture_output=True, check=False)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:3])}: exit {done.returncode}: {done.stderr[-500:]}")
    return done.stdout


def timed(argv: list[str], stdin: str | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    output = run(argv, stdin)
    return time.perf_counter() - start, output


def objects_in_kernel() -> int:
    return sum(
        1 for line in run(["ipvsadm", "-Ln"]).splitlines() if line.startswith(("TCP", "  ->"))
    )


def measure(services: int, endpoints: int, scratch: Path) -> None:
    ipvsctl = [sys.executable, "-m", "ipvsctl"]
    manifest = scratch / f"cluster-{services}.yaml"
    manifest.write_text(manifests(services, endpoints))
    expected = services * (1 + endpoints) + 1  # + ipvsadm's "-> RemoteAddress" title line

    run([*ipvsctl, "cleanup"])
    run(["ipvsadm", "-C"])
    cold, _ = timed([*ipvsctl, "apply", "-f", str(manifest)])
    assert objects_in_kernel() == expected, "apply did not program the whole table"

    # ipvsadm-restore gets the same table on the addresses apply left bound.
    run(["ipvsadm", "-C"])
    restore, _ = timed(["ipvsadm-restore"], restore_input(services, endpoints))
    assert objects_in_kernel() == expected, "ipvsadm-restore did not program the whole table"

    run(["ipvsadm", "-C"])
    run([*ipvsctl, "apply", "-f", str(manifest)])
    converged = run([*ipvsctl, "diff", "-f", str(manifest)], ok=(0,))
    changed = scratch / f"changed-{services}.yaml"
    changed.write_text(manifests(services, endpoints, grown=services // 2))
    one = run([*ipvsctl, "diff", "-f", str(changed)], ok=(1,))
    ipvs_ops = [line for line in one.splitlines() if line.startswith("-")]
    run([*ipvsctl, "cleanup"])

    print(f"{services} Services x {endpoints} endpoints ({expected - 1} IPVS objects)")
    print(f"  ipvsadm-restore              {restore:8.3f} s")
    print(f"  ipvsctl apply -f (cold)      {cold:8.3f} s   ratio {cold / restore:.3f}")
    print(f"  diff, converged table        {len(converged.splitlines())} plan lines")
    print(f"  diff, one endpoint added     {len(ipvs_ops)} IPVS operations: {ipvs_ops}")


def compile_package() -> None:
    """Byte-compile ipvsctl as an install would (pip writes the .pyc files), so the
    cold apply is timed as users run it even where PYTHONDONTWRITEBYTECODE is set."""
    package = Path(__file__).resolve().parent.parent / "ipvsctl"
    run([sys.executable, "-m", "compileall", "-q", str(package)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000", help="comma-separated Service counts")
    parser.add_argument("--endpoints", type=int, default=10)
    args = parser.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="ipvsctl-bench-") as scratch:
        for size in args.sizes.split(","):
            measure(int(size), args.endpoints, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
