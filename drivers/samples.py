"""Typed samples every driver emits (DESIGN.md): hands, wrist poses, tactile frames, buttons.

Drivers emit raw data in their own frame and units as documented per field; they never
retarget. ``capture_ns`` is ``time.monotonic_ns()`` on this host at the moment the data was
read from the device (or the sender's capture time corrected onto this clock for network
sources); ``seq`` counts samples per driver from 0, so gaps show drops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from teleop.types import Side

__all__ = [
    "SampleKind",
    "SampleSpec",
    "HandSample",
    "PoseSample",
    "TactileSample",
    "ButtonEvent",
    "Sample",
    "HapticFeedback",
    "sample_to_json",
]

SampleKind = Literal["hand", "pose", "tactile", "buttons"]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SampleSpec:
    """What a driver produces; available without connecting (for UIs and recorders)."""

    kinds: tuple[SampleKind, ...]
    side: Side | None = None
    channel_names: tuple[str, ...] = ()  # HandSample.channels / PoseSample extras, in order
    button_names: tuple[str, ...] = ()
    rate_hz: float = 0.0  # nominal
    feedback: bool = False  # accepts send_feedback
    frame: str = ""  # coordinate frame of positions/poses, e.g. "wrist" or "tracker"


@dataclass(frozen=True, slots=True)
class HandSample:
    """One hand. ``keypoints`` (21, 3) [m] in the wrist frame (docs/hand-keypoints.md) when the
    driver can produce them; ``angles`` (20,) [rad] in ``retarget.human_hand.ANGLE_NAMES`` order
    when it measures joints; ``channels`` raw device channels normalised as the driver documents;
    ``buttons`` names of the buttons/gestures held."""

    side: Side
    capture_ns: int
    seq: int
    keypoints: F64 | None = None
    angles: F64 | None = None
    channels: F64 = field(default_factory=lambda: np.zeros(0))
    buttons: frozenset[str] = frozenset()
    source: str = ""


@dataclass(frozen=True, slots=True)
class PoseSample:
    """A wrist (or any tracked body) pose: position [m] and unit quaternion (w, x, y, z), in the
    source's frame converted to the runtime's convention: right-handed, Z up, metres."""

    side: Side | None
    capture_ns: int
    seq: int
    position_m: F64
    quat_wxyz: F64
    frame: str = "tracker"
    channels: F64 = field(default_factory=lambda: np.zeros(0))  # e.g. raw 6-axis SpaceMouse values
    buttons: frozenset[str] = frozenset()
    source: str = ""


@dataclass(frozen=True, slots=True)
class TactileSample:
    """An optical tactile frame: marker displacement field (M, 2) [px] against the reference frame,
    marker reference positions (M, 2) [px], contact mask (H, W) bool, force estimate (3,) [N] in
    the sensor frame (x, y shear, z normal), torsion [N m] (NaN if not estimated), optional image."""

    side: Side | None
    capture_ns: int
    seq: int
    markers_px: F64
    displacement_px: F64
    contact_mask: npt.NDArray[np.bool_]
    force_n: F64
    torsion_nm: float = float("nan")
    image: npt.NDArray[np.uint8] | None = None
    finger: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    """A button (pedal, key, glove button or gesture) changed state."""

    capture_ns: int
    seq: int
    button: str
    pressed: bool
    side: Side | None = None
    source: str = ""


Sample = HandSample | PoseSample | TactileSample | ButtonEvent


@dataclass(frozen=True)
class HapticFeedback:
    """Output to a glove: per-finger force feedback 0 (free) .. 1 (fully blocked), thumb to pinky,
    and an optional vibration burst."""

    force: F64 = field(default_factory=lambda: np.zeros(5))  # (5,)
    vibration_hz: float = 0.0
    vibration_amplitude: float = 0.0  # 0..1
    vibration_s: float = 0.0


def _arr(a: Any, digits: int = 5) -> Any:
    return None if a is None else np.round(np.asarray(a, dtype=float), digits).tolist()


def sample_to_json(sample: Sample, channel_names: tuple[str, ...] = (), with_image: bool = False) -> dict[str, Any]:
    """A JSON-friendly dict (``teleop drivers echo --json`` prints one per line)."""
    base: dict[str, Any] = {"kind": "", "t_ns": sample.capture_ns, "seq": sample.seq, "source": sample.source}
    if isinstance(sample, HandSample):
        base.update(kind="hand", side=sample.side, buttons=sorted(sample.buttons), angles=_arr(sample.angles, 4),
                    keypoints=_arr(sample.keypoints))
        if channel_names and len(channel_names) == len(sample.channels):
            base["channels"] = {n: round(float(v), 5) for n, v in zip(channel_names, sample.channels)}
        else:
            base["channels"] = _arr(sample.channels)
    elif isinstance(sample, PoseSample):
        base.update(kind="pose", side=sample.side, frame=sample.frame, position_m=_arr(sample.position_m),
                    quat_wxyz=_arr(sample.quat_wxyz), buttons=sorted(sample.buttons))
        if len(sample.channels):
            base["channels"] = _arr(sample.channels)
    elif isinstance(sample, TactileSample):
        base.update(kind="tactile", side=sample.side, finger=sample.finger, force_n=_arr(sample.force_n, 4),
                    torsion_nm=None if np.isnan(sample.torsion_nm) else round(float(sample.torsion_nm), 6),
                    markers=int(len(sample.markers_px)),
                    mean_displacement_px=_arr(sample.displacement_px.mean(axis=0) if len(sample.displacement_px) else [0, 0], 3),
                    contact_fraction=round(float(sample.contact_mask.mean()) if sample.contact_mask.size else 0.0, 4))
        if with_image and sample.image is not None:
            base["image_shape"] = list(sample.image.shape)
    elif isinstance(sample, ButtonEvent):
        base.update(kind="button", button=sample.button, pressed=sample.pressed, side=sample.side)
    return base
