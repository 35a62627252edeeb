"""The lab's pod sandbox, its pure parts: from the rendered chart to the runtime's script.

The sandbox itself runs in the kernel lab (integration/tests/test_chart_pod.py);
these pin, on any host, that what it starts is what the rendered pod says and
that its script only ever changes its own mount namespace.
"""

from __future__ import annotations

import shlex
from pathlib import Path, PurePosixPath

import pytest

from integration.tests.container_runtime import (
    DEFAULT_CAPABILITIES,
    Container,
    Mount,
    Security,
    Unsupported,
    VolumeMount,
    parse_mountinfo,
    setup_script,
)
from integration.tests.pod_sandbox import (
    Cluster,
    Image,
    Manifest,
    Node,
    PodSandbox,
    expand,
    quantity,
)
from tests.chart.manifests import Render, only

MOUNTINFO = """\
27 1 0:17 / / rw - rootfs rootfs rw
28 27 0:18 / / rw,relatime - hostfs /dev/root rw,/
29 28 0:7 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755
30 28 0:19 / /proc rw,relatime - proc proc rw
31 28 0:20 / /sys rw,nosuid,nodev,relatime - sysfs sysfs rw
32 28 0:21 / /run rw,relatime - tmpfs tmpfs rw
33 28 0:22 / /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw
34 28 0:23 / /usr/lib/modules rw,relatime - tmpfs tmpfs rw
35 32 0:4 net:[4026532] /run/netns/be1 rw - nsfs nsfs rw
36 28 0:24 / /srv/with\\040space rw,noexec - tmpfs tmpfs rw
"""
NODE_ROOT = PurePosixPath("/node-root")


def agent_container(**security: object) -> Container:
    return Container(
        argv=("ipvsctl", "run"),
        env=(("A", "1"),),
        security=Security(read_only_root=True, **security),  # type: ignore[arg-type]
        mounts=(
            VolumeMount(PurePosixPath("/tmp"), size=16 * 2**20),
            VolumeMount(PurePosixPath("/run/ipvsctl"), node_path=PurePosixPath("/run/ipvsctl")),
        ),
    )


def script_lines(container: Container) -> list[str]:
    return setup_script(container, parse_mountinfo(MOUNTINFO), NODE_ROOT).splitlines()


# -- the runtime's script ----------------------------------------------------------


def test_mountinfo_gives_each_mount_point_unescaped_with_its_per_mount_options() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts[-1] == Mount(PurePosixPath("/srv/with space"), frozenset({"rw", "noexec"}))
    assert [m.target for m in mounts].count(PurePosixPath("/")) == 2


def test_every_inherited_mount_but_the_runtimes_own_is_bind_remounted_read_only() -> None:
    lines = script_lines(agent_container())
    remounts = [line for line in lines if line.startswith("mount -o remount,bind,ro")]
    # Once each, keeping nosuid/nodev/noexec; never a superblock remount (no "bind"
    # would make the filesystem itself read-only, for everyone).
    assert remounts[:4] == [
        "mount -o remount,bind,ro /",
        "mount -o remount,bind,ro,nosuid,nodev /tmp",
        "mount -o remount,bind,ro /usr/lib/modules",
        "mount -o remount,bind,ro,noexec '/srv/with space'",
    ]
    assert "mount -o remount,bind,ro,nosuid,nodev /sys" in remounts
    assert not any("/run/netns" in line or line.endswith(("/dev", "/proc")) for line in remounts)
    assert all("bind" in line for line in lines if "remount" in line and "image-run" not in line)


def test_the_script_makes_every_mount_private_before_it_mounts_anything() -> None:
    lines = script_lines(agent_container())
    first_mount = next(i for i, line in enumerate(lines) if line.startswith("mount "))
    assert lines[first_mount] == "mount --make-rprivate /"


