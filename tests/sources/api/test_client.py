"""Where the agent finds the API server: --kubeconfig, the pod's service account, or the
user's kubeconfig, in that order; a one-line error when none works."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.config import incluster_config

from ipvsctl.sources.api.client import ApiConfigError, api_client
from ipvsctl.sources.api.requests import open_get, read_list
from tests.sources.kube_api import TOKEN, KubeApi, service


@pytest.fixture
def outside_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No service account, no $KUBECONFIG, and a home of our own (without ~/.kube)."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def in_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment and files the kubelet gives a pod with a service account."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return tmp_path


def test_a_kubeconfig_flag_is_used_and_its_token_sent(
    api: KubeApi, outside_a_pod: Path, tmp_path: Path
) -> None:
    api.create(service("web"))
    client = api_client(str(api.write_kubeconfig(tmp_path / "config")))
    page = read_list(open_get(client, "/api/v1/services", (), (2.0, 5.0)), "LIST")
    assert [item["metadata"]["name"] for item in page.items] == ["web"]
    (listed,) = api.requests("list", "/api/v1/services")
    assert listed.headers["Authorization"] == f"Bearer {TOKEN}"
    assert listed.headers["User-Agent"].startswith("ipvsctl/")


def test_the_flag_wins_over_the_pods_service_account(
    api: KubeApi, in_a_pod: Path, tmp_path: Path
) -> None:
    client = api_client(str(api.write_kubeconfig(tmp_path / "config")))
    assert client.configuration.host == api.url


def test_in_a_pod_the_service_account_is_used(in_a_pod: Path) -> None:
    configuration = api_client(None).configuration
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.api_key["BearerToken"] == "bearer pod-token"
    assert configuration.ssl_ca_cert == str(in_a_pod / "ca.crt")


def test_outside_a_pod_kubeconfig_is_read(
    api: KubeApi, outside_a_pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(outside_a_pod / "config")))
    assert api_client(None).configuration.host == api.url


def test_outside_a_pod_the_users_kubeconfig_is_read(api: KubeApi, outside_a_pod: Path) -> None:
    (outside_a_pod / ".kube").mkdir()
    api.write_kubeconfig(outside_a_pod / ".kube" / "config")
    assert api_client(None).configuration.host == api.url


def test_no_configuration_at_all_is_one_line_saying_what_to_do(outside_a_pod: Path) -> None:
    with pytest.raises(ApiConfigError) as raised:
        api_client(None)
    assert str(raised.value) == (
        "no Kubernetes API configuration: not running in a pod, "
        "and no ~/.kube/config (use --kubeconfig or set $KUBECONFIG)"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "--kubeconfig {path}: no such file"),
        ("clusters: [", "--kubeconfig {path}: "),
        ("{}", "--kubeconfig {path}: "),
    ],
    ids=["missing", "not-yaml", "empty"],
)
def test_a_bad_kubeconfig_flag_names_the_file(
    outside_a_pod: Path, content: str | None, expected: str
) -> None:
    path = outside_a_pod / "config"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ApiConfigError) as raised:
        api_client(str(path))
    message = str(raised.value)
    assert message.startswith(expected.format(path=path))
    assert "\n" not in message
