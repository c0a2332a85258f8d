"""Frames for the hand tracker: a UVC camera (newest frame wins: a one-frame buffer) or a video
file (played at its frame rate, skipping what the tracker cannot keep up with, or every frame),
as RGB. OpenCV reads both (``cv2.VideoCapture``)."""

from __future__ import annotations

import time

import numpy as np

from teleop.errors import DeviceError
from teleop.vision.devices import check_access, load_cv2, resolve_device

__all__ = ["CameraSource", "VideoSource", "open_source"]


class CameraSource:
    def __init__(self, device: str | None, name: str, width: int, height: int, fps: float) -> None:
        self.device, self.name, self.width, self.height, self.fps = device, name, width, height, fps
        self.cap = None
        self.what = ""

    def open(self) -> None:
        cv2 = load_cv2()
        path = resolve_device(self.device, self.name) if (self.device or self.name) else "/dev/video0"
        check_access(path)
        cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise DeviceError(f"camera {path}: OpenCV cannot open it; is another program using it? "
                              "(`v4l2-ctl --list-devices` lists the cameras)")
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
        self.cap, self.what = cap, f"camera {path}"
        self.fps = cap.get(cv2.CAP_PROP_FPS) or self.fps

    def read(self) -> tuple[np.ndarray, int] | None:
        """(RGB frame, capture time [monotonic ns]) or None at the end (a camera never ends)."""
        cv2 = load_cv2()
        ok, bgr = self.cap.read()  # type: ignore[union-attr]
        t = time.monotonic_ns()
        if not ok or bgr is None:
            raise DeviceError(f"{self.what} stopped delivering frames (unplugged?)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class VideoSource:
    def __init__(self, path: str, realtime: bool, loop: bool) -> None:
        self.path, self.realtime, self.loop = path, realtime, loop
        self.cap = None
        self.fps = 30.0
        self.what = f"video {path}"
        self.index = -1  # of the frame last read
        self._t0 = 0

    def open(self) -> None:
        from pathlib import Path

        cv2 = load_cv2()
        if not Path(self.path).is_file():
            raise DeviceError(f"video {self.path}: no such file")
        cap = cv2.VideoCapture(self.path)
        ok, _ = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            raise DeviceError(f"video {self.path}: not a video OpenCV can decode (corrupt, or not a video file)")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 1000 else 30.0
        self.cap, self.index, self._t0 = cap, -1, time.monotonic_ns()

    def read(self) -> tuple[np.ndarray, int] | None:
        cv2 = load_cv2()
        cap = self.cap
        assert cap is not None
        if self.realtime:  # the frame due now; frames the tracker had no time for are skipped
            due = int((time.monotonic_ns() - self._t0) * self.fps / 1e9)
            if due <= self.index:
                time.sleep((self.index + 1 - due) / self.fps)
                due = self.index + 1
            while self.index < due - 1 and cap.grab():
                self.index += 1
        ok, bgr = cap.read()
        if not ok:
            if not self.loop:
                return None
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self.index, self._t0 = -1, time.monotonic_ns()
            return self.read()
        self.index += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic_ns()

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def open_source(config) -> CameraSource | VideoSource:
    src: CameraSource | VideoSource
    if config.video:
        src = VideoSource(config.video, config.realtime, config.loop)
    else:
        src = CameraSource(config.device, config.name, config.width, config.height, config.fps)
    src.open()
    return src
