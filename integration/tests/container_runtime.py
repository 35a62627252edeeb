"""What a container runtime does to start a container, as one shell script.

The lab's pod tests (pod_sandbox.py plays the kubelet) hand this a container
as the kubelet hands it to containerd or CRI-O: the command and environment,
the mounts with their sources on the node, and the Linux security settings.
`setup_script` returns what `unshare --mount --pid --fork` runs as the
container's first process: it builds the container's view of the machine in
that private mount namespace, then execs the command with only the privileges
the pod gives it. What it builds, as runc does for a pod that is not
privileged:

- the root filesystem read-only (readOnlyRootFilesystem): a bind remount of
  each mount the namespace inherited. A bind remount changes that mount in
  this namespace only, never the filesystem under it, so nothing outside sees
  it; the image's /run is an empty tmpfs (the lab's own /run holds its
  network namespaces, which the image has not);
- a /dev of its own (a tmpfs with the usual device nodes), so nothing the
  container does there reaches the machine's;
- /sys and the kernel's tunables under /proc (/proc/sys, /proc/sysrq-trigger,
  ...) read-only, as runtimes mount them whatever capabilities the container
  has;
- each volume: a fresh tmpfs of the volume's size, or a bind of a directory of
  the node (the caller's stand-in for the node's root, reached through an open
  file descriptor, since a tmpfs mounted earlier may cover its path);
- then `setpriv`: the user and group, the capability bounding set (hence the
  permitted and effective sets of uid 0 after exec), no inheritable or ambient
  capabilities, no_new_privs; and `env -i` with the container's environment only.

A privileged container keeps every capability and a writable /sys and /proc.
The process's PID namespace is the container's own (hostPID false), so the
command runs as its PID 1, with the signal handling that implies.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

# containerd's and CRI-O's default capability set, before drop and add.
DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
# runc's readonlyPaths for a container that is not privileged (the ones that exist).
READ_ONLY_PROC = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# Mounts the runtime makes itself: what the namespace inherited there is not the image's.
SYS = PurePosixPath("/sys")
RUNTIME_MOUNTS = (PurePosixPath("/proc"), SYS, PurePosixPath("/dev"))
IMAGE_RUN = PurePosixPath("/run")
# Device nodes of a container's /dev: name, mode, major, minor.
DEVICES = (
    ("null", "666", 1, 3),
    ("zero", "666", 1, 5),
    ("full", "666", 1, 7),
    ("random", "666", 1, 8),
    ("urandom", "666", 1, 9),
    ("tty", "666", 5, 0),
)
# Per-mount flags a bind remount would otherwise clear.
KEPT_FLAGS = ("nosuid", "nodev", "noexec")
HOST_ROOT_FD = 9


class Unsupported(ValueError):
    """A pod setting this stand-in cannot give faithfully; the message names it."""


@dataclass(frozen=True)
class Mount:
    """One mount the namespace inherits (a line of /proc/self/mountinfo)."""

    target: PurePosixPath
    options: frozenset[str]  # the per-mount ones: ro, nosuid, nodev, noexec, ...


@dataclass(frozen=True)
class VolumeMount:
    """A volume where the container sees it: a fresh tmpfs (`size` bytes, None: the
    kernel's default), or a bind of `node_path`, a path on the node."""

    target: PurePosixPath
    read_only: bool = False
    node_path: PurePosixPath | None = None
    size: int | None = None


@dataclass(frozen=True)
class Security:
    """The container's Linux security settings, as the kubelet passes them on."""

    uid: int = 0
    gid: int = 0
    privileged: bool = False
    read_only_root: bool = False
    no_new_privs: bool = False
    add: frozenset[str] = frozenset()
    drop: frozenset[str] = frozenset()

    def capabilities(self) -> frozenset[str] | None:
        """The capabilities the process holds; None: every one (privileged)."""
        if self.privileged:
            return None
        kept = frozenset() if "ALL" in self.drop else DEFAULT_CAPABILITIES - self.drop
        return kept | self.add


@dataclass(frozen=True)
class Container:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    security: Security
    mounts: tuple[VolumeMount, ...] = ()
    workdir: str = "/"


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of /proc/self/mountinfo, in its order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6:
            target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
            mounts.append(Mount(PurePosixPath(target), frozenset(fields[5].split(","))))
    return mounts


def setup_script(container: Container, inherited: Sequence[Mount], node_root: PurePosixPath) -> str:
    """The shell script that makes the container from the namespace's `inherited` mounts
    and execs its command; `node_root` stands in for the node's filesystem."""
    security = container.security
    if not security.read_only_root:
        # A writable root needs a copy-on-write layer over the image; without one,
        # the container would write into the machine's own files.
        raise Unsupported("readOnlyRootFilesystem: false (no writable image layer here)")
    lines = [
        "set -eu",
        # unshare made every mount private already; say it again, since everything
        # below relies on it: no mount made here may propagate out.
        "mount --make-rprivate /",
        # Open before anything can cover its path (an emptyDir on /tmp, say).
        f"exec {HOST_ROOT_FD}<{shlex.quote(str(node_root))}",
        *_read_only_root(inherited),
        *_image_run(container.mounts),
        *_own_dev(),
        *([] if security.privileged else _read_only_kernel(inherited)),
        *_volumes(container.mounts),
        f"exec {HOST_ROOT_FD}<&-",
        f"cd {shlex.quote(container.workdir)}",
        _exec(container),
    ]
    return "\n".join(lines) + "\n"


def _under(path: PurePosixPath, roots: Iterable[PurePosixPath]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _remount(target: PurePosixPath, options: frozenset[str], mode: str) -> str:
    flags = ",".join(["remount", "bind", mode, *(f for f in KEPT_FLAGS if f in options)])
    return f"mount -o {flags} {shlex.quote(str(target))}"


def _read_only_root(inherited: Sequence[Mount]) -> list[str]:
    """Every inherited mount read-only but the runtime's own and /run (covered next)."""
    seen: dict[PurePosixPath, frozenset[str]] = {}
    for mount in inherited:
        if not _under(mount.target, (*RUNTIME_MOUNTS, IMAGE_RUN)):
            seen[mount.target] = mount.options  # the last one is the one on top
    return [_remount(target, options, "ro") for target, options in seen.items()]


def _image_run(mounts: Sequence[VolumeMount]) -> list[str]:
    """An empty, read-only /run, with the mount points the volumes need in it."""
    points = sorted({str(m.target) for m in mounts if IMAGE_RUN in m.target.parents})
    return [
        "mount -t tmpfs -o mode=0755,nosuid,nodev image-run /run",
        *(f"mkdir -p {shlex.quote(point)}" for point in points),
        "mount -o remount,ro,mode=0755,nosuid,nodev image-run /run",
    ]


def _own_dev() -> list[str]:
    lines = ["mount -t tmpfs -o mode=0755,nosuid,size=65536k container-dev /dev"]
    for name, mode, major, minor in DEVICES:
        lines.append(f"mknod -m {mode} /dev/{name} c {major} {minor}")
    lines += [
        "mkdir -m 1777 /dev/shm",
        "mount -t tmpfs -o mode=1777,nosuid,nodev,noexec,size=65536k shm /dev/shm",
        "ln -s /proc/self/fd /dev/fd",
        *(f"ln -s /proc/self/fd/{n} /dev/{name}" for n, name in enumerate(_STDIO)),
    ]
    return lines


_STDIO = ("stdin", "stdout", "stderr")


def _read_only_kernel(inherited: Sequence[Mount]) -> list[str]:
    """/sys read-only, and /proc's kernel tunables (each only where it exists)."""
    sys_mounts = {m.target: m.options for m in inherited if _under(m.target, (SYS,))}
    lines = [_remount(target, options, "ro") for target, options in sys_mounts.items()]
    for path in READ_ONLY_PROC:
        quoted = shlex.quote(path)
        lines.append(
            f"if [ -e {quoted} ]; then mount --bind {quoted} {quoted}; "
            f"mount -o remount,bind,ro,nosuid,nodev,noexec {quoted}; fi"
        )
    return lines


def _volumes(mounts: Sequence[VolumeMount]) -> list[str]:
    """Each volume, parents before children (as runtimes order them)."""
    lines = []
    for mount in sorted(mounts, key=lambda m: len(m.target.parts)):
        target = shlex.quote(str(mount.target))
        mode = "ro" if mount.read_only else "rw"
        # A mount point inside an earlier volume is made there; anywhere else the root
        # is read-only by now, so a missing one fails here rather than being written.
        lines.append(f"[ -d {target} ] || mkdir -p {target}")
        if mount.node_path is None:
            size = f",size={mount.size}" if mount.size is not None else ""
            lines.append(f"mount -t tmpfs -o {mode},nosuid,nodev,mode=0777{size} volume {target}")
            continue
        relative = str(mount.node_path).lstrip("/")
        # Through the open descriptor, not canonicalized: the node's root may lie under
        # a tmpfs mounted above (an emptyDir at /tmp, say), which hides its path.
        source = shlex.quote(f"/proc/self/fd/{HOST_ROOT_FD}/{relative}")
        lines.append(f"mount --no-canonicalize --bind {source} {target}")
        # A bind copies the flags of its source's mount, read-only by now: set them.
        lines.append(f"mount -o remount,bind,{mode},nosuid,nodev {target}")
    return lines


def _exec(container: Container) -> str:
    security = container.security
    setpriv = [
        "setpriv",
        f"--reuid={security.uid}",
        f"--regid={security.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--ambient-caps=-all",
    ]
    capabilities = security.capabilities()
    if capabilities is not None:
        # uid 0's permitted and effective sets after exec are its bounding set.
        kept = "".join(f",+{name.lower()}" for name in sorted(capabilities))
        setpriv.append(f"--bounding-set=-all{kept}")
    if security.no_new_privs:
        setpriv.append("--no-new-privs")
    env = [f"{name}={value}" for name, value in container.env]
    argv = [*setpriv, "--", "env", "-i", "--", *env, *container.argv]
    return "exec " + " ".join(shlex.quote(arg) for arg in argv)
