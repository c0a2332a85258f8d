"""Options of the camera hand-tracking driver (docs/camera-hands.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from drivers.config import DriverConfig
from teleop.errors import ConfigError

__all__ = ["CameraHandsConfig"]


@dataclass(frozen=True, kw_only=True)
class CameraHandsConfig(DriverConfig):
    """Where frames come from: ``video`` (a file played in real time, or as fast as it decodes)
    if set, else the camera at ``device`` (``/dev/video0`` or ``0``), else the first camera whose
    V4L2 name contains ``name`` ("" = the first camera)."""

    device: str | None = None
    name: str = ""
    video: str | None = None
    loop: bool = False  # video: start over at the end
    realtime: bool = True  # video: play at the file's frame rate, newest frame wins (else every frame)
    width: int = 1280  # camera: asked-for size (the camera may give another; intrinsics follow the frames)
    height: int = 720
    fps: float = 30.0  # camera: asked-for rate
    intrinsics: str | None = None  # a TOML file: fx, fy, cx, cy [px] and optional dist (k1 k2 p1 p2 k3)
    hfov_deg: float = 65.0  # without an intrinsics file: a pinhole with this horizontal field of view
    mirror: bool = False  # the frames are a mirror image (a selfie camera): left and right swap
    max_hands: int = 2
    min_detection: float = 0.5  # palm detection score to start a hand
    min_presence: float = 0.5  # hand presence score to keep tracking it
    threads: int = 1  # inference threads (in the tracker's own process)
    rate_hz: float = 30.0  # nominal (the camera's or the video's rate)

    HELP: ClassVar[dict[str, str]] = {
        "device": "V4L2 path (/dev/video0) or number; default: found by name",
        "video": "play this video file instead of a camera",
        "intrinsics": "camera calibration TOML (fx, fy, cx, cy, dist); default: a pinhole of hfov_deg",
        "mirror": "true for a mirrored (selfie) image, so the person's right hand stays 'right'",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.device and self.video:
            raise ConfigError(f"device={self.device!r} and video={self.video!r}: set one of them")
        if self.side is not None:
            raise ConfigError(f"side={self.side!r}: a camera sees both hands and names each sample's side; "
                              "leave side unset (an [input.NAME] table picks the hand)")
        checks = [("width", self.width, 64, 7680), ("height", self.height, 64, 4320), ("fps", self.fps, 1, 480),
                  ("hfov_deg", self.hfov_deg, 10, 170), ("max_hands", self.max_hands, 1, 2),
                  ("min_detection", self.min_detection, 0, 1), ("min_presence", self.min_presence, 0, 1),
                  ("threads", self.threads, 1, 64), ("rate_hz", self.rate_hz, 1, 480)]
        for key, value, low, high in checks:
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{key}={value}: must be within {low}..{high}")
