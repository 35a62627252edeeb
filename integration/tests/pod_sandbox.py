"""A rendered pod, started as the kubelet starts it, inside the lab's namespaces.

`PodSandbox` plays the kubelet for one pod of a rendered DaemonSet on a node
that is the lab's network namespace (the pod has hostNetwork): it reads the
pod's containers exactly as rendered (command, args, env, securityContext,
volumeMounts) and its volumes, does the node's side of each volume under a
test-owned directory standing in for the node's root (hostPath directories,
the projected service account token), works out each container's environment
(the downward API, the `kubernetes` Service's variables, `$(VAR)` expansion),
and hands the result to container_runtime.py, which plays the container
runtime. Init containers run to completion first, in order. A container is
stopped as the kubelet stops one: SIGTERM to its PID 1, SIGKILL after the
pod's terminationGracePeriodSeconds.

What the image would hold stands in as `Image`: this checkout's code and
virtualenv, and the Dockerfile's environment. Settings this cannot give
faithfully raise `Unsupported` naming them, never pass silently.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from integration.kernel_lab.guest_env import SYSTEM_PATH
from integration.tests.container_runtime import (
    Container,
    Security,
    Unsupported,
    VolumeMount,
    parse_mountinfo,
    setup_script,
)

Manifest = dict[str, Any]
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
INIT_TIMEOUT = 60.0  # seconds an init container may take: a guard, not a measurement
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_QUANTITY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


@dataclass(frozen=True)
class Node:
    """The node the pod runs on. `root` stands in for its filesystem: hostPath volumes
    and the kubelet's own files live under it, so nothing real is written."""

    name: str
    address: str  # status.hostIP, and status.podIP of a hostNetwork pod
    root: Path


@dataclass(frozen=True)
class Cluster:
    """What the kubelet gives every pod of the cluster: the `kubernetes` Service's
    address, and the service account's token with the cluster CA."""

    api_host: str
    api_port: int
    token: str
    ca_cert: Path


@dataclass(frozen=True)
class Image:
    """The image's part: its environment (ENV) and working directory."""

    env: tuple[tuple[str, str], ...]
    workdir: str = "/"


def checkout_image(checkout: Path) -> Image:
    """This checkout as the image: `ipvsctl` on PATH from the running virtualenv, the
    checkout's package first on the import path, and the Dockerfile's ENV."""
    path = ":".join([str(Path(sys.prefix) / "bin"), *SYSTEM_PATH])
    return Image(
        (
            ("PATH", path),
            ("PYTHONPATH", str(checkout)),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONUNBUFFERED", "1"),
            ("LANG", "C.UTF-8"),
        )
    )


def quantity(text: str) -> int:
    """A Kubernetes quantity of bytes ("16Mi", "1G", "512"), as an integer."""
    match = _QUANTITY.match(str(text))
    if match is None:
        raise Unsupported(f"quantity {text!r}")
    return int(match[1]) * _UNITS[match[2]]


def expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion: a defined variable is replaced, an undefined
    reference stays as written, `$$` is one `$`."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _REFERENCE.sub(one, text)


