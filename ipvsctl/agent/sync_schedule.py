"""When the node agent syncs: every timing decision of its loop, over a clock.

The model is kube-proxy's BoundedFrequencyRunner (a run at least every max
interval, none sooner than a min interval after the last, requests that come too
soon coalesce, a retry sooner than a period), turned inside out: the loop asks
what is due and how long it may wait, runs the syncs itself and tells the
schedule how they went. It runs them on its one thread, so at most one sync is
ever in flight, and this class needs no lock. No threads, no I/O: a fake clock
drives it in tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Real servers drain for minutes: looking every few seconds ends them soon enough.
DRAIN_CHECK_SECONDS = 2.0
# A failing repair sync is tried again this soon, then twice as late each time,
# up to a --sync-period: never a tight loop.
RETRY_SECONDS = 1.0


class SyncSchedule:
    """The loop's timing, from the end of the start sync on.

    Repairing: the kernel's table is known to be off (a failed sync, a changed
    node), so only a full sync can mend it; changes are translated meanwhile and
    that repair carries them out.
    """

    def __init__(
        self,
        sync_period: float,
        min_sync_period: float = 0.0,
        *,
        started_ok: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sync_period, self.min_sync_period = sync_period, min_sync_period
        self._clock = clock
        now = clock()
        self._repair = not started_ok
        self._retry = RETRY_SECONDS
        self._next_full = now + (self._retry if self._repair else sync_period)
        self._next_drain = now + DRAIN_CHECK_SECONDS
        # The start sync is over by now, so --min-sync-period counts from its end
        # (from every later sync's start).
        self._last_sync = now

    @property
    def repairing(self) -> bool:
        return self._repair

    @property
    def folds(self) -> bool:
        """Whether changes wait out --min-sync-period at all (0 syncs each at once)."""
        return self.min_sync_period > 0

    # --- what the loop asks ---------------------------------------------------------

    def timeout(self, draining: bool) -> float:
        """How long the loop may wait for changes: until the next full sync, or the
        next drain check when real servers drain; never negative."""
        due = min(self._next_full, self._next_drain) if draining else self._next_full
        return max(0.0, due - self._clock())

    def fold_wait(self) -> float:
        """How long changes in hand must still wait: --min-sync-period counts from the
        start of the last sync. Changes that arrive meanwhile fold into them."""
        return max(0.0, self._last_sync + self.min_sync_period - self._clock())

    def full_due(self) -> bool:
        return self._clock() >= self._next_full

    def drain_due(self, draining: bool) -> bool:
        return draining and self._clock() >= self._next_drain

    # --- what the loop tells --------------------------------------------------------

    def sync_starts(self) -> None:
        """Changes are taken in hand (synced, or translated for the repair) or a full
        sync begins: the next changes wait --min-sync-period from now."""
        self._last_sync = self._clock()

    def node_changed(self) -> None:
        """Every Service was translated anew: only a full sync, now, brings the kernel
        in line. The retry delay is left as it stands."""
        self._repair, self._next_full = True, self._clock()

    def full_now(self) -> None:
        """A full sync now (the API server answers again: one sync in step with it makes
        the agent healthy at once), repairing or not as before."""
        self._next_full = min(self._next_full, self._clock())

    def incremental_done(self, ok: bool) -> None:
        """A failed incremental sync leaves the table unknown: repair it after the
        retry delay. Only a full sync ends a repair."""
        if not ok:
            self._repair = True
            self._next_full = self._clock() + self._retry

    def full_done(self, ok: bool) -> None:
        # The delay doubles before it is used, so only a repair entered with the
        # delay at its floor (start, a failed incremental) is retried after 1 s.
        self._repair = not ok
        self._retry = min(self._retry * 2, self.sync_period) if self._repair else RETRY_SECONDS
        self._next_full = self._clock() + (self._retry if self._repair else self.sync_period)

    def drain_done(self, ok: bool) -> None:
        """A failed drain check asks for a repair, yet leaves the next full sync where
        it was (up to a --sync-period away), not a retry delay away."""
        self._repair |= not ok
        self._next_drain = self._clock() + DRAIN_CHECK_SECONDS
