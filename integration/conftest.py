"""The integration suite needs a kernel with IPVS; without one it fails, loudly.

Skipping would let a run on a machine without IPVS read as green.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.kernel_lab.host_kernel import IPVS_PROC, has_cap_net_admin
from ipvsctl.kernel import IpvsKernel

# Running this suite where there is no IPVS is a usage error, not a test failure.
WRONG_PLACE = pytest.ExitCode.USAGE_ERROR
WHY = (
    "the integration tests need a kernel with IPVS and CAP_NET_ADMIN; run them "
    "with `python -m integration`, which boots one when the host has none"
)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not IPVS_PROC.exists():
        pytest.exit(f"no IPVS in this kernel ({IPVS_PROC} missing): {WHY}", returncode=WRONG_PLACE)
    if not has_cap_net_admin(Path("/proc/self/status").read_text()):
        pytest.exit(f"no CAP_NET_ADMIN: {WHY}", returncode=WRONG_PLACE)


@pytest.fixture
def kernel() -> Iterator[IpvsKernel]:
    """The kernel's IPVS table, empty before the test and emptied after it."""
    with IpvsKernel() as k:
        k.flush()
        yield k
        k.flush()
