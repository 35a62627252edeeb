"""Running `nft`: read ipvsctl's table, apply a transaction, delete the table, probe the
kernel. The only place here that leaves the process.

`nft` (the nftables package's command, found on PATH) rather than libnftables
through ctypes: the command is what knftables drives for kube-proxy, its text
input is what `diff` shows and a person can replay, and a failing run leaves
nothing behind (a library call in our process could). Each run is bounded by a
timeout; a failure is one `NetfilterError` line naming the command and what
nft said.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import NamedTuple

from ipvsctl.netfilter.desired import NetfilterOptions
from ipvsctl.netfilter.ruleset import FAMILY, TABLE, static_ruleset
from ipvsctl.netfilter.table_state import ABSENT, TableState, parse_listing
from ipvsctl.netfilter.transaction import create_transaction, delete_transaction

DEFAULT_TIMEOUT = 30.0
# nft's error for a table that is not there (strerror(ENOENT), in the C locale).
_NO_SUCH_TABLE = "No such file or directory"


class NetfilterError(Exception):
    """An nft run that failed: `nft -f -: Error: Could not process rule: ...`; `first`
    is nft's first error alone (a refused table makes every later line fail too)."""

    def __init__(self, message: str, first: str = "") -> None:
        super().__init__(message)
        self.first = first or message


class Support(NamedTuple):
    """Whether ipvsctl's table can be made here, and if not, why (one line)."""

    ok: bool
    reason: str = ""


class NftTable:
    """ipvsctl's `inet ipvsctl` table, through the `nft` command."""

    def __init__(self, binary: str = "nft", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.binary, self.timeout = binary, timeout

    def installed(self) -> bool:
        """Whether the nft command is here at all."""
        return shutil.which(self.binary) is not None

    def read(self) -> TableState:
        """What the table holds (`ABSENT` when there is none)."""
        # -p: protocols as numbers. Naming them costs nft a lookup in /etc/protocols per
        # element of a set with an inet_proto field: 10 s instead of 0.7 s for 3,000
        # (measured under QEMU).
        args = ["-j", "-p", "list", "table", FAMILY, TABLE]
        result = self._run(args, check=False)
        if result.returncode != 0:
            if _NO_SUCH_TABLE in result.stderr:
                return ABSENT
            raise _failure(self.binary, args, result.stderr)
        try:
            return parse_listing(result.stdout)
        except ValueError as error:
            raise NetfilterError(f"{_command(self.binary, args)}: {error}") from None

    def apply(self, transaction: str) -> None:
        """Carry out one transaction (`nft -f -`): all of it, or none of it."""
        if transaction:
            self._run(["-f", "-"], transaction)

    def delete(self) -> None:
        """Remove the table, and nothing else; nothing happens when there is none."""
        self._run(["-f", "-"], delete_transaction())

    def supported(self) -> Support:
        """Whether this kernel (and this nft) can hold ipvsctl's table.

        Asks the kernel itself, changing nothing: `nft --check` sends the whole
        transaction that makes the table (every chain type, expression and set
        type it uses) to the kernel, which checks every part of it and then
        throws it away, since nft leaves out the batch's commit. A kernel
        without nftables for IP traffic (NF_TABLES_INET unset, as in the
        User-Mode Linux lab) refuses the `inet` table; one without NAT chains
        or concatenated interval sets refuses those.
        """
        probe = create_transaction(static_ruleset(NetfilterOptions()), ())
        try:
            self._run(["--check", "-f", "-"], probe)
        except NetfilterError as error:
            return Support(False, error.first)
        return Support(True)

    def _run(
        self, args: Sequence[str], stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *args]
        try:
            result = subprocess.run(
                command,
                input=stdin,
                # nft reads no input but `-f -`; never the caller's terminal.
                stdin=subprocess.DEVNULL if stdin is None else None,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env={**os.environ, "LC_ALL": "C"},
                check=False,
            )
        except FileNotFoundError:
            raise NetfilterError(
                f"{_command(self.binary, args)}: {self.binary} not found (install nftables)"
            ) from None
        except subprocess.TimeoutExpired:
            raise NetfilterError(
                f"{_command(self.binary, args)}: no answer in {self.timeout:g} s"
                + (" (the table may or may not have changed)" if stdin else "")
            ) from None
        except OSError as error:
            raise NetfilterError(f"{_command(self.binary, args)}: {error}") from None
        if check and result.returncode != 0:
            raise _failure(self.binary, args, result.stderr)
        return result


def _command(binary: str, args: Sequence[str]) -> str:
    return " ".join([os.path.basename(binary), *args])


def _failure(binary: str, args: Sequence[str], stderr: str) -> NetfilterError:
    """One line: the command, then nft's errors, each with the input line it names.

    nft prints `<stdin>:3:33-39: Error: ...`, the input line, then a caret line.
    """
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    errors: list[str] = []
    for index, line in enumerate(lines):
        if "Error:" not in line:
            continue
        text = line.strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if following and "Error:" not in following and set(following) - {"^", "~", " "}:
            text += f" (in: {following[:160]})"
        errors.append(text)
    said = "; ".join(errors) or "; ".join(lines) or "failed with no message"
    command = _command(binary, args)
    return NetfilterError(f"{command}: {said}", f"{command}: {errors[0]}" if errors else "")
