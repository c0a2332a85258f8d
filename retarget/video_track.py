"""A recorded human video -> per-frame tracked hands, for retargeting offline.

Every frame is decoded and tracked (no real-time skipping), with MediaPipe's hand models
(``drivers.camera_hands.tracker``), per side of the person: the keypoints in the wrist frame and
the wrist pose in the ``camera`` frame (``drivers.camera_hands.pose``), both One-Euro smoothed
on the video's own timeline (frame ``i`` at ``i / fps`` s) with the robot's retargeting filter
settings. A frame where a side is not seen is a gap: flagged, its values NaN, never filled in;
the filters restart after it, so no smoothing reaches across a gap either. A hand seen but
whose wrist pose cannot be solved keeps its keypoints, its pose is NaN (``pose_ok`` false).

``track_video`` streams: each decoded frame goes to ``sink`` (the episode's video, a preview)
while it is tracked, so a long video never sits in memory.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retarget.filters import FilterConfig, KeypointFilter, PoseFilter
from teleop.errors import TeleopError
from teleop.types import SIDES, Side

__all__ = ["VideoInputError", "SideTrack", "VideoTrack", "track_video", "sha256_file", "open_video"]

F64 = npt.NDArray[np.float64]


class VideoInputError(TeleopError):
    """The video cannot be used: missing, not a video, corrupt, or of a size the tracker refuses."""


@dataclass
class SideTrack:
    """One side of the person over the frames (N frames)."""

    found: npt.NDArray[np.bool_]  # (N,) the hand was tracked in this frame
    pose_ok: npt.NDArray[np.bool_]  # (N,) ... and its wrist pose was solved
    keypoints: F64  # (N, 21, 3) wrist frame [m], smoothed; NaN where not found
    wrist_pos: F64  # (N, 3) camera frame [m], smoothed; NaN where no pose
    wrist_quat: F64  # (N, 4) (w, x, y, z) camera frame, smoothed; NaN where no pose
    presence: F64  # (N,) the landmark model's hand score; NaN where not found
    handedness: F64  # (N,) P(right hand) of the frame; NaN where not found
    confidence: F64  # (N, 21) per keypoint; NaN where not found

    @classmethod
    def empty(cls, n: int) -> SideTrack:
        nan = math.nan
        return cls(np.zeros(n, bool), np.zeros(n, bool), np.full((n, 21, 3), nan), np.full((n, 3), nan),
                   np.full((n, 4), nan), np.full(n, nan), np.full(n, nan), np.full((n, 21), nan))

    def gaps(self) -> list[tuple[int, int]]:
        """Runs of frames without this hand after it was first seen and before it was last seen,
        as (first, last) frame numbers (inclusive)."""
        idx = np.flatnonzero(self.found)
        if len(idx) < 2:
            return []
        jumps = np.flatnonzero(np.diff(idx) > 1)
        return [(int(idx[j]) + 1, int(idx[j + 1]) - 1) for j in jumps]


@dataclass
class VideoTrack:
    path: Path
    fps: float
    width: int
    height: int
    frames: int  # frames decoded and tracked
    declared_frames: int  # what the container says it holds (0: unknown)
    first_frame: int  # index of the first tracked frame in the file
    sides: dict[Side, SideTrack]
    intrinsics: str  # where the intrinsics came from
    seconds: float  # wall time of decoding + tracking
    ended_early: bool = False  # decoding stopped before the declared frame count (a damaged file)
    info: dict = field(default_factory=dict)

    @property
    def times_s(self) -> F64:
        return np.arange(self.frames) / self.fps


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def open_video(path: Path):
    """An OpenCV capture positioned at frame 0, its fps and declared frame count; or
    ``VideoInputError`` saying what is wrong with the file."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"video {path}: no such file")
    cap = cv2.VideoCapture(str(path))
    ok, bgr = cap.read() if cap.isOpened() else (False, None)
    if not ok or bgr is None:
        cap.release()
        raise VideoInputError(f"video {path}: not a video OpenCV can decode (corrupt, or not a video file); "
                              "check it plays, e.g. `ffprobe` it, or re-encode it")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not (fps and math.isfinite(fps) and 1.0 <= fps <= 1000.0):
        cap.release()
        raise VideoInputError(f"video {path}: its frame rate ({fps!r}) is not in 1..1000 frames/s; re-encode it "
                              "with a constant frame rate")
    declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    declared = int(declared) if declared and math.isfinite(declared) and declared > 0 else 0
    return cap, float(fps), declared


#: What ``sink`` gets per frame: (frame index from 0, RGB frame, {side: tracked hand or None}).
Sink = Callable[[int, np.ndarray, dict], None]


