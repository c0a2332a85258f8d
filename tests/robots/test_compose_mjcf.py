"""MJCF parts mount like URDF ones: two copies of one MJCF arm (its mesh found through its own
meshdir), prefixed by side, on a base the composer makes, drivable and checked by the kit."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from support.sim import FIXTURES, running_server

from robots.check import run_checks
from robots.description import load_description
from robots.mujoco_sim.model import load_sim_model
from teleop.bus import RobotEndpoints
from teleop.errors import ConfigError

TOML = FIXTURES / "one_arm" / "one_arm.toml"


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TELEOP_CACHE_DIR", str(tmp_path / "cache"))


def test_two_mjcf_arms_compose_with_prefixes_and_their_mesh():
    sim = load_sim_model(load_description(TOML))
    m, data = sim.model, mujoco.MjData(sim.model)
    assert sim.joint_names == ("left_shoulder", "left_elbow", "left_wrist", "left_grip",
                               "right_shoulder", "right_elbow", "right_wrist", "right_grip")
    assert m.nmesh == 2 and m.nu == 8  # one mesh per copy; servos added from [actuators]
    mujoco.mj_forward(m, data)
    base = data.xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "base")]
    assert np.allclose(base, [0, 0, 0.5])
    left, right = (data.site_xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f"{s}_wrist")]
                   for s in ("left", "right"))
    assert np.allclose(left, [0.3, 0.2, 0.6]) and np.allclose(right, [-0.3, -0.2, 0.6])  # right turned 180 deg
    assert sim.home_key == -1  # no [home]: the sim starts from the models' zero pose


def test_the_conformance_kit_passes_on_it(port_base):
    with running_server(port_base, description=TOML):
        report = run_checks(RobotEndpoints.on(port_base=port_base).rpc)
    assert report.ok, report.format()


def test_scene_and_home_need_mounts(tmp_path):
    bad = tmp_path / "robot.toml"
    bad.write_text((FIXTURES / "tiny_bimanual.toml").read_text().replace('name = "tiny_bimanual"',
                   'name = "tiny_bimanual"\nscene = "scene.xml"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="go with \\[mount.left\\]"):
        load_description(bad)


def test_a_missing_mesh_of_an_mjcf_part_names_it(tmp_path):
    part = tmp_path / "one_arm.xml"
    part.write_text((FIXTURES / "one_arm" / "one_arm.xml").read_text().replace('file="finger.obj"', 'file="gone.obj"'))
    (tmp_path / "meshes").mkdir()
    robot = tmp_path / "robot.toml"
    robot.write_text(TOML.read_text(), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"one_arm.xml: 'finger' file 'gone.obj' does not exist at .*meshes/gone.obj"):
        load_description(robot)
