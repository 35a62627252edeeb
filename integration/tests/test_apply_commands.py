"""`ipvsctl apply`, `diff` and `cleanup` as a user runs them, with ipvsadm and ip as witnesses.

No traffic here: each test applies manifests, tampers with the table the way
an operator with ipvsadm would, and reads what the kernel holds. A dummy
link (ap-node0, 10.246.0.1/24) stands for the node's own network: it holds
the node address for NodePorts and routes the real servers' addresses.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from integration.kernel_lab.netns import GUEST_ENV
from integration.tests.apply_fixtures import (
    INTERFACE,
    Manifest,
    Port,
    apply_ok,
    connections_counted,
    endpoint_slice,
    fresh_node,
    interface_exists,
    ipvs_changes,
    ipvsctl,
    node_state,
    plan_lines,
    real_servers,
    run,
    service,
    service_line,
    sysctl,
    write_manifest,
)
from ipvsctl.state.nodeport_record import record_path

pytestmark = pytest.mark.usefixtures("node")

NODE_LINK, NODE_ADDR, NODE_CIDR = "ap-node0", "10.246.0.1", "10.246.0.0/24"
VIP, EXTRA_VIP, BAD_VIP = "10.96.1.10", "10.96.1.11", "10.96.1.12"
# TEST-NET-1: an address no Service here uses, for an operator's own virtual server.
FOREIGN = "192.0.2.50"


def pod(host: int) -> str:
    return f"10.246.0.{host}"


def real(host: int) -> str:
    return f"{pod(host)}:8080"


@pytest.fixture
def node() -> Iterator[None]:
    with fresh_node():
        run("ip", "link", "add", NODE_LINK, "type", "dummy")
        try:
            run("ip", "addr", "add", f"{NODE_ADDR}/24", "dev", NODE_LINK)
            run("ip", "link", "set", NODE_LINK, "up")
            yield
        finally:
            run("ip", "link", "del", NODE_LINK)


def web(
    tmp_path: Path,
    hosts: Sequence[int] = (2, 3),
    *,
    scheduler: str | None = None,
    node_port: int | None = None,
) -> str:
    """Service ap/web on VIP:80 over pods 10.246.0.HOSTS:8080; the manifest's path."""
    annotations = {"ipvsctl.io/scheduler": scheduler} if scheduler else None
    port = Port("http", 80, 8080, node_port=node_port)
    return write_manifest(
        tmp_path / "web.yaml",
        service(
            "web",
            VIP,
            (port,),
            annotations=annotations,
            service_type="NodePort" if node_port else "ClusterIP",
        ),
        endpoint_slice("web", [pod(h) for h in hosts], (port,)),
    )


def add_foreign(protocol_flag: str, address: str, scheduler: str, real_server: str, w: str) -> None:
    run("ipvsadm", "-A", protocol_flag, address, "-s", scheduler)
    run("ipvsadm", "-a", protocol_flag, address, "-r", real_server, "-m", "-w", w)


FOREIGNS = (
    ("-t", f"{FOREIGN}:80", "wlc", "10.246.0.9:80", "3"),
    ("-u", f"{FOREIGN}:53", "rr", "10.246.0.9:53", "1"),
    # On the node address, next to the NodePort ipvsctl makes on 30081.
    ("-t", f"{NODE_ADDR}:30080", "sh", "10.246.0.8:8080", "2"),
)


def foreign_listings() -> dict[str, str]:
    return {addr: run("ipvsadm", "-Ln", flag, addr) for flag, addr, *_ in FOREIGNS}


def open_connections(address: str, port: int, count: int) -> None:
    """COUNT connections from this namespace: each SYN is scheduled (and counted) by IPVS.

    The real servers are on ap-node0, a dummy that drops everything, so the
    connections never complete; closing them sends nothing.
    """
    for _ in range(count):
        with socket.socket() as sock:
            sock.setblocking(False)
            assert sock.connect_ex((address, port)) == errno.EINPROGRESS


def wait_until_counted(service_address: str, conns: int) -> None:
    """Until ipvsadm's Conns reaches CONNS: the kernel sums its per-CPU counters every 2 s."""
    for _ in range(100):
        if connections_counted(service_address) >= conns:
            break
        time.sleep(0.1)
    assert connections_counted(service_address) == conns


def assert_creates_web(changes: list[str]) -> None:
    """CHANGES make ap/web from nothing: the virtual server first, then its two real servers."""
    assert changes[0] == f"-A -t {VIP}:80 -s rr"
    assert sorted(changes[1:]) == [f"-a -t {VIP}:80 -r {real(h)} -m -w 1" for h in (2, 3)]


# --- idempotence -------------------------------------------------------------


