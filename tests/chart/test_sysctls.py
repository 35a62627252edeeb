"""The privileged init container sets the IPVS sysctls, and is the only privileged thing.

The rendered script is also run with /bin/sh against a directory standing in for
/proc/sys, with stub ipvsadm and modprobe on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.chart.manifests import Manifest, Render, agent, init_containers, pod_spec, sysctl_script

# What kube-proxy's IPVS mode writes (conn_reuse_mode only on kernels < 5.9).
KUBE_PROXY_IPVS_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/ipv4/vs/conntrack": "1",
    "net/ipv4/vs/expire_nodest_conn": "1",
    "net/ipv4/vs/expire_quiescent_template": "1",
}
STRICT_ARP_SYSCTLS = {
    "net/ipv4/conf/all/arp_ignore": "1",
    "net/ipv4/conf/all/arp_announce": "2",
}

_WRITE = re.compile(r"^printf '%s\\n' '(?P<value>[^']*)' > '/proc/sys/(?P<path>[^']+)'$")


def written_sysctls(script: str) -> dict[str, str]:
    """path under /proc/sys -> value, as the script's write lines say."""
    writes: dict[str, str] = {}
    for line in script.splitlines():
        match = _WRITE.match(line.strip())
        if match:
            writes[match["path"]] = match["value"]
    return writes


