"""Offline retargeting: files in and out, camera/world frames, bad input, several processes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from retarget.motions import keypoint_sequence
from retarget.offline import build_hand, retarget_sequence, to_wrist_frame, wrist_frame_from_keypoints
from robots.description import bundled_description_path
from teleop.errors import ConfigError

KP = keypoint_sequence("left")[:200]
HAND = build_hand(bundled_description_path(), "left")


def _random_poses(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    w, x, y, z = quat.T
    rot = np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=1),
    ], axis=1)
    return rng.normal(size=(n, 3)), rot


def test_world_frame_with_wrist_poses_round_trips():
    pos, rot = _random_poses(len(KP))
    world = np.einsum("tij,tkj->tki", rot, KP) + pos[:, None, :]
    np.testing.assert_allclose(to_wrist_frame(world, pos, rot), KP, atol=1e-12)


@pytest.mark.parametrize("side", ["left", "right"])
def test_wrist_frame_estimated_from_keypoints(side):
    kp = keypoint_sequence(side)[:50]
    pos, rot = _random_poses(len(kp), seed=1)
    world = np.einsum("tij,tkj->tki", rot, kp) + pos[:, None, :]
    p_hat, r_hat = wrist_frame_from_keypoints(world, side)
    back = to_wrist_frame(world, p_hat, r_hat)
    # the estimate is exact up to the small tilt of keypoint 9 and the MCP line in the model
    assert np.abs(back - kp).max() < 0.01
    assert np.allclose(np.linalg.det(r_hat), 1.0)


def test_sequence_throughput_residual_and_limits():
    res = retarget_sequence(HAND, KP, fps=100.0)
    assert res.q.shape == (len(KP), 16) and res.rejected_frames == 0
    assert np.all(res.q >= HAND.tree.lower) and np.all(res.q <= HAND.tree.upper)
    assert np.nanmean(res.residual_m) < 0.02


def test_nan_frames_hold_and_are_counted():
    kp = KP.copy()
    kp[10:13, 4] = np.nan
    res = retarget_sequence(HAND, kp, fps=100.0)
    assert res.rejected_frames == 3 and np.isnan(res.residual_m[10:13]).all()
    np.testing.assert_array_equal(res.q[10], res.q[9])
    assert np.isfinite(res.q).all()


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ConfigError, match=r"shape \(T, 21, 3\)"):
        retarget_sequence(HAND, np.zeros((10, 20, 3)))
    with pytest.raises(ConfigError, match=r"wrist positions must have shape \(200, 3\)"):
        to_wrist_frame(KP, np.zeros((3, 3)), np.zeros((200, 4)))
    with pytest.raises(ConfigError, match="does not exist"):
        build_hand("/nonexistent/robot.toml", "left")


def test_command_line_several_files_in_parallel(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, KP)
    pos, rot = _random_poses(len(KP), seed=2)
    np.save(b, np.einsum("tij,tkj->tki", rot, KP) + pos[:, None, :])
    poses = np.zeros((len(KP), 4, 4))
    poses[:, :3, :3], poses[:, :3, 3], poses[:, 3, 3] = rot, pos, 1.0
    np.save(tmp_path / "pose_b.npy", poses)
    np.save(tmp_path / "pose_a.npy", np.tile(np.eye(4), (len(KP), 1, 1)))
    cmd = [sys.executable, "-m", "teleop.cli", "retarget", "--side", "left", "--keypoints", str(a), str(b),
           "--wrist-pose", str(tmp_path / "pose_a.npy"), str(tmp_path / "pose_b.npy"), "--out-dir", str(tmp_path / "out"),
           "--fps", "100", "--json", "--workers", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["sequences"] == 2 and summary["workers"] == 2 and summary["frames"] == 2 * len(KP)
    qa, qb = np.load(tmp_path / "out" / "a.joints.npy"), np.load(tmp_path / "out" / "b.joints.npy")
    assert qa.shape == (len(KP), 16)
    np.testing.assert_allclose(qa, qb, atol=1e-9)  # same motion, seen from another frame
    bad = subprocess.run([sys.executable, "-m", "teleop.cli", "retarget", "--side", "left", "--keypoints", str(a),
                          str(b), "--out", str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--out-dir" in bad.stderr


def test_a_missing_or_unreadable_keypoint_file_is_a_clear_error(tmp_path, capsys):
    from teleop.cli import main

    bad = tmp_path / "notes.npy"
    bad.write_text("not an array\n")
    for path, why in [(tmp_path / "missing.npy", "no such file"), (bad, "not a NumPy .npy array")]:
        assert main(["retarget", "--side", "right", "--keypoints", str(path), "--out", str(tmp_path / "o.npy")]) != 0
        assert why in capsys.readouterr().err