def test_apply_then_diff_reports_nothing_and_a_second_apply_changes_nothing(
    tmp_path: Path,
) -> None:
    manifest = web(tmp_path)
    plan = apply_ok("-f", manifest)
    assert f"addr add {VIP}/32 dev {INTERFACE}" in plan
    assert_creates_web(ipvs_changes(plan))
    state = node_state()

    diff = ipvsctl("diff", "-f", manifest)
    assert (diff.returncode, diff.stdout, diff.stderr) == (0, "", "")
    again = ipvsctl("apply", "-f", manifest)
    assert (again.returncode, again.stdout) == (0, "")
    assert node_state() == state


def test_apply_reads_the_manifest_from_stdin(tmp_path: Path) -> None:
    text = Path(web(tmp_path)).read_text()
    result = ipvsctl("apply", "-f", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2), real(3)]


# --- repairs -----------------------------------------------------------------


def test_apply_recreates_an_owned_virtual_server_deleted_with_ipvsadm(tmp_path: Path) -> None:
    manifest = web(tmp_path)
    apply_ok("-f", manifest)
    table = run("ipvsadm", "-Ln")
    run("ipvsadm", "-D", "-t", f"{VIP}:80")
    assert_creates_web(ipvs_changes(apply_ok("-f", manifest)))
    assert run("ipvsadm", "-Ln") == table


def test_apply_re_adds_a_real_server_deleted_with_ipvsadm(tmp_path: Path) -> None:
    manifest = web(tmp_path)
    apply_ok("-f", manifest)
    table = run("ipvsadm", "-Ln")
    run("ipvsadm", "-d", "-t", f"{VIP}:80", "-r", real(3))
    assert apply_ok("-f", manifest) == [f"-a -t {VIP}:80 -r {real(3)} -m -w 1"]
    assert run("ipvsadm", "-Ln") == table


def test_apply_restores_a_weight_changed_with_ipvsadm_in_place(tmp_path: Path) -> None:
    manifest = web(tmp_path)
    apply_ok("-f", manifest)
    table = run("ipvsadm", "-Ln")
    run("ipvsadm", "-e", "-t", f"{VIP}:80", "-r", real(2), "-m", "-w", "5")
    assert apply_ok("-f", manifest) == [f"-e -t {VIP}:80 -r {real(2)} -m -w 1"]
    assert run("ipvsadm", "-Ln") == table


def test_apply_edits_a_scheduler_changed_with_ipvsadm_back_in_place_keeping_counters(
    tmp_path: Path,
) -> None:
    manifest = web(tmp_path)
    apply_ok("-f", manifest)
    open_connections(VIP, 80, 3)
    wait_until_counted(f"{VIP}:80", 3)
    run("ipvsadm", "-E", "-t", f"{VIP}:80", "-s", "wlc")
    assert service_line("-t", f"{VIP}:80").split()[2:] == ["wlc"]

    assert apply_ok("-f", manifest) == [f"-E -t {VIP}:80 -s rr"]
    assert service_line("-t", f"{VIP}:80").split()[2:] == ["rr"]
    # A delete and re-add would have zeroed them.
    assert connections_counted(f"{VIP}:80") == 3


def test_scaling_endpoints_plans_exactly_the_real_servers_added_and_removed(
    tmp_path: Path,
) -> None:
    apply_ok("-f", web(tmp_path, (2, 3)))
    up = apply_ok("-f", web(tmp_path, (2, 3, 4, 5)))
    assert sorted(up) == [f"-a -t {VIP}:80 -r {real(h)} -m -w 1" for h in (4, 5)]
    down = apply_ok("-f", web(tmp_path, (3,)))
    # No connections: removed at once, not drained.
    assert sorted(line.split()[:5] for line in down) == [
        ["-d", "-t", f"{VIP}:80", "-r", real(h)] for h in (2, 4, 5)
    ]
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(3)]


# --- ownership ---------------------------------------------------------------


