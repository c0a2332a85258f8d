"""Kinematics compiled to flat arrays agree with pinocchio (FK and Jacobians, 1e-9) on every
bundled model, and with finite differences; errors name what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pinocchio as pin
import pytest

from retarget.kinematics import compile_tree
from robots.description import bundled_description_path, load_description
from teleop.errors import ConfigError

ROOT = Path(__file__).parents[2]
ROBOT = ROOT / "robots" / "dexhumanoid"
ZOO = ROOT / "tests" / "fixtures" / "kinematics_zoo.urdf"
DESC = load_description(bundled_description_path())
FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def _frames(sides=("left", "right")):
    return [f"{s}_{n}" for s in sides for n in ("wrist", "palm", *(f"{f}_tip" for f in FINGERS))]


def _pin_model(urdf: Path):
    model = pin.buildModelFromUrdf(str(urdf))  # mimic tags ignored: every joint has its own q
    return model, model.createData()


def _pin_q(model, tree, q_ind: np.ndarray, couplings: dict[str, tuple[str, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Pinocchio q for independent coordinates, and dq_full/dq_ind (nv, nq)."""
    q = pin.neutral(model)
    m = np.zeros((model.nv, tree.nq))
    for j in range(1, model.njoints):
        name = model.names[j]
        jm = model.joints[j]
        if name in tree.joint_names:
            k, mult, off = tree.joint_names.index(name), 1.0, 0.0
        elif name in couplings:
            src, mult, off = couplings[name]
            k = tree.joint_names.index(src)
        else:
            continue
        value = off + mult * q_ind[k]
        if jm.nq == 2:  # continuous: (cos, sin)
            q[jm.idx_q], q[jm.idx_q + 1] = np.cos(value), np.sin(value)
        else:
            q[jm.idx_q] = value
        m[jm.idx_v, k] = mult
    return q, m


def _compare(urdf: Path, base: str, tree, couplings, seed: int = 0, trials: int = 30) -> None:
    model, data = _pin_model(urdf)
    rng = np.random.default_rng(seed)
    base_id = model.getFrameId(base)
    for _ in range(trials):
        q_ind = rng.uniform(tree.lower, tree.upper)
        q, dmap = _pin_q(model, tree, q_ind, couplings)
        pin.framesForwardKinematics(model, data, q)
        pin.computeJointJacobians(model, data, q)
        T_wb = data.oMf[base_id]
        poses = tree.fk(q_ind)
        jp, jr = tree.jacobians(q_ind)
        for i, name in enumerate(tree.frame_names):
            fid = model.getFrameId(name)
            T_bf = T_wb.actInv(data.oMf[fid])
            np.testing.assert_allclose(poses.pos[i], T_bf.translation, atol=1e-9, err_msg=name)
            np.testing.assert_allclose(poses.rot[i], T_bf.rotation, atol=1e-9, err_msg=name)
            J = pin.getFrameJacobian(model, data, fid, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED) @ dmap
            Jb = pin.getFrameJacobian(model, data, base_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED) @ dmap
            assert np.abs(Jb).max() == 0.0  # the base does not move with the coordinates
            R = T_wb.rotation.T
            np.testing.assert_allclose(jp[i], R @ J[:3], atol=1e-9, err_msg=name)
            np.testing.assert_allclose(jr[i], R @ J[3:], atol=1e-9, err_msg=name)


DIP = {f"{s}_{f}_dip": (f"{s}_{f}_pip", 0.8, 0.0) for s in ("left", "right") for f in FINGERS[1:]}


@pytest.mark.parametrize("model_file", ["dexhumanoid.urdf", "scene.xml"])
def test_full_robot_matches_pinocchio(model_file):
    joints = DESC.joint_names
    tree = compile_tree(ROBOT / model_file, "torso", _frames(), joints)
    assert tree.nq == 46
    _compare(ROBOT / "dexhumanoid.urdf", "torso", tree, DIP)