def test_volumes_come_after_the_read_only_root_and_bind_through_the_node_root() -> None:
    lines = script_lines(agent_container())
    last_remount = max(i for i, line in enumerate(lines) if "remount,bind,ro" in line)
    tmp = lines.index("mount -t tmpfs -o rw,nosuid,nodev,mode=0777,size=16777216 volume /tmp")
    bind = lines.index("mount --no-canonicalize --bind /proc/self/fd/9/run/ipvsctl /run/ipvsctl")
    assert last_remount < tmp < bind
    assert lines[bind + 1] == "mount -o remount,bind,rw,nosuid,nodev /run/ipvsctl"
    assert lines[1:3] == ["mount --make-rprivate /", "exec 9</node-root"]
    assert "exec 9<&-" in lines


def test_the_images_run_is_empty_and_read_only_with_the_volumes_mount_points() -> None:
    lines = script_lines(agent_container())
    start = lines.index("mount -t tmpfs -o mode=0755,nosuid,nodev image-run /run")
    assert lines[start + 1 : start + 3] == [
        "mkdir -p /run/ipvsctl",
        "mount -o remount,ro,mode=0755,nosuid,nodev image-run /run",
    ]


def test_an_unprivileged_container_gets_read_only_sys_and_kernel_tunables() -> None:
    script = "\n".join(script_lines(agent_container()))
    assert "mount -o remount,bind,ro,nosuid,nodev,noexec /proc/sys;" in script
    privileged = "\n".join(script_lines(agent_container(privileged=True)))
    assert "/proc/sys" not in privileged
    assert "remount,bind,ro,nosuid,nodev /sys" not in privileged


def test_the_command_runs_with_only_the_pods_capabilities_and_environment() -> None:
    container = agent_container(drop=frozenset({"ALL"}), add=frozenset({"NET_ADMIN"}))
    last = shlex.split(script_lines(container)[-1])
    assert last[:2] == ["exec", "setpriv"]
    assert "--bounding-set=-all,+net_admin" in last
    assert {"--inh-caps=-all", "--ambient-caps=-all", "--clear-groups"} <= set(last)
    assert "--no-new-privs" not in last
    assert last[last.index("env") :] == ["env", "-i", "--", "A=1", "ipvsctl", "run"]
    no_escalation = agent_container(no_new_privs=True)
    assert "--no-new-privs" in shlex.split(script_lines(no_escalation)[-1])


def test_capabilities_are_the_runtimes_defaults_less_the_dropped_plus_the_added() -> None:
    assert Security().capabilities() == DEFAULT_CAPABILITIES
    assert Security(drop=frozenset({"ALL"})).capabilities() == frozenset()
    dropped = Security(drop=frozenset({"NET_RAW"}), add=frozenset({"NET_ADMIN"}))
    assert dropped.capabilities() == DEFAULT_CAPABILITIES - {"NET_RAW"} | {"NET_ADMIN"}
    assert Security(privileged=True, drop=frozenset({"ALL"})).capabilities() is None
    privileged = script_lines(agent_container(privileged=True))[-1]
    assert "--bounding-set" not in privileged


def test_a_writable_root_filesystem_is_refused_rather_than_written_to_the_machine() -> None:
    container = Container(("true",), (), Security(read_only_root=False))
    with pytest.raises(Unsupported, match="readOnlyRootFilesystem"):
        setup_script(container, [], NODE_ROOT)


# -- the kubelet's part, from the rendered chart -------------------------------------


@pytest.fixture
def pod(render_chart: Render, tmp_path: Path) -> PodSandbox:
    return sandbox(only(render_chart({"netfilter": {"enabled": False}}), "DaemonSet"), tmp_path)


def sandbox(daemonset: Manifest, tmp_path: Path) -> PodSandbox:
    ca = tmp_path / "ca.crt"
    ca.write_text("CA")
    return PodSandbox(
        daemonset,
        Node("node-7", "10.0.0.7", tmp_path / "node"),
        Cluster("127.0.0.1", 8443, "the-token", ca),
        Image((("PATH", "/image/bin"), ("NODE_NAME", "from-the-image"))),
        tmp_path / "logs",
    )


