"""The agent's loop on a fake clock: which syncs it runs, and when, for scripted changes.

The syncs themselves are stubs that log; the loop, its folding and its schedule are
the agent's own. Waiting for changes, and for --min-sync-period, moves the fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ipvsctl.agent import runner
from ipvsctl.agent.cluster_cache import Changes
from ipvsctl.model.inputs import ObjectKey

A, B, C = ("shop", "a"), ("shop", "b"), ("shop", "c")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Stop:
    """The part of threading.Event the loop uses; set once the clock reaches `end`."""

    def __init__(self, clock: Clock, end: float) -> None:
        self.clock, self.end = clock, end

    def is_set(self) -> bool:
        return self.clock.now >= self.end

    def wait(self, timeout: float) -> bool:
        self.clock.now = min(self.clock.now + timeout, self.end)
        return self.is_set()


class Cache:
    """`take_changes` as ClusterCache has it, over scripted arrivals on the fake clock."""

    def __init__(self, clock: Clock, arrivals: Iterable[tuple[float, Changes]]) -> None:
        self.clock, self.arrivals = clock, sorted(arrivals, key=lambda a: a[0])

    def take_changes(self, timeout: float | None) -> Changes:
        assert timeout is not None and timeout >= 0
        if not self._arrived():
            first = self.arrivals[0][0] if self.arrivals else float("inf")
            self.clock.now = min(self.clock.now + timeout, first)
        services: dict[ObjectKey, float] = {}
        node = reconnected = False
        for _, changes in self._arrived():
            for key, arrived in changes.services.items():
                services.setdefault(key, arrived)
            node |= changes.node
            reconnected |= changes.reconnected
        self.arrivals = self.arrivals[len(self._arrived()) :]
        return Changes(services, node, reconnected=reconnected)

    def _arrived(self) -> list[tuple[float, Changes]]:
        return [a for a in self.arrivals if a[0] <= self.clock.now]


def services(at: float, *keys: ObjectKey) -> tuple[float, Changes]:
    return at, Changes(dict.fromkeys(keys, at))


def node(at: float) -> tuple[float, Changes]:
    return at, Changes({}, node=True)


def reconnected(at: float) -> tuple[float, Changes]:
    return at, Changes({}, reconnected=True)


@dataclass
class Report:
    must_resync: bool = False


@dataclass
class Engine:
    clock: Clock
    draining: tuple[float, float] = (0.0, 0.0)  # real servers drain from, until
    retranslated: list[tuple[float, list[ObjectKey]]] = field(default_factory=list)
    config: object = None

    @property
    def drains(self) -> bool:
        start, end = self.draining
        return start <= self.clock.now < end

    def retranslate_all(self, cache: object, config: object) -> None:
        pass

    def retranslate(self, keys: dict[ObjectKey, float], cache: object) -> None:
        self.retranslated.append((self.clock.now, sorted(keys)))

    def check_drains(self) -> Report:
        return Report()


class Rejections:
    def report_malformed(self, invalid: object) -> None:
        pass


@dataclass
class Run:
    """What the loop did, and the outcomes its syncs are to have (each True when unlisted)."""

    clock: Clock
    engine: Engine
    agent: runner.Agent
    log: list[tuple[float, str]] = field(default_factory=list)
    fails: set[tuple[float, str]] = field(default_factory=set)
    reconfigures: set[float] = field(default_factory=set)

    def did(self, what: str) -> bool:
        self.log.append((self.clock.now, what))
        return (self.clock.now, what) not in self.fails


def run_loop(
    arrivals: Iterable[tuple[float, Changes]] = (),
    *,
    end: float,
    sync_period: float = 10.0,
    min_sync_period: float = 0.0,
    fails: Iterable[tuple[float, str]] = (),
    reconfigures: Iterable[float] = (),
    draining: tuple[float, float] = (0.0, 0.0),
) -> Run:
    clock = Clock()
    engine = Engine(clock, draining)
    agent = object.__new__(runner.Agent)  # none of __init__'s I/O
    run = Run(clock, engine, agent, fails=set(fails), reconfigures=set(reconfigures))
    agent.options = runner.AgentOptions(sync_period=sync_period, min_sync_period=min_sync_period)
    agent.stop = Stop(clock, end)  # type: ignore[assignment]
    agent.cache = Cache(clock, arrivals)  # type: ignore[assignment]
    agent.waiting = {}
    stubs: dict[str, Callable[..., Any]] = {
        "_config": lambda: None,
        "_serve_health_ports": lambda engine, changed: None,
        "_reconfigure": lambda engine: clock.now in run.reconfigures,
        "_full_sync": lambda engine, why: run.did(f"full {why}"),
        "_sync_services": lambda engine, keys: run.did(f"incremental {sorted(k[1] for k in keys)}"),
        "_run_sync": lambda engine, sync, what, healthy: (
            sync() if run.did(f"{what} healthy={healthy}") else None
        ),
    }
    agent.rejections = Rejections()  # type: ignore[assignment]
    for name, stub in stubs.items():
        setattr(agent, name, stub)
    agent._loop(engine)  # type: ignore[arg-type]
    return run


def test_the_loop_runs_a_full_sync_every_sync_period() -> None:
    run = run_loop(end=35.0)
    assert run.log == [
        (0.0, "full start"),
        (10.0, "full period"),
        (20.0, "full period"),
        (30.0, "full period"),
    ]


def test_the_loop_repairs_a_failed_start_backing_off() -> None:
    fails = [(0.0, "full start"), (1.0, "full repair"), (3.0, "full repair")]
    run = run_loop(end=20.0, fails=fails)
    assert [at for at, _ in run.log] == [0.0, 1.0, 3.0, 7.0, 17.0]
    assert run.log[3:] == [(7.0, "full repair"), (17.0, "full period")]


def test_the_loop_syncs_changes_as_they_come() -> None:
    run = run_loop([services(2.5, A), services(4.0, B, C)], end=9.0)
    assert run.log == [
        (0.0, "full start"),
        (2.5, "incremental ['a']"),
        (4.0, "incremental ['b', 'c']"),
    ]


def test_the_loop_folds_changes_within_min_sync_period() -> None:
    arrivals = [services(1.0, A), services(3.0, B), services(6.0, C), services(20.0, A)]
    run = run_loop(arrivals, end=21.0, sync_period=100.0, min_sync_period=5.0)
    assert run.log == [
        (0.0, "full start"),
        (5.0, "incremental ['a', 'b']"),
        (10.0, "incremental ['c']"),
        (20.0, "incremental ['a']"),
    ]


def test_a_failed_incremental_sync_is_repaired_by_a_full_sync_after_1s() -> None:
    arrivals = [services(2.0, A), services(2.5, B)]
    run = run_loop(arrivals, end=5.0, fails=[(2.0, "incremental ['a']")])
    assert run.log == [(0.0, "full start"), (2.0, "incremental ['a']"), (3.0, "full repair")]
    # Changes during the repair are translated for it, not synced on their own.
    assert run.engine.retranslated == [(2.5, [B])]
    assert set(run.agent.waiting) == {B}  # the stub full sync does not clear it


def test_a_node_change_makes_the_loop_repair_at_once() -> None:
    # The second change leaves the translation as it was: nothing to repair.
    run = run_loop([node(4.0), node(6.0)], end=15.0, reconfigures=[4.0])
    assert run.log == [(0.0, "full start"), (4.0, "full repair"), (14.0, "full period")]


def test_a_changed_node_found_by_a_periodic_sync_makes_it_a_repair() -> None:
    run = run_loop(end=25.0, reconfigures=[10.0])
    assert run.log == [(0.0, "full start"), (10.0, "full repair"), (20.0, "full period")]


def test_the_loop_checks_drains_every_2s_while_draining() -> None:
    run = run_loop(end=12.0, draining=(0.0, 7.0))
    assert run.log == [
        (0.0, "full start"),
        (2.0, "drains healthy=True"),
        (4.0, "drains healthy=True"),
        (6.0, "drains healthy=True"),
        (10.0, "full period"),
    ]


def test_a_failed_drain_check_is_repaired_at_the_next_period() -> None:
    run = run_loop(end=11.0, draining=(0.0, 5.0), fails=[(2.0, "drains healthy=True")])
    assert run.log == [
        (0.0, "full start"),
        (2.0, "drains healthy=True"),
        (4.0, "drains healthy=False"),
        (10.0, "full repair"),
    ]


def test_the_api_server_back_runs_a_full_sync_at_once() -> None:
    run = run_loop([reconnected(4.0)], end=9.0)
    fulls = [(at, what) for at, what in run.log if what.startswith("full")]
    # At start, at once on the reconnection (not a repair), then a period after it.
    assert fulls[:2] == [(0.0, "full start"), (4.0, "full period")]
