"""Batched apply: many requests per sendmsg, every refusal reported, nothing else lost."""

from __future__ import annotations

import errno
import subprocess
import sys

from ipvsctl.kernel import IpvsKernel
from ipvsctl.model import AF_INET, Protocol, RealServer, ServiceKey, VirtualServer
from ipvsctl.model.changes import IpvsChange, Op


def service(i: int) -> VirtualServer:
    return VirtualServer(ServiceKey(AF_INET, int(Protocol.TCP), f"10.96.{i // 256}.{i % 256}", 80))


def real(j: int) -> RealServer:
    return RealServer(f"10.244.0.{j + 1}", 8080)


def ten_thousand_changes() -> tuple[list[IpvsChange], dict[int, int]]:
    """1,000 services x 9 real servers, with invalid requests spread through."""
    changes: list[IpvsChange] = []
    bad: dict[int, int] = {}
    for i in range(1000):
        svc = service(i)
        changes.append(IpvsChange(Op.ADD_SERVICE, svc))
        changes += [IpvsChange(Op.ADD_REAL, svc, real(j)) for j in range(9)]
    # Invalid ones, by kind: a duplicate service, a real server for a service
    # that does not exist, a scheduler the kernel lacks, a duplicate real server.
    invalid = {
        2500: (IpvsChange(Op.ADD_SERVICE, service(3)), errno.EEXIST),
        5000: (
            IpvsChange(
                Op.ADD_REAL, VirtualServer(ServiceKey(AF_INET, 6, "10.98.0.1", 80)), real(1)
            ),
            errno.ESRCH,
        ),
        7500: (
            IpvsChange(
                Op.ADD_SERVICE,
                VirtualServer(ServiceKey(AF_INET, 6, "10.97.0.1", 80), scheduler="fastest"),
            ),
            errno.ENOENT,
        ),
        9000: (IpvsChange(Op.ADD_REAL, service(5), real(0)), errno.EEXIST),
    }
    for position in sorted(invalid):
        changes.insert(position, invalid[position][0])
        bad[position] = invalid[position][1]
    return changes, bad


def test_ten_thousand_changes_apply_and_each_refusal_is_reported(kernel: IpvsKernel) -> None:
    changes, bad = ten_thousand_changes()
    assert len(changes) == 10004
    position = {id(change): i for i, change in enumerate(changes)}
    failures = kernel.apply(changes)
    assert {position[id(f.change)]: f.errno for f in failures} == bad
    assert all(f.message for f in failures)

    services = kernel.services()
    assert len(services) == 1000
    assert all(len(e.real_servers) == 9 for e in services)
    # The independent witness: ipvsadm counts the same table.
    listing = subprocess.run(["ipvsadm", "-Ln"], check=True, capture_output=True, text=True)
    lines = listing.stdout.splitlines()
    assert sum(line.startswith("TCP ") for line in lines) == 1000
    assert sum(line.startswith("  -> 10.244.") for line in lines) == 9000
    assert "10.97.0.1" not in listing.stdout
    # A table this size comes back in many dump parts; show reads them all.
    show = subprocess.run(
        [sys.executable, "-m", "ipvsctl", "show"], check=True, capture_output=True, text=True
    )
    assert show.stdout == listing.stdout


def test_batches_are_split_to_fit_the_socket_buffers(kernel: IpvsKernel) -> None:
    # With CAP_NET_ADMIN the buffers are forced large: thousands of requests a call.
    assert kernel.batch_limit >= 1000
    changes = [IpvsChange(Op.ADD_SERVICE, service(i)) for i in range(kernel.batch_limit * 3 + 7)]
    assert kernel.apply(changes) == []
    assert len(kernel.services()) == len(changes)
    listing = subprocess.run(["ipvsadm", "-Ln"], check=True, capture_output=True, text=True)
    assert sum(line.startswith("TCP ") for line in listing.stdout.splitlines()) == len(changes)


def test_refusals_in_later_batches_keep_their_positions(kernel: IpvsKernel) -> None:
    # One duplicate at the end of each batch and one at the start of the next:
    # the failures must be matched to their requests across sendmsg calls.
    limit = kernel.batch_limit
    changes = [IpvsChange(Op.ADD_SERVICE, service(i)) for i in range(limit * 2 + 3)]
    duplicates = (limit - 1, limit, 2 * limit - 1, 2 * limit)
    for duplicate in duplicates:
        changes[duplicate] = IpvsChange(Op.ADD_SERVICE, service(0))
    position = {id(change): i for i, change in enumerate(changes)}
    failures = kernel.apply(changes)
    assert [(position[id(f.change)], f.errno) for f in failures] == [
        (duplicate, errno.EEXIST) for duplicate in duplicates
    ]
    assert len(kernel.services()) == len(changes) - len(duplicates)


def test_every_change_of_an_all_invalid_batch_is_reported(kernel: IpvsKernel) -> None:
    missing = service(1)
    changes = [IpvsChange(Op.ADD_REAL, missing, real(j % 200)) for j in range(3000)]
    failures = kernel.apply(changes)
    assert [f.change for f in failures] == changes
    assert {f.errno for f in failures} == {errno.ESRCH}
