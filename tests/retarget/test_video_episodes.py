"""Human video -> robot episodes (retarget/video_episode.py) on the real hand video: tracking,
retargeting within joint limits, an episode the recorder's tools read (inspect, export), and
bad input (a corrupt file, a non-video, a video without hands)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from support.hands import HAND_VIDEO, require_hand_models

from teleop.errors import ConfigError, TeleopError

VIDEO = HAND_VIDEO
FRAMES = 150  # a prefix: the first 5 s


def _need_models() -> None:
    require_hand_models()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run on the first FRAMES frames, shared by the assertions below."""
    _need_models()
    if not VIDEO.is_file():
        pytest.skip(f"{VIDEO} not present")
    from retarget.video_episode import VideoOptions, process_video

    root = tmp_path_factory.mktemp("video")
    preview = root / "preview.mp4"
    summary = process_video(VIDEO, None, root / "ds", options=VideoOptions(max_frames=FRAMES, preview=str(preview)))
    return summary, root


def test_the_right_hand_is_tracked_and_the_episode_is_described(run):
    summary, root = run
    from recorder.episode import read_meta

    assert summary["status"] == "complete" and summary["frames"] == FRAMES
    assert summary["hands"]["right"] >= 0.95 * FRAMES
    assert summary["hands"]["left"] <= 0.05 * FRAMES  # one right hand in this video
    meta = read_meta(Path(summary["episode"]))
    assert meta["status"] == "complete" and meta["index"] == 0
    assert meta["tracking"]["right"]["handedness_mean"] > 0.8
    src = meta["source"]
    assert src["sha256"] == hashlib.sha256(VIDEO.read_bytes()).hexdigest()
    assert src["frame_range"] == [0, FRAMES] and src["fps"] == 30.0
    assert meta["videos"]["camera"]["frames"] == FRAMES
    assert not list((root / "ds").glob(".incoming_*"))  # the build folder was renamed into place
    from recorder.video import probe_video

    assert probe_video(Path(summary["preview"])).frames == FRAMES


def test_commands_stay_in_the_joint_limits_and_follow_the_hand(run):
    summary, _ = run
    import mujoco

    from recorder.reader import load_episode
    from robots.description import bundled_description_path, load_description

    desc = load_description(bundled_description_path())
    model = mujoco.MjModel.from_xml_path(str(desc.model_path))
    ep = load_episode(Path(summary["episode"]))
    cmds = ep.stream("session/command")
    q = cmds.array("q")
    assert q.shape == (FRAMES, len(desc.joint_names)) and np.all(np.isfinite(q))
    for k, name in enumerate(desc.joint_names):
        lo, hi = model.jnt_range[model.joint(name).id]
        assert lo - 1e-9 <= q[:, k].min() and q[:, k].max() <= hi + 1e-9, name
    right = [k for k, n in enumerate(desc.joint_names) if n.startswith("right_")]
    left = [k for k, n in enumerate(desc.joint_names) if n.startswith("left_")]
    assert np.ptp(q[:, right], axis=0).max() > 0.1  # the right arm and hand move with the person's
    assert np.ptp(q[:, left], axis=0).max() < 1e-9  # the left, never seen, holds
    assert {m.state for m in cmds.messages} <= {"engaged", "stale", "idle"}
    hands = ep.stream("session/hand/video_right")
    assert len(hands) == summary["hands"]["right"]
    assert hands.messages[0].channels.shape == (23,)  # presence, handedness, 21 confidences


def test_inspect_and_export_take_the_episode(run, capsys):
    summary, root = run
    from teleop.cli import main

    assert main(["episodes", "inspect", summary["episode"]]) == 0
    out = capsys.readouterr().out
    assert "session/command" in out and "recorder/video/camera" in out
    assert main(["export", str(root / "ds"), "--format", "lerobot", "--out", str(root / "lerobot")]) == 0
    info = json.loads((root / "lerobot" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 1 and info["total_frames"] >= FRAMES - 1
    assert "observation.images.camera" in info["features"]
    assert "observation.hand_keypoints.video_right" in info["features"]


def test_a_corrupt_file_and_a_non_video_are_refused_clearly(tmp_path):
    from retarget.video_episode import process_video

    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    for path in (corrupt, text, tmp_path / "missing.mp4"):
        with pytest.raises(TeleopError, match=r"video .*(not a video OpenCV can decode|no such file)"):
            process_video(path, None, tmp_path / "ds")
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())


def test_a_video_without_hands_writes_no_episode(tmp_path):
    _need_models()
    from recorder.video import VideoWriter
    from retarget.video_episode import VideoOptions, process_video

    path = tmp_path / "empty_room.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(path, 160, 120, 30.0, preset="ultrafast", queue_frames=20) as w:
        for i in range(12):
            w.write(rng.integers(90, 110, (120, 160, 3), dtype=np.uint8), i / 30)
    summary = process_video(path, None, tmp_path / "ds", options=VideoOptions())
    assert summary["status"] == "no_hands" and summary["episode"] is None and summary["frames"] == 12
    assert "no hand was found" in summary["reason"]
    assert not any((tmp_path / "ds").iterdir())  # no episode, no build folder left behind


def test_options_are_checked():
    from retarget.video_episode import VideoOptions, parse_camera_pose

    assert parse_camera_pose("1,0,0,0,0,0,1.001")[6] == pytest.approx(1.0)  # normalised within 1 %
    for bad in ("1,2,3", "0,0,0,nan,0,0,0", "0,0,0,2,0,0,0", "100,0,0,1,0,0,0", "a,b,c,d,e,f,g"):
        with pytest.raises(ConfigError, match="camera pose"):
            VideoOptions(camera_pose=bad)
    for kw in ({"hfov_deg": float("nan")}, {"hfov_deg": 200}, {"max_frames": 0}, {"max_frames": 2.5},
               {"min_presence": 1.5}, {"threads": True}):
        with pytest.raises(ConfigError):
            VideoOptions(**kw)
