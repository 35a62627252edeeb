"""The agent loop's timing, on a fake clock: when full syncs, repairs and drain checks
are due, how long the loop may wait, and how --min-sync-period holds changes back."""

from __future__ import annotations

import pytest

from ipvsctl.agent.sync_schedule import DRAIN_CHECK_SECONDS, RETRY_SECONDS, SyncSchedule

PERIOD = 30.0


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def schedule(
    clock: Clock, started_ok: bool = True, period: float = PERIOD, min_period: float = 0.0
) -> SyncSchedule:
    return SyncSchedule(period, min_period, started_ok=started_ok, clock=clock)


def wait_for_full(clock: Clock, plan: SyncSchedule) -> float:
    """Let the fake clock run to the next full sync; the seconds it took."""
    waited = plan.timeout(draining=False)
    clock.advance(waited)
    assert plan.full_due()
    return waited


def full_sync(clock: Clock, plan: SyncSchedule, ok: bool, takes: float = 0.0) -> None:
    plan.sync_starts()
    clock.advance(takes)
    plan.full_done(ok)


def test_a_full_sync_is_due_every_sync_period() -> None:
    clock = Clock()
    plan = schedule(clock)
    assert not plan.full_due() and not plan.repairing
    for _ in range(3):
        clock.advance(PERIOD - 0.001)
        assert not plan.full_due()
        clock.advance(0.001)
        assert plan.full_due()
        full_sync(clock, plan, ok=True)


def test_the_period_counts_from_the_end_of_a_full_sync() -> None:
    clock = Clock()
    plan = schedule(clock)
    wait_for_full(clock, plan)
    full_sync(clock, plan, ok=True, takes=5.0)
    assert plan.timeout(draining=False) == PERIOD


def test_a_failed_start_sync_is_retried_after_1s_then_2s_4s_capped_at_the_sync_period() -> None:
    clock = Clock()
    plan = schedule(clock, started_ok=False)
    assert plan.repairing
    waits = []
    for _ in range(7):
        waits.append(wait_for_full(clock, plan))
        full_sync(clock, plan, ok=False)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert plan.repairing


def test_a_successful_full_sync_resets_the_retry_delay_to_1s() -> None:
    clock = Clock()
    plan = schedule(clock, started_ok=False)
    for _ in range(3):
        wait_for_full(clock, plan)
        full_sync(clock, plan, ok=False)
    wait_for_full(clock, plan)
    full_sync(clock, plan, ok=True)
    assert not plan.repairing
    assert wait_for_full(clock, plan) == PERIOD
    plan.incremental_done(ok=False)  # a repair from here starts at 1 s again
    assert wait_for_full(clock, plan) == RETRY_SECONDS


def test_a_failed_periodic_full_sync_is_first_retried_after_2s() -> None:
    """The delay doubles before its first use: only repairs begun at the floor (a failed
    start or incremental sync) wait 1 s."""
    clock = Clock()
    plan = schedule(clock)
    wait_for_full(clock, plan)
    full_sync(clock, plan, ok=False)
    assert plan.repairing
    assert wait_for_full(clock, plan) == 2.0
    full_sync(clock, plan, ok=False)
    assert wait_for_full(clock, plan) == 4.0


def test_the_retry_delay_never_exceeds_a_short_sync_period() -> None:
    clock = Clock()
    plan = schedule(clock, period=3.0)
    wait_for_full(clock, plan)
    waits = []
    for _ in range(3):
        full_sync(clock, plan, ok=False)
        waits.append(wait_for_full(clock, plan))
    assert waits == [2.0, 3.0, 3.0]


def test_a_failed_incremental_sync_leads_to_a_repair_full_sync_after_the_retry_delay() -> None:
    clock = Clock()
    plan = schedule(clock)
    clock.advance(10.0)
    plan.sync_starts()
    clock.advance(0.5)  # the sync's own time: the delay counts from its end
    plan.incremental_done(ok=False)
    assert plan.repairing and not plan.full_due()
    assert plan.timeout(draining=False) == RETRY_SECONDS
    assert wait_for_full(clock, plan) == RETRY_SECONDS
    full_sync(clock, plan, ok=False)
    assert wait_for_full(clock, plan) == 2.0


def test_a_successful_incremental_sync_leaves_the_next_full_sync_where_it_was() -> None:
    clock = Clock()
    plan = schedule(clock)
    clock.advance(10.0)
    plan.sync_starts()
    plan.incremental_done(ok=True)
    assert not plan.repairing
    assert plan.timeout(draining=False) == PERIOD - 10.0


def test_only_a_full_sync_ends_a_repair() -> None:
    clock = Clock()
    plan = schedule(clock, started_ok=False)
    plan.incremental_done(ok=True)
    plan.drain_done(ok=True)
    assert plan.repairing
    full_sync(clock, plan, ok=True)
    assert not plan.repairing


