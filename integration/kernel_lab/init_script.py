"""The guest's PID 1: a shell script that prepares the kernel, runs one
command, and hands its output and exit status back through host files."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from .guest_env import SYSTEM_PATH

SETUP_FAILED = 125


@dataclass(frozen=True)
class GuestRun:
    """What the guest runs, and where it reports."""

    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...]
    modules: tuple[str, ...]
    modules_dir: Path
    kernel_version: str
    output: Path
    status: Path
    # Host directories under /tmp the run needs (a checkout there, say): bound
    # back over the guest's own /tmp at the same paths.
    host_tmp_dirs: tuple[Path, ...] = ()


def render_init_script(run: GuestRun) -> str:
    q = shlex.quote
    return "\n".join(
        [
            "#!/bin/sh",
            "# PID 1 of a kernel-lab guest, UML or QEMU (written by integration.kernel_lab).",
            f"PATH={':'.join(SYSTEM_PATH)}; export PATH",
            f"out={q(str(run.output))}",
            f"status={q(str(run.status))}",
            _FINISH,
            "{",
            *_prepare_kernel(run),
            '} >>"$out" 2>&1',
            f'cd {q(str(run.cwd))} 2>>"$out" || {{',
            f'  printf "%s\\n" {q(_cwd_hidden(run.cwd))} >>"$out"',
            f"  finish {SETUP_FAILED}",
            "}",
            "(",
            *(f"export {name}={q(value)}" for name, value in run.env),
            "exec " + " ".join(q(arg) for arg in run.argv),
            ') >>"$out" 2>&1 </dev/null',
            "finish $?",
            "",
        ]
    )


def _cwd_hidden(cwd: Path) -> str:
    return f"kernel-lab: cannot enter {cwd} in the guest (its /tmp and /run are its own)"


# PID 1 exiting panics the kernel and its exit status never reaches the host,
# so the status goes to a host file (renamed into place: the harness must
# never read it half written) and the guest powers itself off.
_FINISH = """finish() {
  echo "$1" >"$status.tmp" && mv "$status.tmp" "$status"
  poweroff -f 2>/dev/null
  # No systemd (so no poweroff) on minimal hosts: sysrq o powers off too.
  echo o >/proc/sysrq-trigger
  sleep 60
}"""


def _private_tmp(keep: tuple[Path, ...]) -> list[str]:
    """A tmpfs on /tmp, with the host directories in `keep` bound back into it."""
    if not keep:
        return ["mount -t tmpfs tmpfs /tmp"]
    q = shlex.quote
    lines = ["mkdir /run/host-tmp", "mount --bind /tmp /run/host-tmp", "mount -t tmpfs tmpfs /tmp"]
    for path in keep:
        inside = Path("/run/host-tmp") / path.relative_to("/tmp")
        lines += [f"mkdir -p {q(str(path))}", f"mount --bind {q(str(inside))} {q(str(path))}"]
    return lines


def _prepare_kernel(run: GuestRun) -> list[str]:
    q = shlex.quote
    lines = [
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "mount -t tmpfs tmpfs /run",
        *_private_tmp(run.host_tmp_dirs),
        # modprobe (and the kernel's own module requests) only look in
        # /lib/modules; a tmpfs there keeps the host's modules out of sight.
        "[ -d /lib/modules ] || mkdir -p /lib/modules",
        "mount -t tmpfs tmpfs /lib/modules",
        f"ln -s {q(str(run.modules_dir))} /lib/modules/{q(run.kernel_version)}",
        # Until lo is up the local routing table does not exist, and adding any
        # real server fails with EINVAL ("address not unicast").
        "ip link set lo up",
    ]
    if run.modules:
        names = " ".join(q(m) for m in run.modules)
        lines.append(f'modprobe -a {names} || echo "kernel-lab: modprobe failed (above)"')
    return lines