def track_video(path: Path, *, max_frames: int | None = None, start_frame: int = 0,
                intrinsics: str | Path | None = None, hfov_deg: float = 65.0, mirror: bool = False,
                max_hands: int = 2, min_detection: float = 0.5, min_presence: float = 0.5, threads: int = 1,
                keypoint_filter: FilterConfig | None = None, position_filter: FilterConfig | None = None,
                orientation_filter: FilterConfig | None = None, sink: Sink | None = None) -> VideoTrack:
    """Track every frame of ``path`` (from ``start_frame``, at most ``max_frames``). ``sink``
    sees each frame as it is tracked. Raises ``VideoInputError`` for a file that is no usable
    video; models missing raise the tracker's ``DeviceError`` (naming ``teleop models fetch``)."""
    import cv2

    from drivers.camera_hands.pose import hand_in_camera, wrist_frame
    from drivers.camera_hands.tracker import HandTracker
    from teleop.vision.intrinsics import Intrinsics

    path = Path(path)
    fixed = Intrinsics.load(intrinsics) if intrinsics else None  # a bad file is said before decoding starts
    tracker = HandTracker(max_hands=max_hands, min_detection=min_detection, min_presence=min_presence,
                          threads=threads)
    cap, fps, declared = open_video(path)
    t_wall = time.perf_counter()
    try:
        if start_frame:
            for _ in range(start_frame):  # grab, not seek: seeking is inexact on many files
                if not cap.grab():
                    raise VideoInputError(f"video {path}: start frame {start_frame} is past its end")
        limit = max_frames if max_frames is not None else (max(declared - start_frame, 0) or None)
        cap_n = limit if limit is not None else 1 << 16
        sides = {s: SideTrack.empty(cap_n) for s in SIDES}
        kf = {s: KeypointFilter(keypoint_filter) for s in SIDES}
        pf = {s: PoseFilter(position_filter, orientation_filter) for s in SIDES}
        intr = None
        k = dist = None
        n = 0
        ended_early = False
        while limit is None or n < limit:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                ended_early = bool(declared) and start_frame + n < declared and (limit is None or n < limit)
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if mirror:
                rgb = np.ascontiguousarray(rgb[:, ::-1])  # the person's right hand is on the image's left
            h, w = rgb.shape[:2]
            if intr is None or (intr.width, intr.height) != (w, h):
                intr = fixed.for_size(w, h) if fixed else Intrinsics.pinhole(w, h, hfov_deg)
                k, dist = intr.matrix(), np.array(intr.dist)
            if n >= cap_n:  # an unknown length: grow
                for s in SIDES:
                    sides[s] = _grow(sides[s], 2 * cap_n)
                cap_n *= 2
            t_s = n / fps
            seen: dict = {s: None for s in SIDES}
            for hand in tracker.process(rgb, t_s):
                if seen[hand.side] is not None:  # the tracker never gives two hands one side; be sure
                    continue
                seen[hand.side] = hand
                st = sides[hand.side]
                solved = hand_in_camera(hand.world_m, hand.image_px, hand.side, k, dist)
                if solved is None:
                    kp = (hand.world_m - hand.world_m[0]) @ wrist_frame(hand.world_m, hand.side)
                else:
                    kp, pos, quat = solved
                    if n == 0 or not st.pose_ok[n - 1]:
                        pf[hand.side].reset()  # the pose is back after a gap: start afresh
                    fp = pf[hand.side].filter(pos, quat, t_s)
                    st.wrist_pos[n], st.wrist_quat[n], st.pose_ok[n] = fp.position_m, fp.quat_wxyz, True
                if n == 0 or not st.found[n - 1]:
                    kf[hand.side].reset()
                st.keypoints[n] = kf[hand.side].filter(kp, t_s)
                st.found[n] = True
                st.presence[n], st.handedness[n] = float(hand.presence), float(hand.handedness)
                st.confidence[n] = np.asarray(hand.confidence, dtype=np.float64)
            if sink is not None:
                sink(n, rgb, seen)
            n += 1
    finally:
        cap.release()
    if n == 0:
        raise VideoInputError(f"video {path}: no frame could be decoded from frame {start_frame} on")
    return VideoTrack(path=path, fps=fps, width=w, height=h, frames=n, declared_frames=declared,
                      first_frame=start_frame, sides={s: _cut(sides[s], n) for s in SIDES},
                      intrinsics=intr.source if intr else "", seconds=time.perf_counter() - t_wall,
                      ended_early=ended_early, info=tracker.stats)


def _grow(st: SideTrack, n: int) -> SideTrack:
    new = SideTrack.empty(n)
    m = len(st.found)
    for name in st.__dataclass_fields__:
        getattr(new, name)[:m] = getattr(st, name)
    return new


def _cut(st: SideTrack, n: int) -> SideTrack:
    return SideTrack(**{name: getattr(st, name)[:n].copy() for name in st.__dataclass_fields__})
