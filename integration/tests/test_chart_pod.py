"""The chart's pod, run as the kubelet runs it: what the chart renders must work.

The chart is rendered with its defaults (netfilter off only: this kernel has no
nftables for IP traffic) and its DaemonSet's pod started by pod_sandbox.py
under the rendered constraints: root filesystem read-only but for the pod's
volumes, only the capabilities the pod adds, no_new_privs, its own PID and
mount namespaces, the rendered command, args and env, and the API server found
in-cluster (the service account's token and CA, KUBERNETES_SERVICE_HOST) over
HTTPS. The node is the lab's network namespace; hostPath volumes live under a
test-owned directory standing in for the node's root. A chart change that
breaks the pod (a volume gone, a capability missing, an argument wrong) fails
here as it would on a node.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import helm_python as helm
import pytest

from integration.tests.agent_fixtures import (
    NODE,
    NODE_ADDRESS,
    netlink_operations,
    read_metrics,
    table,
    wait_until,
)
from integration.tests.apply_fixtures import connections_counted, forget_everything, run
from integration.tests.pod_sandbox import (
    Cluster,
    Manifest,
    Node,
    PodSandbox,
    RunningContainer,
    checkout_image,
)
from integration.tests.test_apply_traffic import (  # the backends and client of that module
    BACKENDS,
    HTTP_PORT,
    ask_once,
    backend_addr,
    network,  # noqa: F401  (the fixture, set up again for this module)
)
from tests.chart.manifests import CHART_DIR, render, sysctl_script
from tests.sources.kube_api import TOKEN, KubeApi, node
from tests.sources.serving_tls import ServingCertificate

pytestmark = pytest.mark.usefixtures("network")

CHECKOUT = Path(__file__).resolve().parents[2]
# What the lab needs of the values; everything else is the chart's default.
LAB_VALUES = {"netfilter": {"enabled": False}}
AGENT = "ipvsctl"
CLUSTER_IP, NODEPORT_IP, LB_IP, LB_INGRESS = "10.96.40.1", "10.96.40.2", "10.96.40.3", "192.0.2.40"
NODE_PORT, LB_NODE_PORT = 30080, 30081
CAP_NET_ADMIN = 1 << 12


# -- the cluster -------------------------------------------------------------------


def web(name: str, cluster_ip: str, kind: str, node_port: int | None = None) -> Manifest:
    port: Manifest = {"name": "http", "port": 80, "protocol": "TCP", "targetPort": HTTP_PORT}
    if node_port is not None:
        port["nodePort"] = node_port
    service: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"type": kind, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip]},
    }
    service["spec"]["ports"] = [port]
    if kind == "LoadBalancer":
        service["status"] = {"loadBalancer": {"ingress": [{"ip": LB_INGRESS}]}}
    return service


def backends_of(service: str) -> Manifest:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-1",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": HTTP_PORT, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [backend_addr(i)], "conditions": {"ready": True}}
            for i in range(len(BACKENDS))
        ],
    }


def create_services(api: KubeApi) -> None:
    for name, address, kind, node_port in (
        ("plain", CLUSTER_IP, "ClusterIP", None),
        ("np", NODEPORT_IP, "NodePort", NODE_PORT),
        ("lb", LB_IP, "LoadBalancer", LB_NODE_PORT),
    ):
        api.create(web(name, address, kind, node_port))
        api.create(backends_of(name))


EVERY_VIRTUAL_SERVER = (
    f"TCP  {CLUSTER_IP}:80 rr",
    f"TCP  {NODEPORT_IP}:80 rr",
    f"TCP  {NODE_ADDRESS}:{NODE_PORT} rr",
    f"TCP  {LB_IP}:80 rr",
    f"TCP  {LB_INGRESS}:80 rr",
    f"TCP  {NODE_ADDRESS}:{LB_NODE_PORT} rr",
)


def all_programmed() -> bool:
    listing = table()
    return all(line in listing for line in EVERY_VIRTUAL_SERVER) and (
        listing.count(f":{HTTP_PORT}") == len(EVERY_VIRTUAL_SERVER) * len(BACKENDS)
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServingCertificate:
    return ServingCertificate.make(tmp_path_factory.mktemp("cluster-ca"))


@pytest.fixture
def api(node_link: None, certificate: ServingCertificate) -> Iterator[KubeApi]:
    """The API server on HTTPS, as the pod's in-cluster configuration needs it."""
    forget_everything()
    with KubeApi(tls=certificate) as emulated:
        emulated.create(node(NODE, (("InternalIP", NODE_ADDRESS),)))
        yield emulated
    forget_everything()


