"""apt's own client, run against a private state directory.

Every path apt would write (lists, caches, archives) and every input that
could change which package it picks (sources, pinning) is redirected into
the state directory, so the system's apt state is only ever read.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .apt_sources import SID_SUITE, suite_sources
from .debs import package_version, unpack
from .errors import LabError

SYSTEM_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
KEYRING_PACKAGE = "debian-archive-keyring"
_SIGNATURE_TROUBLE = re.compile(
    r"NO_PUBKEY|EXPKEYSIG|KEYEXPIRED|BADSIG|REVKEYSIG|is not signed"
    r"|signatures? (?:couldn't|could not|were invalid)",
)


def looks_like_signature_failure(apt_output: str) -> bool:
    """True when apt failed because it could not verify the Release signature."""
    return bool(_SIGNATURE_TROUBLE.search(apt_output))


def native_architecture() -> str:
    return _run(["dpkg", "--print-architecture"], cwd=None).stdout.strip()


@dataclass(frozen=True)
class PrivateApt:
    """apt-get with its sources, lists and caches under ``state``."""

    state: Path
    architecture: str

    @property
    def sources_dir(self) -> Path:
        return self.state / "sources.list.d"

    def options(self) -> list[str]:
        s = self.state
        settings = {
            "Dir::Etc::sourcelist": "/dev/null",
            "Dir::Etc::sourceparts": str(self.sources_dir),
            "Dir::Etc::preferences": "/dev/null",
            "Dir::Etc::preferencesparts": str(s / "preferences.d"),
            "Dir::State::lists": str(s / "lists"),
            "Dir::Cache": str(s / "cache"),
            "Dir::Cache::archives": str(s / "cache" / "archives"),
            "APT::Architectures": self.architecture,
            "Acquire::Languages": "none",
            # The state dir sits in root's home, which apt's _apt sandbox user cannot enter.
            "APT::Sandbox::User": "root",
        }
        return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]

    def prepare(self) -> None:
        for sub in ("sources.list.d", "preferences.d", "lists/partial", "cache/archives/partial"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)

    def update(
        self, suite: str, mirror_uri: str, keyring: Path
    ) -> subprocess.CompletedProcess[str]:
        """Fetch ``suite``'s package lists from the mirror, verified with ``keyring``."""
        # One suite per state directory: the lists decide which version is picked.
        for old in self.sources_dir.glob("*.sources"):
            old.unlink()
        (self.sources_dir / f"{suite}.sources").write_text(
            suite_sources(mirror_uri, suite, keyring)
        )
        # Without --error-on=any a failed fetch is only a warning and apt exits 0.
        argv = ["apt-get", *self.options(), "--error-on=any", "update"]
        return _run(argv, cwd=None, check=False)

    def show(self, package: str) -> str:
        """The candidate's control fields, as ``apt-cache show`` prints them."""
        argv = ["apt-cache", *self.options(), "--no-all-versions", "show", package]
        return _run(argv, cwd=None).stdout

    def download(self, packages: Sequence[str], into: Path) -> list[Path]:
        """Download ``packages`` (``name`` or ``name=version``) as .deb files into
        ``into`` (apt writes to cwd)."""
        into.mkdir(parents=True, exist_ok=True)
        _run(["apt-get", *self.options(), "download", *packages], cwd=into)
        return sorted(into.glob("*.deb"))


def update_verified(apt: PrivateApt, mirror: str, work: Path, suite: str = SID_SUITE) -> str:
    """Fetch ``suite``'s lists, verifying its Release with the newest keyring we can trust.

    The system keyring verifies the suite as long as it is still signed with
    a key it knows; if not, the keyring package from the system's own
    (verified) lists may be newer. The suite's own keyring package would only
    be trusted because the suite said so, so it is never used.
    """
    result = apt.update(suite, mirror, SYSTEM_KEYRING)
    if result.returncode == 0:
        return str(SYSTEM_KEYRING)
    if not looks_like_signature_failure(result.stdout + result.stderr):
        raise LabError(f"apt-get update of {suite} from {mirror} failed: {last_line(result)}")
    deb = download_with_system_apt(KEYRING_PACKAGE, work / "keyring")
    if deb is not None:
        unpack(deb, work / "keyring")
        newer = work / "keyring" / SYSTEM_KEYRING.relative_to("/")
        if apt.update(suite, mirror, newer).returncode == 0:
            return f"{KEYRING_PACKAGE} {package_version(deb)[1]} from the system's lists"
    raise LabError(
        f"{suite}'s Release signature cannot be verified with {SYSTEM_KEYRING}: "
        f"{last_line(result)}; upgrade {KEYRING_PACKAGE}"
    )


def download_with_system_apt(package: str, into: Path) -> Path | None:
    """Download ``package`` through the system's own, already verified, lists."""
    into.mkdir(parents=True, exist_ok=True)
    argv = ["apt-get", "-o", "APT::Sandbox::User=root", "download", package]
    result = _run(argv, cwd=into, check=False)
    debs = sorted(into.glob(f"{package}_*.deb"))
    return debs[-1] if result.returncode == 0 and debs else None


def _run(argv: list[str], cwd: Path | None, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed (needed to provision the lab)") from exc
    if check and result.returncode != 0:
        raise LabError(f"{_describe(argv)} failed: {last_line(result)}")
    return result


def _describe(argv: list[str]) -> str:
    """The command without its -o settings, short enough for one error line."""
    words = [w for i, w in enumerate(argv) if not w.startswith("-") and argv[i - 1] != "-o"]
    return " ".join(words)


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr + result.stdout).strip().splitlines()
    errors = [line for line in lines if line.startswith(("E:", "W:"))]
    return (errors or lines or [f"exit {result.returncode}"])[-1]
