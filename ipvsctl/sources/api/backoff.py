"""Retrying a reflector's requests while the API server cannot answer, and saying so once.

A streak is the failures in a row of one reflector: the first is logged (with
the error), the next are only counted, and the first success after them logs
one line with how many there were. An API server down for ten minutes is two
log lines per reflector, not one per try.

The wait grows with the streak, not with tenacity's attempt count: one
`Retrying` runs a reflector for its whole life, and a watch that fails after
an hour of working must start again from the shortest wait.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from ipvsctl.sources.api.requests import ApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait after the n-th failure in a row: `initial` doubled each time up to
    `cap`, less a random part of up to `jitter` of it, so that the agents of a whole
    cluster do not retry in step when the API server comes back."""

    initial: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5

    def delay(self, failures: int, draw: Callable[[], float] = random.random) -> float:
        full = min(self.cap, self.initial * 2.0 ** max(0, failures - 1))
        return full * (1.0 - self.jitter * draw())


class FailureStreak:
    """The current run of failures of one reflector (`kind`)."""

    def __init__(
        self, kind: str, backoff: Backoff, on_failure: Callable[[], None] = lambda: None
    ) -> None:
        self.kind = kind
        self.backoff = backoff
        self.failures = 0
        self.streaks = 0  # streaks of failures so far (the current one included)
        self._on_failure = on_failure

    def failed(self, error: BaseException | None) -> None:
        self.failures += 1
        self._on_failure()
        if self.failures == 1:
            self.streaks += 1
            # A bug (anything not an ApiError) is worth its traceback.
            log.warning(
                "Kubernetes API requests failing, retrying with backoff",
                exc_info=error if not isinstance(error, ApiError) else None,
                extra={"fields": {"kind": self.kind, "error": str(error)}},
            )

    def succeeded(self) -> None:
        if self.failures:
            log.info(
                "Kubernetes API requests working again",
                extra={"fields": {"kind": self.kind, "failures": self.failures}},
            )
            self.failures = 0

    def wait(self, retry_state: tenacity.RetryCallState) -> float:
        """tenacity's wait: the backoff for the failures so far."""
        return self.backoff.delay(self.failures)


class RetryWake:
    """The backoff waits of reflectors that share an API server: one that reaches the
    server again ends every other's wait (the server is back for all of them, and a
    reflector still waiting out a 30 s backoff leaves the agent's view, and its health,
    behind for no reason), and so does `stop`."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._changed = threading.Condition()
        self._pokes = 0

    def wait(self, seconds: float) -> None:
        with self._changed:
            pokes = self._pokes
            self._changed.wait_for(
                lambda: self._pokes != pokes or self._stop.is_set(), timeout=seconds
            )

    def poke(self) -> None:
        with self._changed:
            self._pokes += 1
            self._changed.notify_all()


def retrying(
    streak: FailureStreak, stop: threading.Event, wake: RetryWake | None = None
) -> tenacity.Retrying:
    """Retries of any exception, with the streak's backoff; the waits end as soon as
    `stop` is set (or `wake` is poked), and no try starts after it."""

    def count_failure(retry_state: tenacity.RetryCallState) -> None:
        outcome = retry_state.outcome
        streak.failed(outcome.exception() if outcome is not None else None)

    def pause(seconds: float) -> None:
        if wake is not None:
            wake.wait(seconds)
        else:
            stop.wait(seconds)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Exception),
        after=count_failure,
        wait=streak.wait,
        sleep=pause,
        stop=tenacity.stop_when_event_set(stop),
        reraise=True,
    )