# -- the pod -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def daemonset() -> Manifest:
    with helm.Chart.load(CHART_DIR) as chart:
        objects = render(chart, LAB_VALUES)
    (found,) = [obj for obj in objects if obj["kind"] == "DaemonSet"]
    return found


@pytest.fixture
def sysctls_put_back(daemonset: Manifest) -> Iterator[None]:
    """The init container sets the lab namespace's IPVS sysctls: the next tests get
    them back as they were."""
    pod_spec = daemonset["spec"]["template"]["spec"]
    script = sysctl_script([daemonset]) if pod_spec.get("initContainers") else ""
    paths = [Path(p) for p in re.findall(r"> '(/proc/sys/[^']+)'", script)]
    saved = {path: path.read_text() for path in paths if path.exists()}
    yield
    for path, value in saved.items():
        path.write_text(value)


PodFactory = Callable[[Manifest], PodSandbox]


@pytest.fixture
def make_pod(
    api: KubeApi, certificate: ServingCertificate, tmp_path: Path, sysctls_put_back: None
) -> Iterator[PodFactory]:
    """make_pod(daemonset) -> its pod on this node, init containers run; every
    container it starts is killed after the test."""
    host, port = api.url.removeprefix("https://").rsplit(":", 1)
    cluster = Cluster(host, int(port), TOKEN, certificate.ca_cert)
    pods: list[PodSandbox] = []

    def make(rendered: Manifest) -> PodSandbox:
        node_root = tmp_path / "node"
        pod = PodSandbox(
            rendered, Node(NODE, NODE_ADDRESS, node_root), cluster, checkout_image(CHECKOUT),
            tmp_path / "logs",
        )  # fmt: skip
        pods.append(pod)
        pod.run_init_containers()
        return pod

    yield make
    for pod in pods:
        pod.kill()