def test_the_agent_runs_the_rendered_command_and_args_exactly(pod: PodSandbox) -> None:
    spec = pod.container("ipvsctl")
    config = pod.container_config(spec)
    assert config.argv == (*spec["command"], *spec["args"])
    assert "--no-netfilter" in config.argv


def test_the_environment_is_the_images_then_the_kubelets_then_the_pods(pod: PodSandbox) -> None:
    env = dict(pod.container_config(pod.container("ipvsctl")).env)
    assert env["NODE_NAME"] == "node-7"  # the downward API's spec.nodeName wins
    assert env["PATH"] == "/image/bin"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "8443"
    assert env["KUBERNETES_PORT_8443_TCP"] == "tcp://127.0.0.1:8443"


def test_the_charts_api_server_host_overrides_the_kubernetes_service(
    render_chart: Render, tmp_path: Path
) -> None:
    values = {"apiServer": {"host": "10.1.1.1", "port": 6443}}
    pod = sandbox(only(render_chart(values), "DaemonSet"), tmp_path)
    env = dict(pod.container_config(pod.container("ipvsctl")).env)
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("10.1.1.1", "6443")


def test_the_agents_security_is_the_rendered_one(pod: PodSandbox) -> None:
    security = pod.container_config(pod.container("ipvsctl")).security
    assert security.capabilities() == frozenset({"NET_ADMIN"})
    assert security.no_new_privs and security.read_only_root and not security.privileged
    assert (security.uid, security.gid) == (0, 0)
    (init,) = pod.spec["initContainers"]
    assert pod.security(init).privileged and pod.security(init).capabilities() is None


def test_the_agents_volumes_and_the_service_account_are_mounted(pod: PodSandbox) -> None:
    mounts = {m.target: m for m in pod.container_config(pod.container("ipvsctl")).mounts}
    assert mounts[PurePosixPath("/tmp")] == VolumeMount(PurePosixPath("/tmp"), size=16 * 2**20)
    record = mounts[PurePosixPath("/run/ipvsctl")]
    assert record.node_path == PurePosixPath("/run/ipvsctl") and not record.read_only
    # /var/run is /run in the image, as on the node.
    account = mounts[PurePosixPath("/run/secrets/kubernetes.io/serviceaccount")]
    assert account.read_only


def test_the_node_side_is_made_under_the_test_owned_node_root(
    pod: PodSandbox, tmp_path: Path
) -> None:
    root = tmp_path / "node"
    assert (root / "run/ipvsctl").is_dir()
    (account,) = root.glob("var/lib/kubelet/pods/*/volumes/kubernetes.io~projected/*")
    assert (account / "token").read_text() == "the-token"
    assert (account / "ca.crt").read_text() == "CA"
    assert (account / "namespace").read_text() == "kube-system"


def test_a_volume_the_sandbox_cannot_give_is_refused_by_name(
    render_chart: Render, tmp_path: Path
) -> None:
    daemonset = only(render_chart(), "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    spec["volumes"].append({"name": "conf", "configMap": {"name": "x"}})
    spec["containers"][0]["volumeMounts"].append({"name": "conf", "mountPath": "/etc/conf"})
    pod = sandbox(daemonset, tmp_path)
    with pytest.raises(Unsupported, match="volume conf"):
        pod.container_config(pod.container("ipvsctl"))


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("--node-name=$(NODE_NAME)", "--node-name=n1"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("$$(NODE_NAME)", "$(NODE_NAME)"),
        ("a$$b", "a$b"),
        ("$NODE_NAME", "$NODE_NAME"),
    ],
)
def test_var_references_expand_as_the_kubelet_expands_them(text: str, expanded: str) -> None:
    assert expand(text, {"NODE_NAME": "n1"}) == expanded


@pytest.mark.parametrize(
    ("text", "size"), [("16Mi", 16 * 2**20), ("1Gi", 2**30), ("512", 512), ("2k", 2000)]
)
def test_quantities_are_bytes(text: str, size: int) -> None:
    assert quantity(text) == size
