"""Without IPVS or without CAP_NET_ADMIN, ipvsctl says so in one line and exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.kernel_lab.modules import IPVS_CORE, KNOWN_PERSISTENCE_ENGINES, SCHEDULERS

SHOW = [sys.executable, "-m", "ipvsctl", "show"]
MODPROBE_PATH = Path("/proc/sys/kernel/modprobe")


def loaded_modules() -> set[str]:
    return {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}


@pytest.fixture
def ipvs_unloaded() -> Iterator[None]:
    """ip_vs and its schedulers unloaded, and the kernel unable to load them back."""
    if IPVS_CORE not in loaded_modules():
        if os.environ.get("CI"):
            pytest.fail("ip_vs is not a loaded module here, so it cannot be unloaded for this test")
        pytest.skip("ip_vs is built into this kernel; only a modular one can test its absence")
    subprocess.run(["ipvsadm", "-C"], check=True)
    was = loaded_modules() & {IPVS_CORE, *SCHEDULERS, *KNOWN_PERSISTENCE_ENGINES}
    helper = MODPROBE_PATH.read_text()
    # Since 5.16 a generic netlink lookup of "IPVS" loads ip_vs on demand;
    # pointing the kernel's module loader at /bin/false stops that.
    MODPROBE_PATH.write_text("/bin/false\n")
    try:
        subprocess.run(["modprobe", "-r", *sorted(was - {IPVS_CORE}), IPVS_CORE], check=True)
        assert IPVS_CORE not in loaded_modules()
        yield
    finally:
        MODPROBE_PATH.write_text(helper)
        subprocess.run(["modprobe", "-a", *sorted(was)], check=True)


# Unloading ip_vs reaches every network namespace: the host's Services too.
@pytest.mark.kernel_wide
def test_show_without_ipvs_says_to_load_it(ipvs_unloaded: None) -> None:
    result = subprocess.run(SHOW, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "ipvsctl: IPVS is not available in this kernel (modprobe ip_vs)\n"


def test_show_without_cap_net_admin_says_what_is_missing() -> None:
    # Still uid 0, but with CAP_NET_ADMIN gone from every capability set.
    drop = ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--"]
    result = subprocess.run(drop + SHOW, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "ipvsctl: IPVS needs CAP_NET_ADMIN (run as root)\n"


def test_ipvsadm_agrees_that_the_capability_is_required() -> None:
    # The witness: the kernel, not ipvsctl, refuses an unprivileged reader.
    drop = ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--"]
    result = subprocess.run([*drop, "ipvsadm", "-Ln"], capture_output=True, text=True)
    assert result.returncode != 0
