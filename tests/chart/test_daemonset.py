"""The DaemonSet starts `ipvsctl run` right: flags, environment, probes, security."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.manifests import (
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Manifest,
    Render,
    agent,
    only,
    pod_spec,
    volumes_by_name,
)

# `ipvsctl run`'s defaults in contract.md: an install with the chart's defaults
# runs the agent exactly as a bare `ipvsctl run` would.
CONTRACT_DEFAULT_ARGS = [
    "run",
    "--scheduler=rr",
    "--interface=kube-ipvs0",
    "--sync-period=30s",
    "--min-sync-period=0s",
    "--graceful-period=15m",
    "--api-idle-timeout=2m",
    "--log-format=text",
    "--metrics-address=127.0.0.1:10249",
    "--healthz-address=0.0.0.0:10256",
]


def env_by_name(container: Manifest) -> dict[str, Manifest]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def port_number(container: Manifest, name: str) -> int:
    (port,) = [p for p in container["ports"] if p["name"] == name]
    number: int = port["containerPort"]
    return number


# -- the pod -----------------------------------------------------------------


def test_agent_runs_in_the_host_network_with_cluster_dns(defaults: list[Manifest]) -> None:
    spec = pod_spec(defaults)
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_dns_policy_can_fall_back_to_the_nodes_resolver(render_chart: Render) -> None:
    assert pod_spec(render_chart({"dnsPolicy": "Default"}))["dnsPolicy"] == "Default"


def test_agent_is_node_critical_and_tolerates_every_taint(defaults: list[Manifest]) -> None:
    spec = pod_spec(defaults)
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["tolerations"] == [{"operator": "Exists"}]


def test_agent_runs_on_linux_nodes_only_by_default(defaults: list[Manifest]) -> None:
    assert pod_spec(defaults)["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_placement_values_reach_the_pod(render_chart: Render) -> None:
    values = SCENARIOS["everything"]
    spec = pod_spec(render_chart(values))
    assert spec["tolerations"] == values["tolerations"]
    # Helm merges maps: the default kubernetes.io/os selector stays.
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", **values["nodeSelector"]}
    assert spec["affinity"] == values["affinity"]
    assert spec["priorityClassName"] == "lb-critical"
    assert spec["imagePullSecrets"] == [{"name": "pull"}]


def test_rolling_update_replaces_one_node_at_a_time_by_default(defaults: list[Manifest]) -> None:
    strategy = only(defaults, "DaemonSet")["spec"]["updateStrategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}


def test_on_delete_drops_the_default_rolling_update_parameters(render_chart: Render) -> None:
    # Helm merges maps, so the default rollingUpdate would otherwise come along,
    # and the API server refuses rollingUpdate next to OnDelete.
    objects = render_chart({"updateStrategy": {"type": "OnDelete"}})
    assert only(objects, "DaemonSet")["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_pod_annotations_and_labels_reach_the_pod_template(render_chart: Render) -> None:
    template = only(render_chart(SCENARIOS["everything"]), "DaemonSet")["spec"]["template"]
    assert template["metadata"]["annotations"] == {"example.com/owner": "net"}
    assert template["metadata"]["labels"]["team"] == "net"


# -- the command line ----------------------------------------------------------


def test_container_runs_ipvsctl_run_with_the_contract_defaults(defaults: list[Manifest]) -> None:
    container = agent(defaults)
    assert container["command"] == ["ipvsctl"]
    assert container["args"] == CONTRACT_DEFAULT_ARGS


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"scheduler": "wlc"}, "--scheduler=wlc"),
        ({"interface": "ipvs0"}, "--interface=ipvs0"),
        ({"syncPeriod": "1m30s"}, "--sync-period=1m30s"),
        ({"minSyncPeriod": "1s"}, "--min-sync-period=1s"),
        ({"gracefulPeriod": "5m"}, "--graceful-period=5m"),
        ({"apiIdleTimeout": "45s"}, "--api-idle-timeout=45s"),
        ({"nodePortAddresses": ["10.0.0.0/8"]}, "--nodeport-addresses=10.0.0.0/8"),
        (
            {"nodePortAddresses": ["10.0.0.0/8", "fd00::/64"]},
            "--nodeport-addresses=10.0.0.0/8,fd00::/64",
        ),
        ({"strictArp": True}, "--strict-arp"),
        ({"logFormat": "json"}, "--log-format=json"),
        ({"metrics": {"bindAddress": "0.0.0.0"}}, "--metrics-address=0.0.0.0:10249"),
        ({"metrics": {"port": 9100}}, "--metrics-address=127.0.0.1:9100"),
        ({"healthz": {"bindAddress": "10.1.2.3"}}, "--healthz-address=10.1.2.3:10256"),
        ({"healthz": {"port": 10666}}, "--healthz-address=0.0.0.0:10666"),
        ({"metrics": {"bindAddress": "::1"}}, "--metrics-address=[::1]:10249"),
        ({"healthz": {"bindAddress": "::"}}, "--healthz-address=[::]:10256"),
    ],
)
def test_each_value_reaches_its_flag(
    render_chart: Render, values: dict[str, Any], expected: str
) -> None:
    args = agent(render_chart(values))["args"]
    assert expected in args
    assert args[0] == "run"


def test_flags_whose_value_is_unset_are_left_out(defaults: list[Manifest]) -> None:
    args = agent(defaults)["args"]
    assert not any(arg.startswith("--nodeport-addresses") for arg in args)
    assert "--strict-arp" not in args


def test_each_flag_appears_once_when_every_value_is_set(render_chart: Render) -> None:
    args = agent(render_chart(SCENARIOS["everything"]))["args"]
    names = [arg.split("=", 1)[0] for arg in args]
    assert len(names) == len(set(names))


def test_extra_args_come_last_and_in_order(render_chart: Render) -> None:
    extra = ["--kubeconfig", "/etc/ipvsctl/kubeconfig", "--node-name=n1"]
    args = agent(render_chart({"extraArgs": extra}))["args"]
    assert args[-3:] == extra
    assert args[:-3] == CONTRACT_DEFAULT_ARGS


# -- environment ---------------------------------------------------------------


def test_node_name_comes_from_the_downward_api(defaults: list[Manifest]) -> None:
    node_name = env_by_name(agent(defaults))["NODE_NAME"]
    assert node_name == {
        "name": "NODE_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
    }


def test_api_server_address_is_the_in_cluster_one_unless_given(defaults: list[Manifest]) -> None:
    env = env_by_name(agent(defaults))
    assert "KUBERNETES_SERVICE_HOST" not in env
    assert "KUBERNETES_SERVICE_PORT" not in env


def test_api_server_host_and_port_override_in_cluster_config(render_chart: Render) -> None:
    env = env_by_name(agent(render_chart({"apiServer": {"host": "cp.example.internal"}})))
    assert env["KUBERNETES_SERVICE_HOST"]["value"] == "cp.example.internal"
    assert env["KUBERNETES_SERVICE_PORT"]["value"] == "6443"


# -- ports and probes ------------------------------------------------------------


def test_ports_are_the_metrics_and_healthz_ports(render_chart: Render) -> None:
    container = agent(render_chart({"metrics": {"port": 9100}, "healthz": {"port": 10666}}))
    assert port_number(container, "metrics") == 9100
    assert port_number(container, "healthz") == 10666


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_probes_ask_healthz_on_the_healthz_port(defaults: list[Manifest], probe: str) -> None:
    container = agent(defaults)
    http_get = container[probe]["httpGet"]
    assert http_get["path"] == "/healthz"
    assert http_get["port"] == "healthz"
    assert port_number(container, "healthz") == 10256
    # Bound to every address: the kubelet asks the pod's (the node's) address.
    assert "host" not in http_get


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_probes_ask_the_bind_address_when_healthz_is_not_on_every_address(
    render_chart: Render, probe: str
) -> None:
    container = agent(render_chart({"healthz": {"bindAddress": "127.0.0.1"}}))
    assert container[probe]["httpGet"]["host"] == "127.0.0.1"


def test_probe_timings_come_from_values(render_chart: Render) -> None:
    container = agent(
        render_chart(
            {
                "healthz": {
                    "livenessProbe": {"periodSeconds": 7, "failureThreshold": 9},
                    "readinessProbe": {"initialDelaySeconds": 3},
                }
            }
        )
    )
    assert container["livenessProbe"]["periodSeconds"] == 7
    assert container["livenessProbe"]["failureThreshold"] == 9
    assert container["livenessProbe"]["initialDelaySeconds"] == 15
    assert container["readinessProbe"]["initialDelaySeconds"] == 3


# -- resources and image -----------------------------------------------------------


def test_resources_come_from_values(defaults: list[Manifest], render_chart: Render) -> None:
    assert agent(defaults)["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "256Mi"},
    }
    custom = agent(render_chart(SCENARIOS["everything"]))["resources"]
    assert custom == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


def test_image_tag_defaults_to_the_app_version(defaults: list[Manifest], chart: Any) -> None:
    app_version = chart.metadata["appVersion"]
    assert agent(defaults)["image"] == f"ipvsctl/ipvsctl:{app_version}"
    assert agent(defaults)["imagePullPolicy"] == "IfNotPresent"


def test_image_repository_and_tag_come_from_values(render_chart: Render) -> None:
    image = agent(render_chart(SCENARIOS["everything"]))["image"]
    assert image == "registry.example:5000/team/ipvsctl:1.2.3"


def test_image_digest_wins_over_the_tag(render_chart: Render) -> None:
    digest = "sha256:" + "ab" * 32
    objects = render_chart({"image": {"tag": "9.9.9", "digest": digest}})
    assert agent(objects)["image"] == f"ipvsctl/ipvsctl@{digest}"


# -- security --------------------------------------------------------------------


def test_agent_is_unprivileged_root_holding_only_net_admin(defaults: list[Manifest]) -> None:
    context = agent(defaults)["securityContext"]
    assert context["privileged"] is False
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    # uid 0 on purpose: Kubernetes sets no ambient capabilities, so a non-root
    # agent would not have NET_ADMIN in its effective set.
    assert context["runAsUser"] == 0


def test_pod_default_seccomp_profile_is_runtime_default(defaults: list[Manifest]) -> None:
    assert pod_spec(defaults)["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_read_only_root_filesystem_comes_with_a_writable_tmp(defaults: list[Manifest]) -> None:
    mounts = {m["name"]: m for m in agent(defaults)["volumeMounts"]}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes_by_name(defaults)["tmp"]


def test_loading_kernel_modules_adds_sys_module_and_a_read_only_lib_modules(
    render_chart: Render,
) -> None:
    objects = render_chart({"loadKernelModules": True})
    container = agent(objects)
    assert container["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "SYS_MODULE"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["lib-modules"] == {
        "name": "lib-modules",
        "mountPath": "/lib/modules",
        "readOnly": True,
    }
    assert volumes_by_name(objects)["lib-modules"]["hostPath"]["path"] == "/lib/modules"


def test_without_module_loading_there_is_no_sys_module_and_no_lib_modules(
    defaults: list[Manifest],
) -> None:
    assert "SYS_MODULE" not in agent(defaults)["securityContext"]["capabilities"]["add"]
    assert "lib-modules" not in volumes_by_name(defaults)
    assert all("/lib/modules" not in str(volume) for volume in pod_spec(defaults)["volumes"])


def test_service_account_token_is_mounted_for_in_cluster_config(defaults: list[Manifest]) -> None:
    spec = pod_spec(defaults)
    assert spec["automountServiceAccountToken"] is True
    assert spec["serviceAccountName"] == only(defaults, "ServiceAccount")["metadata"]["name"]


# -- names and labels ----------------------------------------------------------------


def test_selector_picks_the_pods_it_creates(defaults: list[Manifest]) -> None:
    daemonset = only(defaults, "DaemonSet")
    selector = daemonset["spec"]["selector"]["matchLabels"]
    pod_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert selector == {"app.kubernetes.io/name": "ipvsctl", "app.kubernetes.io/instance": RELEASE}
    assert selector.items() <= pod_labels.items()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_object_carries_the_standard_labels(render_chart: Render, scenario: str) -> None:
    for obj in render_chart(SCENARIOS[scenario]):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ipvsctl"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == "ipvsctl-0.1.0"


def test_namespaced_objects_go_to_the_release_namespace(render_chart: Render) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in render_chart(SCENARIOS["everything"]):
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_release_name_without_the_chart_name_is_prefixed(render_chart: Render) -> None:
    objects = render_chart(name="edge", namespace="net")
    assert only(objects, "DaemonSet")["metadata"]["name"] == "edge-ipvsctl"
    assert only(objects, "DaemonSet")["metadata"]["namespace"] == "net"


def test_fullname_override_names_every_object(render_chart: Render) -> None:
    objects = render_chart({"fullnameOverride": "lb"})
    assert {obj["metadata"]["name"] for obj in objects} == {"lb"}
