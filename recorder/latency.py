"""The command path's latency per stage in an episode (``meta.json`` ``stages_ms``).

Once a second the session puts on its tap a ``stages`` event: ``n`` (commands traced in that
second) and ``<stage>_p50``, ``<stage>_p99``, ``<stage>_max`` in ms for each interval of a
command's way (device, pickup, retarget, safety, send, wire, server, total, ...), a stage without
data that second left out. An episode keeps the seconds it was open for and sums them up as
``{stage: {p50, p99, max}}``: the median of the per-second p50s, the worst second's p99 (a
conservative figure: some second holds at least 1 % of its commands at or above the episode's
own p99, so the worst second's p99 is about that or higher) and the largest maximum. Only the
seconds travel, not every command; the worst second is what a collector looking for lag wants.

A recovered episode gets the same from the ``stages`` events in its log (``from_log``).
"""

from __future__ import annotations

import logging
import math
import statistics
from pathlib import Path
from typing import Any

__all__ = ["StageSeconds", "from_log", "STATS"]

logger = logging.getLogger(__name__)

STATS = ("p50", "p99", "max")
#: Stage names kept per episode, at most (a tap sending made-up names cannot grow the meta).
MAX_STAGES = 32


def _finite(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


class StageSeconds:
    """The ``stages`` events of one episode, summed up by ``meta()``."""

    def __init__(self) -> None:
        self.seconds = 0
        self.commands = 0
        self.ignored = 0  # events without a valid ``n`` (a sender's bug): left out, warned about once
        self._p50: dict[str, list[float]] = {}
        self._p99: dict[str, float] = {}
        self._max: dict[str, float] = {}

    def add(self, values: dict[str, Any]) -> bool:
        """Take one second's event values; False (and nothing taken) when ``n`` is not a count >= 1.
        A value that is not a finite number is left out, as a stage without data would be."""
        n = values.get("n")
        if type(n) is not int or n < 1:
            self.ignored += 1
            if self.ignored == 1:
                logger.warning("recorder: a 'stages' event with n=%r (expected a count of traced commands >= 1) "
                               "was left out of the episode's stages_ms; the session sending it has a bug", n)
            return False
        self.seconds += 1
        self.commands += n
        for key, v in values.items():
            stage, _, stat = key.rpartition("_")
            if not stage or stat not in STATS or not _finite(v):
                continue
            if stage not in self._p50 and len(self._p50) >= MAX_STAGES:
                continue
            self._p50.setdefault(stage, [])
            v = float(v)
            if stat == "p50":
                self._p50[stage].append(v)
            elif stat == "p99":
                self._p99[stage] = max(v, self._p99.get(stage, -math.inf))
            else:
                self._max[stage] = max(v, self._max.get(stage, -math.inf))
        return True

    def meta(self) -> dict[str, Any]:
        """``{"stages_ms": {stage: {p50, p99, max}}, "stages_seconds": N, "stages_commands": N}``, or
        ``{}`` when no second was taken (a stat no second had is left out)."""
        if not self.seconds:
            return {}
        table: dict[str, dict[str, float]] = {}
        for stage, p50s in self._p50.items():
            row = {}
            if p50s:
                row["p50"] = round(statistics.median(p50s), 3)
            if stage in self._p99:
                row["p99"] = round(self._p99[stage], 3)
            if stage in self._max:
                row["max"] = round(self._max[stage], 3)
            table[stage] = row
        return {"stages_ms": table, "stages_seconds": self.seconds, "stages_commands": self.commands}


def from_log(log: Path) -> dict[str, Any]:
    """``StageSeconds.meta()`` of the ``stages`` events in an episode's log (every intact record;
    only the session's event records are decoded)."""
    from recorder.log import read_records
    from teleop.bus.codec import DecodeError, Decoder
    from teleop.bus.messages import SessionEvent

    decoder = Decoder(accept=(SessionEvent,))
    acc = StageSeconds()
    for rec in read_records(log, topics=("session/event\0",)):
        try:
            _, ev = decoder.decode([bytes(rec.frame)])
        except DecodeError:
            continue
        if ev.event == "stages":  # type: ignore[attr-defined]
            acc.add(dict(ev.values))  # type: ignore[attr-defined]
    return acc.meta()
