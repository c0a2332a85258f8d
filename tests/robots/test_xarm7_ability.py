"""A bimanual robot composed from public arm + hand models: two xArm7 arms with Ability hands
(dexsuite/dex-urdf's assemblies), mounted on the scene by the description alone. The simulator,
the conformance kit, a session with synthetic hands and a scripted grasp run on it unchanged;
broken parts give errors that name the file and the element."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
from support.hands import DEX_URDF
from support.ports import free_port_base
from support.sim import running_server

from robots.check import run_checks
from robots.description import load_description, parse_description
from robots.mujoco_sim.model import load_sim_model
from teleop.bus import RobotEndpoints
from teleop.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
XARM = ROOT / "robots/xarm7_ability/xarm7_ability.toml"
ASSEMBLY = DEX_URDF / "robots/assembly/xarm7_ability"

pytestmark = pytest.mark.skipif(not ASSEMBLY.is_dir(), reason="dex-urdf's xArm7 + Ability models are not here")


@pytest.fixture(autouse=True)
def dex_urdf(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("DEX_URDF", str(DEX_URDF))
    monkeypatch.setenv("TELEOP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def test_the_description_composes_both_arms_with_their_hands():
    desc = load_description(XARM)
    sim = load_sim_model(desc)
    m = sim.model
    assert sim.n_joints == 2 * (7 + 6) and m.nu == sim.n_joints  # servos added for every commanded joint
    assert m.neq == 8  # each finger's second joint follows its first (URDF <mimic>)
    assert load_description(XARM).model_path == desc.model_path  # composed once, then cached
    data = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, data, sim.home_key)
    mujoco.mj_forward(m, data)
    for side, y in (("left", 0.25), ("right", -0.25)):
        site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f"{side}_wrist")
        assert np.allclose(data.site_xpos[site], [0.3, y, 1.0], atol=0.02)
        x_axis, z_axis = data.site_xmat[site].reshape(3, 3)[:, 0], data.site_xmat[site].reshape(3, 3)[:, 2]
        assert x_axis[0] > 0.95 and z_axis[2] < -0.95  # fingers forward, palm down
    # fingertip contacts belong to the distal links (the URDF's tip links are empty)
    assert (sim.geom_fingertip >= 0).sum() >= 10


def test_home_is_steady_and_the_hands_close(port_base):
    sim = load_sim_model(load_description(XARM))
    m, data = sim.model, mujoco.MjData(sim.model)
    mujoco.mj_resetDataKeyframe(m, data, sim.home_key)
    home = data.qpos[sim.qpos_adr].copy()
    data.ctrl[sim.actuator_ids] = home
    for _ in range(500):
        mujoco.mj_step(m, data)
    assert np.abs(data.qpos[sim.qpos_adr] - home).max() < 0.01  # gravity compensated, no sag
    target = home.copy()
    fingers = [i for i, n in enumerate(sim.joint_names) if n.endswith(("index_q1", "middle_q1", "ring_q1", "pinky_q1"))]
    target[fingers] = 1.2
    data.ctrl[sim.actuator_ids] = target
    for _ in range(500):
        mujoco.mj_step(m, data)
    assert np.abs(data.qpos[sim.qpos_adr][fingers] - 1.2).max() < 0.05 and np.isfinite(data.qvel).all()


def test_teleop_sim_runs_it_and_the_conformance_kit_passes(port_base):
    with running_server(port_base, description=XARM):
        report = run_checks(RobotEndpoints.on(port_base=port_base).rpc)
    assert report.ok, report.format()
    cmd = [sys.executable, "-m", "teleop.cli", "sim", "--config", str(XARM), "--fast", "--duration", "0.5",
           "--cameras", "none", "--port-base", str(free_port_base())]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ)
    assert res.returncode == 0, res.stderr
    assert '"ticks": 250' in res.stderr and "WARNING" not in res.stdout + res.stderr


def test_a_session_with_synthetic_hands_drives_it_records_and_exports(tmp_path):
    from recorder.episode import list_episodes
    from recorder.export import export_lerobot
    from recorder.reader import load_episode
    from teleop.session.config import parse_session
    from teleop.session.machine import ENGAGED
    from teleop.session.session import Session

    raw = {
        "session": {"rate_hz": 200.0, "robot_description": str(XARM)},
        "robot": {"kind": "sim", "port_base": free_port_base(),
                  "sim_args": ["--cameras", "head_cam", "--camera-hz", "10", "--camera-size", "160x120"]},
        "device": {side: {"driver": "synthetic", "options": {"side": side, "rate_hz": 100.0}}
                   for side in ("left", "right")},
        "input": {side: {"hand": side, "wrist": side} for side in ("left", "right")},
        "controls": {"engage": ["auto"], "estop": ["key:e"], "release": ["key:r"]},
        "recorder": {"enabled": True, "dataset": str(tmp_path / "ds"), "task": "wave"},
        "haptics": {"enabled": False},
    }
    summary = Session(parse_session(raw), status="quiet", keys=False).run(seconds=4.0)
    assert summary.final_state == ENGAGED, summary.fault_log
    [episode] = list_episodes(tmp_path / "ds")
    ep = load_episode(episode.path)
    assert ep.meta["robot"] == "xarm7_ability" and len(ep.meta["joint_names"]) == 26
    q = ep.stream("session/command").array("q")
    hands = [k for k, n in enumerate(ep.meta["joint_names"]) if n.endswith(("_q1", "_q2"))]
    assert len(q) > 200 and np.ptp(q[:, hands], axis=0).max() > 0.1  # the synthetic hands move the fingers
    assert len(ep.stream("recorder/video/head_cam")) > 10
    exported = export_lerobot(tmp_path / "ds", tmp_path / "lerobot", fps=20)
    assert exported.episodes == 1 and not exported.skipped
    info = json.loads((tmp_path / "lerobot" / "meta" / "info.json").read_text())
    assert info["features"]["action"]["shape"] == [26] and "observation.images.head_cam" in info["features"]


def _write(tmp_path: Path, text: str, name: str = "robot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = XARM.read_text(encoding="utf-8").replace('scene = "scene.xml"', f'scene = "{XARM.parent / "scene.xml"}"')
    text = text.replace('retarget = "retarget.toml"', f'retarget = "{XARM.parent / "retarget.toml"}"')
    assert old in text, old
    return _write(tmp_path, text.replace(old, new, 1))


def _urdf_variant(tmp_path: Path, old: str, new: str) -> Path:
    """The right assembly with one change, written beside the original (its meshes are relative)."""
    text = (ASSEMBLY / "xarm7_ability_right_hand.urdf").read_text(encoding="utf-8")
    assert old in text, old
    out = tmp_path / "urdf" / "assembly" / "xarm7_ability" / "broken.urdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "urdf" / "arms").symlink_to(DEX_URDF / "robots/arms")
    (tmp_path / "urdf" / "hands").symlink_to(DEX_URDF / "robots/hands")
    (out.parent / "meshes").symlink_to(ASSEMBLY / "meshes")
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    return out


@pytest.mark.parametrize("old, new, said", [
    ("pos = [0.0, 0.3, 0.0]", "pos = [0.0, nan, 0.0]", "mount.left.pos[1]"),
    ('prefix = "right_"', 'prefix = "left_"', "would collide"),
    ('"right_pinky_q1"]', '"right_pinky_q1", "right_index_q2"]', "mirrored pair"),
    ("left_joint4 = 0.2", "left_joint4 = inf", "home.left_joint4"),
    ('body = "base"', 'body = "palm"', "mount.left.sites.wrist.body"),
    ("${DEX_URDF}/robots/assembly/xarm7_ability/xarm7_ability_left_hand.urdf", "${NO_SUCH_CHECKOUT}/x.urdf",
     "set NO_SUCH_CHECKOUT to the folder"),
    ('"*_q?" = 0.001', '"*_q?" = -1', "mount.armature"),
])
def test_a_bad_description_names_the_key(tmp_path, old, new, said):
    with pytest.raises(ConfigError, match="robot.toml") as err:
        load_description(_variant(tmp_path, old, new))
    assert said in str(err.value)


@pytest.mark.parametrize("old, new, said", [
    ("../../hands/ability_hand/meshes/visual/thumb-F2.obj", "../../hands/ability_hand/meshes/visual/gone.obj",
     "mesh '../../hands/ability_hand/meshes/visual/gone.obj' (link 'thumb_L2') does not exist"),
    ('<mimic joint="index_q1"', '<mimic joint="index_q9"', "joint 'index_q2' mimics 'index_q9'"),
    ('<limit lower="0" upper="2.0943951" effort="6.0"', '<limit effort="6.0"', "thumb_q2"),
])
def test_a_broken_model_names_the_file_and_element(tmp_path, old, new, said):
    broken = _urdf_variant(tmp_path, old, new)
    path = _variant(tmp_path, "${DEX_URDF}/robots/assembly/xarm7_ability/xarm7_ability_right_hand.urdf", str(broken))
    with pytest.raises(ConfigError) as err:
        load_sim_model(load_description(path))
    assert said in str(err.value) and ("broken.urdf" in str(err.value) or "no range" in str(err.value))


def test_a_mimic_loop_is_refused(tmp_path):
    broken = _urdf_variant(tmp_path, '<joint name="index_q1" type="revolute">',
                           '<joint name="index_q1" type="revolute">\n    <mimic joint="index_q2"/>')
    path = _variant(tmp_path, "${DEX_URDF}/robots/assembly/xarm7_ability/xarm7_ability_right_hand.urdf", str(broken))
    with pytest.raises(ConfigError, match=r"broken.urdf.*mimic loop"):
        load_description(path)


def test_model_and_mount_are_exclusive(tmp_path):
    raw = {"name": "x", "model": "a.xml", "base_frame": "b", "mount": {}, "left": {}, "right": {}}
    with pytest.raises(ConfigError, match="either 'model'"):
        parse_description(raw, source=tmp_path / "robot.toml")
    assert math.isfinite(1.0)


def test_the_real_hand_video_drives_the_ability_hand_and_replays_on_it(tmp_path, port_base):
    """Issue-13's video path on this robot: the tracked right hand of the real video moves the
    right Ability hand within its limits, and the episode replays on the composed sim."""
    from support.hands import HAND_VIDEO, require_hand_models

    require_hand_models()
    if not HAND_VIDEO.is_file():
        pytest.skip(f"{HAND_VIDEO} not present")
    from recorder.reader import load_episode
    from recorder.replay import replay_episode
    from retarget.video_episode import VideoOptions, process_video

    frames = 120
    summary = process_video(HAND_VIDEO, XARM, tmp_path / "ds", options=VideoOptions(max_frames=frames))
    assert summary["status"] == "complete" and summary["hands"]["right"] >= 0.95 * frames
    sim = load_sim_model(load_description(XARM))
    q = load_episode(Path(summary["episode"])).stream("session/command").array("q")
    assert q.shape == (frames, sim.n_joints) and np.all(np.isfinite(q))
    assert np.all(q >= sim.lower - 1e-9) and np.all(q <= sim.upper + 1e-9)
    fingers = [k for k, n in enumerate(sim.joint_names) if n.startswith("right_") and n.endswith(("_q1", "_q2"))]
    assert len(fingers) == 6 and (np.ptp(q[:, fingers], axis=0) > 0.05).sum() >= 4  # the fingers follow the person's
    with running_server(port_base, description=XARM):
        result = replay_episode(Path(summary["episode"]), robot_rpc=RobotEndpoints.on(port_base=port_base).rpc,
                                speed=4.0)
    assert result.commands > 0 and result.tracking_rms_rad < 0.2


def test_a_scripted_grasp_lifts_the_cube():
    """Top-down: palm over the cube, fingers and thumb close round it, the arm lifts 15 cm. (The
    window that holds is narrow: about 1 cm in x and 0.2 rad of thumb rotation.)"""
    from robots.scripted import solve_site_ik

    sim = load_sim_model(load_description(XARM))
    m, data = sim.model, mujoco.MjData(sim.model)
    mujoco.mj_resetDataKeyframe(m, data, sim.home_key)
    mujoco.mj_forward(m, data)
    idx = {n: i for i, n in enumerate(sim.joint_names)}
    home = data.qpos[sim.qpos_adr].copy()
    cube_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "cube")
    cube = data.xpos[cube_id].copy()
    x, z = np.array([1.0, 0, 0]), np.array([0, 0, -1.0])  # fingers forward, palm down
    rot = np.column_stack([x, np.cross(z, x), z])
    arm = [idx[j] for j in load_description(XARM).sides["right"].arm_joints]

    def wrist_at(offset, q0):
        return solve_site_ik(m, data, "right_wrist", [sim.joint_names[i] for i in arm], cube + offset, rot, q0=q0,
                             raise_on_fail=False, posture_weight=0.01, iters=500)

    def command(arm_q, hand):
        c = home.copy()
        c[arm] = arm_q
        for joint, value in hand.items():
            c[idx[f"right_{joint}"]] = value
        return c

    above = wrist_at([-0.08, 0, 0.16], home[arm])
    at = wrist_at([-0.08, 0, 0.06], above)
    lifted = wrist_at([-0.08, 0, 0.21], at)
    thumb_in = {"thumb_q1": -1.2}
    closed = {**thumb_in, "thumb_q2": 1.3, **{f"{f}_q1": 1.3 for f in ("index", "middle", "ring", "pinky")}}
    mujoco.mj_resetDataKeyframe(m, data, sim.home_key)
    current = home
    for seconds, target in [(1.0, command(above, thumb_in)), (1.0, command(at, thumb_in)), (0.8, command(at, closed)),
                            (1.5, command(lifted, closed)), (1.0, command(lifted, closed))]:
        steps = int(seconds / m.opt.timestep)
        for k in range(steps):
            a = (k + 1) / steps
            data.ctrl[sim.actuator_ids] = current + a * a * a * (10 - 15 * a + 6 * a * a) * (target - current)
            mujoco.mj_step(m, data)
        current = target
    assert data.xpos[cube_id][2] - cube[2] > 0.12  # held, not dropped


def test_teleop_robot_show_lists_what_the_composer_made():
    res = subprocess.run([sys.executable, "-m", "teleop.cli", "robot", "show", str(XARM), "--json"],
                         capture_output=True, text=True, timeout=120, env=os.environ)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["composed"] and len(out["groups"]["right_hand"]) == 6 and len(out["coupled_joints"]) == 8
    assert out["objects"] == ["cube", "bottle", "mug"] and out["home_keyframe"]
    env = {k: v for k, v in os.environ.items() if k != "DEX_URDF"}
    res = subprocess.run([sys.executable, "-m", "teleop.cli", "robot", "show", str(XARM)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 2 and "set DEX_URDF to the folder" in res.stderr
