"""``replay``: play back samples recorded with ``teleop drivers echo NAME --json > file.jsonl``.
Each line is one sample (``drivers.samples.sample_to_json``); bad lines are counted and skipped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from drivers.base import ThreadedDriver
from drivers.replay.config_replay import ReplayConfig
from drivers.samples import ButtonEvent, HandSample, PoseSample, Sample, SampleSpec
from teleop.errors import DeviceError

__all__ = ["ReplayDriver", "load_samples"]


def _arr(v: Any, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64)
    if shape is not None and a.shape != shape:
        raise ValueError(f"expected shape {shape}, got {a.shape}")
    return a


def _parse(obj: dict[str, Any]) -> tuple[int, Sample]:
    """(recorded t_ns, sample with capture_ns/seq to be filled) from one JSON line."""
    kind, t = obj["kind"], int(obj["t_ns"])
    src = obj.get("source", "") + "@replay"
    if kind == "hand":
        ch = obj.get("channels")
        channels = np.array(list(ch.values()) if isinstance(ch, dict) else (ch or []), dtype=np.float64)
        return t, HandSample(side=obj["side"], capture_ns=0, seq=0, keypoints=_arr(obj.get("keypoints"), (21, 3)),
                             angles=_arr(obj.get("angles"), (20,)), channels=channels,
                             buttons=frozenset(obj.get("buttons", [])), source=src)
    if kind == "pose":
        return t, PoseSample(side=obj.get("side"), capture_ns=0, seq=0, position_m=_arr(obj["position_m"], (3,)),
                             quat_wxyz=_arr(obj["quat_wxyz"], (4,)), frame=obj.get("frame", "tracker"),
                             channels=_arr(obj.get("channels") or [], None), buttons=frozenset(obj.get("buttons", [])),
                             source=src)
    if kind == "button":
        return t, ButtonEvent(capture_ns=0, seq=0, button=str(obj["button"]), pressed=bool(obj["pressed"]),
                              side=obj.get("side"), source=src)
    raise ValueError(f"kind {kind!r} cannot be replayed (hand, pose, button)")


def load_samples(path: str | Path) -> tuple[list[tuple[int, Sample]], int]:
    """Parsed (t_ns, sample) pairs in file order, and the number of bad lines skipped."""
    out: list[tuple[int, Sample]] = []
    bad = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(_parse(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                bad += 1
    return out, bad


class ReplayDriver(ThreadedDriver):
    name: ClassVar[str] = "replay"
    config_class: ClassVar[type[ReplayConfig]] = ReplayConfig
    description: ClassVar[str] = "play back samples recorded with `teleop drivers echo NAME --json`"
    config: ReplayConfig

    def __init__(self, config: ReplayConfig | None = None) -> None:
        super().__init__(config)
        self._items: list[tuple[int, Sample]] = []
        self._i = 0
        self._t0_wall = 0.0
        self._t0_rec = 0

    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(kinds=("hand", "pose", "buttons"), side=self.config.side, frame="as recorded")

    def _open(self) -> None:
        path = self.config.path
        if not Path(path).is_file():
            raise DeviceError(f"replay file {path} does not exist; record one with `teleop drivers echo NAME --json > {path}`")
        items, bad = load_samples(path)
        if bad:
            self.count("bad_line", f"{bad} lines of {path} could not be parsed")
        if self.config.side is not None:
            items = [(t, s) for t, s in items if getattr(s, "side", None) in (self.config.side, None)]
        if not items:
            raise DeviceError(f"replay file {path} holds no replayable samples ({bad} bad lines)")
        self._items = items
        self._i = 0
        self._t0_wall = time.monotonic()
        self._t0_rec = items[0][0]

    def _read(self) -> Sample | None:
        if self._i >= len(self._items):
            if not self.config.loop:
                time.sleep(0.05)
                return None
            span = (self._items[-1][0] - self._t0_rec) / 1e9 / self.config.speed
            self._t0_wall += span + 1.0 / 100.0
            self._i = 0
        t_rec, sample = self._items[self._i]
        due = self._t0_wall + (t_rec - self._t0_rec) / 1e9 / self.config.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, 0.1))
            if time.monotonic() < due:
                return None
        self._i += 1
        fields = {"capture_ns": time.monotonic_ns(), "seq": self.next_seq()}
        if self.config.side is not None and getattr(sample, "side", "x") is None:
            fields["side"] = self.config.side
        return type(sample)(**{**{f: getattr(sample, f) for f in sample.__dataclass_fields__}, **fields})

    def _close(self) -> None:
        self._items = []