@pytest.mark.parametrize("side", ["left", "right"])
def test_hand_urdf_and_mjcf_match_pinocchio(side):
    frames = _frames((side,))[1:] + [f"{side}_index_middle", f"{side}_thumb_distal"]
    joints = DESC.sides[side].hand_joints
    for model_file in (ROBOT / "hands" / f"{side}_hand.urdf", ROBOT / "scene.xml"):
        tree = compile_tree(model_file, f"{side}_wrist", frames, joints)
        _compare(ROBOT / "hands" / f"{side}_hand.urdf", f"{side}_wrist", tree, DIP, seed=1)


def test_arm_chain_matches_pinocchio():
    tree = compile_tree(ROBOT / "scene.xml", "torso", ["left_wrist", "left_palm"], DESC.sides["left"].arm_joints)
    assert tree.n_nodes == 7
    _compare(ROBOT / "dexhumanoid.urdf", "torso", tree, {}, seed=2)


def test_every_joint_kind_matches_pinocchio():
    tree = compile_tree(ZOO, "base", ["tip", "l4", "branch_tip", "l2"], ["j_rev", "j_pri", "j_cont", "j_branch"])
    assert tree.lower[2] == -np.pi and tree.upper[2] == np.pi  # continuous joint
    _compare(ZOO, "base", tree, {"j_mimic": ("j_rev", -0.7, 0.25)}, seed=3, trials=50)
    # a base that is not the root: poses relative to l1
    sub = compile_tree(ZOO, "l1", ["l4", "branch_tip"], ["j_pri", "j_cont", "j_branch"])
    _compare(ZOO, "l1", sub, {}, seed=5)
    with pytest.raises(ConfigError, match=r"joints \['j_rev'\] do not move"):
        compile_tree(ZOO, "l1", ["l4"], ["j_rev", "j_pri", "j_cont"])


def test_jacobians_match_finite_differences():
    tree = compile_tree(ROBOT / "scene.xml", "left_wrist", _frames(("left",))[1:], DESC.sides["left"].hand_joints)
    q = np.random.default_rng(4).uniform(tree.lower, tree.upper)
    jp, _ = tree.jacobians(q)
    eps = 1e-6
    for k in range(tree.nq):
        dq = np.zeros(tree.nq)
        dq[k] = eps
        fd = (tree.fk(q + dq).pos - tree.fk(q - dq).pos) / (2 * eps)
        np.testing.assert_allclose(jp[:, :, k], fd, atol=1e-8)


def test_errors_name_what_is_wrong():
    scene = ROBOT / "scene.xml"
    with pytest.raises(ConfigError, match=r"no frame 'left_wirst'; did you mean \['left_wrist'"):
        compile_tree(scene, "left_wirst", ["left_index_tip"], DESC.sides["left"].hand_joints)
    with pytest.raises(ConfigError, match="is not below the base frame"):
        compile_tree(scene, "left_wrist", ["right_index_tip"], DESC.sides["left"].hand_joints)
    with pytest.raises(ConfigError, match="neither in the joint list nor coupled"):
        compile_tree(scene, "left_wrist", ["left_index_tip"], ["left_index_mcp_abd", "left_index_mcp_flex"])
    with pytest.raises(ConfigError, match="'j_mimic' follows 'j_rev', which is not in the joint list"):
        compile_tree(ZOO, "l1", ["tip"], ["j_pri", "j_cont"])
    with pytest.raises(ConfigError, match="free or ball"):
        compile_tree(scene, "world", ["cube"], [])
    tree = compile_tree(scene, "left_wrist", ["left_index_tip"], ["left_index_mcp_abd", "left_index_mcp_flex", "left_index_pip"])
    with pytest.raises(ValueError, match=r"takes \(3,\)"):
        tree.fk(np.zeros(4))
    assert not tree.t_pos.flags.writeable
