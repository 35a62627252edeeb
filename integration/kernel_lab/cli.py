"""``python -m integration.kernel_lab``: run one command in a kernel with IPVS."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import LabError
from .provision import ensure_lab
from .qemu_provision import describe, ensure_qemu_lab
from .runner import LAB_FAILED, Target, run_in_kernel

DESCRIPTION = """\
Run CMD in a kernel with IPVS (the host's when it has IPVS, else a User-Mode
Linux kernel provisioned once from Debian sid), in a network namespace of its
own (the host's IPVS table, links and addresses stay out of reach), in the
current directory, and exit with CMD's status (125 when the lab itself failed).

--qemu runs CMD in Debian's own kernel (bookworm's linux-image-amd64) under
qemu-system-x86_64 instead: slower (emulated CPU), but with nftables for IP
traffic (NAT, masquerade, filter, reject), which UML's kernel lacks.

A single CMD argument holding a space is a shell command line, as with ssh:
  python -m integration.kernel_lab -- 'ip link add d0 type dummy && ip -br link show d0'

environment: IPVSCTL_LAB=uml|host  IPVSCTL_LAB_CACHE=DIR  IPVSCTL_LAB_MEM=SIZE
             IPVSCTL_LAB_TIMEOUT=SECONDS
"""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m integration.kernel_lab",
        usage="%(prog)s [--uml|--qemu|--host] [--no-modules] [--mem SIZE] [--timeout S] [--] CMD "
        "[ARGS...]\n       %(prog)s --setup",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--uml", dest="target", action="store_const", const="uml")
    where.add_argument("--qemu", dest="target", action="store_const", const="qemu")
    where.add_argument("--host", dest="target", action="store_const", const="host")
    parser.add_argument("--no-modules", action="store_true", help="skip the modprobes")
    parser.add_argument("--mem", help="guest memory (default 1G)")
    parser.add_argument("--timeout", type=float, help="seconds before the guest is killed")
    parser.add_argument(
        "--setup", action="store_true", help="only provision the UML and QEMU kernels"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.command = command_argv(args.command)
    if not args.setup and not args.command:
        parser.print_usage(sys.stderr)
        parser.exit(2, f"{parser.prog}: error: no CMD given\n")
    return args


def command_argv(words: Sequence[str]) -> list[str]:
    """The command to run: after an optional ``--``; one word with a space runs in sh."""
    words = list(words[1:] if words[:1] == ["--"] else words)
    if len(words) == 1 and any(c.isspace() for c in words[0]):
        return ["sh", "-c", words[0]]
    return words


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.setup:
        return setup()
    target: Target | None = args.target
    with exit_cleanly_on_signals():
        return run_in_kernel(
            args.command,
            cwd=Path(os.getcwd()),
            load_modules=not args.no_modules,
            target=target,
            memory=args.mem,
            timeout=args.timeout,
        )


@contextmanager
def exit_cleanly_on_signals() -> Iterator[None]:
    """Turn Ctrl-C and SIGTERM into a quiet exit that still stops the guest
    and removes its run directory (both happen in ``finally`` blocks)."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    except KeyboardInterrupt:
        print("kernel-lab: interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)


def setup() -> int:
    """Provision both guest kernels; the QEMU one is brought up to date with the mirror."""
    try:
        lab = ensure_lab()
        qemu_lab = ensure_qemu_lab(refresh=True)
    except LabError as exc:
        print(f"kernel-lab: {exc}", file=sys.stderr)
        return LAB_FAILED
    packages = ", ".join(f"{name} {version}" for name, version in lab.packages)
    print(f"kernel-lab: UML {lab.kernel_version} in {lab.root}")
    print(f"kernel-lab: kernel {lab.kernel}")
    print(f"kernel-lab: packages {packages} (Release verified with {lab.keyring})")
    print(f"kernel-lab: {describe(qemu_lab)} (Release verified with {qemu_lab.keyring})")
    return 0
