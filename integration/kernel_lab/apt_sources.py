"""Which Debian mirror this machine uses, and the private sources file that
points that same mirror at another suite (sid, or a fixed release).

The mirror is read from the system's apt sources at run time, so no host
name is ever written into the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import LabError

DEB822_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
ONE_LINE_SOURCES = Path("/etc/apt/sources.list")
SID_SUITE = "sid"


@dataclass(frozen=True)
class SourceEntry:
    """One apt source: a list of URIs serving some suites."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]


def parse_deb822(text: str) -> list[SourceEntry]:
    """Entries of a deb822 ``.sources`` file (stanzas split by blank lines)."""
    entries = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        entries.append(
            SourceEntry(
                types=tuple(stanza.get("types", "").split()),
                uris=tuple(stanza.get("uris", "").split()),
                suites=tuple(stanza.get("suites", "").split()),
            )
        )
    return entries


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    field = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, field = {}, ""
        elif line[0] in " \t" and field:
            current[field] += " " + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            field = name.strip().lower()
            current[field] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_one_line(text: str) -> list[SourceEntry]:
    """Entries of a classic ``sources.list`` (``deb [opts] URI SUITE COMPONENT...``)."""
    entries = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) >= 3 and words[1].startswith("["):
            while not words[1].endswith("]"):
                del words[1]
            del words[1]
        if len(words) >= 3:
            entries.append(SourceEntry(types=(words[0],), uris=(words[1],), suites=(words[2],)))
    return entries


def debian_archive_uri(entries: list[SourceEntry]) -> str | None:
    """The URI of the main Debian archive among these entries, if any.

    The main archive is the one serving a bare release suite ("bookworm");
    ``-security`` lives in a different archive that has no sid. A URI that
    names Debian wins over third-party archives listed before it.
    """
    releases = [
        entry.uris[0].rstrip("/")
        for entry in entries
        if "deb" in entry.types and entry.uris and any(_is_release(s) for s in entry.suites)
    ]
    releases.sort(key=lambda uri: "debian" not in uri)
    return releases[0] if releases else None


def _is_release(suite: str) -> bool:
    return "-" not in suite and "/" not in suite


def system_archive_uri(deb822: Path = DEB822_SOURCES, one_line: Path = ONE_LINE_SOURCES) -> str:
    """The system's Debian mirror URI, read from its apt sources."""
    candidates = []
    if deb822.is_file():
        candidates += parse_deb822(deb822.read_text())
    if one_line.is_file():
        candidates += parse_one_line(one_line.read_text())
    uri = debian_archive_uri(candidates)
    if uri is None:
        raise LabError(f"no Debian archive found in {deb822} or {one_line}")
    return uri


def suite_sources(uri: str, suite: str, keyring: Path) -> str:
    """A deb822 sources file naming the mirror's ``suite``, verified with ``keyring``."""
    return f"Types: deb\nURIs: {uri}\nSuites: {suite}\nComponents: main\nSigned-By: {keyring}\n"
