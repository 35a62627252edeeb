"""Which NodePort virtual servers ipvsctl created, kept across restarts.

A virtual server on an address bound to our dummy interface is ours by
construction. A NodePort virtual server sits on a node address, where anyone
may have made one with ipvsadm, so the kernel alone cannot say whose it is:
we write down every NodePort key we program and own only those.

The record lives under /run (gone at reboot, as the IPVS table is) and is
named for the network namespace, because IPVS tables are per namespace: an
agent in a test namespace and one on the node never share a record. It is
replaced atomically (write a temporary file, rename), so a crash leaves the
old record or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ipvsctl.model import ServiceKey

DEFAULT_DIRECTORY = Path("/run/ipvsctl")
DIRECTORY_ENV = "IPVSCTL_STATE_DIR"


def record_path(directory: Path | None = None) -> Path:
    """The record of this network namespace: nodeports-<netns inode>.json."""
    base = directory or Path(os.environ.get(DIRECTORY_ENV) or DEFAULT_DIRECTORY)
    namespace = os.stat("/proc/self/ns/net").st_ino
    return base / f"nodeports-{namespace}.json"


@contextmanager
def lock_record(path: Path) -> Iterator[None]:
    """Hold the record's lock (a file beside it) for a whole read-apply-rewrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _key_to_json(key: ServiceKey) -> list[int | str]:
    return [key.family, key.protocol, key.address, key.port, key.fwmark]


def read_nodeports(path: Path) -> frozenset[ServiceKey]:
    """The recorded keys; none when there is no record. A damaged record owns nothing:
    wrongly owning a foreign virtual server is worse than leaving one of ours behind.
    One that cannot be read (no permission, an I/O error) raises: rewritten with only
    what is wanted now, it would forget NodePorts of ours for good."""
    try:
        entries = json.loads(path.read_text())
        return frozenset(
            ServiceKey(int(f), int(p), str(a), int(port), int(mark))
            for f, p, a, port, mark in entries["nodeports"]
        )
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()  # never written (its directory may not even be one)
    except (ValueError, KeyError, TypeError):
        return frozenset()


def write_nodeports(path: Path, keys: Iterable[ServiceKey]) -> None:
    """Replace the record atomically; an empty set removes it."""
    ordered = sorted(keys)
    if not ordered:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    document = {"nodeports": [_key_to_json(key) for key in ordered]}
    # Our own temporary name (tempfile costs ~30 ms of import in the kernel lab).
    temporary = path.parent / f".{path.name}.{os.getpid()}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class NodeportRecord:
    """The record as the engine keeps it: the keys it holds, and rewriting it.

    Every write takes the record's lock, unless the whole run already holds it
    (`held`: `apply` locks it from its read to its last rewrite, so that two
    applies at once cannot each drop the other's keys; a second flock of the
    same file in one process would wait for ever).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or record_path()
        self.keys: frozenset[ServiceKey] = read_nodeports(self.path)
        self._held = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for a whole read-apply-rewrite; the keys are read again under it."""
        with lock_record(self.path):
            self.keys = read_nodeports(self.path)
            self._held = True
            try:
                yield
            finally:
                self._held = False

    def write(self, keys: frozenset[ServiceKey]) -> str:
        """Replace the record with `keys`; "" when done, else one line saying why not."""
        try:
            if self._held:
                write_nodeports(self.path, keys)
            else:
                with lock_record(self.path):
                    write_nodeports(self.path, keys)
        except OSError as error:
            return self.problem(error)
        self.keys = keys
        return ""

    def problem(self, error: OSError) -> str:
        return f"NodePort record {self.path}: {error.strerror or error}"
