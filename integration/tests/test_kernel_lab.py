"""The lab's kernel is fit for the suite: IPVS present, lo up, schedulers loaded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from integration.kernel_lab.modules import SCHEDULERS, scheduler_name

# TEST-NET-2: never a real service on anyone's host.
PROBE_VIP = "198.51.100.77"


def ipvsadm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ipvsadm", *args], capture_output=True, text=True, check=False)


def test_proc_net_ip_vs_exists() -> None:
    assert Path("/proc/net/ip_vs").exists()


def test_ipvsadm_lists_the_table_with_its_version_header() -> None:
    listing = ipvsadm("-Ln")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("IP Virtual Server version ")


def test_loopback_is_up() -> None:
    # IFF_UP: without lo up every real server add fails with EINVAL.
    flags = int(Path("/sys/class/net/lo/flags").read_text(), 16)
    assert flags & 0x1


@pytest.mark.parametrize("module", SCHEDULERS)
def test_scheduler_module_is_loaded(module: str) -> None:
    loaded = {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}
    builtin = Path("/sys/module", module).exists()
    assert module in loaded or builtin


@pytest.mark.parametrize("module", SCHEDULERS)
def test_kernel_shows_a_service_on_each_scheduler(module: str) -> None:
    scheduler = scheduler_name(module)
    service = f"{PROBE_VIP}:{8000 + SCHEDULERS.index(module)}"
    added = ipvsadm("-A", "-t", service, "-s", scheduler)
    try:
        assert added.returncode == 0, added.stderr
        listing = ipvsadm("-Ln", "-t", service)
        assert f"TCP  {service} {scheduler}" in listing.stdout
    finally:
        ipvsadm("-D", "-t", service)


def test_dummy_links_can_be_created() -> None:
    name = "kl-probe0"
    added = subprocess.run(
        ["ip", "link", "add", name, "type", "dummy"], capture_output=True, text=True, check=False
    )
    try:
        assert added.returncode == 0, added.stderr
        assert Path("/sys/class/net", name).exists()
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
