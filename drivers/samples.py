"""Typed samples every driver emits: hands, wrist poses, tactile frames, buttons.

Drivers emit raw data in their own frame and units as documented per field; they never
retarget. ``capture_ns`` is ``time.monotonic_ns()`` on this host at the moment the data was
read from the device (or the sender's capture time corrected onto this clock for network
sources); ``seq`` counts samples per driver from 0, so gaps show drops.

The one contract for hands: a ``HandSample`` drives the robot's hand only through ``keypoints``,
(21, 3) metres in the wrist frame (docs/hand-keypoints.md); ``angles``, ``channels`` and
``buttons`` are extra (recorded, shown, used for gestures). A glove that measures curls or joint
angles turns them into keypoints with ``drivers.hands.GloveHand``. ``hand_sample_problem`` says
what breaks the contract; ``drivers.testing.check_driver`` fails a driver on it and the session
names it when it refuses to engage.
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
    "hand_sample_problem",
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
    """One hand. ``keypoints`` (21, 3) [m] in the wrist frame (docs/hand-keypoints.md): required,
    the only field the session retargets from (a glove that measures curls or angles gets them from
    ``drivers.hands.GloveHand``); ``angles`` (20,) [rad] in ``retarget.human_hand.ANGLE_NAMES``
    order when it measures joints; ``channels`` raw device channels normalised as the driver
    documents; ``buttons`` names of the buttons/gestures held."""

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


#: Plausibility bounds of the wrist frame: keypoint 0 is the origin; a human hand reaches well
#: under 0.35 m from the wrist and more than 0.03 m (catches mm/cm units, a world frame, zeros).
_WRIST_AT_ORIGIN_M = 0.01
_HAND_REACH_M = (0.03, 0.35)


def hand_sample_problem(sample: HandSample, driver: str = "") -> str | None:
    """Why ``sample`` cannot drive a hand, in words for the author, or None when it can. Checks
    ``keypoints`` (present, (21, 3), finite, metres in the wrist frame) and ``angles`` if given."""
    who = f"driver {driver}" if driver else "the driver"
    kp = sample.keypoints
    if kp is None:
        filled = [n for n, v in (("angles", sample.angles), ("channels", len(sample.channels) or None),
                                 ("buttons", sample.buttons or None)) if v is not None]
        fills = f"fills only {', '.join(filled)}" if filled else "fills none of keypoints, angles, channels"
        return f"carry no keypoints ({who} {fills})"
    kp = np.asarray(kp)
    if kp.shape != (21, 3):
        return f"carry keypoints of shape {kp.shape}, not (21, 3) ({who})"
    if not np.all(np.isfinite(kp)):
        return f"carry keypoints that are not finite (NaN or infinity) ({who})"
    wrist = float(np.linalg.norm(kp[0]))
    reach = float(np.linalg.norm(kp - kp[0], axis=1).max())
    if wrist > _WRIST_AT_ORIGIN_M:
        return (f"carry keypoints whose wrist (keypoint 0) is {wrist:.3g} from the origin, not at it: "
                f"keypoints are in the wrist frame ({who})")
    if not _HAND_REACH_M[0] <= reach <= _HAND_REACH_M[1]:
        return (f"carry keypoints that reach {reach:.3g} from the wrist, not a hand's "
                f"{_HAND_REACH_M[0]}..{_HAND_REACH_M[1]} m: keypoints are in metres ({who})")
    if sample.angles is not None:
        angles = np.asarray(sample.angles)
        if angles.shape != (20,) or not np.all(np.isfinite(angles)):
            return f"carry angles of shape {angles.shape} or not finite, not 20 finite radians ({who})"
    return None
