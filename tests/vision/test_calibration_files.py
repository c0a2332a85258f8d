"""The two calibration files (intrinsics, camera pose) and the wrist poses file: what is written
reads back exactly, and every kind of bad file is a ConfigError naming the file and the key."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from robots.mount import rpy_deg_to_quat
from teleop.errors import ConfigError
from teleop.vision.extrinsics import CameraPose
from teleop.vision.handeye import load_wrist_poses
from teleop.vision.intrinsics import Intrinsics
from teleop.vision.transforms import (
    invert_transform,
    make_transform,
    matrix_to_quat,
    matrix_to_rpy_deg,
    mean_transform,
    quat_to_matrix,
    rpy_deg_to_matrix,
)

# -- intrinsics -------------------------------------------------------------------------------------


def test_intrinsics_save_reads_back_exactly_with_comments(tmp_path):
    k = Intrinsics(914.2871234, 913.9, 641.25, 362.0625, (0.08, -0.19, 1e-4, -2e-4, 0.1), 1280, 720)
    path = k.save(tmp_path / "sub" / "camera.toml", ["made by: a test", "RMS reprojection error 0.21 px\nsecond line"])
    text = path.read_text()
    assert text.startswith("# made by: a test\n# RMS reprojection error 0.21 px\n# second line\n")
    back = Intrinsics.load(path)
    assert back == k and back.source == str(path)
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed, not left behind


def test_intrinsics_save_refuses_what_load_would_refuse(tmp_path):
    with pytest.raises(ConfigError, match="'fx' must be a positive finite"):
        Intrinsics(math.nan, 500, 320, 240).save(tmp_path / "bad.toml")
    assert not (tmp_path / "bad.toml").exists()


@pytest.mark.parametrize("text, match", [
    ("fx = nan\nfy = 500\ncx = 320\ncy = 240\n", "'fx' must be a positive finite number"),
    ("fx = 500\nfy = 500\ncx = 320\ncy = 240\nfocal = 3\n", r"unknown keys \['focal'\]"),
    ("fx = 500\nfy = 500\ncx = 320\ncy = 240\ndist = [0.1, inf, 0, 0]\n", "'dist' must be 4, 5 or 8 finite"),
    ("fx = 500\nfy = 500\ncx = 320\ncy = 240\nwidth = 640.5\n", "'width' must be a whole number"),
    ("fx = 500\nfy = \n", "not valid TOML"),
])
def test_intrinsics_load_is_strict(tmp_path, text, match):
    path = tmp_path / "camera.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        Intrinsics.load(path)
    assert str(path) in str(err.value)


# -- camera pose ------------------------------------------------------------------------------------


def test_camera_pose_round_trip_and_matrix(tmp_path):
    t = make_transform(rpy_deg_to_matrix([170.0, -20.0, 35.0]), [0.45, -0.02, 0.8])
    pose = CameraPose.from_matrix(t, source="test")
    assert np.allclose(pose.matrix(), t, atol=1e-12)
    path = pose.save(tmp_path / "camera_pose.toml", ["made by: a test"])
    text = path.read_text()
    assert text.startswith("# made by: a test\n") and 'parent = "base"' in text and "rpy_deg = [170.0000" in text
    back = CameraPose.load(path)
    assert back == pose and back.source == str(path)
    assert np.allclose(back.matrix(), t, atol=1e-12)


def test_camera_pose_rpy_is_urdf_rpy_and_quat_is_normalised(tmp_path):
    rpy = [180.0, 0.0, -90.0]  # a camera above the table looking down
    (tmp_path / "a.toml").write_text(f'parent = "base"\npos = [0.4, 0, 0.9]\nrpy_deg = {rpy}\n')
    (tmp_path / "b.toml").write_text('parent = "base"\npos = [0.4, 0, 0.9]\nquat = [0, 0.7071, -0.7071, 0]\n')
    a, b = CameraPose.load(tmp_path / "a.toml"), CameraPose.load(tmp_path / "b.toml")
    assert np.allclose(a.matrix(), b.matrix(), atol=1e-4)
    assert math.isclose(np.linalg.norm(b.quat), 1.0, abs_tol=1e-12)
    w, x, y, z = rpy_deg_to_quat(tuple(rpy))  # robots/mount.py's reading of URDF rpy, independently written
    assert np.allclose(quat_to_matrix([w, x, y, z]), a.matrix()[:3, :3], atol=1e-12)
    assert np.allclose(a.matrix()[:3, 2], [0, 0, -1], atol=1e-12)  # the optical axis (z) points down


@pytest.mark.parametrize("text, match", [
    ('parent = "base"\npos = [0.1, nan, 0.3]\nquat = [1, 0, 0, 0]\n', "key 'pos' must be a list of 3 finite"),
    ('parent = "base"\npos = [0.1, 0.2, 0.3]\nquat = [1, 0, 0, 0]\nfov = 60\n', "unknown key 'fov'"),
    ('parent = "base"\npos = [0.1, 0.2]\nquat = [1, 0, 0, 0]\n', "key 'pos' must be a list of 3"),
    ('parent = "base"\npos = ["0.1", 0.2, 0.3]\nquat = [1, 0, 0, 0]\n', "key 'pos' must be a list of 3 finite"),
    ('parent = "base"\npos = [100.0, 0.2, 0.3]\nquat = [1, 0, 0, 0]\n', "key 'pos'.*out of range"),
    ('parent = "base"\npos = [8.0, 8.0, 0.3]\nquat = [1, 0, 0, 0]\n', "key 'pos'.*at most 10 m"),
    ('parent = "base"\npos = [0.1, 0.2, 0.3]\nquat = [0.5, 0, 0, 0]\n', "key 'quat'.*has norm 0.5"),
    ('parent = "base"\npos = [0.1, 0.2, 0.3]\nquat = [1, 0, 0, inf]\n', "key 'quat' must be a list of 4 finite"),
    ('parent = "base"\npos = [0.1, 0.2, 0.3]\nquat = [1, 0, 0, 0]\nrpy_deg = [0, 0, 0]\n', "exactly one of.*not both"),
    ('parent = "base"\npos = [0.1, 0.2, 0.3]\n', "exactly one of 'quat'"),
    ('parent = "base"\npos = [0.1, 0.2, 0.3]\nrpy_deg = [0, 400, 0]\n', "key 'rpy_deg'.*out of range"),
    ('parent = "world"\npos = [0.1, 0.2, 0.3]\nquat = [1, 0, 0, 0]\n', "key 'parent' is 'world'; only 'base'"),
    ('pos = [0.1, 0.2, 0.3]\nquat = [1, 0, 0, 0]\n', "missing key 'parent'"),
    ('parent = "base"\nquat = [1, 0, 0, 0]\n', "missing key 'pos'"),
    ('parent = "base"\npos = [0.1, 0.2, 0.3\n', "not valid TOML"),
])
def test_camera_pose_load_is_strict(tmp_path, text, match):
    path = tmp_path / "camera_pose.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        CameraPose.load(path)
    assert str(path) in str(err.value)


def test_camera_pose_of_a_wrist_camera_loads_only_when_asked(tmp_path):
    path = CameraPose((0.03, 0.0, 0.05), (1.0, 0.0, 0.0, 0.0), parent="wrist").save(tmp_path / "wrist_cam.toml")
    with pytest.raises(ConfigError, match="only 'base' is supported now"):
        CameraPose.load(path)
    assert CameraPose.load(path, parents=("wrist",)).parent == "wrist"


def test_camera_pose_from_matrix_refuses_a_non_rotation():
    t = np.eye(4)
    t[0, 0] = 2.0
    with pytest.raises(ConfigError, match="not a rigid transform"):
        CameraPose.from_matrix(t)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        CameraPose.load(tmp_path / "nope.toml")


# -- transforms -------------------------------------------------------------------------------------


def test_transforms_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(50):
        rpy = rng.uniform([-180, -89, -180], [180, 89, 180])
        r = rpy_deg_to_matrix(rpy)
        assert np.allclose(matrix_to_rpy_deg(r), rpy, atol=1e-9)
        assert np.allclose(quat_to_matrix(matrix_to_quat(r)), r, atol=1e-12)
        t = make_transform(r, rng.normal(size=3))
        assert np.allclose(invert_transform(t) @ t, np.eye(4), atol=1e-12)


def test_mean_transform_and_spread():
    base = make_transform(rpy_deg_to_matrix([10, 20, 30]), [1.0, 2.0, 3.0])
    nudges = [make_transform(rpy_deg_to_matrix([0, 0, d]), [d * 1e-3, 0, 0]) for d in (-1.0, 1.0)]
    mean, spread = mean_transform([base @ n for n in nudges])
    assert np.allclose(mean, base, atol=1e-9)
    assert math.isclose(spread.rot_max_deg, 1.0, rel_tol=1e-6) and math.isclose(spread.pos_max_m, 1e-3, rel_tol=1e-6)


# -- wrist poses ------------------------------------------------------------------------------------


def test_wrist_poses_load(tmp_path):
    path = tmp_path / "poses.json"
    path.write_text(json.dumps([{"image": "shots/a.png", "pos": [0.4, -0.1, 0.3], "quat": [0, 1, 0, 0]},
                                {"image": "b.png", "pos": [0.4, 0.1, 0.3], "quat": [1, 0, 0, 0]}]))
    poses = load_wrist_poses(path)
    assert sorted(poses) == ["a.png", "b.png"]  # matched by file name
    assert np.allclose(poses["a.png"], make_transform(np.diag([1.0, -1.0, -1.0]), [0.4, -0.1, 0.3]))


@pytest.mark.parametrize("entries, match", [
    ('[{"image": "a.png", "pos": [NaN, 0, 0], "quat": [1, 0, 0, 0]}]', "NaN is not a number"),
    ('[{"image": "a.png", "pos": [0, 0, 0], "quat": [1, 0, 0, 0], "t": 3}]', "entry 0: unknown key 't'"),
    ('[{"image": "a.png", "quat": [1, 0, 0, 0]}]', "entry 0: missing key 'pos'"),
    ('[{"image": "a.png", "pos": [0, 0, 0], "quat": [2, 0, 0, 0]}]', r"entry 0 \(a.png\): key 'quat' has norm 2"),
    ('[{"image": "a.png", "pos": [400, 0, 0], "quat": [1, 0, 0, 0]}]', "key 'pos' is 400 m"),
    ('[{"image": "a.png", "pos": [0, 0, 0], "quat": [1, 0, 0, 0]},'
     ' {"image": "a.png", "pos": [0, 0, 0], "quat": [1, 0, 0, 0]}]', "a.png has a pose already"),
    ('{"a.png": [0, 0, 0]}', "must be a JSON list"),
    ('[{"image": "a.png", "pos": [0, 0, 0], "quat": [1, 0, 0, 0]', "not valid JSON"),
])
def test_wrist_poses_load_is_strict(tmp_path, entries, match):
    path = tmp_path / "poses.json"
    path.write_text(entries)
    with pytest.raises(ConfigError, match=match) as err:
        load_wrist_poses(path)
    assert str(path) in str(err.value)
