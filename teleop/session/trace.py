"""Tracing, always on: where a command's time went, and what every pipeline stage costs.

* ``CommandTrace``: the way of each human command, from the device sample it reacts to (the
  newest one, the sample that woke the pipeline) to the robot server taking it as its setpoint.
  The loop stamps capture, driver delivery, pick-up, retarget done, safety done and sent
  (``teleop.session.frame.STAMPS``); the robot's state echoes the command's sequence with when
  the server received and applied it (its clock, put on ours with the session's clock offset).
  ``PATH`` names the intervals between them; ``total`` is capture -> setpoint, ``oldest_input``
  the age of the oldest sample the command also used (another device's, read as it was).
* ``StageClock``: the compute time of every stage's ``step`` per pass.

Both write into preallocated rings (nothing allocated per pass); percentiles are computed when
asked (the status line at 10 Hz, the tap once a second, the summary at the end).
"""

from __future__ import annotations

import math

import numpy as np

from teleop.loop import percentiles

__all__ = ["CommandTrace", "StageClock", "PATH", "PATH_MEANING", "format_stages"]

#: The command path's intervals, in order, with what each is.
PATH_MEANING = {
    "device": "sample capture -> driver delivery (device transport and parsing)",
    "pickup": "driver delivery -> the loop picks the sample up (waiting for the loop, the GIL)",
    "retarget": "retargeting the operator's hands and wrists",
    "safety": "the arbiter and the safety filter",
    "send": "encoding and publishing the command",
    "wire": "published -> the robot server received it (ZeroMQ, the server's poll)",
    "server": "received -> it became the robot's setpoint",
    "total": "sample capture -> robot setpoint",
    "oldest_input": "the oldest sample the command used -> robot setpoint",
}
PATH = tuple(PATH_MEANING)
_PENDING = 1024  # commands sent but not yet echoed (a state read every few ticks answers the newest)


class CommandTrace:
    def __init__(self, history: int = 1 << 15) -> None:
        self._seq = np.full(_PENDING, -1, dtype=np.int64)
        self._stamps = np.zeros((_PENDING, 7), dtype=np.int64)  # STAMPS + the oldest capture
        self.ms = np.zeros((history, len(PATH)))  # completed commands' intervals [ms]
        self.capture_ns = np.zeros(history, dtype=np.int64)  # ... and the capture each reacted to
        self.n = 0
        self._second_from = 0  # the first row not yet in a per-second summary

    def begin(self, seq: int, stamps: np.ndarray, oldest_ns: int) -> None:
        """A human command went out with header sequence ``seq``."""
        i = seq % _PENDING
        self._seq[i] = seq
        self._stamps[i, :6] = stamps
        self._stamps[i, 6] = oldest_ns

    def complete(self, seq: int, recv_ns: int, applied_ns: int) -> bool:
        """The robot echoed ``seq`` with its receive and apply times (on the session's clock).
        Each command counts once; an overwritten or unknown sequence is ignored."""
        i = seq % _PENDING
        if seq < 0 or self._seq[i] != seq:
            return False
        self._seq[i] = -1
        capture, delivered, picked, retargeted, safe, sent, oldest = (int(v) for v in self._stamps[i])
        delivered = delivered if delivered >= capture else capture  # a driver that does not say
        row = self.ms[self.n % len(self.ms)]
        row[0] = (delivered - capture) / 1e6
        row[1] = (picked - delivered) / 1e6
        row[2] = (retargeted - picked) / 1e6
        row[3] = (safe - retargeted) / 1e6
        row[4] = (sent - safe) / 1e6
        row[5] = (recv_ns - sent) / 1e6
        row[6] = (applied_ns - recv_ns) / 1e6
        row[7] = (applied_ns - capture) / 1e6
        row[8] = (applied_ns - oldest) / 1e6
        self.capture_ns[self.n % len(self.ms)] = capture
        self.n += 1
        return True

    def _rows(self, last: int | None = None, since: int | None = None) -> np.ndarray:
        end = self.n
        start = max(0, end - len(self.ms), end - last if last else 0, since or 0)
        idx = np.arange(start, end) % len(self.ms)
        return self.ms[idx]

    def completed(self) -> tuple[np.ndarray, np.ndarray]:
        """(capture_ns, capture -> setpoint [ms]) of every command kept, oldest first: what a
        benchmark joins with its own send times (teleop/bench/web_session.py)."""
        start = max(0, self.n - len(self.ms))
        idx = np.arange(start, self.n) % len(self.ms)
        return self.capture_ns[idx].copy(), self.ms[idx, PATH.index("total")].copy()

    def table(self, last: int | None = None) -> dict[str, dict[str, float]]:
        """``{interval: {p50, p99, max}}`` in ms over the newest ``last`` commands (all kept when None)."""
        rows = self._rows(last)
        if not len(rows):
            return {name: percentiles([]) for name in PATH}
        p50, p99 = np.percentile(rows, [50, 99], axis=0)  # one call: cheap enough for the loop's status
        top = rows.max(axis=0)
        return {name: {"p50": round(float(p50[k]), 4), "p99": round(float(p99[k]), 4), "max": round(float(top[k]), 4)}
                for k, name in enumerate(PATH)}

    def total(self, last: int | None = None) -> dict[str, float]:
        return percentiles(self._rows(last)[:, PATH.index("total")])

    def second(self) -> dict[str, float]:
        """The commands completed since the previous call, as the tap's ``stages`` event values:
        ``n`` and ``<interval>_p50|_p99|_max`` [ms]; empty when there were none."""
        rows = self._rows(since=self._second_from)
        self._second_from = self.n
        if not len(rows):
            return {}
        out: dict[str, float] = {"n": len(rows)}
        for name, stats in self.table(len(rows)).items():
            for stat, v in stats.items():
                if math.isfinite(v):
                    out[f"{name}_{stat}"] = v
        return out


class StageClock:
    """``ns[k, i]``: how long stage ``k``'s ``step`` took in its ``i``-th pass (a ring)."""

    def __init__(self, names: tuple[str, ...], history: int = 1 << 14) -> None:
        self.names = names
        self.ns = np.zeros((len(names), history), dtype=np.int64)
        self.count = np.zeros(len(names), dtype=np.int64)

    def add(self, k: int, ns: int) -> None:
        c = self.count[k]
        self.ns[k, c % self.ns.shape[1]] = ns
        self.count[k] = c + 1

    def table_us(self) -> dict[str, dict[str, float]]:
        """``{stage: {p50, p99, max, passes}}``: compute time per pass [us]."""
        out = {}
        for k, name in enumerate(self.names):
            n = int(min(self.count[k], self.ns.shape[1]))
            if n:
                out[name] = {**percentiles(self.ns[k, :n], 1e-3), "passes": int(self.count[k])}
        return out


def format_stages(stages: dict[str, dict[str, float]], mode: str = "") -> str:
    """One line of the command path's stages, p50/p99 [ms] ("" when nothing was traced)."""
    shown = [(k, v) for k, v in stages.items() if k not in ("total", "oldest_input") and v.get("p50") == v.get("p50")]
    if not shown:
        return ""
    return (f"p50/p99 ms{f' ({mode})' if mode else ''}: "
            + ", ".join(f"{k} {v['p50']:.2f}/{v['p99']:.2f}" for k, v in shown))