def probe_url(pod: PodSandbox, probe: str = "livenessProbe") -> str:
    """Where the kubelet's probe asks: its host, else the pod's address (the node's)."""
    container = pod.container(AGENT)
    http_get = container[probe]["httpGet"]
    port = http_get["port"]
    if isinstance(port, str):
        (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return f"http://{http_get.get('host', NODE_ADDRESS)}:{port}{http_get['path']}"


def probe(url: str) -> int:
    """The HTTP status the probe gets; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def metrics_address(pod: PodSandbox) -> str:
    (flag,) = [a for a in pod.container(AGENT)["args"] if a.startswith("--metrics-address=")]
    return flag.partition("=")[2]


@contextmanager
def logs_on_failure(container: RunningContainer) -> Iterator[None]:
    """A failed wait says what the agent logged meanwhile."""
    try:
        yield
    except AssertionError as error:
        raise AssertionError(f"{error}; {container.name} logged:\n{container.logs()}") from None


def process_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def record_files(node_root: Path) -> list[Path]:
    return sorted((node_root / "run/ipvsctl").glob("nodeports-*.json"))


def recorded_ports(node_root: Path) -> set[int]:
    (record,) = record_files(node_root)
    return {int(entry[3]) for entry in json.loads(record.read_text())["nodeports"]}


# -- the tests ---------------------------------------------------------------------


def test_the_charts_pod_programs_every_kind_of_service_and_restarts_without_a_flush(
    api: KubeApi, daemonset: Manifest, make_pod: PodFactory, tmp_path: Path
) -> None:
    pod = make_pod(daemonset)
    agent = pod.start(AGENT)
    healthz = probe_url(pod)
    create_services(api)
    with logs_on_failure(agent):
        wait_until(all_programmed, "ClusterIP, NodePort and LoadBalancer virtual servers", 60)
        wait_until(lambda: probe(healthz) == 200, f"{healthz} to answer 200", 60)

    # It ran as the pod says: NET_ADMIN alone, no_new_privs, PID 1 of its own namespace.
    status = process_status(agent.pid)
    for capabilities in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[capabilities], 16) == CAP_NET_ADMIN, capabilities
    assert int(status["CapInh"], 16) == 0 and int(status["CapAmb"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert status["NSpid"].split()[-1] == "1"
    # The NodePort record is on the node, where the next agent will find it.
    node_root = tmp_path / "node"
    assert recorded_ports(node_root) == {NODE_PORT, LB_NODE_PORT}

    for _ in range(5):
        assert ask_once(CLUSTER_IP) in BACKENDS
    # The kernel sums its per-CPU counters every 2 s.
    counted = wait_until(
        lambda: (n := connections_counted(f"{CLUSTER_IP}:80")) >= 5 and n,
        "the five connections counted",
    )
    programmed = table()

    assert agent.stop() == 0, agent.logs()
    again = pod.start(AGENT)
    with logs_on_failure(again):
        wait_until(lambda: probe(healthz) == 200, "the restarted agent's first sync", 60)
    full = 'ipvsctl_reconcile_duration_seconds_count{kind="full"}'
    metrics = metrics_address(pod)
    wait_until(lambda: read_metrics(metrics).get(full, 0) >= 1, "a full sync after the restart")
    # Nothing flushed or rebuilt: no netlink operation, the same table, the same counters.
    assert netlink_operations(read_metrics(metrics)) == 0
    assert table() == programmed
    assert connections_counted(f"{CLUSTER_IP}:80") == counted
    assert recorded_ports(node_root) == {NODE_PORT, LB_NODE_PORT}
    assert again.running()


def without_the_record_volume(daemonset: Manifest) -> Manifest:
    """The DaemonSet as the chart rendered it before the fix: only /tmp writable."""
    broken = copy.deepcopy(daemonset)
    spec = broken["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == AGENT]
    mounts = container["volumeMounts"]
    container["volumeMounts"] = [m for m in mounts if m["name"] != "nodeport-record"]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "nodeport-record"]
    return broken


def test_without_a_writable_record_directory_the_pod_serves_no_nodeport(
    api: KubeApi, daemonset: Manifest, make_pod: PodFactory
) -> None:
    # Proves the test above bites: the pod of a chart that loses the volume cannot
    # record, so it holds every NodePort back (the rest is served, and the agent says
    # why and counts it), where the test above needs all six virtual servers.
    create_services(api)
    pod = make_pod(without_the_record_volume(daemonset))
    agent = pod.start(AGENT)
    wait_until(lambda: "Read-only file system" in agent.logs(), "the record's write to fail", 60)
    nodeports = [line for line in EVERY_VIRTUAL_SERVER if f"{NODE_ADDRESS}:" in line]
    others = [line for line in EVERY_VIRTUAL_SERVER if line not in nodeports]
    wait_until(lambda: all(line in table() for line in others), "the other virtual servers", 60)
    listing = table()
    assert nodeports and not any(line in listing for line in nodeports), listing
    assert agent.running()


# The kubelet expands $(VAR) in a command and reads $$ as a literal $: hence $$$$.
PROBE = r"""
echo "pid=$$$$"
touch /written 2>&1 || true
touch /run/ipvsctl/written && echo "record-dir=writable"
touch /tmp/written && echo "tmp=writable"
df -k /tmp | tail -n 1
echo 0 > /proc/sys/net/ipv4/ip_forward 2>&1 || true
touch /var/run/secrets/kubernetes.io/serviceaccount/written 2>&1 || true
echo "token=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"
mknod /dev/sandbox-probe c 1 3 2>&1 || true
"""


def test_the_sandbox_gives_the_container_only_what_the_pod_declares(
    daemonset: Manifest, make_pod: PodFactory, tmp_path: Path
) -> None:
    probing = copy.deepcopy(daemonset)
    (container,) = [
        c for c in probing["spec"]["template"]["spec"]["containers"] if c["name"] == AGENT
    ]
    container["command"], container["args"] = ["/bin/sh", "-c", PROBE], []
    own_mounts = Path("/proc/self/mountinfo").read_text()
    pod = make_pod(probing)
    started = pod.start(AGENT)
    assert started.process.wait(timeout=30) == 0, started.logs()
    out = started.logs()
    assert "pid=1" in out
    assert "touch: cannot touch '/written': Read-only file system" in out
    assert "record-dir=writable" in out and (tmp_path / "node/run/ipvsctl/written").exists()
    assert "tmp=writable" in out
    assert re.search(r"^volume\s+16384\s", out, re.M), out  # the emptyDir's sizeLimit, 16Mi
    assert "/proc/sys/net/ipv4/ip_forward: Read-only file system" in out
    assert "serviceaccount/written': Read-only file system" in out
    assert f"token={TOKEN}" in out
    assert "Operation not permitted" in out  # mknod: no CAP_MKNOD
    # Nothing of the lab's own namespace changed.
    assert Path("/proc/self/mountinfo").read_text() == own_mounts
    assert not Path("/written").exists()
    assert run("cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