class RunningContainer:
    """A started container: its PID 1 as the lab sees it, its log, stopping it."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path, grace: float):
        self.name, self.process, self.log, self.grace = name, process, log, grace

    @property
    def pid(self) -> int:
        """The container's PID 1 (the command, once the runtime's script exec'd it)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = _children(self.process.pid)
            if children:
                return children[0]
            if self.process.poll() is not None:
                status = self.process.returncode
                raise AssertionError(f"{self.name} exited {status}:\n{self.logs()}")
            time.sleep(0.01)
        raise AssertionError(f"{self.name}: the runtime forked no process")

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after the grace period, as the kubelet stops it; the
        exit status. Fails when SIGTERM alone did not end it."""
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} ignored SIGTERM for {self.grace} s:\n{self.logs()}"
            ) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            with suppress(AssertionError, ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


class PodSandbox:
    """One pod of a rendered DaemonSet on `node` (see the module's docstring)."""

    def __init__(
        self, daemonset: Manifest, node: Node, cluster: Cluster, image: Image, logs: Path
    ) -> None:
        self.spec: Manifest = daemonset["spec"]["template"]["spec"]
        self.namespace: str = daemonset["metadata"]["namespace"]
        self.name = f"{daemonset['metadata']['name']}-pod"
        self.uid = "0000-pod-sandbox"
        self.node, self.cluster, self.image, self.logs = node, cluster, image, logs
        self.started: list[RunningContainer] = []
        if not self.spec.get("hostNetwork"):
            raise Unsupported("a pod without hostNetwork (the sandbox has the lab's network)")
        logs.mkdir(parents=True, exist_ok=True)
        self._prepare_node()

    # -- the containers ----------------------------------------------------------

    def run_init_containers(self) -> None:
        """Each init container, in order, to a zero exit (else the pod never starts)."""
        for spec in self.spec.get("initContainers", []):
            started = self._start(spec)
            try:
                status = started.process.wait(timeout=INIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                started.kill()
                raise AssertionError(f"init container {spec['name']} did not finish") from None
            if status != 0:
                logs = started.logs()
                raise AssertionError(f"init container {spec['name']} exited {status}:\n{logs}")

    def start(self, name: str) -> RunningContainer:
        return self._start(self.container(name))

    def container(self, name: str) -> Manifest:
        """The rendered spec of container `name`."""
        specs: list[Manifest] = [c for c in self.spec["containers"] if c["name"] == name]
        (spec,) = specs
        return spec

    def _start(self, spec: Manifest) -> RunningContainer:
        container = self.container_config(spec)
        inherited = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        script = setup_script(container, inherited, PurePosixPath(self.node.root))
        log = self.logs / f"{spec['name']}.log"
        unshare = ["unshare", "--mount", "--propagation", "private"]
        unshare += ["--pid", "--fork", "--mount-proc", "--kill-child"]
        with log.open("ab") as out:
            process = subprocess.Popen(
                [*unshare, "--", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        self.started.append(RunningContainer(spec["name"], process, log, grace))
        return self.started[-1]

    def kill(self) -> None:
        """SIGKILL every container still running (the test's cleanup)."""
        for container in self.started:
            container.kill()

    # -- what the kubelet hands the runtime -----------------------------------------

    def container_config(self, spec: Manifest) -> Container:
        for field in ("workingDir", "envFrom", "lifecycle", "stdin", "tty"):
            if spec.get(field):
                raise Unsupported(f"container {spec['name']}: {field}")
        env = self.environment(spec)
        declared = dict(self._declared_env(spec))
        command = [expand(arg, declared) for arg in spec.get("command", [])]
        args = [expand(arg, declared) for arg in spec.get("args", [])]
        if not command:
            raise Unsupported(f"container {spec['name']}: no command (the image's entrypoint)")
        return Container(
            argv=(*command, *args),
            env=tuple(env.items()),
            security=self.security(spec),
            mounts=tuple(self.volume_mounts(spec)),
            workdir=self.image.workdir,
        )

    def environment(self, spec: Manifest) -> dict[str, str]:
        """The image's ENV, then what the runtime and kubelet set, the pod's env last."""
        env = dict(self.image.env)
        env["HOSTNAME"] = os.uname().nodename  # a hostNetwork pod's is the node's
        env.setdefault("HOME", "/root" if self.security(spec).uid == 0 else "/")
        env.update(self._declared_env(spec))
        return env

    def _declared_env(self, spec: Manifest) -> Iterator[tuple[str, str]]:
        """The `kubernetes` Service's variables (set even with enableServiceLinks false),
        then the container's env, each `$(VAR)` expanded with what came before."""
        host, port = self.cluster.api_host, str(self.cluster.api_port)
        url = f"tcp://{host}:{port}"
        defined = {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": url,
            f"KUBERNETES_PORT_{port}_TCP": url,
            f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_PORT": port,
            f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
        }
        for entry in spec.get("env", []):
            if "valueFrom" in entry:
                defined[entry["name"]] = self._field(entry["name"], entry["valueFrom"])
            else:
                defined[entry["name"]] = expand(entry.get("value", ""), defined)
        yield from defined.items()

    def _field(self, name: str, source: Manifest) -> str:
        path = source.get("fieldRef", {}).get("fieldPath")
        fields: dict[str, str] = {
            "spec.nodeName": self.node.name,
            "spec.serviceAccountName": str(self.spec.get("serviceAccountName", "default")),
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "status.hostIP": self.node.address,
            "status.podIP": self.node.address,
        }
        if path not in fields:
            raise Unsupported(f"env {name}: valueFrom {source}")
        return fields[path]

    def security(self, spec: Manifest) -> Security:
        pod, own = self.spec.get("securityContext", {}), spec.get("securityContext", {})
        capabilities = own.get("capabilities", {})
        privileged = bool(own.get("privileged", False))
        added = frozenset(capabilities.get("add", []))
        return Security(
            uid=int(own.get("runAsUser", pod.get("runAsUser", 0))),
            gid=int(own.get("runAsGroup", pod.get("runAsGroup", 0))),
            privileged=privileged,
            read_only_root=bool(own.get("readOnlyRootFilesystem", False)),
            # Kubernetes' rule: no_new_privs unless escalation is allowed, which privileged
            # and CAP_SYS_ADMIN imply.
            no_new_privs=own.get("allowPrivilegeEscalation") is False
            and not privileged
            and "SYS_ADMIN" not in added,
            add=added,
            drop=frozenset(capabilities.get("drop", [])),
        )

    def volume_mounts(self, spec: Manifest) -> Iterator[VolumeMount]:
        volumes = {volume["name"]: volume for volume in self.spec.get("volumes", [])}
        for mount in spec.get("volumeMounts", []):
            for field in ("subPath", "subPathExpr", "mountPropagation"):
                if field in mount:
                    raise Unsupported(f"volumeMount {mount['name']}: {field}")
            volume = volumes[mount["name"]]
            target = _in_image(mount["mountPath"])
            read_only = bool(mount.get("readOnly", False))
            if "emptyDir" in volume:
                limit = (volume["emptyDir"] or {}).get("sizeLimit")
                size = quantity(limit) if limit is not None else None
                yield VolumeMount(target, read_only, size=size)
            elif "hostPath" in volume:
                node_path = PurePosixPath(volume["hostPath"]["path"])
                yield VolumeMount(target, read_only, node_path=node_path)
            else:
                raise Unsupported(f"volume {volume['name']}: {sorted(volume)}")
        if self.spec.get("automountServiceAccountToken", True):
            yield VolumeMount(
                _in_image(SERVICE_ACCOUNT_DIR), read_only=True, node_path=self._account_dir()
            )

    # -- the node's side ---------------------------------------------------------

    def _prepare_node(self) -> None:
        """hostPath directories (their type checked as the kubelet checks it), and the
        service account files the kubelet projects."""
        for volume in self.spec.get("volumes", []):
            if "hostPath" in volume:
                _host_path(self.node.root, volume["hostPath"])
        if self.spec.get("automountServiceAccountToken", True):
            account = self.node.root / str(self._account_dir()).lstrip("/")
            account.mkdir(parents=True, exist_ok=True)
            (account / "token").write_text(self.cluster.token)
            (account / "ca.crt").write_bytes(self.cluster.ca_cert.read_bytes())
            (account / "namespace").write_text(self.namespace)

    def _account_dir(self) -> PurePosixPath:
        projected = "volumes/kubernetes.io~projected/kube-api-access"
        return PurePosixPath("/var/lib/kubelet/pods") / self.uid / projected


def node_path(root: Path, path: str) -> Path:
    """Where the node's `path` is in the stand-in for its root."""
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts:
        raise Unsupported(f"hostPath {path!r}")
    return root / str(pure).lstrip("/")


def _host_path(root: Path, host_path: Manifest) -> None:
    where, kind = node_path(root, host_path["path"]), host_path.get("type", "")
    if kind == "DirectoryOrCreate":
        where.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        where.parent.mkdir(parents=True, exist_ok=True)
        where.touch(mode=0o644)
    elif kind in ("Directory", "File", ""):
        # The kubelet refuses to start the pod; here, the test's node lacks what it needs.
        wanted = where.is_dir() if kind == "Directory" else where.exists()
        if not wanted:
            raise AssertionError(f"hostPath {host_path['path']}: missing on the test's node")
    else:
        raise Unsupported(f"hostPath type {kind}")


def _in_image(path: str) -> PurePosixPath:
    """A mount path as the runtime resolves it in the image (/var/run -> /run)."""
    return PurePosixPath(os.path.realpath(path))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                # The command name is in parentheses and may hold spaces: split after it.
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)
