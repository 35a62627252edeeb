"""Counting a pytest run from its JUnit XML report, and summing runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tally:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped
        )


def tally_report(xml_text: str) -> Tally:
    """Count a JUnit XML report; errors (setup/teardown) count as failures."""
    root = ET.fromstring(xml_text)
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    total = Tally()
    for suite in suites:
        tests, failures, errors, skipped = (
            int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")
        )
        total += Tally(tests - failures - errors - skipped, failures + errors, skipped)
    return total


def tally_run(report: Path, exit_code: int) -> Tally:
    """The tally of one pytest run, from its report and exit status.

    A run that failed without a failing test in its report (no tests
    collected, a usage error, a kernel that never booted) counts as one
    failure, so the summary never reads clean when the run was not.
    """
    try:
        tally = tally_report(report.read_text())
    except (OSError, ET.ParseError, ValueError):
        tally = Tally()
    if exit_code != 0 and tally.failed == 0:
        tally += Tally(failed=1)
    return tally


def summary_line(tally: Tally) -> str:
    """``N passed, N failed`` (``, N skipped`` when any)."""
    line = f"{tally.passed} passed, {tally.failed} failed"
    return line + (f", {tally.skipped} skipped" if tally.skipped else "")
