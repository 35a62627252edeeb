"""``python -m integration [--unit-only|--integration-only] [PYTEST ARGS...]``

Runs ``pytest tests`` on the host, then ``pytest integration/tests`` in a
kernel with IPVS and its ``netfilter/`` in one with nftables (see
integration.kernel_lab), then prints one line summing the runs,
``N passed, N failed``, and exits 0 only when every run passed.
"""

import sys
from pathlib import Path

from integration.kernel_lab.cli import exit_cleanly_on_signals
from integration.kernel_lab.suite_run import run_suites

with exit_cleanly_on_signals():
    sys.exit(run_suites(Path(__file__).resolve().parent.parent, sys.argv[1:]))