def test_changes_within_min_sync_period_of_the_last_sync_wait_until_it_has_passed() -> None:
    clock = Clock()
    plan = schedule(clock, min_period=5.0)
    assert plan.folds
    clock.advance(2.0)
    assert plan.fold_wait() == 3.0
    clock.advance(3.0)
    assert plan.fold_wait() == 0.0
    plan.sync_starts()
    clock.advance(1.0)
    assert plan.fold_wait() == 4.0


def test_min_sync_period_counts_from_the_start_of_the_last_sync() -> None:
    clock = Clock()
    plan = schedule(clock, min_period=5.0)
    clock.advance(10.0)
    plan.sync_starts()
    clock.advance(4.0)  # a slow sync
    plan.incremental_done(ok=True)
    assert plan.fold_wait() == 1.0
    wait_for_full(clock, plan)
    full_sync(clock, plan, ok=True, takes=2.0)
    assert plan.fold_wait() == 3.0


def test_min_sync_period_counts_from_the_end_of_the_start_sync() -> None:
    clock = Clock()
    plan = schedule(clock, min_period=5.0)  # the start sync has just ended
    assert plan.fold_wait() == 5.0


def test_changes_taken_in_hand_during_a_repair_hold_the_next_ones_back() -> None:
    """Translated for the repair, not synced: --min-sync-period counts from them all the same."""
    clock = Clock()
    plan = schedule(clock, started_ok=False, min_period=5.0)
    clock.advance(0.5)
    plan.sync_starts()
    assert plan.fold_wait() == 5.0


def test_min_sync_period_0_syncs_changes_at_once() -> None:
    clock = Clock()
    plan = schedule(clock, min_period=0.0)
    assert not plan.folds
    plan.sync_starts()
    assert plan.fold_wait() == 0.0


def test_drain_checks_are_due_every_2s_only_while_draining() -> None:
    clock = Clock()
    plan = schedule(clock)
    assert plan.timeout(draining=True) == DRAIN_CHECK_SECONDS
    clock.advance(DRAIN_CHECK_SECONDS)
    assert plan.drain_due(draining=True)
    assert not plan.drain_due(draining=False)
    plan.drain_done(ok=True)
    assert not plan.drain_due(draining=True)
    assert plan.timeout(draining=True) == DRAIN_CHECK_SECONDS
    assert plan.timeout(draining=False) == PERIOD - DRAIN_CHECK_SECONDS


def test_a_drain_check_is_due_at_once_when_drains_begin_long_after_the_last() -> None:
    clock = Clock()
    plan = schedule(clock)
    clock.advance(10.0)
    assert not plan.drain_due(draining=False)
    assert plan.drain_due(draining=True)
    assert plan.timeout(draining=True) == 0.0


def test_a_failed_drain_check_asks_for_a_repair_at_the_full_sync_already_due() -> None:
    clock = Clock()
    plan = schedule(clock)
    clock.advance(DRAIN_CHECK_SECONDS)
    plan.drain_done(ok=False)
    assert plan.repairing
    assert wait_for_full(clock, plan) == PERIOD - DRAIN_CHECK_SECONDS


@pytest.mark.parametrize(
    ("elapsed", "draining", "expected"),
    [
        (0.0, False, PERIOD),
        (0.0, True, DRAIN_CHECK_SECONDS),
        (1.5, True, 0.5),
        (45.0, False, 0.0),  # overdue: never negative
        (45.0, True, 0.0),
    ],
)
def test_the_wait_timeout_is_the_time_to_the_earliest_due_thing_never_negative(
    elapsed: float, draining: bool, expected: float
) -> None:
    clock = Clock()
    plan = schedule(clock)
    clock.advance(elapsed)
    assert plan.timeout(draining) == expected


def test_the_wait_timeout_ends_at_a_full_sync_due_before_the_next_drain_check() -> None:
    clock = Clock()
    plan = schedule(clock)
    clock.advance(PERIOD - 1.0)
    plan.drain_done(ok=True)  # the next check is 1 s after the full sync
    assert plan.timeout(draining=True) == 1.0


def test_a_node_change_makes_a_repair_full_sync_due_now() -> None:
    clock = Clock()
    plan = schedule(clock)
    clock.advance(3.0)
    plan.node_changed()
    assert plan.repairing and plan.full_due()
    assert plan.timeout(draining=False) == 0.0


def test_a_node_change_leaves_the_retry_delay_as_it_stands() -> None:
    clock = Clock()
    plan = schedule(clock, started_ok=False)
    for _ in range(2):
        wait_for_full(clock, plan)
        full_sync(clock, plan, ok=False)  # the delay is 4 s now
    clock.advance(1.0)
    plan.node_changed()
    assert plan.full_due()
    full_sync(clock, plan, ok=False)
    assert wait_for_full(clock, plan) == 8.0


def test_the_api_server_back_makes_a_full_sync_due_now_without_a_repair() -> None:
    clock = Clock()
    schedule = SyncSchedule(30.0, started_ok=True, clock=clock)
    clock.now += 5.0
    assert not schedule.full_due()
    schedule.full_now()
    assert schedule.full_due() and not schedule.repairing
    schedule.full_done(True)
    assert schedule.timeout(draining=False) == 30.0
