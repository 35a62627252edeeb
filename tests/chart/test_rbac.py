"""The agent's identity: a ServiceAccount bound to exactly the rights it needs."""

from __future__ import annotations

from tests.chart.manifests import NAMESPACE, Manifest, Render, of_kind, only, pod_spec

# (API group, resource, verb) the agent needs, and nothing else.
AGENT_RIGHTS = {
    *{("", "services", verb) for verb in ("get", "list", "watch")},
    *{("", "nodes", verb) for verb in ("get", "list", "watch")},
    *{("discovery.k8s.io", "endpointslices", verb) for verb in ("get", "list", "watch")},
    *{("", "events", verb) for verb in ("create", "patch")},
    *{("events.k8s.io", "events", verb) for verb in ("create", "patch")},
}


def granted(role: Manifest) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_cluster_role_grants_exactly_what_the_agent_needs(defaults: list[Manifest]) -> None:
    role = only(defaults, "ClusterRole")
    assert granted(role) == AGENT_RIGHTS
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames or URLs"
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]
    assert of_kind(defaults, "Role") == []
    assert of_kind(defaults, "RoleBinding") == []


def test_binding_gives_the_role_to_the_pods_service_account(defaults: list[Manifest]) -> None:
    binding = only(defaults, "ClusterRoleBinding")
    account = only(defaults, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": only(defaults, "ClusterRole")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    assert pod_spec(defaults)["serviceAccountName"] == account["metadata"]["name"]


def test_named_service_account_is_created_bound_and_used(render_chart: Render) -> None:
    objects = render_chart({"serviceAccount": {"name": "lb-agent", "annotations": {"a": "b"}}})
    account = only(objects, "ServiceAccount")
    assert account["metadata"]["name"] == "lb-agent"
    assert account["metadata"]["annotations"] == {"a": "b"}
    assert only(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "lb-agent"
    assert pod_spec(objects)["serviceAccountName"] == "lb-agent"


def test_existing_service_account_is_used_and_not_created(render_chart: Render) -> None:
    objects = render_chart({"serviceAccount": {"create": False, "name": "existing"}})
    assert of_kind(objects, "ServiceAccount") == []
    assert pod_spec(objects)["serviceAccountName"] == "existing"
    assert only(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "existing"


def test_rbac_can_be_left_to_the_cluster_admin(render_chart: Render) -> None:
    objects = render_chart({"rbac": {"create": False}})
    assert of_kind(objects, "ClusterRole") == []
    assert of_kind(objects, "ClusterRoleBinding") == []


def test_two_releases_get_distinct_cluster_wide_names(render_chart: Render) -> None:
    first = render_chart(name="edge", namespace="net-a")
    second = render_chart(name="core", namespace="net-b")
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        assert only(first, kind)["metadata"]["name"] != only(second, kind)["metadata"]["name"]
    assert only(second, "ClusterRoleBinding")["subjects"][0]["namespace"] == "net-b"
