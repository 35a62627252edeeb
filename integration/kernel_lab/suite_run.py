"""``python -m integration``: the unit tests on the host, the integration
tests in a kernel with IPVS, the netfilter tests in a kernel with nftables,
and one line summing all three."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .junit_tally import Tally, summary_line, tally_run
from .locations import scratch_dir
from .runner import Target, choose_target, run_in_kernel

UNIT_ONLY = "--unit-only"
INTEGRATION_ONLY = "--integration-only"
UNIT_TESTS = "tests"
INTEGRATION_TESTS = "integration/tests"
# UML's kernel has no nftables for IP traffic: these run in QEMU's.
NETFILTER_TESTS = "integration/tests/netfilter"
# pytest's exit status when it ran no test (none collected, or all deselected).
NO_TESTS = 5
# pytest options that leave tests out on purpose: a suite they empty is no failure.
_SELECTING = ("-k", "-m", "--deselect", "--ignore", "--lf", "--last-failed", "--sw", "--stepwise")


@dataclass(frozen=True)
class SuitePlan:
    unit: bool
    integration: bool
    pytest_args: tuple[str, ...]


@dataclass(frozen=True)
class Suite:
    """One pytest run: where it runs, and the arguments that pick its tests."""

    name: str
    paths: tuple[str, ...]
    # None: a plain process on the host (the unit tests need no kernel).
    target: Target | None
    where: str


def plan_suites(argv: Sequence[str]) -> SuitePlan:
    """Our two flags pick the halves; every other argument goes to every pytest run."""
    ours = {UNIT_ONLY, INTEGRATION_ONLY}
    chosen = ours.intersection(argv)
    if chosen == ours:
        raise SystemExit(f"{UNIT_ONLY} and {INTEGRATION_ONLY} exclude each other")
    rest = tuple(arg for arg in argv if arg not in ours)
    return SuitePlan(INTEGRATION_ONLY not in chosen, UNIT_ONLY not in chosen, rest)


def suites(plan: SuitePlan, lab_target: Target) -> list[Suite]:
    """The runs a plan asks for; ``lab_target`` is where the IPVS suite runs."""
    runs = []
    if plan.unit:
        runs.append(Suite("unit", (UNIT_TESTS,), None, "on the host"))
    if plan.integration:
        ignore = f"--ignore={NETFILTER_TESTS}"
        on_host = lab_target == "host"
        where = "in the host's kernel" if on_host else "in UML's kernel"
        runs.append(Suite("integration", (INTEGRATION_TESTS, ignore), lab_target, where))
        # A host kernel with IPVS (a privileged container on a real host) has
        # nftables too; only a lab that had to boot UML needs QEMU as well.
        where = "in the host's kernel" if on_host else "in Debian's kernel under QEMU"
        runs.append(Suite("netfilter", (NETFILTER_TESTS,), "host" if on_host else "qemu", where))
    return runs


def narrows_selection(pytest_args: Sequence[str]) -> bool:
    """Whether the caller's pytest arguments leave tests out on purpose."""
    return any(arg.startswith(_SELECTING) for arg in pytest_args)


def judge(exit_code: int, tally: Tally, narrowed: bool) -> tuple[Tally, bool]:
    """A suite's count and whether it passed. pytest's "no tests ran" passes
    only when the caller's own selection (``-k``, ``-m``...) emptied it; a
    suite that collects nothing by itself is broken, and fails."""
    if exit_code == NO_TESTS and narrowed:
        return Tally(), True
    return tally, exit_code == 0


def run_suites(repo: Path, argv: Sequence[str]) -> int:
    plan = plan_suites(argv)
    narrowed = narrows_selection(plan.pytest_args)
    total, all_passed = Tally(), True
    try:
        lab_target = choose_target() if plan.integration else "host"
    except LabError as exc:
        print(f"kernel-lab: {exc}", file=sys.stderr)
        print(summary_line(Tally(failed=1)), flush=True)
        return 1
    with scratch_dir("suites-") as scratch:
        for suite in suites(plan, lab_target):
            print(f"kernel-lab: {suite.name} tests, {suite.where}", file=sys.stderr, flush=True)
            report = scratch / f"{suite.name}.xml"
            # Ours goes last: pytest keeps the last --junitxml it is given.
            pytest = [sys.executable, "-m", "pytest", *suite.paths, *plan.pytest_args]
            pytest.append(f"--junitxml={report}")
            if suite.target is None:
                exit_code = subprocess.run(pytest, cwd=repo, check=False).returncode
            else:
                exit_code = run_in_kernel(pytest, cwd=repo, target=suite.target)
            tally, passed = judge(exit_code, tally_run(report, exit_code), narrowed)
            total += tally
            all_passed = all_passed and passed
    if total.passed + total.failed == 0:
        # Every suite was emptied: a run that tested nothing is no pass.
        print("kernel-lab: no test ran at all", file=sys.stderr)
        total, all_passed = total + Tally(failed=1), False
    sys.stderr.flush()
    print(summary_line(total), flush=True)
    return 0 if all_passed else 1
