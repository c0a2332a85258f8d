"""`teleop view EPISODE --save OUT.rrd`: a recorded episode (written by the recorder's own log
and video writers) through the same logging as the live view, read back with rerun's reader."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from rrd_reading import read_rrd

from teleop.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "recorder"))
from episode_factory import frame_index_of, make_episode  # noqa: E402


def test_an_episode_becomes_a_recording_with_its_joints_images_and_hands(tmp_path, capsys):
    truth = make_episode(tmp_path / "ds", 0, seconds=1.0, tactile=("tip",), camera_hz=30)
    out = tmp_path / "episode.rrd"
    assert main(["view", str(truth.path), "--save", str(out)]) == 0
    said = capsys.readouterr().err
    assert "no 3D robot" in said or "no model of robot 'testbot'" in said  # a robot this machine has no model of
    rrd = read_rrd(out)

    # joints: thinned to 50 Hz from 500, on the episode's clock (seconds from its start)
    rows = [r for r in rrd["/joints/left_arm/measured"] if "Scalars:scalars" in r]
    t = np.array([r["session_time"] for r in rows])
    assert 45 <= len(rows) <= 52, len(rows)
    logged_ns = truth.meta["start_ns"] + np.round(t * 1e9).astype(np.int64)
    i = np.abs(truth.t_state[None, :] - logged_ns[:, None]).argmin(axis=1)  # the state each row was
    assert np.allclose([r["Scalars:scalars"] for r in rows], truth.q[i, :3])  # the logged samples, exactly
    assert len([r for r in rrd["/joints/right_arm/commanded"] if "Scalars:scalars" in r]) >= 45

    # camera frames come from the episode video, in order, thinned to 10 Hz
    import cv2

    frames = [r for r in rrd["/cameras/head"] if "EncodedImage:blob" in r]
    assert 9 <= len(frames) <= 11, len(frames)
    decoded = [cv2.imdecode(np.frombuffer(bytes(f["EncodedImage:blob"][0]), np.uint8), cv2.IMREAD_COLOR)
               for f in frames]
    index = [frame_index_of(img[:, :, ::-1]) for img in decoded]
    assert index == sorted(index) and index[-1] - index[0] >= 24  # every ~3rd of 30 frames, forward

    # the glove's keypoints, the tactile force, the episode's line in the log
    kp = np.array(rrd["/operator/left/hand"][-1]["Points3D:positions"])
    assert kp.shape == (21, 3)
    force = [r["Scalars:scalars"] for r in rrd["/tactile/tip/force"] if "Scalars:scalars" in r]
    assert len(force) >= 40 and len(force[0]) == 3
    texts = [x for r in rrd["/log"] for x in r.get("TextLog:text", [])]
    assert any("pick the bottle" in x and "success" in x for x in texts)
