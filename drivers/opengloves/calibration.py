"""Per-channel calibration of an OpenGloves glove: raw fractions of full scale -> 0..1.

Each calibrated channel has a range ``(lo, hi)`` in fractions of ``analog_max`` (so one file works
for 1023 and 4095 firmware): ``lo`` is the open-hand reading, ``hi`` the fist reading (``lo > hi``
is allowed: a sensor mounted the other way round is inverted by its calibration). Curls and
per-joint values map ``lo..hi -> 0..1`` (clipped); splays map ``lo..hi -> -1..1`` (clipped).
A channel not listed keeps the identity range ``(0, 1)``.

Channels: ``<finger>_curl`` and ``<finger>_splay`` for thumb..pinky, and ``<finger>_j<0..3>`` for
the per-joint ``(xAy)`` keys. The JSON file (``save_calibration``)::

    {"format": "opengloves-calibration", "version": 1, "side": "right",
     "ranges": {"index_curl": [0.12, 0.87], "index_splay": [0.40, 0.62], ...}}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from drivers.opengloves.protocol_opengloves import FINGERS, GloveReading
from teleop.errors import ConfigError

__all__ = [
    "CURL_CHANNELS",
    "SPLAY_CHANNELS",
    "JOINT_CHANNELS",
    "CALIBRATED_CHANNELS",
    "MIN_SPAN",
    "ChannelCalibration",
    "calibration_from_recording",
    "load_calibration",
    "save_calibration",
]

CURL_CHANNELS: Final = tuple(f"{f}_curl" for f in FINGERS)
SPLAY_CHANNELS: Final = tuple(f"{f}_splay" for f in FINGERS)
JOINT_CHANNELS: Final = tuple(f"{f}_j{j}" for f in FINGERS for j in range(4))
CALIBRATED_CHANNELS: Final = CURL_CHANNELS + SPLAY_CHANNELS + JOINT_CHANNELS

#: Smallest accepted |hi - lo| (fraction of full scale): a channel that moved less did not move.
MIN_SPAN: Final = 0.03

FORMAT: Final = "opengloves-calibration"
VERSION: Final = 1

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ChannelCalibration:
    """``ranges``: channel name -> (lo, hi), fractions of full scale. Identity when empty."""

    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    side: str | None = None

    def __post_init__(self) -> None:
        clean: dict[str, tuple[float, float]] = {}
        for name, rng in self.ranges.items():
            if name not in CALIBRATED_CHANNELS:
                raise ConfigError(f"calibration: unknown channel {name!r}; allowed: {list(CALIBRATED_CHANNELS)}")
            try:
                lo, hi = (float(x) for x in rng)
            except (TypeError, ValueError):
                raise ConfigError(f"calibration: {name} must be [lo, hi] (two numbers), got {rng!r}") from None
            if not (math.isfinite(lo) and math.isfinite(hi)) or abs(hi - lo) < MIN_SPAN:
                raise ConfigError(
                    f"calibration: {name} = [{lo}, {hi}]: need finite values at least {MIN_SPAN} apart "
                    "(fractions of full scale); recalibrate or delete the entry"
                )
            clean[name] = (round(lo, 6), round(hi, 6))  # what the JSON file keeps
        object.__setattr__(self, "ranges", clean)
        lows = np.zeros(len(CALIBRATED_CHANNELS))
        highs = np.ones(len(CALIBRATED_CHANNELS))
        for i, name in enumerate(CALIBRATED_CHANNELS):
            if name in clean:
                lows[i], highs[i] = clean[name]
        object.__setattr__(self, "_lo", lows)
        object.__setattr__(self, "_inv_span", 1.0 / (highs - lows))

    def apply(self, reading: GloveReading) -> tuple[F64, F64, F64]:
        """Calibrated (curl (5,) 0..1, joints (5, 4) 0..1 or NaN, splay (5,) -1..1 or NaN)."""
        lo: F64 = self._lo  # type: ignore[attr-defined]
        k: F64 = self._inv_span  # type: ignore[attr-defined]
        curl = np.clip((reading.curl - lo[:5]) * k[:5], 0.0, 1.0)
        splay = np.clip((reading.splay - lo[5:10]) * k[5:10] * 2.0 - 1.0, -1.0, 1.0)
        joints = np.clip((reading.joints.ravel() - lo[10:]) * k[10:], 0.0, 1.0).reshape(5, 4)
        return curl, joints, splay

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self.side is not None:
            out["side"] = self.side
        out["ranges"] = {name: [lo, hi] for name, (lo, hi) in self.ranges.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelCalibration:
        if not isinstance(data, Mapping):
            raise ConfigError(f"calibration must be a JSON object, got {type(data).__name__}")
        allowed = ("format", "version", "side", "ranges")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"calibration: unknown key(s) {unknown}; allowed keys: {list(allowed)}")
        if data.get("format", FORMAT) != FORMAT or data.get("version", VERSION) != VERSION:
            raise ConfigError(
                f"calibration: format/version {data.get('format')!r}/{data.get('version')!r} not supported; "
                f"expected {FORMAT!r}/{VERSION}"
            )
        ranges = data.get("ranges", {})
        if not isinstance(ranges, Mapping):
            raise ConfigError(f"calibration: 'ranges' must be an object of name -> [lo, hi], got {ranges!r}")
        return cls(ranges=ranges, side=data.get("side"))


def _median(rows: Sequence[F64]) -> F64:
    a = np.asarray(rows, dtype=np.float64)
    out = np.full(a.shape[1:], np.nan)
    seen = ~np.all(np.isnan(a), axis=0)
    out[seen] = np.nanmedian(a[:, seen], axis=0)
    return out


def calibration_from_recording(
    open_hand: Sequence[GloveReading], fist: Sequence[GloveReading], side: str | None = None
) -> tuple[ChannelCalibration, list[str]]:
    """Ranges from an open-hand and a fist recording: curls and joints from the median of each
    phase; splays from the 5th..95th percentile over both phases (spread the fingers while the
    hand is open). Returns the calibration and the channels that did not move (left identity)."""
    if not open_hand or not fist:
        raise ConfigError(
            f"calibration needs samples of both poses, got {len(open_hand)} open-hand and {len(fist)} fist samples; "
            "is the glove streaming?"
        )
    lo = np.concatenate([_median([r.curl for r in open_hand]), _median([r.joints.ravel() for r in open_hand])])
    hi = np.concatenate([_median([r.curl for r in fist]), _median([r.joints.ravel() for r in fist])])
    names = CURL_CHANNELS + JOINT_CHANNELS
    ranges: dict[str, tuple[float, float]] = {}
    still: list[str] = []
    for name, a, b in zip(names, lo, hi, strict=True):
        if np.isnan(a) or np.isnan(b):
            continue  # channel not sent by this glove
        if abs(b - a) < MIN_SPAN:
            still.append(name)
        else:
            ranges[name] = (float(a), float(b))
    splay = np.asarray([r.splay for r in (*open_hand, *fist)], dtype=np.float64)
    for f, name in enumerate(SPLAY_CHANNELS):
        col = splay[:, f]
        col = col[~np.isnan(col)]
        if not len(col):
            continue
        a, b = np.percentile(col, [5.0, 95.0])
        if b - a < MIN_SPAN:
            still.append(name)
        else:
            ranges[name] = (float(a), float(b))
    return ChannelCalibration(ranges=ranges, side=side), still


def load_calibration(path: str | os.PathLike[str]) -> ChannelCalibration:
    """Read a calibration JSON file. Raises ``ConfigError`` naming the file and the problem."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"calibration file {str(p)!r} does not exist; run the driver's calibrate() (or `teleop calibrate`) "
            "to create it, or unset the calibration option"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"calibration file {str(p)!r} is unreadable: {exc}") from None
    try:
        return ChannelCalibration.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"calibration file {str(p)!r}: {exc}") from None


def save_calibration(path: str | os.PathLike[str], calibration: ChannelCalibration) -> None:
    """Write atomically (a temporary file renamed over ``path``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, p)
