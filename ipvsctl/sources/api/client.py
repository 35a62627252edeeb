"""Where the agent finds the API server and its credentials: an `ApiClient`.

The order is kube-proxy's: `--kubeconfig` when given; else the pod's service
account when running in a pod; else `$KUBECONFIG` or `~/.kube/config`, as
kubectl reads them. The client is used for its configuration, authentication
(including the service account token the kubelet rotates) and transport only;
requests and responses are read raw (`requests`).
"""

from __future__ import annotations

import os

from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.config import incluster_config

import ipvsctl

DEFAULT_KUBECONFIG = "~/.kube/config"


class ApiConfigError(Exception):
    """No usable API server configuration; the message is one line for the user."""


def api_client(kubeconfig: str | None) -> kube_client.ApiClient:
    """A client for the API server, configured from `kubeconfig`, the pod, or the user's
    kubeconfig. Raises ApiConfigError saying which source failed and why."""
    configuration = kube_client.Configuration()
    if kubeconfig:
        if not os.path.isfile(os.path.expanduser(kubeconfig)):
            raise ApiConfigError(f"--kubeconfig {kubeconfig}: no such file")
        _load_kubeconfig(configuration, kubeconfig, f"--kubeconfig {kubeconfig}")
    elif in_pod():
        try:
            incluster_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except (kube_config.ConfigException, OSError) as error:
            raise ApiConfigError(f"in-cluster configuration: {_one_line(error)}") from None
    else:
        paths = os.environ.get("KUBECONFIG", "")
        if paths:  # kubectl's list of files, ":"-separated; the loader merges them
            _load_kubeconfig(configuration, paths, f"$KUBECONFIG={paths}")
        elif os.path.exists(os.path.expanduser(DEFAULT_KUBECONFIG)):
            _load_kubeconfig(configuration, DEFAULT_KUBECONFIG, DEFAULT_KUBECONFIG)
        else:
            raise ApiConfigError(
                "no Kubernetes API configuration: not running in a pod, "
                f"and no {DEFAULT_KUBECONFIG} (use --kubeconfig or set $KUBECONFIG)"
            )
    client = kube_client.ApiClient(configuration)
    client.user_agent = f"ipvsctl/{ipvsctl.__version__}"
    return client


def in_pod() -> bool:
    """Whether this process runs in a pod with a service account (what in-cluster needs)."""
    return bool(os.environ.get(incluster_config.SERVICE_HOST_ENV_NAME)) and os.path.exists(
        incluster_config.SERVICE_TOKEN_FILENAME
    )


def _load_kubeconfig(configuration: kube_client.Configuration, paths: str, source: str) -> None:
    try:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=paths, client_configuration=configuration, persist_config=False
        )
    # The loader raises whatever its parsers raise (ConfigException, OSError, YAML
    # errors, KeyError on a malformed file): each is a bad configuration to the user.
    except Exception as error:
        raise ApiConfigError(f"{source}: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
