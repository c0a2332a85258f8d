"""The bundled dexhumanoid: model layout, generator round trip, scripted grasp and demo plans."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robots import scripted
from robots.description import RobotDescription, bundled_description_path, load_description
from robots.dexhumanoid import generate
from teleop.errors import ConfigError, SolverFailed
from teleop.types import SIDES

FINGERS = ("index", "middle", "ring", "pinky")
OBJECTS = ("cube", "bottle", "mug")


@pytest.fixture(scope="module")
def description() -> RobotDescription:
    return load_description(bundled_description_path("dexhumanoid"))


@pytest.fixture(scope="module")
def model(description: RobotDescription) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(description.model_path))


def _home(model: mujoco.MjModel) -> mujoco.MjData:
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    return data


def _rollout(model, description, plan, data, until_s=None, every_s=0.05):
    """Run ``plan`` open loop; returns (times, bottle heights) sampled every ``every_s``."""
    idx = scripted.actuator_indices(model, description.joint_names)
    end = plan.duration_s if until_s is None else until_s
    times, heights = [], []
    next_sample = 0.0
    while data.time < end:
        data.ctrl[idx] = plan.command_at(data.time)
        mujoco.mj_step(model, data)
        if data.time >= next_sample:
            next_sample += every_s
            times.append(data.time)
            heights.append(data.body("bottle").xpos[2])
    return np.array(times), np.array(heights)


# ---------------------------------------------------------------------------------------------
# Model layout.


def test_committed_xml_matches_generator() -> None:
    for name, text in generate.render_files().items():
        committed = (generate.OUT_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run `python -m robots.dexhumanoid.generate`"


def test_arms_have_seven_limited_hinges(
    model: mujoco.MjModel, description: RobotDescription
) -> None:
    for side in SIDES:
        arm = description.sides[side].arm_joints
        assert arm == tuple(f"{side}_{j}" for j in generate.ARM_JOINTS)
        for name in arm:
            joint = model.joint(name)
            assert int(joint.type[0]) == int(mujoco.mjtJoint.mjJNT_HINGE)
            assert joint.limited[0]
            assert joint.range[0] <= 0.0 <= joint.range[1]  # zero pose (arms down) is inside


def test_hands_have_sixteen_actuated_joints_and_coupled_dips(
    model: mujoco.MjModel, description: RobotDescription
) -> None:
    couplings = {
        (model.joint(model.eq_obj1id[i]).name, model.joint(model.eq_obj2id[i]).name): model.eq_data[
            i, :5
        ].copy()
        for i in range(model.neq)
        if int(model.eq_type[i]) == int(mujoco.mjtEq.mjEQ_JOINT)
    }
    for side in SIDES:
        hand = description.sides[side].hand_joints
        assert len(hand) == 16
        assert hand[:4] == tuple(f"{side}_thumb_{j}" for j in ("cmc_abd", "cmc_flex", "mcp", "ip"))
        for f in FINGERS:
            coef = couplings[(f"{side}_{f}_dip", f"{side}_{f}_pip")]
            assert coef[0] == 0.0 and 0.7 <= coef[1] <= 1.0 and not coef[2:].any()
            assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{side}_{f}_dip") == -1


def test_every_commanded_joint_has_a_position_actuator_over_its_range(
    model: mujoco.MjModel, description: RobotDescription
) -> None:
    assert model.nu == len(description.joint_names) == 46
    for name in description.joint_names:
        act = model.actuator(name)
        assert model.joint(int(act.trnid[0])).name == name
        assert int(act.biastype[0]) == int(mujoco.mjtBias.mjBIAS_AFFINE)  # position servo
        np.testing.assert_allclose(act.ctrlrange, model.joint(name).range)
        assert act.forcelimited[0] and act.forcerange[1] > 0


def test_description_names_exist_in_model(
    model: mujoco.MjModel, description: RobotDescription
) -> None:
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, description.base_frame) >= 0
    for cam in ("head_cam", "left_wrist_cam", "right_wrist_cam"):
        assert cam in description.cameras
    for cam in description.cameras:
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam) >= 0, cam
    for side in SIDES:
        sd = description.sides[side]
        for joint in sd.arm_joints + sd.hand_joints:
            assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint) >= 0, joint
        for site in (sd.wrist_frame, f"{side}_palm", *sd.fingertip_frames):
            assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site) >= 0, site
        assert (
            sd.camera is not None
            and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, sd.camera) >= 0
        )


def test_scene_has_free_objects_resting_in_home(model: mujoco.MjModel) -> None:
    data = _home(model)
    rest = {o: data.body(o).xpos.copy() for o in OBJECTS}
    for o in OBJECTS:
        body = model.body(o)
        assert int(model.jnt_type[body.jntadr[0]]) == int(mujoco.mjtJoint.mjJNT_FREE)
        assert 0.05 <= model.body_subtreemass[body.id] <= 0.3
    for _ in range(500):  # 1 s holding the home command
        mujoco.mj_step(model, data)
    for o in OBJECTS:
        assert np.linalg.norm(data.body(o).xpos - rest[o]) < 2e-3, o
    np.testing.assert_allclose(
        data.qpos[: model.nu + 8], model.key("home").qpos[: model.nu + 8], atol=1e-3
    )


def test_wrist_frame_convention_and_mirror_symmetry(model: mujoco.MjModel) -> None:
    data = _home(model)
    for side in SIDES:
        wrist = data.site(f"{side}_wrist")
        rot = wrist.xmat.reshape(3, 3)
        to_mcp = data.body(f"{side}_middle_knuckle").xpos - wrist.xpos
        np.testing.assert_allclose(
            rot[:, 0], to_mcp / np.linalg.norm(to_mcp), atol=1e-9
        )  # x to middle MCP
        # z out of the palm: the palm site sits on the palmar face, and fingers curl towards +z.
        palm_offset = data.site(f"{side}_palm").xpos - wrist.xpos
        assert palm_offset @ rot[:, 2] > 0.01
        np.testing.assert_allclose(np.cross(rot[:, 2], rot[:, 0]), rot[:, 1], atol=1e-9)
    # Same joint values on both sides give mirror-image poses (y -> -y).
    for name in ("wrist", "palm", "thumb_tip", "index_tip", "pinky_tip"):
        left, right = data.site(f"left_{name}").xpos, data.site(f"right_{name}").xpos
        np.testing.assert_allclose(left * [1, -1, 1], right, atol=1e-9)


def test_contact_filter_bits(model: mujoco.MjModel) -> None:
    def collides(a: str, b: str) -> bool:
        ga, gb = model.geom(a), model.geom(b)
        return bool((ga.contype[0] & gb.conaffinity[0]) or (gb.contype[0] & ga.conaffinity[0]))

    assert collides("left_palm", "right_palm")  # hand-over
    assert collides("right_index_distal", "bottle_grip")
    assert collides("right_thumb_distal", "table_top")
    assert collides("bottle", "table_top") and collides("cube", "table_top")
    assert not collides("bottle", "right_palm")  # the visible cylinder only stands on the table
    assert not collides("right_index_distal", "right_palm")  # no self-collision inside a hand
    arms = [i for i in range(model.ngeom) if model.geom_contype[i] & 16]
    assert len(arms) == 4  # upper arms and forearms
    hands_and_arms = [i for i in range(model.ngeom) if model.geom_contype[i] & (4 | 8 | 16)]
    for i in arms:
        for j in hands_and_arms:
            assert not (model.geom_conaffinity[i] & model.geom_contype[j])
            assert not (model.geom_conaffinity[j] & model.geom_contype[i])
    torso = model.body("torso").id
    assert all(
        model.geom_contype[i] == 0 == model.geom_conaffinity[i]
        for i in range(model.ngeom)
        if model.geom_bodyid[i] == torso
    )


def test_physics_steps_fast_enough_from_home(model: mujoco.MjModel) -> None:
    import time

    data = _home(model)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(500):
            mujoco.mj_step(model, data)
        best = max(best, 500 * model.opt.timestep / (time.perf_counter() - start))
    # Measured ~15-25x on a 2-core VM; the floor only catches gross regressions on a busy machine.
    assert best > 3.0, f"physics runs at {best:.1f}x real time; budget is >= 10x on 2 cores"


# ---------------------------------------------------------------------------------------------
# Plans and IK.


def test_plan_interpolates_min_jerk_and_clamps() -> None:
    plan = scripted.Plan(
        ("a", "b"), np.array([0.0, 1.0, 3.0]), np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 0.0]])
    )
    assert plan.duration_s == 3.0
    np.testing.assert_allclose(plan.command_at(-1.0), [0.0, 0.0])
    np.testing.assert_allclose(plan.command_at(0.5), [0.5, 1.0])  # min-jerk midpoint
    np.testing.assert_allclose(plan.command_at(1.0), [1.0, 2.0])
    np.testing.assert_allclose(plan.command_at(9.0), [1.0, 0.0])
    assert plan.command_at(0.1)[0] < 0.1  # slow start


def test_plan_rejects_mismatched_commands() -> None:
    with pytest.raises(ValueError, match="commands must have shape"):
        scripted.Plan(("a",), np.array([0.0, 1.0]), np.zeros((2, 2)))


def test_plan_rejects_decreasing_times() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        scripted.Plan(("a",), np.array([0.0, 2.0, 1.0]), np.zeros((3, 1)))


def test_plan_builder_rejects_unknown_joint() -> None:
    builder = scripted.PlanBuilder(("a",), [0.0])
    with pytest.raises(ConfigError, match="not in the command vector"):
        builder.move(1.0, {"b": 1.0}, "oops")


def test_actuator_indices_rejects_unknown_joint(model: mujoco.MjModel) -> None:
    with pytest.raises(ConfigError, match="no actuator named"):
        scripted.actuator_indices(model, ["left_index_dip"])


def test_site_ik_reaches_a_reachable_pose_within_limits(
    model: mujoco.MjModel, description: RobotDescription
) -> None:
    data = _home(model)
    arm = description.sides["right"].arm_joints
    rng = np.random.default_rng(0)
    lo, hi = model.jnt_range[[model.joint(j).id for j in arm]].T
    goal = data.qpos.copy()
    q_goal = np.clip(
        np.array([data.joint(j).qpos[0] for j in arm]) + rng.uniform(-0.3, 0.3, 7), lo, hi
    )
    scratch = mujoco.MjData(model)
    scratch.qpos[:] = goal
    for j, v in zip(arm, q_goal, strict=True):
        scratch.joint(j).qpos[0] = v
    mujoco.mj_kinematics(model, scratch)
    target_pos, target_mat = (
        scratch.site("right_wrist").xpos.copy(),
        scratch.site("right_wrist").xmat.copy(),
    )

    q = scripted.solve_site_ik(model, data, "right_wrist", arm, target_pos, target_mat)
    assert np.all(q >= lo) and np.all(q <= hi) and np.all(np.isfinite(q))
    for j, v in zip(arm, q, strict=True):
        scratch.joint(j).qpos[0] = v
    mujoco.mj_kinematics(model, scratch)
    assert np.linalg.norm(scratch.site("right_wrist").xpos - target_pos) < 1e-3


def test_site_ik_raises_for_unreachable_target(
    model: mujoco.MjModel, description: RobotDescription
) -> None:
    data = _home(model)
    with pytest.raises(SolverFailed, match="did not reach target"):
        scripted.solve_site_ik(
            model, data, "right_wrist", description.sides["right"].arm_joints, [2.0, 0.0, 1.0]
        )


# ---------------------------------------------------------------------------------------------
# Scripted grasp and demo (open loop in MuJoCo).


@pytest.mark.parametrize("offset_m", [(0.0, 0.0), (0.01, -0.01), (-0.01, 0.01)])
def test_scripted_grasp_lifts_bottle(
    model: mujoco.MjModel, description: RobotDescription, offset_m
) -> None:
    plan = scripted.grasp_and_lift_plan(model, description, side="right", obj="bottle", hold_s=1.5)
    data = _home(model)
    data.joint("bottle").qpos[:2] += offset_m  # the real bottle is not quite where the plan thinks
    mujoco.mj_forward(model, data)
    rest_z = data.body("bottle").xpos[2]
    times, heights = _rollout(model, description, plan, data)

    hold_start = plan.times_s[plan.labels.index("hold") - 1]
    held = times >= hold_start
    assert times[held][-1] - times[held][0] >= 1.0
    assert np.all(heights[held] - rest_z >= 0.05), (
        f"bottle rose only {np.min(heights[held] - rest_z):.3f} m"
    )
    assert not np.isnan(data.qpos).any()


def test_bimanual_demo_runs_and_returns_home(
    model: mujoco.MjModel, description: RobotDescription
) -> None:
    plan = scripted.bimanual_demo_plan(model, description)
    assert 15.0 <= plan.duration_s <= 25.0
    data = _home(model)
    idx = scripted.actuator_indices(model, description.joint_names)
    qadr = [model.jnt_qposadr[model.joint(j).id] for j in description.joint_names]
    lifted, min_gap = 0.0, np.inf
    rest_z = data.body("bottle").xpos[2]
    while data.time < plan.duration_s:
        data.ctrl[idx] = plan.command_at(data.time)
        mujoco.mj_step(model, data)
        lifted = max(lifted, float(data.body("bottle").xpos[2] - rest_z))
        for part in ("forearm", "hand"):
            gap = data.body(f"left_{part}").xpos - data.body(f"right_{part}").xpos
            min_gap = min(min_gap, float(np.linalg.norm(gap)))
    assert not np.isnan(data.qpos).any()
    home = scripted.home_command(model, description)
    arms = [
        i
        for i, j in enumerate(description.joint_names)
        if any(j in description.sides[s].arm_joints for s in SIDES)
    ]
    np.testing.assert_allclose(data.qpos[qadr][arms], home[arms], atol=0.02)
    assert lifted > 0.08
    assert min_gap > 0.25
    assert abs(data.body("bottle").xpos[2] - rest_z) < 0.01  # put back standing
