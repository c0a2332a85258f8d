"""``camera_hands``: hands from a camera or a video, tracked by MediaPipe's hand models (run with
LiteRT, in a process of their own) -> per hand a ``HandSample`` (21 keypoints in the wrist frame,
per-keypoint confidence) and a ``PoseSample`` (the wrist in the camera's frame). A hand the camera
loses gives no sample: the session holds as for an unplugged glove. docs/camera-hands.md.

Channels of each ``HandSample``: ``presence``, ``handedness`` (P(right hand)), then ``conf_0`` ..
``conf_20`` (per keypoint).
"""

from __future__ import annotations

import multiprocessing
import time
from typing import ClassVar

import numpy as np

from drivers.base import ThreadedDriver
from drivers.camera_hands.config import CameraHandsConfig
from drivers.samples import HandSample, PoseSample, Sample, SampleSpec
from teleop.errors import DeviceError

__all__ = ["CameraHandsDriver", "CHANNELS"]

CHANNELS = ("presence", "handedness", *(f"conf_{i}" for i in range(21)))
_START_S = 60.0  # the child imports LiteRT and OpenCV and loads the models; a first run may compile


class CameraHandsDriver(ThreadedDriver):
    name: ClassVar[str] = "camera_hands"
    config_class: ClassVar[type[CameraHandsConfig]] = CameraHandsConfig
    description: ClassVar[str] = "hand tracking from a camera or a video (MediaPipe hand models on LiteRT)"
    config: CameraHandsConfig

    def __init__(self, config: CameraHandsConfig | None = None) -> None:
        super().__init__(config)
        self._proc = None
        self._conn = None
        self._stop_child = None
        self.info: dict = {}
        self.eof = False

    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(kinds=("hand", "pose"), channel_names=CHANNELS, rate_hz=self.config.rate_hz, frame="camera")

    def _open(self) -> None:
        from drivers.camera_hands.models import model_path

        for name in ("palm_detection_full", "hand_landmark_full"):
            model_path(name)  # a missing model is said here, before a process starts
        ctx = multiprocessing.get_context("spawn")  # never fork a process with the session's threads
        parent, child = ctx.Pipe(duplex=False)
        self._stop_child = ctx.Event()
        from drivers.camera_hands import worker

        self._proc = ctx.Process(target=worker.run, args=(self.config, child, self._stop_child),
                                 name="camera-hands", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        self.eof = False
        if not parent.poll(_START_S):
            self._close()
            raise DeviceError(f"camera_hands: the tracker process did not start within {_START_S:.0f} s")
        msg = self._recv()
        if msg[0] == "error":
            self._close()
            raise DeviceError(f"camera_hands: {msg[1]}")
        self.info = msg[1]

    def _recv(self):
        try:
            return self._conn.recv()  # type: ignore[union-attr]
        except (EOFError, OSError):
            if self._proc is not None:
                self._proc.join(1.0)  # its pipe closes as it dies: wait for the exit code that says how
            code = self._proc.exitcode if self._proc is not None else None
            raise DeviceError(f"camera_hands: the tracker process ended (exit code {code})") from None

    def _read(self) -> list[Sample] | None:
        if self.eof:
            time.sleep(0.1)  # the video is over: nothing more will come (the session sees it as stale)
            return None
        if not self._conn.poll(0.1):  # type: ignore[union-attr]
            if self._proc is not None and not self._proc.is_alive():
                raise DeviceError(f"camera_hands: the tracker process ended (exit code {self._proc.exitcode})")
            return None
        msg = self._recv()
        if msg[0] == "error":
            raise DeviceError(f"camera_hands: {msg[1]}")
        if msg[0] == "eof":
            self.eof = True
            self.count("video_ended", f"{self.config.video}: {msg[1]} frames")
            return None
        if msg[0] != "frame":
            return None
        _, _, capture_ns, hands = msg
        out: list[Sample] = []
        for side, presence, handedness, kp, pos, quat, conf in hands:
            seq = self.next_seq()
            channels = np.concatenate([[presence, handedness], conf])
            out.append(HandSample(side=side, capture_ns=capture_ns, seq=seq, keypoints=kp, channels=channels,
                                  source=self.name))
            if pos is not None:
                out.append(PoseSample(side=side, capture_ns=capture_ns, seq=seq, position_m=pos, quat_wxyz=quat,
                                      frame="camera", source=self.name))
        return out or None

    def _close(self) -> None:
        if self._stop_child is not None:
            self._stop_child.set()
        if self._proc is not None:
            self._proc.join(3.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(2.0)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = self._stop_child = None
