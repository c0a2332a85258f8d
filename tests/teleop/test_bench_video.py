"""``teleop bench video`` on the first 2 s (60 frames) of the real hand video: every headline key
there, positive; the references run when their venvs exist (skipped with a reason otherwise)."""

from __future__ import annotations

import math

import pytest
from support.hands import HAND_VIDEO

from teleop.errors import ConfigError, TeleopError

VIDEO = HAND_VIDEO


def _models_missing() -> str | None:
    try:
        from drivers.camera_hands.models import model_path

        for name in ("palm_detection_full", "hand_landmark_full"):
            model_path(name)
        import ai_edge_litert  # noqa: F401
    except Exception as exc:  # the reason the test is skipped
        return f"hand models or LiteRT unavailable: {exc}"
    return None if VIDEO.is_file() else f"no real video at {VIDEO}"


@pytest.fixture(scope="module")
def result() -> dict:
    reason = _models_missing()
    if reason:
        pytest.skip(reason)
    from teleop.bench.video import run

    return run(VIDEO, seconds=2.0)


def test_headline_keys_positive(result):
    assert result["video"]["frames"] == 60 and result["video"]["width"] == 1280
    for key in ("tracking_fps_per_core", "tracking_fps_per_core_no_roi", "decode_fps", "decode_fps_per_core",
                "retarget_frames_per_s", "video_hours_per_core_hour", "video_hours_per_core_hour_no_writing"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["tracking"]["max_hands_1"]["fps"] > 0
    # the video's right hand is found and retargeted; ROI tracking runs palm detection once with one hand
    assert result["tracking"]["max_hands_1"]["detection_rate_right"] > 0.9
    assert result["tracking"]["max_hands_1"]["palm_detections_run"] < 5
    assert result["tracking"]["no_roi"]["palm_detections_run"] == 60
    assert result["retarget"]["frames"] > 50 and result["retarget"]["residual_mm"] > 0
    if "end_to_end" in result:  # process_video wrote (and the bench removed) an episode of the same frames
        assert result["end_to_end"]["status"] == "complete" and result["end_to_end"]["video_s"] == 2.0
        batch = result["batch"]  # the batch runner on four clips, one worker then two (a local Dask cluster)
        assert batch["workers_1"]["complete"] == batch["workers_2"]["complete"] == 4
        assert batch["workers_2"]["cluster"] == "dask local, 2 workers" and batch["speedup_2_workers"] > 0
        for key in ("video_hours_per_core_hour_1_worker", "video_hours_per_core_hour_2_workers"):
            assert math.isfinite(result[key]) and result[key] > 0, key


def test_references_reported(result):
    dex, mp = result["retarget"]["reference"], result["mediapipe_reference"]
    assert "skipped" in dex or "error" in dex or (dex["frames_per_s"] > 0 and result["retarget"]["speed_ratio"] > 0)
    assert "skipped" in mp or "error" in mp or (mp["mean_mm"] > 0 and mp["detection_rate_ref"] > 0)
    assert "error" not in dex and "error" not in mp, (dex, mp)


def test_bad_input():
    from teleop.bench.video import run

    with pytest.raises(TeleopError, match="no such file"):
        run(VIDEO.parent / "missing.mp4", seconds=1.0)
    with pytest.raises(ConfigError, match="seconds"):
        run(VIDEO, seconds=float("nan"))