def test_foreign_virtual_servers_survive_apply_and_cleanup_byte_for_byte(tmp_path: Path) -> None:
    for foreign in FOREIGNS:
        add_foreign(*foreign)
    listings = foreign_listings()
    nodeports = ("--nodeport-addresses", NODE_CIDR)

    plan = apply_ok("-f", web(tmp_path, node_port=30081), *nodeports)
    assert f"-A -t {NODE_ADDR}:30081 -s rr" in plan
    assert sorted(real_servers("-t", f"{NODE_ADDR}:30081")) == [real(2), real(3)]
    assert foreign_listings() == listings

    changed = apply_ok("-f", web(tmp_path, (4,), scheduler="lc", node_port=30081), *nodeports)
    assert f"-E -t {NODE_ADDR}:30081 -s lc" in changed
    assert foreign_listings() == listings

    cleanup = ipvsctl("cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert foreign_listings() == listings
    table = run("ipvsadm", "-Ln")
    assert f"{NODE_ADDR}:30081" not in table and VIP not in table
    assert not interface_exists(INTERFACE)


def test_cleanup_removes_exactly_what_ipvsctl_owns(tmp_path: Path) -> None:
    for foreign in FOREIGNS:
        add_foreign(*foreign)
    before = node_state()
    dns = Port("dns", 53, 5353, "UDP")
    manifest = write_manifest(
        tmp_path / "two.yaml",
        service("web", VIP, (Port("http", 80, 8080, node_port=30081),), service_type="NodePort"),
        endpoint_slice("web", [pod(2), pod(3)], (Port("http", 80, 8080),)),
        service("dns", EXTRA_VIP, (dns,)),
        endpoint_slice("dns", [pod(4)], (dns,)),
    )
    apply_ok("-f", manifest, "--nodeport-addresses", NODE_CIDR)
    table = run("ipvsadm", "-Ln")
    assert all(key in table for key in (f"{VIP}:80", f"{EXTRA_VIP}:53", f"{NODE_ADDR}:30081")), (
        table
    )

    cleanup = ipvsctl("cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert not interface_exists(INTERFACE)
    assert node_state() == before


# --- bad input ---------------------------------------------------------------


def bad_service(flaw: str) -> Manifest:
    if flaw == "scheduler":
        return service("bad", BAD_VIP, annotations={"ipvsctl.io/scheduler": "fastest"})
    if flaw == "port":
        return service("bad", BAD_VIP, (Port("http", 70000, 8080),))
    if flaw == "missing port":
        missing = service("bad", BAD_VIP)
        del missing["spec"]["ports"][0]["port"]
        return missing
    if flaw == "forwarding method":
        return service("bad", BAD_VIP, annotations={"ipvsctl.io/forwarding-method": "carrier"})
    if flaw == "scheduler flag":
        return service(
            "bad",
            BAD_VIP,
            annotations={"ipvsctl.io/scheduler": "sh", "ipvsctl.io/scheduler-flags": "sh-nope"},
        )
    assert flaw == "address"
    return service("bad", "not-an-ip")


BAD = {
    "scheduler": ("ap/bad", "ipvsctl.io/scheduler"),
    "port": ("ap/bad", "port", "70000"),
    "address": ("ap/bad", "clusterIP", "not-an-ip"),
    "missing port": ("ap/bad", "port"),
    "forwarding method": ("ap/bad", "ipvsctl.io/forwarding-method", "carrier"),
    "scheduler flag": ("ap/bad", "ipvsctl.io/scheduler-flags", "sh-nope"),
    "yaml": ("broken.yaml",),
}


def write_bad_manifest(tmp_path: Path, flaw: str) -> str:
    """Good objects, one more good Service a partial apply would add, and one flaw."""
    good = [
        service("web", VIP),
        endpoint_slice("web", [pod(2), pod(3)]),
        service("extra", EXTRA_VIP),
        endpoint_slice("extra", [pod(4)]),
    ]
    path = tmp_path / "broken.yaml"
    text = yaml.safe_dump_all(good, sort_keys=False)
    if flaw == "yaml":
        path.write_text(text + "---\nkind: Service\nmetadata: {name: [unclosed\n")
    else:
        path.write_text(yaml.safe_dump_all([*good, bad_service(flaw)], sort_keys=False))
    return str(path)


@pytest.mark.parametrize("flaw", sorted(BAD))
def test_bad_manifest_exits_2_names_object_and_field_and_changes_nothing(
    tmp_path: Path, flaw: str
) -> None:
    apply_ok("-f", web(tmp_path))
    before = node_state()
    result = ipvsctl("apply", "-f", write_bad_manifest(tmp_path, flaw))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    wanted = BAD[flaw]
    assert any(all(w in line for w in wanted) for line in result.stderr.splitlines()), (
        f"no stderr line names {wanted}:\n{result.stderr}"
    )
    assert node_state() == before


@pytest.mark.parametrize("flaw", sorted(BAD))
def test_diff_of_a_bad_manifest_exits_2(tmp_path: Path, flaw: str) -> None:
    result = ipvsctl("diff", "-f", write_bad_manifest(tmp_path, flaw))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""


# --- dry run and diff ----------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    manifest = web(tmp_path)
    with sysctl("net/ipv4/vs/conntrack", "0"):
        before = node_state()
        dry = ipvsctl("apply", "--dry-run", "-f", manifest)
        assert dry.returncode == 0, dry.stderr
        planned = plan_lines(dry)
        for line in (
            f"link add {INTERFACE} type dummy",
            f"addr add {VIP}/32 dev {INTERFACE}",
            "sysctl net.ipv4.vs.conntrack=1",
            f"-A -t {VIP}:80 -s rr",
            f"-a -t {VIP}:80 -r {real(2)} -m -w 1",
        ):
            assert line in planned
        assert node_state() == before
        assert Path("/proc/sys/net/ipv4/vs/conntrack").read_text().strip() == "0"

        assert apply_ok("-f", manifest) == planned
        assert Path("/proc/sys/net/ipv4/vs/conntrack").read_text().strip() == "1"


def test_diff_exits_1_with_the_plan_before_apply_and_0_after(tmp_path: Path) -> None:
    manifest = web(tmp_path)
    before = node_state()
    diff = ipvsctl("diff", "-f", manifest)
    assert diff.returncode == 1, diff.stderr
    assert node_state() == before
    assert apply_ok("-f", manifest) == plan_lines(diff)
    after = ipvsctl("diff", "-f", manifest)
    assert (after.returncode, after.stdout) == (0, "")
    # Tampering shows up as a difference again.
    run("ipvsadm", "-d", "-t", f"{VIP}:80", "-r", real(2))
    tampered = ipvsctl("diff", "-f", manifest)
    assert tampered.returncode == 1
    assert plan_lines(tampered) == [f"-a -t {VIP}:80 -r {real(2)} -m -w 1"]


# --- what else apply owns ------------------------------------------------------

SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/vs/conntrack",
    "net/ipv4/vs/expire_nodest_conn",
    "net/ipv4/vs/expire_quiescent_template",
)
STRICT_ARP = ("net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/all/arp_announce")


def read_sysctl(path: str) -> str:
    return Path("/proc/sys", path).read_text().strip()


def test_apply_sets_the_sysctls_ipvs_mode_needs_and_strict_arp_when_asked(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        for path in (*SYSCTLS, *STRICT_ARP):
            stack.enter_context(sysctl(path, "0"))
        plan = apply_ok("-f", web(tmp_path))
        assert [read_sysctl(path) for path in SYSCTLS] == ["1"] * len(SYSCTLS)
        assert {f"sysctl {path.replace('/', '.')}=1" for path in SYSCTLS} <= set(plan)
        assert [read_sysctl(path) for path in STRICT_ARP] == ["0", "0"]

        strict = apply_ok("-f", web(tmp_path), "--strict-arp")
        assert [read_sysctl(path) for path in STRICT_ARP] == ["1", "2"]
        assert sorted(strict) == [
            "sysctl net.ipv4.conf.all.arp_announce=2",
            "sysctl net.ipv4.conf.all.arp_ignore=1",
        ]


def test_a_scheduler_this_kernel_cannot_load_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    loadable = subprocess.run(["modprobe", "-n", "-q", "ip_vs_twos"], check=False)
    if loadable.returncode == 0:
        pytest.skip("this kernel has ip_vs_twos")
    apply_ok("-f", web(tmp_path))
    before = node_state()
    manifest = write_manifest(
        tmp_path / "twos.yaml",
        service("web", VIP),
        endpoint_slice("web", [pod(2), pod(3)]),
        service("two", EXTRA_VIP, annotations={"ipvsctl.io/scheduler": "twos"}),
        endpoint_slice("two", [pod(4)]),
    )
    result = ipvsctl("apply", "-f", manifest)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ap/two" in result.stderr and "ipvsctl.io/scheduler" in result.stderr
    assert node_state() == before


def test_removing_a_service_deletes_its_virtual_server_and_unbinds_its_address(
    tmp_path: Path,
) -> None:
    both = write_manifest(
        tmp_path / "both.yaml",
        service("web", VIP),
        endpoint_slice("web", [pod(2)]),
        service("extra", EXTRA_VIP),
        endpoint_slice("extra", [pod(3)]),
    )
    apply_ok("-f", both)
    assert f"{EXTRA_VIP}/32" in run("ip", "-o", "addr", "show", "dev", INTERFACE)
    plan = apply_ok("-f", web(tmp_path, (2,)))
    assert plan == [f"-D -t {EXTRA_VIP}:80", f"addr del {EXTRA_VIP}/32 dev {INTERFACE}"]
    assert EXTRA_VIP not in run("ipvsadm", "-Ln")
    assert EXTRA_VIP not in run("ip", "-o", "addr", "show")
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2)]


