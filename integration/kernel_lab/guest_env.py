"""The environment a command sees inside the guest: the caller's, minus what
cannot work there, plus what the guest needs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath

# Sockets, agents and sessions of the host: the guest cannot reach them.
HOST_SESSION = frozenset(
    {
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "SSH_CONNECTION",
        "SSH_CLIENT",
        "SSH_TTY",
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_RUNTIME_DIR",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "GPG_AGENT_INFO",
        "TMUX",
        "TMUX_PANE",
        "STY",
        "WINDOW",
    }
)
TEMP_DIR_VARS = ("TMPDIR", "TMP", "TEMP")
GUEST_TMPFS = (PurePosixPath("/tmp"), PurePosixPath("/run"))
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def guest_environment(caller: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        name: value
        for name, value in caller.items()
        if _SHELL_NAME.fullmatch(name)
        and name not in HOST_SESSION
        and not (name in TEMP_DIR_VARS and _under_guest_tmpfs(value))
    }
    env["PATH"] = with_system_path(env.get("PATH", ""))
    env.setdefault("HOME", "/root")
    # The command writes to a file, not a tty: unbuffered Python keeps the stream live.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def with_system_path(path: str) -> str:
    """``path`` with the sbin directories appended: the guest runs as root."""
    entries = [entry for entry in path.split(":") if entry]
    return ":".join(entries + [d for d in SYSTEM_PATH if d not in entries])


def _under_guest_tmpfs(value: str) -> bool:
    path = PurePosixPath(value)
    return any(path == top or top in path.parents for top in GUEST_TMPFS)
