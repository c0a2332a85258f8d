"""`teleop calibrate camera | camera-pose | hand-eye | board` end to end: pictures rendered in
MuJoCo on disk, the command as a user runs it, the files it writes; and bad input as a one-line
error (exit code 2), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from board_scene import BoardScene, transform

from teleop.cli import main
from teleop.vision.boards import NotFound, parse_board
from teleop.vision.extrinsics import CameraPose
from teleop.vision.intrinsics import Intrinsics
from teleop.vision.transforms import matrix_to_quat, rotation_angle_deg

CHARUCO = "charuco:7x5:0.04:0.03"


def teleop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "teleop.cli", "calibrate", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """15 pictures of the board from a moving camera, and the true intrinsics."""
    folder = tmp_path_factory.mktemp("shots")
    with BoardScene(parse_board(CHARUCO)) as scene:
        for i, t in enumerate(scene.views(15, seed=1, shift=0.5)):
            cv2.imwrite(str(folder / f"shot_{i:02d}.png"), scene.render(scene.wrist_for(t))[:, :, ::-1])
        return folder, scene.intrinsics


def test_camera_command_writes_intrinsics(shots, tmp_path):
    folder, truth = shots
    out = tmp_path / "camera.toml"
    proc = teleop("camera", "--images", str(folder), "--board", CHARUCO, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "RMS reprojection error" in proc.stdout and "15 of 15 pictures used" in proc.stdout
    k = Intrinsics.load(out)
    assert abs(k.fx / truth.fx - 1) < 0.01 and abs(k.cx - truth.cx) < 2.0
    text = out.read_text()
    assert text.startswith("# made by: teleop calibrate camera --images") and "shot_00.png" in text


def test_camera_command_reads_a_video(tmp_path):
    video = tmp_path / "sweep.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    with BoardScene(parse_board(CHARUCO)) as scene:
        for t in scene.views(20, seed=2, shift=0.5):
            writer.write(scene.render(scene.wrist_for(t))[:, :, ::-1])
    writer.release()
    out = tmp_path / "camera.toml"
    assert main(["calibrate", "camera", "--images", str(video), "--every", "2", "--board", CHARUCO,
                 "--out", str(out)]) == 0
    assert "sweep.mp4#18" in out.read_text() and "sweep.mp4#1," not in out.read_text()  # every 2nd frame


def test_camera_pose_command(tmp_path, capsys):
    board = parse_board(CHARUCO)
    t_base_board = transform([-0.35, 0.10, 0.02], [180.0, 0.0, -60.0])
    with BoardScene(board, T_world_board=t_base_board) as scene:
        t_base_camera = scene.wrist_for(scene.views(1, seed=9)[0])
        cv2.imwrite(str(tmp_path / "still.png"), scene.render(t_base_camera)[:, :, ::-1])
        scene.intrinsics.save(tmp_path / "camera.toml")
    out = tmp_path / "camera_pose.toml"
    code = main(["calibrate", "camera-pose", "--images", str(tmp_path / "*.png"), "--intrinsics",
                 str(tmp_path / "camera.toml"), "--board", CHARUCO, "--board-pos", "-0.35,0.10,0.02",
                 "--board-rpy-deg", "180,0,-60", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    pose = CameraPose.load(out).matrix()
    assert np.linalg.norm(pose[:3, 3] - t_base_camera[:3, 3]) < 0.005
    assert rotation_angle_deg(pose[:3, :3].T @ t_base_camera[:3, :3]) < 1.0


def test_hand_eye_command(tmp_path, capsys):
    board = parse_board(CHARUCO)
    t_wrist_camera = transform([0.0, 0.04, 0.06], [0.0, 0.0, -90.0])
    (tmp_path / "shots").mkdir()
    poses = []
    with BoardScene(board, T_wrist_camera=t_wrist_camera, T_world_board=transform([0.5, 0, 0], [180, 0, 0])) as scene:
        for i, t in enumerate(scene.views(10, seed=4)):
            t_base_wrist = scene.wrist_for(t)
            cv2.imwrite(str(tmp_path / "shots" / f"w{i}.jpg"), scene.render(t_base_wrist)[:, :, ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            poses.append({"image": f"w{i}.jpg", "pos": t_base_wrist[:3, 3].tolist(),
                          "quat": matrix_to_quat(t_base_wrist[:3, :3]).tolist()})
        scene.intrinsics.save(tmp_path / "camera.toml")
    (tmp_path / "poses.json").write_text(json.dumps(poses))
    out = tmp_path / "wrist_camera.toml"
    code = main(["calibrate", "hand-eye", "--images", str(tmp_path / "shots"), "--poses", str(tmp_path / "poses.json"),
                 "--intrinsics", str(tmp_path / "camera.toml"), "--board", CHARUCO, "--mode", "eye-in-hand",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "residual" in capsys.readouterr().out
    pose = CameraPose.load(out, parents=("wrist",)).matrix()
    assert np.linalg.norm(pose[:3, 3] - t_wrist_camera[:3, 3]) < 0.005


def test_board_command_prints_at_size(tmp_path):
    out = tmp_path / "board.png"
    proc = teleop("board", "checker:9x6:0.02", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "20 mm squares" in proc.stdout and "236 px per square" in proc.stdout  # 20 mm at 300 dpi
    png = out.read_bytes()
    assert png[37:41] == b"pHYs"  # pixels per metre for the printer, right after the header
    img = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert not isinstance(parse_board("checker:9x6:0.02").detect(cv2.resize(img, None, fx=0.25, fy=0.25)), NotFound)


def test_help_lists_the_options(capsys):
    assert main(["calibrate", "hand-eye", "--help"]) == 0
    assert "--poses POSES.json" in capsys.readouterr().out
    assert main(["calibrate", "--help"]) == 0
    assert "teleop calibrate camera-pose" in capsys.readouterr().out


# -- bad input: one line saying what to do -----------------------------------------------------------


def test_no_images_is_an_error_not_a_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = teleop("camera", "--images", str(tmp_path / "empty"), "--board", CHARUCO, "--out", str(tmp_path / "c.toml"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the folder holds no images" in proc.stderr


def test_pictures_without_the_board(tmp_path):
    for i in range(9):
        cv2.imwrite(str(tmp_path / f"wall{i}.png"), np.full((480, 640), 90 + i, np.uint8))
    proc = teleop("camera", "--images", str(tmp_path), "--board", CHARUCO, "--out", str(tmp_path / "c.toml"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "only 0 of 9 pictures show enough of the board" in proc.stderr and "at least 8 are needed" in proc.stderr
    assert not (tmp_path / "c.toml").exists()


@pytest.mark.parametrize("content, match", [
    ("fx = nan\nfy = 500\ncx = 320\ncy = 240\n", "'fx' must be a positive finite number"),
    ("fx = 500\nfy = 500\ncx = 320\ncy = 240\nskew = 0\n", "unknown keys ['skew']"),
])
def test_bad_intrinsics_file(tmp_path, capsys, content, match):
    (tmp_path / "camera.toml").write_text(content)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64), np.uint8))
    code = main(["calibrate", "camera-pose", "--images", str(tmp_path / "a.png"), "--intrinsics",
                 str(tmp_path / "camera.toml"), "--board", CHARUCO, "--board-pos", "0,0,0", "--board-rpy-deg", "0,0,0",
                 "--out", str(tmp_path / "pose.toml")])
    err = capsys.readouterr().err
    assert code == 2 and match in err and str(tmp_path / "camera.toml") in err


@pytest.mark.parametrize("args, match", [
    (["camera-pose", "--board-pos", "0,nan,0"], "'0,nan,0' is not allowed: give three finite numbers"),
    (["camera-pose", "--board-pos", "11,0,0"], "each within +-10 m"),
    (["camera-pose", "--board-rpy-deg", "0,0,1e999"], "'0,0,1e999' is not allowed"),
    (["camera", "--every", "0"], "argument --every: '0' is not allowed: give a whole number in 1..100000"),
    (["camera", "--every", "2"], "--every picks frames of a video"),
    (["camera", "--board", "checker:9x6:inf"], "SQUARE_M 'inf' must be a length in metres"),
    (["hand-eye", "--mode", "eye-on-hand"], "invalid choice: 'eye-on-hand'"),
    (["camera", "--out", "camera.json"], "--out camera.json: give a .toml file"),
    (["board", "checker:9x6:0.02", "--px-per-square", "nan"], "'nan' is not allowed"),
])
def test_bad_options(tmp_path, capsys, args, match):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((48, 64), np.uint8))
    command = args[0]
    defaults = {"--images": str(tmp_path), "--board": CHARUCO, "--out": str(tmp_path / "out.toml"),
                "--intrinsics": str(tmp_path / "camera.toml"), "--board-pos": "0,0,0", "--board-rpy-deg": "0,0,0",
                "--poses": str(tmp_path / "poses.json"), "--mode": "eye-in-hand"}
    wanted = {"camera": ["--images", "--board", "--out"], "board": ["--out"],
              "camera-pose": ["--images", "--board", "--out", "--intrinsics", "--board-pos", "--board-rpy-deg"],
              "hand-eye": ["--images", "--board", "--out", "--intrinsics", "--poses", "--mode"]}[command]
    argv = ["calibrate", *args]
    for option in wanted:
        if option not in args:
            argv += [option, defaults[option]]
    if command == "board":
        argv[argv.index("--out") + 1] = str(tmp_path / "board.png")
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_drivers_are_still_calibrated_by_name(capsys):
    assert main(["calibrate", "no_such_glove"]) == 2
    assert "no driver named 'no_such_glove'" in capsys.readouterr().err
