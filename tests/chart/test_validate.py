"""The chart lints clean and every object it renders is valid Kubernetes."""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import jsonschema  # type: ignore[import-untyped,unused-ignore]
import kubernetes_validate
import pytest

from tests.chart.manifests import CHART_DIR, SCENARIOS, Manifest, Render, of_kind, only

# The newest Kubernetes the installed kubernetes-validate has schemas for.
KUBE_VERSION = kubernetes_validate.latest_version()

# ServiceMonitor is a Prometheus Operator CRD: kubernetes-validate has no schema
# for it. This one holds the fields the chart writes, with the types and
# patterns of monitoring.coreos.com/v1, and refuses any other field.
_PROMETHEUS_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": _PROMETHEUS_DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": _PROMETHEUS_DURATION},
                            "relabelings": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "sourceLabels": {
                                            "type": "array",
                                            "items": {
                                                "type": "string",
                                                "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$",
                                            },
                                        },
                                        "targetLabel": {"type": "string"},
                                        "action": {
                                            "enum": [
                                                "replace",
                                                "keep",
                                                "drop",
                                                "hashmod",
                                                "labelmap",
                                                "labeldrop",
                                                "labelkeep",
                                                "lowercase",
                                                "uppercase",
                                                "keepequal",
                                                "dropequal",
                                            ]
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def validate(obj: Manifest) -> None:
    """Strict validation: unknown fields fail too."""
    if obj["kind"] == "ServiceMonitor":
        jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA).validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_kubernetes_schemas_are_current() -> None:
    major, minor = (int(part) for part in KUBE_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 34)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_lints_clean_in_strict_mode(scenario: str) -> None:
    report = helm.lint(CHART_DIR, SCENARIOS[scenario], strict=True, namespace="kube-system")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_rendered_object_validates_strictly(render_chart: Render, scenario: str) -> None:
    objects = render_chart(SCENARIOS[scenario])
    assert objects
    for obj in objects:
        validate(obj)


def test_only_the_service_monitor_needs_its_own_schema(render_chart: Render) -> None:
    """Every other kind is checked by kubernetes-validate, not skipped for want of a schema."""
    without_schema = set()
    for obj in render_chart(SCENARIOS["everything"]):
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            without_schema.add(obj["kind"])
    assert without_schema == {"ServiceMonitor"}


def test_strict_validation_rejects_an_unknown_field(defaults: list[Manifest]) -> None:
    daemonset = copy.deepcopy(only(defaults, "DaemonSet"))
    daemonset["spec"]["template"]["spec"]["containers"][0]["capabilites"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(daemonset)


def test_service_monitor_schema_rejects_an_unknown_field(render_chart: Render) -> None:
    monitor = copy.deepcopy(only(render_chart(SCENARIOS["everything"]), "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


def test_default_install_creates_exactly_the_agent_and_its_rbac(defaults: list[Manifest]) -> None:
    kinds = sorted(obj["kind"] for obj in defaults)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"]
    assert of_kind(defaults, "ServiceMonitor") == []