def test_services_and_slices_from_several_files_make_one_state(tmp_path: Path) -> None:
    services = write_manifest(tmp_path / "services.yaml", service("web", VIP))
    slices = write_manifest(tmp_path / "slices.yaml", endpoint_slice("web", [pod(2), pod(3)]))
    apply_ok("-f", services, "-f", slices)
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2), real(3)]


def test_json_output_is_one_json_document(tmp_path: Path) -> None:
    result = ipvsctl("apply", "--dry-run", "-o", "json", "-f", web(tmp_path))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert f"{VIP}" in json.dumps(document)
    assert not interface_exists(INTERFACE)


def test_scheduler_flags_annotation_sets_the_kernel_flags(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "sh.yaml",
        service(
            "web",
            VIP,
            annotations={
                "ipvsctl.io/scheduler": "sh",
                "ipvsctl.io/scheduler-flags": "sh-fallback,sh-port",
            },
        ),
        endpoint_slice("web", [pod(2)]),
    )
    plan = apply_ok("-f", manifest)
    assert f"-A -t {VIP}:80 -s sh -b sh-fallback,sh-port" in plan
    line = service_line("-t", f"{VIP}:80")
    assert "sh-fallback" in line and "sh-port" in line, line


# --- ownership of NodePorts and adoption ----------------------------------------


