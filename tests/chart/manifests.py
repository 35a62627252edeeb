"""Rendering the chart and picking objects out of the result, for the chart tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "ipvsctl"
RELEASE = "ipvsctl"
NAMESPACE = "kube-system"

Manifest = dict[str, Any]
Values = dict[str, Any]
# The render_chart fixture: render_chart(values, name=..., namespace=...).
Render = Callable[..., list[Manifest]]

# Value sets every object of the chart is linted and validated with: the
# defaults, every option turned away from its default, and the barest install.
SCENARIOS: dict[str, Values] = {
    "defaults": {},
    "everything": {
        "image": {"repository": "registry.example:5000/team/ipvsctl", "tag": "1.2.3"},
        "imagePullSecrets": [{"name": "pull"}],
        "scheduler": "mh",
        "interface": "ipvs0",
        "syncPeriod": "1m",
        "minSyncPeriod": "2s",
        "gracefulPeriod": "5m",
        "nodePortAddresses": ["10.0.0.0/8", "fd00::/64"],
        "strictArp": True,
        "logFormat": "json",
        "extraArgs": ["--kubeconfig=/etc/ipvsctl/kubeconfig"],
        "apiServer": {"host": "10.0.0.10", "port": 443},
        "metrics": {
            "bindAddress": "0.0.0.0",
            "port": 9100,
            "serviceMonitor": {"enabled": True, "interval": "1m", "labels": {"release": "prom"}},
        },
        "healthz": {"bindAddress": "127.0.0.1", "port": 10666},
        "sysctls": {"extra": {"net.ipv4.vs.conn_reuse_mode": 0}},
        "loadKernelModules": True,
        "nodePortRecord": {"hostPath": "/run/lb-agent"},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "lb", "effect": "NoSchedule"}
        ],
        "nodeSelector": {"node-role.example/lb": "true"},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "lb", "operator": "Exists"}]}
                    ]
                }
            }
        },
        "priorityClassName": "lb-critical",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
        "podAnnotations": {"example.com/owner": "net"},
        "podLabels": {"team": "net"},
        "serviceAccount": {"name": "lb-agent", "annotations": {"example.com/a": "b"}},
    },
    "barest": {
        "sysctls": {"manage": False},
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "existing"},
        "metrics": {"bindAddress": "::1"},
        "healthz": {"bindAddress": "::"},
        "updateStrategy": {"type": "OnDelete"},
        "image": {"digest": "sha256:" + "ab" * 32},
    },
}


def render(
    chart: helm.Chart,
    values: Values | None = None,
    *,
    name: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[Manifest]:
    """Every object the chart renders, in template-path order (NOTES.txt left out)."""
    rendered = chart.render(values, name=name, namespace=namespace)
    objects: list[Manifest] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return objects


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def only(objects: list[Manifest], kind: str) -> Manifest:
    """The one object of `kind`; fails when there are none or several."""
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(objects: list[Manifest]) -> Manifest:
    spec: Manifest = only(objects, "DaemonSet")["spec"]["template"]["spec"]
    return spec


def agent(objects: list[Manifest]) -> Manifest:
    """The `ipvsctl run` container."""
    containers: list[Manifest] = pod_spec(objects)["containers"]
    (container,) = [c for c in containers if c["name"] == "ipvsctl"]
    return container


def init_containers(objects: list[Manifest]) -> list[Manifest]:
    found: list[Manifest] = pod_spec(objects).get("initContainers", [])
    return found


def sysctl_script(objects: list[Manifest]) -> str:
    """The shell script the sysctls init container runs."""
    (container,) = [c for c in init_containers(objects) if c["name"] == "sysctls"]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    script: str = container["command"][2]
    return script


def volumes_by_name(objects: list[Manifest]) -> dict[str, Manifest]:
    return {volume["name"]: volume for volume in pod_spec(objects).get("volumes", [])}
