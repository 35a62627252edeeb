"""Inputs `apply` must refuse with nothing changed, on a real kernel: no Service at all,
an --interface the kernel would refuse, a scheduler whose module cannot load. The
witnesses are ipvsadm, ip and /proc/sys, read before and after."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.tests.apply_fixtures import (
    apply_ok,
    endpoint_slice,
    fresh_node,
    ipvsctl,
    node_state,
    run,
    service,
    sysctl,
    write_manifest,
)

VIP = "10.96.3.10"
POD_LINK, POD_CIDR = "rf-pods0", "10.247.0.1/24"
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv4/vs/conntrack")


@pytest.fixture(autouse=True)
def node() -> Iterator[None]:
    with fresh_node():
        run("ip", "link", "add", POD_LINK, "type", "dummy")
        try:
            run("ip", "addr", "add", POD_CIDR, "dev", POD_LINK)
            run("ip", "link", "set", POD_LINK, "up")
            yield
        finally:
            run("ip", "link", "del", POD_LINK)


def web(tmp_path: Path, annotations: dict[str, str] | None = None) -> str:
    return write_manifest(
        tmp_path / "web.yaml",
        service("web", VIP, annotations=annotations or {}),
        endpoint_slice("web", ["10.247.0.2", "10.247.0.3"]),
    )


def everything() -> dict[str, str]:
    """node_state and the sysctls apply sets."""
    state = node_state()
    for name in SYSCTLS:
        path = Path("/proc/sys", name)
        state[name] = path.read_text() if path.exists() else "(absent)"
    return state


@pytest.mark.parametrize("empty", ["", "---\n", "# all Services deleted\n"])
def test_an_input_without_a_service_changes_nothing_unless_allowed(
    tmp_path: Path, empty: str
) -> None:
    apply_ok("-f", web(tmp_path))
    before = everything()
    path = tmp_path / "empty.yaml"
    path.write_text(empty)
    for command in ("apply", "diff"):
        result = ipvsctl(command, "-f", str(path))
        assert result.returncode == 2, result.stderr
        assert "no Service in the input" in result.stderr and "--allow-empty" in result.stderr
        assert everything() == before
    lines = apply_ok("--allow-empty", "-f", str(path))
    assert f"-D -t {VIP}:80" in lines
    assert VIP not in run("ipvsadm", "-Ln")


@pytest.mark.parametrize(
    "interface", ["", "kube ipvs0", "kube/ipvs0", "kube:ipvs0", "..", "a-very-long-name"]
)
def test_an_interface_the_kernel_would_refuse_changes_nothing(
    tmp_path: Path, interface: str
) -> None:
    manifest = web(tmp_path)
    with sysctl("net/ipv4/ip_forward", "0"):
        before = everything()
        for command in ("apply", "diff", "cleanup"):
            args = ["--interface", interface] + (["-f", manifest] if command != "cleanup" else [])
            result = ipvsctl(command, *args)
            assert result.returncode == 2, f"{command}: {result.stdout}{result.stderr}"
            assert result.stderr.startswith("ipvsctl: --interface: "), result.stderr
            assert everything() == before


SCHEDULER = "fo"  # one no other test's Service uses, so its module can be unloaded


@pytest.fixture
def broken_scheduler_module(tmp_path: Path) -> Iterator[list[str]]:
    """A command prefix running its command in a mount namespace where the module file
    of ip_vs_fo exists but is not a module; ip_vs_fo unloaded for the test."""
    module = f"ip_vs_{SCHEDULER}"
    path = run("modinfo", "-n", module).strip()
    subprocess.run(["modprobe", "-r", module], check=True)
    garbage = tmp_path / "not-a-module.ko"
    garbage.write_bytes(b"\x7fELF but not a kernel module\n" * 64)
    mount = f"mount --bind {shlex.quote(str(garbage))} {shlex.quote(path)}"
    try:
        yield [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'{mount} && exec "$@"',
            "sh",
        ]
    finally:
        subprocess.run(["modprobe", module], check=True)


# Unloading a scheduler module reaches every network namespace.
@pytest.mark.kernel_wide
def test_a_scheduler_whose_module_cannot_load_changes_nothing(
    tmp_path: Path, broken_scheduler_module: list[str]
) -> None:
    manifest = web(tmp_path, {"ipvsctl.io/scheduler": SCHEDULER})
    with sysctl("net/ipv4/ip_forward", "0"):
        before = everything()
        argv = [sys.executable, "-m", "ipvsctl", "apply", "--no-netfilter", "-f", manifest]
        result = subprocess.run(
            [*broken_scheduler_module, *argv], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, result.stdout + result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith(
            'ipvsctl: Service ap/web: metadata.annotations["ipvsctl.io/scheduler"]: '
            f'scheduler "{SCHEDULER}" cannot be loaded (modprobe ip_vs_{SCHEDULER}: '
        ), result.stderr
        assert result.stdout == ""
        assert everything() == before