def test_a_nodeport_no_longer_wanted_is_deleted_and_a_foreign_one_stays(tmp_path: Path) -> None:
    add_foreign(*FOREIGNS[2])
    listing = run("ipvsadm", "-Ln", "-t", f"{NODE_ADDR}:30080")
    apply_ok("-f", web(tmp_path, node_port=30081), "--nodeport-addresses", NODE_CIDR)
    plan = apply_ok("-f", web(tmp_path))
    assert plan == [f"-D -t {NODE_ADDR}:30081"]
    assert f"{NODE_ADDR}:30081" not in run("ipvsadm", "-Ln")
    assert run("ipvsadm", "-Ln", "-t", f"{NODE_ADDR}:30080") == listing


def test_a_damaged_nodeport_record_owns_nothing(tmp_path: Path) -> None:
    apply_ok("-f", web(tmp_path, node_port=30081), "--nodeport-addresses", NODE_CIDR)
    record_path().write_text("{not json")
    listing = run("ipvsadm", "-Ln", "-t", f"{NODE_ADDR}:30081")
    assert apply_ok("-f", web(tmp_path)) == []
    assert run("ipvsadm", "-Ln", "-t", f"{NODE_ADDR}:30081") == listing


def test_a_foreign_virtual_server_on_a_service_ip_is_adopted_and_edited(tmp_path: Path) -> None:
    add_foreign("-t", f"{VIP}:80", "wlc", "10.246.0.9:8080", "3")
    plan = apply_ok("-f", web(tmp_path))
    assert f"-E -t {VIP}:80 -s rr" in plan
    assert service_line("-t", f"{VIP}:80").split()[2:] == ["rr"]
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2), real(3)]


# --- from objects to the table ---------------------------------------------------


def test_only_ready_endpoints_are_real_servers_then_serving_terminating_ones(
    tmp_path: Path,
) -> None:
    slice_ = endpoint_slice("web", [pod(2), pod(3), pod(4)])
    slice_["endpoints"][1]["conditions"] = {"ready": False}
    slice_["endpoints"][2]["conditions"] = {}  # ready when absent
    apply_ok("-f", write_manifest(tmp_path / "ready.yaml", service("web", VIP), slice_))
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2), real(4)]

    rolling = endpoint_slice("web", [pod(5), pod(6)])
    rolling["endpoints"][0]["conditions"] = {"ready": False, "serving": True, "terminating": True}
    rolling["endpoints"][1]["conditions"] = {"ready": False, "serving": False, "terminating": True}
    apply_ok("-f", write_manifest(tmp_path / "rolling.yaml", service("web", VIP), rolling))
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(5)]


def test_real_server_port_is_the_slice_port_of_the_same_name(tmp_path: Path) -> None:
    ports = (Port("http", 80, 8080), Port("admin", 81, 9090))
    slice_ = endpoint_slice("web", [pod(2)], ports)
    slice_["ports"] = [
        {"name": "admin", "port": 7001, "protocol": "TCP"},
        {"name": "http", "port": 7000, "protocol": "TCP"},
    ]
    apply_ok("-f", write_manifest(tmp_path / "named.yaml", service("web", VIP, ports), slice_))
    assert sorted(real_servers("-t", f"{VIP}:80")) == [f"{pod(2)}:7000"]
    assert sorted(real_servers("-t", f"{VIP}:81")) == [f"{pod(2)}:7001"]


def test_an_address_in_two_slices_is_one_real_server(tmp_path: Path) -> None:
    first = endpoint_slice("web", [pod(2), pod(3)])
    second = endpoint_slice("web", [pod(3), pod(4)])
    second["metadata"]["name"] = "web-second"
    apply_ok("-f", write_manifest(tmp_path / "two.yaml", service("web", VIP), first, second))
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2), real(3), real(4)]


