"""The tracker comparison's metric on synthetic arrays (known answers), and MediaPipe's reference
script on a few frames of the real video when the MediaPipe venv exists (`make mediapipe-setup`)."""

from __future__ import annotations

import numpy as np
import pytest
from support.hands import HAND_VIDEO

from teleop.bench.hands_compare import REFERENCE_PYTHON, compare, run_reference
from teleop.errors import ConfigError

_VIDEO = HAND_VIDEO


def _hand(rng: np.random.Generator, t: int) -> np.ndarray:
    return rng.normal(0.0, 0.04, (t, 21, 3))


def test_the_difference_is_taken_in_the_wrist_frame_over_frames_both_found(tmp_path):
    rng = np.random.default_rng(3)
    ref = _hand(rng, 6)
    ours = ref + rng.normal(0, 0.5, (6, 1, 3))  # another origin per frame: no difference at the wrist
    ours[:, 8, 0] += 0.003  # index tip 3 mm off in x
    ours[0] = np.nan  # we lost the hand in frame 0
    ref_found = np.ones((6, 2), bool)
    ref_found[:, 1] = False
    ref_found[1, 0] = False  # MediaPipe lost it in frame 1
    world = np.stack([ref, np.full_like(ref, np.nan)], axis=1)
    world[2, 1] = world[2, 0] + 0.05 * rng.normal(size=(21, 3))  # a second, worse copy: the nearest is taken
    ref_found[2, 1] = True
    world[1, 0] = np.nan
    np.savez(tmp_path / "ref.npz", world=world.astype(np.float32), found=ref_found)

    out = compare(ours, tmp_path / "ref.npz")
    assert (out["frames"], out["found_ours"], out["found_ref"], out["found_both"]) == (6, 5, 5, 4)
    assert out["detection_rate_ours"] == round(5 / 6, 4)
    assert out["per_keypoint_mm"][8] == pytest.approx(3.0, abs=0.01)
    assert sum(out["per_keypoint_mm"]) - out["per_keypoint_mm"][8] == pytest.approx(0.0, abs=0.01)
    assert out["mean_mm"] == pytest.approx(3.0 / 21, abs=0.01)
    assert out["max_frame_mm"] == pytest.approx(3.0 / 21, abs=0.01)  # frame 2's worse second copy was not taken

    # one hand per frame, as a mapping; ours_found masks frames out too
    single = compare(ours, {"world": ref, "found": np.ones(6, bool)}, ours_found=np.arange(6) != 5)
    assert single["found_both"] == 4 and single["per_keypoint_mm"][8] == pytest.approx(3.0, abs=0.01)
    none = compare(np.full((6, 21, 3), np.nan), {"world": ref, "found": np.ones(6, bool)})
    assert none["found_both"] == 0 and none["mean_mm"] is None
    with pytest.raises(ConfigError, match="5 frames, the reference 6"):
        compare(ours[:5], tmp_path / "ref.npz")
    with pytest.raises(ConfigError, match=r"expected \(T, 21, 3\)"):
        compare(ours[:, :20], tmp_path / "ref.npz")


@pytest.mark.skipif(not REFERENCE_PYTHON.exists() or not _VIDEO.exists(),
                    reason="no MediaPipe venv (`make mediapipe-setup`) or no real video")
def test_mediapipe_reference_on_the_real_video(tmp_path):
    summary = run_reference(_VIDEO, tmp_path / "ref.npz", extra=("--max-frames", "4"))
    assert summary["frames"] == 4 and summary["detection_rate"] == 1.0
    with np.load(tmp_path / "ref.npz") as ref:
        assert ref["world"].shape == (4, 2, 21, 3) and ref["image"].shape == (4, 2, 21, 3)
        assert ref["found"][:, 0].all() and set(ref["person_side"][:, 0]) == {"right"}  # the video's right hand
        assert (ref["label"][:, 0] == "Left").all()  # MediaPipe's label assumes a mirrored image
        wrist_to_middle_mcp = np.linalg.norm(ref["world"][:, 0, 9] - ref["world"][:, 0, 0], axis=-1)
        assert ((0.07 < wrist_to_middle_mcp) & (wrist_to_middle_mcp < 0.12)).all()
        assert compare(ref["world"][:, 0], tmp_path / "ref.npz")["mean_mm"] == 0.0
