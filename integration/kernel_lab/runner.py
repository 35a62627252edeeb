"""run_in_kernel: run one command in a kernel with IPVS: the host's, UML's,
or Debian's under QEMU."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import qemu_boot, uml_boot
from .errors import LabError
from .guest_env import guest_environment
from .guest_process import DEFAULT_MEMORY, DEFAULT_TIMEOUT, GuestFiles
from .host_kernel import host_has_ipvs, run_on_host
from .init_script import GuestRun, render_init_script
from .locations import CACHE_ENV, hidden_in_guest, host_tmp_dir, scratch_dir
from .modules import modules_to_load, netfilter_modules_to_load, persistence_engines
from .netns import GUEST_ENV, KERNEL_WIDE_ENV, in_own_network_namespace
from .provision import Lab, ensure_lab
from .qemu_provision import QemuLab, ensure_qemu_lab

Target = Literal["host", "uml", "qemu"]
TARGET_ENV = "IPVSCTL_LAB"
MEMORY_ENV = "IPVSCTL_LAB_MEM"
TIMEOUT_ENV = "IPVSCTL_LAB_TIMEOUT"
# The exit status when the lab itself failed, as docker run uses it.
LAB_FAILED = 125
INIT = "init"
KERNEL_LOG = "kernel.log"


def choose_target(
    environ: Mapping[str, str] = os.environ, probe: Callable[[], bool] = host_has_ipvs
) -> Target:
    """$IPVSCTL_LAB when set, else the host when its kernel has IPVS, else UML.

    QEMU is never chosen here: its kernel is slower, and asked for by name
    (``--qemu``, or the suite runner for the netfilter tests).
    """
    forced = environ.get(TARGET_ENV, "").strip().lower()
    if forced in ("host", "uml"):
        return "host" if forced == "host" else "uml"
    if forced:
        raise LabError(f"{TARGET_ENV}={forced!r}: expected 'uml' or 'host'")
    return "host" if probe() else "uml"


def run_in_kernel(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    env_extra: Mapping[str, str] | None = None,
    load_modules: bool = True,
    target: Target | None = None,
    memory: str | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``argv`` in a kernel with IPVS and return its exit status.

    The command runs in a network namespace of its own, on the host as in
    a guest, so it never sees or changes the host's IPVS table, links or
    addresses. ``target="qemu"`` picks Debian's kernel under QEMU, the one
    with nftables for IP traffic. When the lab itself fails, one line goes to
    stderr and the result is 125.
    """
    argv = in_own_network_namespace(argv)
    try:
        where = target or choose_target()
        if where == "host":
            return run_on_host(
                argv, cwd=Path(cwd), env_extra=env_extra or {}, load_modules=load_modules
            )
        spec = GuestSpec(
            argv=tuple(argv),
            cwd=Path(cwd).absolute(),
            env_extra=dict(env_extra or {}),
            load_modules=load_modules,
            memory=memory or os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY,
            timeout=timeout or float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT),
        )
        if where == "qemu":
            return run_in_qemu(ensure_qemu_lab(), spec)
        return run_in_uml(ensure_lab(), spec)
    except LabError as exc:
        print(f"kernel-lab: {exc}", file=sys.stderr, flush=True)
        return LAB_FAILED


@dataclass(frozen=True)
class GuestSpec:
    """One command to run in a guest kernel, and how."""

    argv: tuple[str, ...]
    cwd: Path
    env_extra: Mapping[str, str]
    load_modules: bool
    memory: str
    timeout: float


def run_in_uml(lab: Lab, spec: GuestSpec) -> int:
    modules = modules_to_load(persistence_engines(lab.modules_dir))
    with scratch_dir("run-") as run_dir:
        run = _write_init(run_dir, spec, modules, lab.modules_dir, lab.kernel_version, "uml")
        boot = uml_boot.Boot(
            kernel=lab.kernel,
            init=run_dir / INIT,
            files=GuestFiles(run_dir, run.output, run.status, run_dir / KERNEL_LOG),
            memory=spec.memory,
        )
        return uml_boot.boot_and_follow(boot, sys.stdout.buffer, spec.timeout)


def run_in_qemu(lab: QemuLab, spec: GuestSpec) -> int:
    modules = netfilter_modules_to_load(persistence_engines(lab.modules_dir))
    with scratch_dir("run-") as run_dir:
        run = _write_init(run_dir, spec, modules, lab.modules_dir, lab.kernel_version, "qemu")
        boot = qemu_boot.QemuBoot(
            kernel=lab.kernel,
            initrd=lab.initrd,
            init=run_dir / INIT,
            files=GuestFiles(run_dir, run.output, run.status, run_dir / KERNEL_LOG),
            memory=spec.memory,
        )
        return qemu_boot.boot_and_follow(boot, sys.stdout.buffer, spec.timeout)


def _write_init(
    run_dir: Path,
    spec: GuestSpec,
    modules: tuple[str, ...],
    modules_dir: Path,
    kernel_version: str,
    guest: str,
) -> GuestRun:
    """Write the guest's PID 1 script into ``run_dir``; what it runs and reports to."""
    needed = (
        (spec.cwd, "the directory"),
        (run_dir, f"the lab cache ({CACHE_ENV})"),
        (Path(sys.prefix), "the Python environment"),
    )
    for path, what in needed:
        if hidden_in_guest(path):
            raise LabError(f"{what} {path} is under /run, which the guest cannot see")
    tmp_dirs = {host_tmp_dir(path) for path, _ in needed}
    env = guest_environment(os.environ, {**_guest_markers(guest), **spec.env_extra})
    run = GuestRun(
        argv=spec.argv,
        cwd=spec.cwd,
        env=tuple(sorted(env.items())),
        modules=modules if spec.load_modules else (),
        modules_dir=modules_dir,
        kernel_version=kernel_version,
        output=run_dir / "output",
        status=run_dir / "status",
        host_tmp_dirs=tuple(sorted(d for d in tmp_dirs if d is not None)),
    )
    init = run_dir / INIT
    init.write_text(render_init_script(run))
    init.chmod(0o700)
    return run


def _guest_markers(guest: str) -> dict[str, str]:
    markers = {
        # Inside the guest its own kernel is "the host": nested runs go straight there.
        TARGET_ENV: "host",
        GUEST_ENV: guest,
        # A guest kernel is thrown away after the run: what a network
        # namespace cannot contain (module unloads) may be tested there.
        KERNEL_WIDE_ENV: "1",
    }
    if sys.stdout.isatty():
        # The guest's output is a file; keep pytest's lines as wide as the caller's terminal.
        markers["COLUMNS"] = str(shutil.get_terminal_size().columns)
    return markers
