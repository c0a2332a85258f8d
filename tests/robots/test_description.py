"""Robot description configs are parsed strictly: each error names the key and the fix."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from robots.description import bundled_description_path, load_description, parse_description
from robots.mujoco_sim.model import load_sim_model
from teleop.errors import ConfigError

FIXTURES = Path(__file__).parents[1] / "fixtures"
TINY = FIXTURES / "tiny_bimanual.toml"


def _raw(path: Path = TINY) -> dict:
    return tomllib.loads(path.read_text())


def test_bundled_and_fixture_parse():
    desc = load_description(bundled_description_path())
    assert desc.name == "dexhumanoid"
    assert [len(desc.groups[g]) for g in ("left_arm", "left_hand", "right_arm", "right_hand")] == [7, 16, 7, 16]
    tiny = load_description(TINY)
    assert tiny.joint_names[:8][-1] == "left_grip" and tiny.velocity_limit("right_grip") == 4.0
    assert tiny.velocity_limit("left_elbow") == 2.0 and tiny.position_overrides["left_elbow"] == (-1.5, 0.5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(colour="red"), "unknown key 'colour'"),
        (lambda r: r["left"].update(arm_joint=[]), "unknown key 'left.arm_joint'"),
        (lambda r: r.pop("base_frame"), "missing key 'base_frame'"),
        (lambda r: r.update(name=3), "key 'name' must be str"),
        (lambda r: r.update(model="nope.xml"), "does not exist"),
        (lambda r: r.update(model="robot.obj"), "MJCF (.xml) or URDF (.urdf)"),
        (lambda r: r["left"].update(arm_joints=[]), "'left.arm_joints' is empty"),
        (lambda r: r["right"].update(hand_joints=["left_grip"]), "more than once"),
        (lambda r: r["limits"].update(velocity_rad_s=-1), "must be > 0"),
        (lambda r: r["limits"]["velocity_overrides"].update({"*_nothing": 1.0}), "matches no commanded joint"),
        (lambda r: r["limits"]["position_overrides"].update(left_elbow=[1.0, -1.0]), "low < high"),
        (lambda r: r["limits"]["position_overrides"].update(base=[0, 1]), "not a commanded joint"),
        (lambda r: r["limits"]["velocity_overrides"].update({"*_grip": float("inf")}),
         "key 'limits.velocity_overrides.*_grip' must be a finite number with 0 < value <= 50, got inf"),
        (lambda r: r["limits"]["position_overrides"].update(left_elbow=[-float("inf"), float("inf")]),
         "must be a finite number with -10 <= value <= 10, got -inf"),
        (lambda r: r["actuators"].update(kp=float("nan")), "key 'actuators.kp' must be a finite number"),
        (lambda r: r.update(cameras="head"), "list of camera names"),
    ],
)
def test_config_errors_name_the_key(mutate, message):
    raw = _raw()
    mutate(raw)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_description(raw, source=TINY)


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_description(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_description(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="bundled robots: \\['dexhumanoid', 'xarm7_ability'\\]"):
        bundled_description_path("nao")


def test_model_names_are_checked_with_suggestions(tmp_path):
    text = TINY.read_text().replace('"left_elbow", "left_wrist_yaw"', '"left_elbo", "left_wrist_yaw"')
    text = text.replace('model = "tiny_bimanual.urdf"', f'model = "{FIXTURES / "tiny_bimanual.urdf"}"')
    text = text.replace("position_overrides = { left_elbow = [-1.5, 0.5] }", "")
    (tmp_path / "r.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"joint 'left_elbo' is not in tiny_bimanual.urdf; did you mean \['left_elbow'"):
        load_sim_model(tmp_path / "r.toml")
    text = TINY.read_text().replace('wrist_frame = "left_wrist_roll_link"', 'wrist_frame = "left_wrist"')
    text = text.replace('model = "tiny_bimanual.urdf"', f'model = "{FIXTURES / "tiny_bimanual.urdf"}"')
    (tmp_path / "f.toml").write_text(text)
    with pytest.raises(ConfigError, match="frame 'left_wrist' is neither a site nor a body"):
        load_sim_model(tmp_path / "f.toml")


def test_bare_urdf_gets_position_servos_and_limits():
    sim = load_sim_model(TINY)
    m = sim.model
    assert m.nu == sim.n_joints == 16
    assert (sim.actuator_ids >= 0).all()
    assert sim.lower[3] == -1.5 and sim.upper[3] == 0.5  # override
    assert sim.upper[7] == pytest.approx(1.2)  # from the URDF
    assert not sim.joint_ids.flags.writeable
