"""Hand retargeting and arm IK on the bundled robot: accuracy, limits, safety, warm start."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from retarget.arm import ArmIK
from retarget.bimanual import BimanualRetargeter
from retarget.config import load_retarget_config
from retarget.hand import HandRetargeter
from retarget.human_hand import HumanHand
from retarget.kinematics import compile_tree
from retarget.motions import keypoint_sequence, pose
from robots.description import bundled_description_path, load_description

DESC = load_description(bundled_description_path())
CFG = load_retarget_config(DESC)


def _hand(side: str = "left", **kw) -> HandRetargeter:
    hc = CFG.hands[side]
    tree = compile_tree(hc.model_path, hc.wrist_frame, hc.frames, hc.joints)
    opts = dict(scale=hc.scale, smooth=hc.smooth, pinch_on_m=hc.pinch_on_m, pinch_off_m=hc.pinch_off_m,
                pinch_weight=hc.pinch_weight, pinch_target_m=hc.pinch_target_m, max_iters=hc.max_iters)
    opts.update(kw)
    return HandRetargeter(tree, hc.vectors, **opts)


def _arm(side: str = "left", **kw) -> ArmIK:
    ac = CFG.arms[side]
    tree = compile_tree(ac.model_path, ac.base_frame, [ac.ee_frame], ac.joints)
    return ArmIK(tree, ac.ee_frame, **kw)


HAND = _hand()
ARM = _arm()


@pytest.mark.parametrize("side", ["left", "right"])
def test_own_fk_keypoints_recover_fingertips_within_2mm(side):
    """Human keypoints made from the robot's own frames (divided by the scale) must bring the
    fingertips back to where they were: the optimiser finds the exact solution when one exists."""
    hand = _hand(side, pinch_on_m=1e-9, pinch_off_m=1e-9, max_iters=100)
    tree, vec, scale = hand.tree, hand.vectors, CFG.hands[side].scale
    tips = [tree.frame_index(f"{side}_{f}_tip") for f in ("thumb", "index", "middle", "ring", "pinky")]
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(40):
        q = rng.uniform(tree.lower, tree.upper)
        pos = tree.fk(q).pos
        kp = np.zeros((21, 3))
        for o, t, fo, ft in zip(vec.human_origin, vec.human_task, vec.origin_frames, vec.task_frames):
            kp[t] = kp[o] + (pos[tree.frame_index(ft)] - pos[tree.frame_index(fo)]) / scale
        hand.reset()
        q_hat = hand.retarget(kp)
        worst = max(worst, float(np.max(np.linalg.norm(tree.fk(q_hat).pos[tips] - pos[tips], axis=1))))
    assert worst < 2e-3, f"fingertip error {worst * 1e3:.2f} mm"


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (21, 3), elements=st.floats(-0.4, 0.4)), st.booleans())
def test_hand_joint_limits_never_exceeded(keypoints, cold):
    if cold:
        HAND.reset()
    q = HAND.retarget(keypoints)
    assert np.all(np.isfinite(q))
    assert np.all(q >= HAND.tree.lower) and np.all(q <= HAND.tree.upper)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, 3, elements=st.floats(-3, 3)), arrays(np.float64, 4, elements=st.floats(-1, 1)))
def test_arm_limits_and_no_nan_for_any_target(pos, quat):
    from retarget.kernels.poses import quat_to_mat

    rot = np.zeros((3, 3))
    quat_to_mat(quat, rot)
    res = ARM.solve(pos, rot)
    assert np.all(np.isfinite(res.q)) and np.isfinite(res.pos_err_m)
    assert np.all(res.q >= ARM.tree.lower) and np.all(res.q <= ARM.tree.upper)


def test_non_finite_input_holds_the_previous_solution():
    hand = _hand()
    q_before = hand.retarget(keypoint_sequence("left")[0])
    bad = np.full((21, 3), np.nan)
    np.testing.assert_array_equal(hand.retarget(bad, 1.0), q_before)
    assert hand.rejected == 1
    arm = _arm()
    q_arm = arm.q.copy()
    res = arm.step(np.array([np.inf, 0, 0]), np.array([1.0, 0, 0, 0]), 1.0)
    np.testing.assert_array_equal(res.q, q_arm)
    assert not res.reachable and arm.rejected == 1


def test_pinch_brings_thumb_and_finger_together():
    hand = _hand()
    kp = HumanHand("left").keypoints(pose("pinch_index"))
    hand.reset()
    for _ in range(20):  # a held pose: the warm start converges
        q = hand.retarget(kp)
    pos = hand.tree.fk(q).pos
    gap = np.linalg.norm(pos[hand.tree.frame_index("left_thumb_tip")] - pos[hand.tree.frame_index("left_index_tip")])
    assert hand.pinching.any()
    assert gap < 0.012, f"thumb-index gap {gap * 1e3:.1f} mm"
    for _ in range(20):
        open_q = hand.retarget(HumanHand("left").keypoints(pose("open")))
    pos = hand.tree.fk(open_q).pos
    assert np.linalg.norm(pos[hand.tree.frame_index("left_thumb_tip")] - pos[hand.tree.frame_index("left_index_tip")]) > 0.04


def test_fist_and_open_move_the_fingers_the_right_way():
    hand = _hand()
    hand.reset()
    q_open = hand.retarget(HumanHand("left").keypoints(pose("open")))
    hand.reset()
    q_fist = hand.retarget(HumanHand("left").keypoints(pose("fist")))
    names = hand.joint_names
    for f in ("index", "middle", "ring", "pinky"):
        i = names.index(f"left_{f}_mcp_flex")
        assert q_fist[i] > q_open[i] + 0.5, f


def test_sequence_is_smooth_with_warm_start():
    hand = _hand()
    seq = keypoint_sequence("left")
    out = np.array([hand.retarget(seq[k], k * 0.01) for k in range(len(seq))])
    steps = np.abs(np.diff(out, axis=0)).max(axis=1)
    assert steps.max() <= 0.1 + 1e-12  # the trust region bounds every step
    assert np.median(steps) < 0.03  # and most are far smaller


def test_ik_reaches_reachable_targets():
    arm = _arm()
    rng = np.random.default_rng(3)
    tree = arm.tree
    for _ in range(40):
        q = rng.uniform(tree.lower, tree.upper)
        pose_ = tree.fk(q)
        res = arm.solve_global(pose_.pos[0], pose_.rot[0])
        assert res.reachable, (res.pos_err_m, res.rot_err_rad)
        assert res.pos_err_m < 1e-3 and res.rot_err_rad < np.deg2rad(1.0)


def test_ik_unreachable_gives_closest_pose_within_limits():
    arm = _arm()
    base = arm.tree.fk(arm.posture)
    far = base.pos[0] + np.array([2.0, 0.0, 0.0])
    res = arm.solve(far, base.rot[0])
    assert not res.reachable and np.isfinite(res.q).all()
    assert np.all(res.q >= arm.tree.lower) and np.all(res.q <= arm.tree.upper)
    reach = np.linalg.norm(arm.tree.fk(res.q).pos[0] - far)
    assert reach == pytest.approx(res.pos_err_m, abs=1e-9)
    # stretched straight toward it, the arm is singular: still bounded steps, no NaN
    for _ in range(20):
        prev = res.q.copy()
        res = arm.solve(far, base.rot[0])
        assert np.linalg.norm(res.q - prev) <= 0.3 * 50 + 1e-9 and np.isfinite(res.q).all()


def test_clutch_engage_does_not_jump():
    b = BimanualRetargeter(DESC)
    b.warmup()
    q = np.zeros(b.n_command)
    arm_q = b.sides["left"].arm.posture + 0.1
    tracker_p = np.array([[0.4, 0.2, 1.1], [0.4, -0.2, 1.1]])
    tracker_q = np.array([[0.9, 0.1, 0.3, 0.1], [1.0, 0.0, 0.0, 0.0]])
    b.engage("left", tracker_p[0], tracker_q[0], arm_q)
    kp = np.stack([keypoint_sequence("left")[0], keypoint_sequence("right")[0]])
    b.tick(0.0, kp, tracker_p, tracker_q, q)
    assert np.max(np.abs(q[b.sides["left"].arm_slice] - arm_q)) < 1e-3
    # the operator moves 5 cm: the robot wrist moves 5 cm (scale 1), in the same direction
    moved = tracker_p.copy()
    moved[0, 0] += 0.05
    for k in range(1, 100):
        res = b.tick(k * 0.01, kp, moved, tracker_q, q)
    tree = b.sides["left"].arm.tree
    d = tree.fk(q[b.sides["left"].arm_slice]).pos[0] - tree.fk(arm_q).pos[0]
    assert res.reachable[0]
    np.testing.assert_allclose(d, [0.05, 0.0, 0.0], atol=2e-3)


def test_dexpilot_config_builds_and_runs(tmp_path):
    text = """
