"""The integration suite needs a kernel with IPVS; without one it fails, loudly.

Skipping would let a run on a machine without IPVS read as green.

It also refuses to run in the host's network namespace: its fixtures flush
the IPVS table and make links and addresses, which on a node running
kube-proxy in IPVS mode would take every Service down. `python -m
integration` runs it in a namespace of its own (integration.kernel_lab.netns).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.kernel_lab.host_kernel import IPVS_PROC, has_cap_net_admin
from integration.kernel_lab.netns import in_initial_network_namespace, kernel_wide_skip_reason

# The `ipvsctl run` tests' fixtures: an emulated API server and the agent as a process.
from integration.tests.agent_fixtures import agent, api, node_link  # noqa: F401
from ipvsctl.kernel import IpvsKernel

# Running this suite where there is no IPVS is a usage error, not a test failure.
WRONG_PLACE = pytest.ExitCode.USAGE_ERROR
WHY = (
    "the integration tests need a kernel with IPVS and CAP_NET_ADMIN; run them "
    "with `python -m integration`, which boots one when the host has none"
)
HOSTS_NAMESPACE = (
    "refusing to run in the host's network namespace: the integration tests flush "
    "the IPVS table and add links and addresses, which would break this host's "
    "Services; run them with `python -m integration`, which gives them a network "
    "namespace of their own"
)
KERNEL_WIDE = "kernel_wide"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "agent_flags(*flags): more `ipvsctl run` flags")
    config.addinivalue_line(
        "markers",
        f"{KERNEL_WIDE}: changes the whole kernel (module unload, /proc/sys/kernel); "
        "runs in the UML lab, on a host only when asked for",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if in_initial_network_namespace():
        pytest.exit(HOSTS_NAMESPACE, returncode=WRONG_PLACE)
    if not IPVS_PROC.exists():
        pytest.exit(f"no IPVS in this kernel ({IPVS_PROC} missing): {WHY}", returncode=WRONG_PLACE)
    if not has_cap_net_admin(Path("/proc/self/status").read_text()):
        pytest.exit(f"no CAP_NET_ADMIN: {WHY}", returncode=WRONG_PLACE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = kernel_wide_skip_reason()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker(KERNEL_WIDE):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def kernel() -> Iterator[IpvsKernel]:
    """The kernel's IPVS table, empty before the test and emptied after it."""
    with IpvsKernel() as k:
        k.flush()
        yield k
        k.flush()
