"""What the `ipvsctl apply` tests share: manifests, the command, and ipvsadm as witness.

The tests write Services and EndpointSlices as YAML, run `ipvsctl apply`,
`diff` and `cleanup` as a user would (a subprocess), and read the result with
`ipvsadm` and `ip`, never with ipvsctl's own code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ipvsctl.state.nodeport_record import record_path

NAMESPACE = "ap"
INTERFACE = "kube-ipvs0"
Manifest = dict[str, Any]


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


# The User-Mode Linux lab's kernel has no nftables for IP traffic, so `apply` and
# `diff` there take --no-netfilter; the table is tested in QEMU (integration/tests/netfilter).
NETFILTER_COMMANDS = frozenset({"apply", "diff", "run"})


def ipvsctl(
    *args: str, stdin: str | None = None, netfilter: bool = False
) -> subprocess.CompletedProcess[str]:
    """`ipvsctl ARGS` as a user runs it; `apply`, `diff` and `run` get --no-netfilter
    unless `netfilter`."""
    if args and args[0] in NETFILTER_COMMANDS and not netfilter:
        args = (args[0], "--no-netfilter", *args[1:])
    return subprocess.run(
        [sys.executable, "-m", "ipvsctl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def plan_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.strip()]


def apply_ok(*args: str) -> list[str]:
    """`ipvsctl apply ARGS`, which must succeed; the plan lines it printed."""
    result = ipvsctl("apply", *args)
    assert result.returncode == 0, f"apply {args}: {result.returncode}\n{result.stderr}"
    return plan_lines(result)


def ipvs_changes(lines: Sequence[str]) -> list[str]:
    """The IPVS lines of a plan (no link, addr or sysctl lines)."""
    return [line for line in lines if line.startswith("-")]


# --- manifests -------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    target: int
    protocol: str = "TCP"
    node_port: int | None = None


HTTP = Port("http", 80, 8080)


def service(
    name: str,
    cluster_ip: str,
    ports: Sequence[Port] = (HTTP,),
    *,
    annotations: Mapping[str, str] | None = None,
    affinity_timeout: int | None = None,
    service_type: str = "ClusterIP",
) -> Manifest:
    family = "IPv6" if ":" in cluster_ip else "IPv4"
    spec: dict[str, Any] = {
        "type": service_type,
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "ipFamilies": [family],
        "ports": [
            {
                "name": p.name,
                "port": p.port,
                "targetPort": p.target,
                "protocol": p.protocol,
                **({"nodePort": p.node_port} if p.node_port is not None else {}),
            }
            for p in ports
        ],
    }
    if affinity_timeout is not None:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity_timeout}}
    metadata: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def endpoint_slice(
    service_name: str, addresses: Sequence[str], ports: Sequence[Port] = (HTTP,)
) -> Manifest:
    family = "IPv6" if any(":" in a for a in addresses) else "IPv4"
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{family.lower()}",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": family,
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses],
        "ports": [{"name": p.name, "port": p.target, "protocol": p.protocol} for p in ports],
    }


def write_manifest(path: Path, *documents: Manifest) -> str:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return str(path)


# --- witnesses -------------------------------------------------------------


@dataclass(frozen=True)
class RealServerRow:
    """One `  -> ADDR:PORT Forward Weight ActiveConn InActConn` line of ipvsadm -Ln."""

    forward: str
    weight: int
    active: int
    inactive: int


def real_servers(protocol_flag: str, service_address: str) -> dict[str, RealServerRow]:
    """The real servers of one virtual server, by `address:port` as ipvsadm prints it."""
    rows: dict[str, RealServerRow] = {}
    for line in run("ipvsadm", "-Ln", protocol_flag, service_address).splitlines():
        match = re.match(r"\s+->\s+(\S+)\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", line)
        if match and match.group(1) != "RemoteAddress:Port":
            address, forward, weight, active, inactive = match.groups()
            rows[address] = RealServerRow(forward, int(weight), int(active), int(inactive))
    return rows


def service_line(protocol_flag: str, service_address: str) -> str:
    """The virtual server's own line of `ipvsadm -Ln -t|-u ADDR`, e.g. `TCP  1.2.3.4:80 rr`."""
    listing = run("ipvsadm", "-Ln", protocol_flag, service_address).splitlines()
    return next(line for line in listing if line.startswith(("TCP", "UDP", "SCTP")))


def connections_counted(service_address: str) -> int:
    """The Conns column of `ipvsadm -Ln --stats --exact` for a TCP virtual server."""
    listing = run("ipvsadm", "-Ln", "--stats", "--exact", "-t", service_address)
    line = next(line for line in listing.splitlines() if line.startswith("TCP"))
    return int(line.split()[2])


def interface_exists(name: str) -> bool:
    return (
        subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode
        == 0
    )


def node_state() -> dict[str, str]:
    """What `apply` may change, as the tools print it: table, addresses, links."""
    return {
        "ipvsadm -Ln": run("ipvsadm", "-Ln"),
        "ip -o addr": run("ip", "-o", "addr", "show"),
        "ip -o link": re.sub(r"\s+link/.*", "", run("ip", "-o", "link", "show")),
    }


def forget_everything() -> None:
    """No virtual servers, no kube-ipvs0, no NodePort record: a node ipvsctl never ran on."""
    run("ipvsadm", "-C")
    if interface_exists(INTERFACE):
        run("ip", "link", "del", INTERFACE)
    record_path().unlink(missing_ok=True)


@contextmanager
def fresh_node() -> Iterator[None]:
    """A node ipvsctl never ran on, for the test, and again after it."""
    forget_everything()
    try:
        yield
    finally:
        forget_everything()


@contextmanager
def sysctl(path: str, value: str) -> Iterator[None]:
    """`/proc/sys/PATH` set to VALUE for the block, then put back."""
    file = Path("/proc/sys", path)
    before = file.read_text().strip()
    file.write_text(value)
    try:
        yield
    finally:
        file.write_text(before)
