"""Object poses for a real robot's bridge: a camera (UVC, a video file, or a camera topic on the
bus) -> the tracker in its own thread (OpenCV releases the GIL while it detects) -> ``fill()``
gives the rows a bridge puts in ``RobotState.body_pose`` / ``body_pose_ns`` / ``body_status``.

A camera that stops delivering is reopened once a second; meanwhile every pose turns held once
it is ``max_age_s`` old, and ``error`` says what happened. The bridge keeps publishing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robots.objects.config import ObjectsConfig
from robots.objects.tracker import UNSEEN, ObjectTracker, age_status
from teleop.errors import ConfigError, DeviceError, TeleopError
from teleop.vision.intrinsics import Intrinsics

__all__ = ["FrameInput", "ObjectPoseFeed", "open_frames", "load_camera"]

logger = logging.getLogger(__name__)

REOPEN_S = 1.0


@dataclass(frozen=True)
class FrameInput:
    """Where frames come from: ``video`` (a file, played in real time), ``device``/``name`` (a UVC
    camera) or ``bus`` (a camera_frame endpoint, with ``camera`` the topic's camera name)."""

    video: str | None = None
    device: str | None = None
    name: str = ""
    bus: str | None = None
    camera: str = "head_cam"
    width: int = 1280
    height: int = 720
    fps: float = 30.0
    loop: bool = False


class _BusFrames:
    def __init__(self, endpoint: str, camera: str) -> None:
        from teleop.bus import Bus, CameraFrame
        from teleop.bus.endpoints import TOPIC_CAMERA

        self.what = f"camera {camera!r} on {endpoint}"
        self._bus = Bus("objects")
        self._sub = self._bus.subscriber(endpoint, [TOPIC_CAMERA + camera], accept=(CameraFrame,), mode="latest",
                                         max_bytes=64 << 20)

    def read(self) -> tuple[np.ndarray, int] | None:
        if not self._sub.wait(REOPEN_S):
            raise DeviceError(f"{self.what}: no frame for {REOPEN_S:g} s")
        got = self._sub.latest()
        return None if got is None else (got.msg.image, got.recv_ns)

    def close(self) -> None:
        self._bus.close()


def open_frames(src: FrameInput):
    """An opened source with ``read() -> (RGB image, capture monotonic ns) | None`` and ``close()``."""
    if src.bus:
        return _BusFrames(src.bus, src.camera)
    from teleop.vision.sources import CameraSource, VideoSource

    source = VideoSource(src.video, True, src.loop) if src.video else CameraSource(
        src.device, src.name, src.width, src.height, src.fps)
    source.open()
    return source


def load_camera(config: ObjectsConfig, intrinsics: str | Path | None = None,
                camera_pose: str | Path | None = None) -> tuple[Intrinsics, np.ndarray]:
    """The calibration a real setup needs: intrinsics and ``T_base_camera`` from the files given
    here or named by the objects config."""
    from teleop.vision.extrinsics import CameraPose

    k_path = intrinsics or config.intrinsics
    p_path = camera_pose or config.camera_pose
    if k_path is None or p_path is None:
        raise ConfigError(f"objects config {config.source}: a real camera needs its intrinsics and its pose in the "
                          "robot's base frame: name them ('intrinsics', 'camera_pose' in the config, or --intrinsics / "
                          "--camera-pose); `teleop calibrate camera` and `teleop calibrate camera-pose` make them")
    return Intrinsics.load(k_path), CameraPose.load(p_path).matrix()


class ObjectPoseFeed:
    """``start()``, then ``fill(pose, pose_ns, status)`` per state (rows in the config's object
    order), ``stop()``. ``error``: the last problem, "" while frames arrive."""

    def __init__(self, config: ObjectsConfig, source: FrameInput, intrinsics: Intrinsics,
                 T_base_camera: np.ndarray) -> None:
        self.config, self.source = config, source
        self.intrinsics = intrinsics
        self.tracker = ObjectTracker(config, intrinsics.matrix(), np.array(intrinsics.dist), T_base_camera)
        self._sized = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        b = len(config.objects)
        self._pose = self.tracker.pose.copy()
        self._pose_ns = np.zeros(b, np.int64)
        self._status = np.full(b, UNSEEN, np.uint8)
        self.frames = 0
        self.error = ""
        self.ended = False  # a video file played to its end

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="object-feed", daemon=True)
        self._thread.start()

    def _size(self, image: np.ndarray) -> None:
        """Intrinsics calibrated at another size scale to the frames' (a 1920x1080 calibration, 1280x720 frames)."""
        h, w = image.shape[:2]
        k = self.intrinsics.for_size(w, h)
        self.tracker.K = k.matrix()
        self._sized = True

    def _run(self) -> None:
        frames = None
        while not self._stop.is_set():
            try:
                if frames is None:
                    frames = open_frames(self.source)
                got = frames.read()
                if got is None:
                    self.ended = True
                    self.error = f"{getattr(frames, 'what', 'video')}: ended"
                    break
                image, capture_ns = got
                if not self._sized:
                    self._size(image)
                self.tracker.update(image, capture_ns)
                self.frames += 1
                with self._lock:
                    np.copyto(self._pose, self.tracker.pose)
                    np.copyto(self._pose_ns, self.tracker.pose_ns)
                    np.copyto(self._status, self.tracker.status)
                self.error = ""
            except (DeviceError, TeleopError, OSError) as exc:
                self.error = str(exc)
                logger.warning("object poses: %s; trying again in %g s", exc, REOPEN_S)
                if frames is not None:
                    frames.close()
                    frames = None
                self._stop.wait(REOPEN_S)
        if frames is not None:
            frames.close()

    def fill(self, pose: np.ndarray, pose_ns: np.ndarray, status: np.ndarray, now_ns: int | None = None) -> None:
        """Copy the newest measurements into a state's rows; fresh poses older than ``max_age_s``
        (a camera that stopped) are reported as held."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            np.copyto(pose, self._pose)
            np.copyto(pose_ns, self._pose_ns)
            np.copyto(status, self._status)
        age_status(status, pose_ns, now, self.config.tracking.max_age_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None
