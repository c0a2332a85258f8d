"""What the hand-tracking tests share: the real hand video (beside the checkout, in ../shared/data)
and the skip when the hand models are not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from teleop.errors import TeleopError

HAND_VIDEO = Path(__file__).resolve().parents[2] / "../shared/data/video/human_hand_video.mp4"
#: a checkout of dexsuite/dex-urdf (the real PSYONIC Ability hand URDFs are under robots/hands/ability_hand/)
DEX_URDF = (Path(__file__).resolve().parents[2] / "../shared/data/dex-urdf").resolve()
ABILITY_URDF = {side: DEX_URDF / f"robots/hands/ability_hand/ability_hand_{side}.urdf" for side in ("left", "right")}


def require_ability_hand() -> None:
    """Skip the calling test when the real Ability hand URDFs are not beside the checkout."""
    if not all(p.is_file() for p in ABILITY_URDF.values()):
        pytest.skip(f"the Ability hand URDFs are not at {DEX_URDF} (a checkout of dexsuite/dex-urdf)")


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
