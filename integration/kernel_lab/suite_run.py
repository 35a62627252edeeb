"""``python -m integration``: the unit tests on the host, the integration
tests in a kernel with IPVS, and one line summing both."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .junit_tally import Tally, summary_line, tally_run
from .locations import scratch_dir
from .runner import run_in_kernel

UNIT_ONLY = "--unit-only"
INTEGRATION_ONLY = "--integration-only"


@dataclass(frozen=True)
class SuitePlan:
    unit: bool
    integration: bool
    pytest_args: tuple[str, ...]


def plan_suites(argv: Sequence[str]) -> SuitePlan:
    """Our two flags pick the halves; every other argument goes to both pytest runs."""
    ours = {UNIT_ONLY, INTEGRATION_ONLY}
    chosen = ours.intersection(argv)
    if chosen == ours:
        raise SystemExit(f"{UNIT_ONLY} and {INTEGRATION_ONLY} exclude each other")
    rest = tuple(arg for arg in argv if arg not in ours)
    return SuitePlan(INTEGRATION_ONLY not in chosen, UNIT_ONLY not in chosen, rest)


def run_suites(repo: Path, argv: Sequence[str]) -> int:
    plan = plan_suites(argv)
    total, all_passed = Tally(), True
    with scratch_dir("suites-") as scratch:
        for name, wanted in (("tests", plan.unit), ("integration", plan.integration)):
            if not wanted:
                continue
            report = scratch / f"{name}.xml"
            # Ours goes last: pytest keeps the last --junitxml it is given.
            pytest = [sys.executable, "-m", "pytest", name, *plan.pytest_args]
            pytest.append(f"--junitxml={report}")
            if name == "tests":
                exit_code = subprocess.run(pytest, cwd=repo, check=False).returncode
            else:
                exit_code = run_in_kernel(pytest, cwd=repo)
            total += tally_run(report, exit_code)
            all_passed = all_passed and exit_code == 0
    sys.stderr.flush()
    print(summary_line(total), flush=True)
    return 0 if all_passed else 1