[hand]
type = "DexPilot"
urdf_path = "%s"
wrist_link_name = "{side}_wrist"
finger_tip_link_names = ["{side}_thumb_tip", "{side}_index_tip", "{side}_middle_tip", "{side}_ring_tip", "{side}_pinky_tip"]
scaling_factor = 1.15
""" % (str(DESC.model_path.parent / "hands" / "{side}_hand.urdf"))
    path = tmp_path / "dexpilot.toml"
    path.write_text(text)
    cfg = load_retarget_config(DESC, path)
    hc = cfg.hands["left"]
    assert hc.vectors.n == 5 + 10 and sum(hc.vectors.pinch_flags()) == 4
    b = BimanualRetargeter(DESC, cfg)
    q = np.zeros(b.n_command)
    kp = np.stack([HumanHand("left").keypoints(pose("pinch_middle")), HumanHand("right").keypoints(pose("open"))])
    b.tick(0.0, kp, np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1)), q)
    assert np.isfinite(q).all()


def test_config_errors_name_the_key(tmp_path):
    from teleop.errors import ConfigError

    base = (DESC.retarget_path).read_text()
    cases = {
        'type = "vector"': ('type = "position"', "supported: 'vector', 'dexpilot'"),
        "scaling_factor = 1.15 ": ("scaling_factor = -1.0 ", "'hand.scaling_factor' must be > 0"),
        "[arm]": ("[arm]\nposture = [1.0]", "'arm.posture' must list 7 numbers"),
        "[workspace]": ("[workspace]\ncolour = 1", "unknown key 'workspace.colour'"),
        "[filter.keypoints]": ("[filter.keypoints]\ncutoff = 1", "[filter.keypoints]"),
    }
    for old, (new, message) in cases.items():
        assert old in base, old
        path = tmp_path / "r.toml"
        path.write_text(base.replace(old, new, 1).replace('urdf_path = "hands/', f'urdf_path = "{DESC.model_path.parent}/hands/'))
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_retarget_config(DESC, path)
