from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drivers.config import DriverConfig
from teleop.bus.endpoints import DEFAULT_INPUT_ENDPOINT

__all__ = ["NetworkConfig"]


@dataclass(frozen=True, kw_only=True)
class NetworkConfig(DriverConfig):
    """What the publisher sends, declared per source (docs/adding-a-driver.md, "Network streams"):

    * ``axes``: the publisher's world axes. ``zup`` (ours: right-handed, x forward, y left, z up),
      ``yup`` (OpenXR, WebXR, visionOS: right-handed, y up, -z forward), ``unity`` (left-handed,
      y up, z forward, x right);
    * ``units`` of positions; ``matrix_layout`` of ``wrist_matrix`` messages;
    * ``keypoint_layout`` and ``keypoint_frame``: ``wrist`` keypoints are already in our wrist frame
      (docs/hand-keypoints.md) and pass through; ``world`` keypoints are in the publisher's world
      frame and are brought into the wrist frame estimated from the keypoints themselves.
    * ``wrist_rotation_rpy_deg``: a fixed rotation from the publisher's wrist axes to ours."""

    endpoint: str = DEFAULT_INPUT_ENDPOINT
    bind: bool = True
    axes: Literal["zup", "yup", "unity"] = "zup"
    units: Literal["m", "cm", "mm"] = "m"
    matrix_layout: Literal["row_major", "column_major"] = "row_major"
    keypoint_layout: Literal["mediapipe21", "openxr26", "webxr25", "avp25"] = "mediapipe21"
    keypoint_frame: Literal["wrist", "world"] = "wrist"
    wrist_rotation_rpy_deg: tuple[float, ...] = (0.0, 0.0, 0.0)
    keys: Path | None = None
    reconnect: bool = False
