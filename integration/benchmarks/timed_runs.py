"""The commands a benchmark runs: timed in a fresh network namespace, or plainly, failing loudly.

Shared by bench_apply and bench_agent, which time `ipvsctl apply -f` cold.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

INTERFACE = "kube-ipvs0"


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


def compile_package() -> None:
    """Byte-compile ipvsctl as an install would (pip writes the .pyc files), so the
    cold apply is timed as users run it even where PYTHONDONTWRITEBYTECODE is set."""
    package = Path(__file__).resolve().parents[2] / "ipvsctl"
    run([sys.executable, "-m", "compileall", "-q", str(package)])