def run_script(
    script: str, proc_sys: Path, stubs: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the init script with /proc/sys moved to `proc_sys` and `stubs` as commands."""
    bin_dir = proc_sys.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in stubs.items():
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {proc_sys.parent}/calls\n{body}\n')
        stub.chmod(0o755)
    sh = shutil.which("sh")
    assert sh is not None
    return subprocess.run(
        [sh, "-c", script.replace("/proc/sys", str(proc_sys))],
        env={"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


@pytest.fixture
def proc_sys(tmp_path: Path) -> Path:
    """A stand-in /proc/sys with the directories a node without ip_vs has."""
    root = tmp_path / "proc-sys"
    (root / "net/ipv4/conf/all").mkdir(parents=True)
    (root / "net/core").mkdir(parents=True)
    return root


def read_tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text().strip()
        for path in root.rglob("*")
        if path.is_file()
    }


# -- the rendered pod ------------------------------------------------------------


def test_sysctls_init_container_runs_by_default(defaults: list[Manifest]) -> None:
    assert [c["name"] for c in init_containers(defaults)] == ["sysctls"]


def test_init_container_is_the_only_privileged_container(defaults: list[Manifest]) -> None:
    (init,) = init_containers(defaults)
    assert init["securityContext"]["privileged"] is True
    assert init["securityContext"]["runAsUser"] == 0
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert agent(defaults)["securityContext"]["privileged"] is False
    assert init["image"] == agent(defaults)["image"]


def test_init_container_writes_what_kube_proxy_ipvs_mode_writes(defaults: list[Manifest]) -> None:
    assert written_sysctls(sysctl_script(defaults)) == KUBE_PROXY_IPVS_SYSCTLS


def test_strict_arp_also_writes_arp_ignore_and_arp_announce(render_chart: Render) -> None:
    script = sysctl_script(render_chart({"strictArp": True}))
    assert written_sysctls(script) == {**KUBE_PROXY_IPVS_SYSCTLS, **STRICT_ARP_SYSCTLS}


def test_extra_sysctls_are_written_with_numbers_intact(render_chart: Render) -> None:
    extra = {
        "net.core.rmem_max": 16777216,
        "net.ipv4.vs.conn_reuse_mode": 0,
        "net/ipv4/conf/eth0.100/arp_ignore": "1",
        "net.ipv4.tcp_rmem": "4096 131072 6291456",
    }
    writes = written_sysctls(sysctl_script(render_chart({"sysctls": {"extra": extra}})))
    assert writes["net/core/rmem_max"] == "16777216"
    assert writes["net/ipv4/vs/conn_reuse_mode"] == "0"
    assert writes["net/ipv4/conf/eth0.100/arp_ignore"] == "1"
    assert writes["net/ipv4/tcp_rmem"] == "4096 131072 6291456"


def test_extra_sysctls_override_the_defaults(render_chart: Render) -> None:
    script = sysctl_script(render_chart({"sysctls": {"extra": {"net.ipv4.vs.conntrack": 0}}}))
    assert written_sysctls(script)["net/ipv4/vs/conntrack"] == "0"


def test_without_managed_sysctls_nothing_is_privileged(render_chart: Render) -> None:
    objects = render_chart({"sysctls": {"manage": False}})
    assert init_containers(objects) == []
    for container in pod_spec(objects)["containers"]:
        assert container["securityContext"]["privileged"] is False


def test_init_container_mounts_lib_modules_only_when_it_loads_modules(
    defaults: list[Manifest], render_chart: Render
) -> None:
    (plain,) = init_containers(defaults)
    assert "volumeMounts" not in plain
    (loading,) = init_containers(render_chart({"loadKernelModules": True}))
    assert loading["volumeMounts"] == [
        {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": True}
    ]


def test_init_container_resources_come_from_values(render_chart: Render) -> None:
    resources = {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}}
    objects = render_chart({"sysctls": {"resources": resources}})
    assert init_containers(objects)[0]["resources"] == resources


# -- running the script ------------------------------------------------------------


def test_script_writes_every_sysctl_once_ip_vs_is_loaded(
    defaults: list[Manifest], proc_sys: Path
) -> None:
    (proc_sys / "net/ipv4/vs").mkdir()
    result = run_script(sysctl_script(defaults), proc_sys, {"ipvsadm": "exit 0"})
    assert result.returncode == 0, result.stderr
    assert read_tree(proc_sys) == KUBE_PROXY_IPVS_SYSCTLS
    assert result.stdout.count('msg="sysctl set"') == len(KUBE_PROXY_IPVS_SYSCTLS)


def test_script_asks_ipvsadm_so_the_kernel_autoloads_ip_vs(
    defaults: list[Manifest], proc_sys: Path
) -> None:
    # Linux 5.16+ loads ip_vs on the first IPVS netlink request.
    autoload = f"mkdir -p {proc_sys}/net/ipv4/vs"
    result = run_script(sysctl_script(defaults), proc_sys, {"ipvsadm": autoload})
    assert result.returncode == 0, result.stderr
    assert (proc_sys.parent / "calls").read_text() == "ipvsadm -Ln\n"
    assert read_tree(proc_sys)["net/ipv4/vs/conntrack"] == "1"


def test_script_fails_with_a_hint_when_ip_vs_is_missing(
    defaults: list[Manifest], proc_sys: Path
) -> None:
    result = run_script(sysctl_script(defaults), proc_sys, {"ipvsadm": "exit 1"})
    assert result.returncode == 1
    assert "ip_vs kernel module is not loaded" in result.stderr
    assert "loadKernelModules=true" in result.stderr
    assert read_tree(proc_sys) == {}


def test_script_loads_ip_vs_and_the_scheduler_module_when_asked(
    render_chart: Render, proc_sys: Path
) -> None:
    objects = render_chart({"loadKernelModules": True, "scheduler": "wlc", "strictArp": True})
    loads = f"mkdir -p {proc_sys}/net/ipv4/vs"
    result = run_script(sysctl_script(objects), proc_sys, {"modprobe": loads})
    assert result.returncode == 0, result.stderr
    assert (proc_sys.parent / "calls").read_text() == "modprobe -a ip_vs ip_vs_wlc nf_conntrack\n"
    assert read_tree(proc_sys) == {**KUBE_PROXY_IPVS_SYSCTLS, **STRICT_ARP_SYSCTLS}


def test_script_stops_at_the_first_sysctl_it_cannot_write(
    render_chart: Render, proc_sys: Path
) -> None:
    (proc_sys / "net/ipv4/vs").mkdir()
    objects = render_chart({"sysctls": {"extra": {"net.no_such.key": 1}}})
    result = run_script(sysctl_script(objects), proc_sys, {"ipvsadm": "exit 0"})
    assert result.returncode != 0
