"""The agent's root filesystem is read-only: everything it writes is on a volume.

Where `ipvsctl run` writes comes from its own code (the NodePort record's
directory, and the temporary directory), so moving either there without
a volume here fails these tests, as would a chart value that drops one. The
NodePort record must outlive the agent's restarts and the pod's replacement
but not a reboot: a hostPath under /run.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from ipvsctl.state.nodeport_record import DEFAULT_DIRECTORY, DIRECTORY_ENV
from tests.chart.manifests import (
    SCENARIOS,
    Manifest,
    Render,
    agent,
    init_containers,
    volumes_by_name,
)


def env_values(container: Manifest) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def record_directory(container: Manifest) -> PurePosixPath:
    """The NodePort record's directory in this container (its lock and temporary file
    are written beside the record)."""
    return PurePosixPath(env_values(container).get(DIRECTORY_ENV) or str(DEFAULT_DIRECTORY))


def written_paths(container: Manifest) -> dict[str, PurePosixPath]:
    """Every directory `ipvsctl run` writes in, by what it writes there."""
    # The image sets no TMPDIR: Python's tempfile falls back to /tmp.
    temporary = env_values(container).get("TMPDIR") or "/tmp"
    return {
        "the NodePort record": record_directory(container),
        # The kubernetes client writes a kubeconfig's inline certificates there
        # (extraArgs --kubeconfig=...).
        "temporary files": PurePosixPath(temporary),
    }


def mount_holding(container: Manifest, path: PurePosixPath) -> Manifest | None:
    """The volume mount `path` lies on (the deepest one that contains it), if any."""
    holding = [
        mount
        for mount in container.get("volumeMounts", [])
        if path == PurePosixPath(mount["mountPath"])
        or PurePosixPath(mount["mountPath"]) in path.parents
    ]
    return max(holding, key=lambda m: len(PurePosixPath(m["mountPath"]).parts), default=None)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_path_the_agent_writes_is_on_a_writable_volume_mount(
    render_chart: Render, scenario: str
) -> None:
    objects = render_chart(SCENARIOS[scenario])
    container = agent(objects)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = volumes_by_name(objects)
    for what, path in written_paths(container).items():
        mount = mount_holding(container, path)
        assert mount is not None, f"{what} ({path}) is on the read-only root filesystem"
        assert not mount.get("readOnly", False), f"{what} ({path}) is on a read-only mount"
        assert mount["name"] in volumes, f"{what}: volume {mount['name']} is not in the pod"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_nodeport_record_is_kept_on_the_node_so_it_outlives_the_pod(
    render_chart: Render, scenario: str
) -> None:
    # An emptyDir would go with the pod (an upgrade replaces it): the next agent would
    # no longer know which NodePort virtual servers it made.
    objects = render_chart(SCENARIOS[scenario])
    container = agent(objects)
    mount = mount_holding(container, record_directory(container))
    assert mount is not None
    host_path = volumes_by_name(objects)[mount["name"]]["hostPath"]
    assert host_path["type"] == "DirectoryOrCreate"
    # Under /run, a tmpfs emptied at boot: the record must not outlive the node's
    # IPVS table, or it would claim a virtual server someone makes after a reboot.
    assert PurePosixPath(host_path["path"]).parts[:2] == ("/", "run")


def test_nodeport_record_is_the_nodes_run_ipvsctl_by_default(render_chart: Render) -> None:
    objects = render_chart()
    mounts = {m["name"]: m for m in agent(objects)["volumeMounts"]}
    assert mounts["nodeport-record"] == {"name": "nodeport-record", "mountPath": "/run/ipvsctl"}
    assert volumes_by_name(objects)["nodeport-record"]["hostPath"] == {
        "path": "/run/ipvsctl",
        "type": "DirectoryOrCreate",
    }


def test_nodeport_record_host_directory_comes_from_values(render_chart: Render) -> None:
    objects = render_chart({"nodePortRecord": {"hostPath": "/run/edge/ipvsctl"}})
    assert volumes_by_name(objects)["nodeport-record"]["hostPath"]["path"] == "/run/edge/ipvsctl"
    # In the container it stays where the agent looks for it by default.
    container = agent(objects)
    assert record_directory(container) == PurePosixPath("/run/ipvsctl")
    assert DIRECTORY_ENV not in env_values(container)


def test_the_init_container_does_not_get_the_record(render_chart: Render) -> None:
    # It only writes sysctls; a privileged container needs no more of the node than that.
    for init in init_containers(render_chart()):
        assert "nodeport-record" not in {m["name"] for m in init.get("volumeMounts", [])}
