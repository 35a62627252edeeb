"""run_in_kernel: run one command in a kernel with IPVS, the host's or UML's."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from . import uml_boot
from .errors import LabError
from .guest_env import guest_environment
from .host_kernel import host_has_ipvs, run_on_host
from .init_script import GuestRun, render_init_script
from .locations import CACHE_ENV, hidden_in_guest, host_tmp_dir, scratch_dir
from .modules import modules_to_load, persistence_engines
from .netns import GUEST_ENV, in_own_network_namespace
from .provision import Lab, ensure_lab

Target = Literal["host", "uml"]
TARGET_ENV = "IPVSCTL_LAB"
MEMORY_ENV = "IPVSCTL_LAB_MEM"
TIMEOUT_ENV = "IPVSCTL_LAB_TIMEOUT"
# The exit status when the lab itself failed, as docker run uses it.
LAB_FAILED = 125


def choose_target(
    environ: Mapping[str, str] = os.environ, probe: Callable[[], bool] = host_has_ipvs
) -> Target:
    """$IPVSCTL_LAB when set, else the host when its kernel has IPVS, else UML."""
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
    UML, so it never sees or changes the host's IPVS table, links or
    addresses. When the lab itself fails, one line goes to stderr and the
    result is 125.
    """
    argv = in_own_network_namespace(argv)
    try:
        where = target or choose_target()
        if where == "host":
            return run_on_host(
                argv, cwd=Path(cwd), env_extra=env_extra or {}, load_modules=load_modules
            )
        return run_in_uml(
            ensure_lab(),
            argv,
            cwd=Path(cwd).absolute(),
            env_extra=env_extra or {},
            load_modules=load_modules,
            memory=memory or os.environ.get(MEMORY_ENV) or uml_boot.DEFAULT_MEMORY,
            timeout=timeout or float(os.environ.get(TIMEOUT_ENV) or uml_boot.DEFAULT_TIMEOUT),
        )
    except LabError as exc:
        print(f"kernel-lab: {exc}", file=sys.stderr, flush=True)
        return LAB_FAILED


def run_in_uml(
    lab: Lab,
    argv: Sequence[str],
    *,
    cwd: Path,
    env_extra: Mapping[str, str],
    load_modules: bool,
    memory: str,
    timeout: float,
) -> int:
    with scratch_dir("run-") as run_dir:
        needed = (
            (cwd, "the directory"),
            (run_dir, f"the lab cache ({CACHE_ENV})"),
            (Path(sys.prefix), "the Python environment"),
        )
        for path, what in needed:
            if hidden_in_guest(path):
                raise LabError(f"{what} {path} is under /run, which the guest cannot see")
        tmp_dirs = {host_tmp_dir(path) for path, _ in needed}
        modules = modules_to_load(persistence_engines(lab.modules_dir)) if load_modules else ()
        env = guest_environment(os.environ, {**_guest_markers(), **env_extra})
        run = GuestRun(
            argv=tuple(argv),
            cwd=cwd,
            env=tuple(sorted(env.items())),
            modules=modules,
            modules_dir=lab.modules_dir,
            kernel_version=lab.kernel_version,
            output=run_dir / "output",
            status=run_dir / "status",
            host_tmp_dirs=tuple(sorted(d for d in tmp_dirs if d is not None)),
        )
        init = run_dir / "init"
        init.write_text(render_init_script(run))
        init.chmod(0o700)
        boot = uml_boot.Boot(
            kernel=lab.kernel,
            init=init,
            run_dir=run_dir,
            output=run.output,
            status=run.status,
            kernel_log=run_dir / "kernel.log",
            memory=memory,
        )
        return uml_boot.boot_and_follow(boot, sys.stdout.buffer, timeout)


def _guest_markers() -> dict[str, str]:
    markers = {
        # Inside the guest its own kernel is "the host": nested runs go straight there.
        TARGET_ENV: "host",
        GUEST_ENV: "uml",
    }
    if sys.stdout.isatty():
        # The guest's output is a file; keep pytest's lines as wide as the caller's terminal.
        markers["COLUMNS"] = str(shutil.get_terminal_size().columns)
    return markers
