"""Benchmark: IPVS operations per endpoint change, a hash (sh) Service against an rr one.

No kernel needed: it runs the planner against the table copy the engine keeps
(the same code `apply` and `run` plan with; the kernel lab's
integration/tests/test_hash_traffic.py proves such plans on a real kernel).
A hash Service keeps its real servers in one canonical order, so a newcomer
listed after others moves them (a `-d` and an `-a` each); an rr Service's
change is one operation. One event is one endpoint added or one removed, as a
rolling update or a scale makes them:

- rolling update: each pod replaced in turn by a new one on the same node,
  whose address is the next the node's range gives (sequential IPAM);
- random churn: a random endpoint replaced by one at a random address;
- scaling: one endpoint added, later removed, at random addresses.

    .venv/bin/python -m integration.benchmarks.bench_hash_churn --endpoints 10

Prints the mean and the largest count per event; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Iterator

from ipvsctl.model import RealServer, ServiceKey, VirtualServer
from ipvsctl.model.desired import DesiredVirtualServer
from ipvsctl.model.ipvs import AF_INET, ForwardMethod, Protocol
from ipvsctl.plan import Ownership, plan_ipvs_changes
from ipvsctl.reconcile.table_copy import TableCopy

VIP = "10.96.0.10"
NODES = 3


def _address(node: int, host: int) -> str:
    return f"10.244.{node}.{host % 250 + 2}"


def _rolling(endpoints: int, rounds: int, rng: random.Random) -> Iterator[list[str]]:
    next_host = [rng.randrange(250) for _ in range(NODES)]
    pods = []
    for index in range(endpoints):
        node = index % NODES
        pods.append((node, _address(node, next_host[node])))
        next_host[node] += 1
    yield [address for _, address in pods]
    for _ in range(rounds):
        for index, (node, _) in enumerate(list(pods)):
            new = (node, _address(node, next_host[node]))
            next_host[node] += 1
            yield [address for _, address in pods] + [new[1]]  # the new pod is ready
            pods[index] = new
            yield [address for _, address in pods]  # then the old one goes


def _random_address(rng: random.Random) -> str:
    return f"10.244.{rng.randrange(NODES)}.{rng.randrange(2, 252)}"


def _churn(endpoints: int, rounds: int, rng: random.Random) -> Iterator[list[str]]:
    pods = list({_random_address(rng) for _ in range(endpoints * 2)})[:endpoints]
    yield list(pods)
    for _ in range(rounds * endpoints):
        new = _random_address(rng)
        if new in pods:
            continue
        yield [*pods, new]
        pods[rng.randrange(len(pods))] = new
        yield list(dict.fromkeys(pods))


def _scaling(endpoints: int, rounds: int, rng: random.Random) -> Iterator[list[str]]:
    pods = list({_random_address(rng) for _ in range(endpoints * 2)})[:endpoints]
    yield list(pods)
    for _ in range(rounds * endpoints):
        new = _random_address(rng)
        if new not in pods:
            yield [*pods, new]
            yield list(pods)


def operations_per_event(scheduler: str, states: Iterator[list[str]]) -> list[int]:
    """The planned operations of each change from one endpoint set to the next."""
    key = ServiceKey(AF_INET, Protocol.TCP, VIP, 80)
    service = VirtualServer(key, scheduler)
    ownership = Ownership(frozenset({VIP}), frozenset())
    table, counts = TableCopy(), []
    for index, addresses in enumerate(states):
        servers = RealServer.from_keys(sorted((a, 8080) for a in addresses), ForwardMethod.MASQ)
        wanted = [DesiredVirtualServer(service, servers, "bench/web", True)]
        changes = plan_ipvs_changes(wanted, table.listing(), ownership)
        table.apply_accepted(changes)
        if index:  # the first state creates the Service
            counts.append(len(changes))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    patterns = {"rolling update": _rolling, "random churn": _churn, "scaling": _scaling}
    print(f"IPVS operations per endpoint event, a Service of {args.endpoints} endpoints")
    print(f"  {'pattern':<16}{'scheduler':>10}{'mean':>8}{'max':>6}{'events':>8}")
    for name, pattern in patterns.items():
        for scheduler in ("rr", "sh"):
            rng = random.Random(args.seed)
            counts = operations_per_event(scheduler, pattern(args.endpoints, args.rounds, rng))
            mean = statistics.mean(counts)
            print(f"  {name:<16}{scheduler:>10}{mean:>8.2f}{max(counts):>6}{len(counts):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
