"""The emulated API server on HTTPS: what a pod's in-cluster configuration needs."""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.config import incluster_config

from tests.sources.kube_api import TOKEN, KubeApi, service
from tests.sources.serving_tls import ServingCertificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServingCertificate:
    return ServingCertificate.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_api(certificate: ServingCertificate) -> Iterator[KubeApi]:
    with KubeApi(tls=certificate) as running:
        yield running


def test_in_cluster_configuration_reaches_the_emulator_on_https(
    tls_api: KubeApi, certificate: ServingCertificate, tmp_path: Path
) -> None:
    # What a pod has: the address in its environment, a token and the cluster CA in files.
    token = tmp_path / "token"
    token.write_text(TOKEN)
    host, port = tls_api.url.removeprefix("https://").split(":")
    configuration = kube_client.Configuration()
    incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
        token_filename=str(token),
        cert_filename=str(certificate.ca_cert),
        environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
    ).load_and_set(configuration)
    tls_api.create(service("web", "shop"))
    services = kube_client.CoreV1Api(kube_client.ApiClient(configuration))
    assert [s.metadata.name for s in services.list_namespaced_service("shop").items] == ["web"]


def test_a_client_that_does_not_trust_the_cluster_ca_is_refused(tls_api: KubeApi) -> None:
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(f"{tls_api.url}/api/v1/services", timeout=5)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)


def test_its_kubeconfig_and_kmocks_own_client_trust_the_cluster_ca(
    tls_api: KubeApi, tmp_path: Path
) -> None:
    tls_api.create(service("web", "shop"))
    kubeconfig = tls_api.write_kubeconfig(tmp_path / "kubeconfig")
    client = kube_config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    assert len(kube_client.CoreV1Api(client).list_namespaced_service("shop").items) == 1

    async def kmock_get() -> int:
        async with tls_api.emulator.get("/api/v1/namespaces/shop/services") as answer:
            return answer.status

    assert tls_api.call(kmock_get) == 200
