"""The one clock of the learner: how much time is left, and what each kind of work has cost so far.

Every stage asks it before it spends. The harness's `remaining_time_budget` sets the deadline at each
call; costs are measured per item (example or clip) as the work happens, so the stages can size what
they do (how many examples get frozen features, how long a fine-tune slice runs) and the test pass that
must follow them always fits.
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

RECENT = 3  # costs are planned with the largest of the last few measures: CPU speed varies between passes


class Clock:
    def __init__(self, now: float | None = None):
        self.started = time.monotonic() if now is None else now
        self.deadline = math.inf
        self.recent: dict[str, deque[float]] = {}  # seconds per item, the latest measures of each kind

    def set_remaining(self, remaining_s: float | None) -> None:
        """The harness's remaining_time_budget: None means no limit, <= 0 means already spent."""
        self.deadline = math.inf if remaining_s is None else time.monotonic() + float(remaining_s)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def at(self, seconds_from_now: float) -> float:
        """A time.monotonic() instant, never past the deadline."""
        return min(time.monotonic() + max(0.0, seconds_from_now), self.deadline)

    def measure(self, kind: str, items: int, seconds: float) -> None:
        """Record what `items` of work of this kind took."""
        if items > 0:
            self.recent.setdefault(kind, deque(maxlen=RECENT)).append(seconds / items)

    @contextmanager
    def timed(self, kind: str, items: int) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.measure(kind, items, time.monotonic() - started)

    def cost(self, kind: str, items: int, unknown: float = 0.0) -> float:
        """Expected seconds for `items` of this kind: the largest of the recent measures per item, so that
        planning and the later check agree (`unknown` per item before it was ever measured)."""
        recent = self.recent.get(kind)
        return items * (max(recent) if recent else unknown)

    def can_afford(self, seconds: float, reserve_s: float = 0.0) -> bool:
        return self.left() - reserve_s >= seconds
