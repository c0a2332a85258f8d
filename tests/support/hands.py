"""What the hand-tracking tests share: the real hand video (beside the checkout, in ../shared/data)
and the skip when the hand models are not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from teleop.errors import TeleopError

HAND_VIDEO = Path(__file__).resolve().parents[2] / "../shared/data/video/human_hand_video.mp4"
#: dexsuite/dex-urdf's xArm7 + Ability assemblies (the bundled xarm7_ability robot's DEX_URDF).
DEX_URDF = (Path(__file__).resolve().parents[2] / "../shared/data/dex-urdf").resolve()


def require_hand_models() -> None:
    """Skip the calling test when MediaPipe's hand models are not installed (make install fetches them)."""
    from drivers.camera_hands.models import model_path

    try:
        model_path("palm_detection_full")
        model_path("hand_landmark_full")
    except TeleopError as exc:
        pytest.skip(f"hand models not installed ({exc}); `teleop models fetch` installs them")



def write_clip(out: Path, start: int, frames: int, source: Path = HAND_VIDEO) -> Path:
    """A clip of the real hand video in a file of its own (its content digest is its own)."""
    from recorder.video import write_clip as cut

    return cut(source, out, start, frames)
