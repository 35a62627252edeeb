"""Fixtures of the agent's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_host_sysctls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine plans the IPVS sysctls; here it wants none, so no test ever writes one
    on the machine running it (sysctl planning has its own tests)."""
    import ipvsctl.agent.engine as engine

    monkeypatch.setattr(engine, "wanted_sysctls", lambda strict_arp, kernel: {})
    monkeypatch.setattr(engine, "read_sysctls", lambda names: {})