def test_external_and_load_balancer_ips_get_virtual_servers_and_bound_addresses(
    tmp_path: Path,
) -> None:
    web_service = service("web", VIP)
    web_service["spec"]["externalIPs"] = ["198.51.100.7"]
    web_service["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}
    manifest = write_manifest(
        tmp_path / "ext.yaml", web_service, endpoint_slice("web", [pod(2), pod(3)])
    )
    apply_ok("-f", manifest)
    bound = run("ip", "-o", "addr", "show", "dev", INTERFACE)
    for address in (VIP, "198.51.100.7", "203.0.113.9"):
        assert f"inet {address}/32" in bound
        assert sorted(real_servers("-t", f"{address}:80")) == [real(2), real(3)]


def test_internal_traffic_policy_local_keeps_this_nodes_endpoints(tmp_path: Path) -> None:
    local = service("web", VIP)
    local["spec"]["internalTrafficPolicy"] = "Local"
    slice_ = endpoint_slice("web", [pod(2), pod(3)])
    slice_["endpoints"][0]["nodeName"] = "ap-this-node"
    slice_["endpoints"][1]["nodeName"] = "ap-other-node"
    manifest = write_manifest(tmp_path / "local.yaml", local, slice_)
    apply_ok("-f", manifest, "--node-name", "ap-this-node")
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2)]


def test_headless_and_external_name_services_get_nothing(tmp_path: Path) -> None:
    headless = service("headless", VIP)
    headless["spec"]["clusterIP"] = "None"
    headless["spec"]["clusterIPs"] = ["None"]
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ext", "namespace": "ap"},
        "spec": {"type": "ExternalName", "externalName": "example.org"},
    }
    manifest = write_manifest(
        tmp_path / "none.yaml", headless, endpoint_slice("headless", [pod(2)]), external
    )
    before = run("ipvsadm", "-Ln")
    result = ipvsctl("apply", "-f", manifest)
    assert result.returncode == 0, result.stderr
    assert ipvs_changes(plan_lines(result)) == []
    assert run("ipvsadm", "-Ln") == before


# --- edits in place ----------------------------------------------------------------


def affinity_web(tmp_path: Path, timeout: int | None, annotations: dict[str, str]) -> str:
    return write_manifest(
        tmp_path / "affinity.yaml",
        service("web", VIP, annotations=annotations, affinity_timeout=timeout),
        endpoint_slice("web", [pod(2)]),
    )


def test_persistence_and_scheduler_flags_are_edited_in_place_and_cleared(
    tmp_path: Path,
) -> None:
    sh_flags = {"ipvsctl.io/scheduler": "sh", "ipvsctl.io/scheduler-flags": "sh-port"}
    # sh always carries its fallback flag (docs/services-to-ipvs.md): only sh-port comes and goes.
    apply_ok("-f", affinity_web(tmp_path, 600, sh_flags))
    line = service_line("-t", f"{VIP}:80").split()[2:]
    assert line == ["sh", "(sh-fallback,sh-port)", "persistent", "600"]

    longer = apply_ok("-f", affinity_web(tmp_path, 900, sh_flags))
    assert longer == [f"-E -t {VIP}:80 -s sh -b sh-fallback,sh-port -p 900"]

    plain = apply_ok("-f", affinity_web(tmp_path, None, {"ipvsctl.io/scheduler": "sh"}))
    assert plain == [f"-E -t {VIP}:80 -s sh -b sh-fallback"]
    assert service_line("-t", f"{VIP}:80").split()[2:] == ["sh", "(sh-fallback)"]
    assert apply_ok("-f", affinity_web(tmp_path, None, {"ipvsctl.io/scheduler": "sh"})) == []


def test_a_changed_forwarding_method_is_edited_in_place(tmp_path: Path) -> None:
    apply_ok("-f", affinity_web(tmp_path, None, {}))
    tunnel = apply_ok(
        "-f", affinity_web(tmp_path, None, {"ipvsctl.io/forwarding-method": "tunnel"})
    )
    assert tunnel == [f"-e -t {VIP}:80 -r {real(2)} -i -w 1"]
    assert real_servers("-t", f"{VIP}:80")[real(2)].forward == "Tunnel"


def test_an_other_interface_name_is_used_and_cleaned_up(tmp_path: Path) -> None:
    other = "ap-ipvs1"
    try:
        plan = apply_ok("-f", web(tmp_path), "--interface", other)
        assert f"link add {other} type dummy" in plan
        assert f"inet {VIP}/32" in run("ip", "-o", "addr", "show", "dev", other)
        assert not interface_exists(INTERFACE)
        cleanup = ipvsctl("cleanup", "--interface", other)
        assert cleanup.returncode == 0, cleanup.stderr
        assert not interface_exists(other)
        assert VIP not in run("ipvsadm", "-Ln")
    finally:
        if interface_exists(other):
            run("ip", "link", "del", other)


