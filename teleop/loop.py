"""Fixed-rate pacing with deadline accounting (no per-tick logging; a summary at the end)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["LoopTimer", "LoopSummary", "percentiles"]


def percentiles(values: np.ndarray | list[float], scale: float = 1.0) -> dict[str, float]:
    """``{"p50", "p99", "max"}`` of ``values`` times ``scale`` (NaN when empty)."""
    arr = np.asarray(values, dtype=np.float64) * scale
    if arr.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "p50": round(float(np.percentile(arr, 50)), 4),
        "p99": round(float(np.percentile(arr, 99)), 4),
        "max": round(float(arr.max()), 4),
    }


@dataclass(frozen=True)
class LoopSummary:
    ticks: int
    rate_hz: float
    achieved_hz: float
    deadline_misses: int
    jitter_ms: dict[str, float]


class LoopTimer:
    """Paces a loop at ``rate_hz``. ``wait()`` sleeps to the next deadline (and spins the last
    ``spin_s``: an OS sleep wakes ~0.1 ms late on a loaded machine); a tick that starts more than
    one period late is a deadline miss (the schedule then resyncs instead of bursting).
    Tick start times go into a preallocated ring, so pacing allocates nothing per tick."""

    def __init__(self, rate_hz: float, history: int = 1 << 16, spin_s: float = 0.0) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.rate_hz = rate_hz
        self.period_s = 1.0 / rate_hz
        self.spin_s = spin_s  # sleep until this close to the deadline, then spin (less jitter, more CPU)
        self._starts = np.zeros(history)
        self.ticks = 0
        self.misses = 0
        self._next = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = self._next = time.perf_counter()

    def next_deadline(self) -> float:
        """When (``time.perf_counter``) the next tick is due: what work between ticks must not pass."""
        return self._next + self.period_s

    def wait(self) -> None:
        self._next += self.period_s
        now = time.perf_counter()
        delay = self._next - now
        if delay > 0:
            if delay > self.spin_s:
                time.sleep(delay - self.spin_s)
            while time.perf_counter() < self._next:
                pass
        elif delay < -self.period_s:
            self.misses += 1
            self._next = now
        self._starts[self.ticks % len(self._starts)] = time.perf_counter()
        self.ticks += 1

    def recent(self, n: int = 500) -> tuple[float, int, float]:
        """(achieved rate over the last ``n`` ticks [Hz], deadline misses, p99 period error
        [ms]): cheap enough to call from the loop for a status line."""
        k = min(self.ticks, n, len(self._starts))
        if k < 3:
            return 0.0, self.misses, 0.0
        idx = np.arange(self.ticks - k, self.ticks) % len(self._starts)
        starts = self._starts[idx]
        periods = np.diff(starts)
        rate = (k - 1) / (starts[-1] - starts[0]) if starts[-1] > starts[0] else 0.0
        return float(rate), self.misses, float(np.percentile(np.abs(periods - self.period_s), 99) * 1e3)

    def summary(self) -> LoopSummary:
        n = min(self.ticks, len(self._starts))
        idx = np.arange(self.ticks - n, self.ticks) % len(self._starts)
        starts = self._starts[idx]
        periods = np.diff(starts)
        elapsed = time.perf_counter() - self._t0
        return LoopSummary(
            ticks=self.ticks,
            rate_hz=self.rate_hz,
            achieved_hz=round(self.ticks / elapsed, 2) if elapsed > 0 else 0.0,
            deadline_misses=self.misses,
            jitter_ms=percentiles(np.abs(periods - self.period_s), 1e3),
        )
