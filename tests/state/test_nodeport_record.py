"""The NodePort record: round-trips, is per namespace, and owns nothing when damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ipvsctl.model import AF_INET, AF_INET6, Protocol, ServiceKey
from ipvsctl.state.nodeport_record import (
    lock_record,
    read_nodeports,
    record_path,
    write_nodeports,
)

KEYS = {
    ServiceKey(AF_INET, Protocol.TCP, "192.168.1.10", 30080),
    ServiceKey(AF_INET6, Protocol.UDP, "fd00::10", 30053),
    ServiceKey.for_fwmark(AF_INET, 7),
    ServiceKey.for_fwmark(AF_INET, 8),
}


def test_written_keys_read_back(tmp_path: Path) -> None:
    path = tmp_path / "nodeports.json"
    write_nodeports(path, KEYS)
    assert read_nodeports(path) == KEYS


def test_missing_record_owns_nothing(tmp_path: Path) -> None:
    assert read_nodeports(tmp_path / "absent.json") == frozenset()


def test_damaged_record_owns_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nodeports.json"
    path.write_text('{"nodeports": [[2, 6, "1.2.3.4"]]')
    assert read_nodeports(path) == frozenset()


def test_empty_set_removes_the_record(tmp_path: Path) -> None:
    path = tmp_path / "nodeports.json"
    write_nodeports(path, KEYS)
    write_nodeports(path, ())
    assert not path.exists()


def test_replacing_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "nodeports.json"
    write_nodeports(path, KEYS)
    write_nodeports(path, list(KEYS)[:1])
    assert sorted(p.name for p in path.parent.iterdir()) == ["nodeports.json"]


def test_record_is_named_for_the_network_namespace(tmp_path: Path) -> None:
    inode = os.stat("/proc/self/ns/net").st_ino
    assert record_path(tmp_path) == tmp_path / f"nodeports-{inode}.json"


def test_the_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "nodeports.json"
    with lock_record(path):
        handle = os.open(path.with_suffix(".lock"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(handle)
    handle = os.open(path.with_suffix(".lock"), os.O_RDWR)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(handle)