def test_an_address_left_on_the_interface_is_unbound_with_its_virtual_server(
    tmp_path: Path,
) -> None:
    apply_ok("-f", web(tmp_path))
    run("ip", "addr", "add", f"{EXTRA_VIP}/32", "dev", INTERFACE)
    add_foreign("-t", f"{EXTRA_VIP}:80", "rr", real(5), "1")
    plan = apply_ok("-f", web(tmp_path))
    assert plan == [f"-D -t {EXTRA_VIP}:80", f"addr del {EXTRA_VIP}/32 dev {INTERFACE}"]
    assert EXTRA_VIP not in run("ip", "-o", "addr", "show")


def apply_with_a_refused_real_server(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """ap/web with pod 2 and a multicast address: valid input, refused by the kernel (EINVAL)."""
    manifest = write_manifest(
        tmp_path / "refused.yaml",
        service("web", VIP),
        endpoint_slice("web", [pod(2), "224.0.0.5"]),
    )
    return ipvsctl("apply", "-f", manifest)


REFUSED = f"-a -t {VIP}:80 -r 224.0.0.5:8080 -m -w 1"


def test_a_real_server_the_kernel_refuses_makes_apply_exit_1_and_the_rest_is_applied(
    tmp_path: Path,
) -> None:
    result = apply_with_a_refused_real_server(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(REFUSED in line for line in result.stderr.splitlines()), result.stderr
    assert f"-a -t {VIP}:80 -r {real(2)} -m -w 1" in plan_lines(result)
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2)]


def test_apply_does_not_print_a_change_the_kernel_refused_as_carried_out(tmp_path: Path) -> None:
    result = apply_with_a_refused_real_server(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert REFUSED not in plan_lines(result)


def test_a_dual_stack_service_gets_a_virtual_server_per_family_with_its_endpoints(
    tmp_path: Path,
) -> None:
    dual = service("web", VIP)
    dual["spec"]["clusterIPs"] = [VIP, "fd00:96::1:10"]
    dual["spec"]["ipFamilies"] = ["IPv4", "IPv6"]
    dual["spec"]["ipFamilyPolicy"] = "RequireDualStack"
    manifest = write_manifest(
        tmp_path / "dual.yaml",
        dual,
        endpoint_slice("web", [pod(2)]),
        endpoint_slice("web", ["fd00:246::2"]),
    )
    apply_ok("-f", manifest)
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2)]
    assert sorted(real_servers("-t", "[fd00:96::1:10]:80")) == ["[fd00:246::2]:8080"]
    assert "inet6 fd00:96::1:10/128" in run("ip", "-o", "addr", "show", "dev", INTERFACE)


def test_client_ip_affinity_without_a_timeout_persists_for_10800_seconds(tmp_path: Path) -> None:
    sticky = service("web", VIP)
    sticky["spec"]["sessionAffinity"] = "ClientIP"
    apply_ok(
        "-f", write_manifest(tmp_path / "sticky.yaml", sticky, endpoint_slice("web", [pod(2)]))
    )
    assert service_line("-t", f"{VIP}:80").split()[2:] == ["rr", "persistent", "10800"]


def test_sctp_and_udp_ports_get_virtual_servers_of_their_protocol(tmp_path: Path) -> None:
    ports = (Port("dns", 53, 5353, "UDP"), Port("sig", 3868, 3868, "SCTP"))
    manifest = write_manifest(
        tmp_path / "protocols.yaml",
        service("web", VIP, ports),
        endpoint_slice("web", [pod(2)], ports),
    )
    apply_ok("-f", manifest)
    assert sorted(real_servers("-u", f"{VIP}:53")) == [f"{pod(2)}:5353"]
    assert sorted(real_servers("--sctp-service", f"{VIP}:3868")) == [f"{pod(2)}:3868"]
    assert f"{VIP}:80" not in run("ipvsadm", "-Ln")


def test_a_slice_port_of_another_protocol_gives_no_real_server(tmp_path: Path) -> None:
    slice_ = endpoint_slice("web", [pod(2)])
    slice_["ports"][0]["protocol"] = "UDP"
    apply_ok("-f", write_manifest(tmp_path / "proto.yaml", service("web", VIP), slice_))
    assert real_servers("-t", f"{VIP}:80") == {}


def test_external_traffic_policy_local_keeps_this_nodes_endpoints_on_nodeports(
    tmp_path: Path,
) -> None:
    local = service("web", VIP, (Port("http", 80, 8080, node_port=30081),), service_type="NodePort")
    local["spec"]["externalTrafficPolicy"] = "Local"
    slice_ = endpoint_slice("web", [pod(2), pod(3)])
    slice_["endpoints"][0]["nodeName"] = "ap-this-node"
    slice_["endpoints"][1]["nodeName"] = "ap-other-node"
    manifest = write_manifest(tmp_path / "etp.yaml", local, slice_)
    apply_ok("-f", manifest, "--node-name", "ap-this-node", "--nodeport-addresses", NODE_CIDR)
    assert sorted(real_servers("-t", f"{NODE_ADDR}:30081")) == [real(2)]
    assert sorted(real_servers("-t", f"{VIP}:80")) == [real(2), real(3)]


def test_cleanup_where_ipvsctl_never_ran_changes_nothing() -> None:
    for foreign in FOREIGNS:
        add_foreign(*foreign)
    before = node_state()
    result = ipvsctl("cleanup")
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert node_state() == before


# --- what a mistake in flags or manifests must never do ----------------------


@pytest.fixture
def nic() -> Iterator[str]:
    """A veth link with an address of the node's, standing for a real NIC."""
    run("ip", "link", "add", "ap-nic0", "type", "veth", "peer", "name", "ap-nic1")
    try:
        run("ip", "addr", "add", "10.247.0.1/32", "dev", "ap-nic0")
        yield "ap-nic0"
    finally:
        run("ip", "link", "del", "ap-nic0")


@pytest.mark.parametrize("which", ["lo", "nic"])
def test_an_interface_that_is_not_a_dummy_is_refused_before_anything_changes(
    tmp_path: Path, which: str, request: pytest.FixtureRequest
) -> None:
    # As --interface, a real NIC would make the node's own addresses (and every
    # virtual server on them) ours, and cleanup would strip them.
    link = "lo" if which == "lo" else request.getfixturevalue("nic")
    run("ipvsadm", "-A", "-t", "10.247.0.1:8443", "-s", "rr")
    before = node_state()
    manifest = web(tmp_path)
    for command in (["apply", "-f", manifest], ["cleanup"]):
        done = ipvsctl(*command, "--interface", link)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"ipvsctl: --interface: {link} is a ")
        assert done.stdout == ""
        assert node_state() == before


def test_an_external_ip_that_is_a_node_address_is_not_bound_nor_owned(tmp_path: Path) -> None:
    # No --nodeport-addresses: the node address is still the node's, never ours.
    run("ipvsadm", "-A", "-t", f"{NODE_ADDR}:8443", "-s", "wlc")
    document = service("edge", VIP)
    document["spec"]["externalIPs"] = [NODE_ADDR]
    manifest = write_manifest(tmp_path / "edge.yaml", document, endpoint_slice("edge", [pod(2)]))
    lines = apply_ok("-f", manifest)
    assert f"addr add {NODE_ADDR}/32 dev {INTERFACE}" not in lines
    assert f"-A -t {NODE_ADDR}:80 -s rr" in lines
    assert f"{NODE_ADDR}/32" not in run("ip", "-o", "addr", "show", "dev", INTERFACE)
    assert service_line("-t", f"{NODE_ADDR}:8443") in run("ipvsadm", "-Ln")
    apply_ok("-f", manifest)
    ipvsctl("cleanup")
    listing = run("ipvsadm", "-Ln")
    assert service_line("-t", f"{NODE_ADDR}:8443") in listing
    assert f"{NODE_ADDR}:80" not in listing


# User-Mode Linux's kernel has nf_tables for the bridge family only: no table of family
# inet can exist there (integration/tests/netfilter tests the table in QEMU). A host kernel
# with IPVS has IP nftables: these two are skipped there, and the count says so.
ONLY_IN_UML = pytest.mark.skipif(
    os.environ.get(GUEST_ENV) != "uml", reason="needs a kernel without IP nftables (UML's)"
)


@ONLY_IN_UML
def test_without_nftables_for_ip_traffic_apply_diff_and_run_stop_naming_no_netfilter(
    tmp_path: Path,
) -> None:
    before = node_state()
    manifest = web(tmp_path)
    for command in (
        ["apply", "-f", manifest],
        ["diff", "-f", manifest],
        ["run", "--kubeconfig", str(tmp_path / "none"), "--nodeport-addresses", NODE_CIDR],
    ):
        done = ipvsctl(*command, netfilter=True)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith("ipvsctl: netfilter: this kernel cannot hold"), done.stderr
        assert "--no-netfilter" in done.stderr and done.stderr.count("\n") == 1
        assert done.stdout == ""
        assert node_state() == before


@ONLY_IN_UML
def test_cleanup_finds_no_netfilter_table_where_none_can_be(tmp_path: Path) -> None:
    apply_ok("-f", web(tmp_path))
    done = ipvsctl("cleanup")
    assert done.returncode == 0, done.stderr
    assert not any(line.startswith("nft") for line in plan_lines(done))
