"""The bundled dexhumanoid as URDF (``dexhumanoid.urdf``, ``hands/{side}_hand.urdf``) agrees with
its MJCF: names, limits, mimic couplings, inertias and, on random configurations, every frame.

How pinocchio 4.1 reads ``<mimic>`` (``pin.buildModelFromUrdf(path, mimic=False)``):

- default ``mimic=False``: the mimic tag is ignored; each DIP is an ordinary independent revolute
  joint with its own q (full robot nq = nv = 54, hand nq = nv = 20). Callers set DIP = k * PIP
  themselves, as the agreement tests below do (and as ``retarget.kinematics`` does, reading the
  ``<mimic>`` tags on its own).
- ``mimic=True``: each DIP becomes a ``JointModelMimic`` (``scaling`` = multiplier, ``offset``)
  sharing the PIP's ``idx_q`` with ``nq = nv = 0`` of its own (full robot nq = nv = 46, hand 16);
  ``model.mimicking_joints`` / ``model.mimicked_joints`` list the pairs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pinocchio as pin
import pytest

from robots.description import bundled_description_path, load_description
from robots.dexhumanoid import generate

SIDES = ("left", "right")
FINGERS = ("index", "middle", "ring", "pinky")
TIPS = ("thumb", *FINGERS)
K = generate.DIP_COUPLING
N_CONFIGS = 50
TOL = 1e-9  # [m] and [rad]

ROBOT_URDF = generate.OUT_DIR / "dexhumanoid.urdf"


def hand_urdf(side: str):
    return generate.OUT_DIR / "hands" / f"{side}_hand.urdf"


def dips(side: str) -> list[str]:
    return [f"{side}_{f}_dip" for f in FINGERS]


@pytest.fixture(scope="module")
def mj() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(generate.OUT_DIR / "dexhumanoid.xml"))


def mj_joints(model: mujoco.MjModel) -> list[str]:
    return [model.joint(j).name for j in range(model.njnt)]


def subtree_bodies(model: mujoco.MjModel, root: str) -> list[int]:
    """Body ids of ``root`` and everything below it."""
    keep = [model.body(root).id]
    for b in range(keep[0] + 1, model.nbody):
        if model.body_parentid[b] in keep:
            keep.append(b)
    return keep


def frames_below(model: mujoco.MjModel, root: str) -> list[str]:
    """Names of the bodies and sites at or below body ``root`` (the URDF's link names)."""
    bodies = subtree_bodies(model, root)
    sites = [model.site(s).name for s in range(model.nsite) if model.site_bodyid[s] in bodies]
    return [model.body(b).name for b in bodies] + sites


def mj_pose(model: mujoco.MjModel, data: mujoco.MjData, name: str):
    kind = mujoco.mjtObj.mjOBJ_SITE
    if mujoco.mj_name2id(model, kind, name) >= 0:
        return data.site(name).xpos.copy(), data.site(name).xmat.reshape(3, 3).copy()
    return data.body(name).xpos.copy(), data.body(name).xmat.reshape(3, 3).copy()


def random_configs(model: mujoco.MjModel) -> list[dict[str, float]]:
    """Uniform within every MJCF joint range, then DIP = k * PIP (the equality holds exactly)."""
    rng = np.random.default_rng(20240611)
    names = mj_joints(model)
    configs = []
    for _ in range(N_CONFIGS):
        q = {n: float(rng.uniform(*model.joint(n).range)) for n in names}
        for side in SIDES:
            for f in FINGERS:
                q[f"{side}_{f}_dip"] = K * q[f"{side}_{f}_pip"]
        configs.append(q)
    return configs


def set_mj(model: mujoco.MjModel, data: mujoco.MjData, q: dict[str, float]) -> None:
    for name, value in q.items():
        data.qpos[model.jnt_qposadr[model.joint(name).id]] = value
    mujoco.mj_kinematics(model, data)


def pin_q(model: pin.Model, q: dict[str, float]) -> np.ndarray:
    """pinocchio configuration for ``q``; mimic joints (no q of their own) are skipped."""
    out = pin.neutral(model)
    for jid in range(1, model.njoints):
        joint = model.joints[jid]
        if joint.nq == 1 and "Mimic" not in joint.shortname():
            out[joint.idx_q] = q[model.names[jid]]
    return out


def pose_errors(mj_rel, pin_rel) -> tuple[float, float]:
    (p1, r1), (p2, r2) = mj_rel, pin_rel
    return float(np.linalg.norm(p1 - p2)), float(np.linalg.norm(pin.log3(r1.T @ r2)))


def relative(base, pose):
    (pb, rb), (p, r) = base, pose
    return rb.T @ (p - pb), rb.T @ r


def link_frame(model: pin.Model, name: str) -> int:
    fid = model.getFrameId(name, pin.FrameType.BODY)
    assert fid < model.nframes, f"no link {name!r}"
    return fid


# ---------------------------------------------------------------------------------------------
# Files and structure.


def test_committed_urdf_matches_generator() -> None:
    files = {k: v for k, v in generate.render_files().items() if k.endswith(".urdf")}
    assert set(files) == {"dexhumanoid.urdf", "hands/left_hand.urdf", "hands/right_hand.urdf"}
    for name, text in files.items():
        committed = (generate.OUT_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run `python -m robots.dexhumanoid.generate`"


def test_full_robot_joints_and_limits(mj: mujoco.MjModel) -> None:
    model = pin.buildModelFromUrdf(str(ROBOT_URDF))
    names = list(model.names)[1:]
    assert model.nq == model.nv == len(names) == 14 + 40
    assert sorted(names) == sorted(mj_joints(mj))
    assert model.frames[link_frame(model, "torso")].parentJoint == 0  # root link, fixed
    description = load_description(bundled_description_path("dexhumanoid"))
    for jid, name in enumerate(names, start=1):
        i = model.joints[jid].idx_q
        assert model.lowerPositionLimit[i] == mj.joint(name).range[0], name
        assert model.upperPositionLimit[i] == mj.joint(name).range[1], name
        assert model.effortLimit[i] > 0
        if name in description.joint_names:  # commanded joints: the description's limit
            assert model.velocityLimit[i] == description.velocity_limit(name), name
        else:
            assert name.endswith("_dip")
            assert model.velocityLimit[i] == pytest.approx(
                K * model.velocityLimit[model.joints[model.getJointId(name[:-3] + "pip")].idx_q]
            )


def test_hand_joints_and_limits(mj: mujoco.MjModel) -> None:
    for side in SIDES:
        model = pin.buildModelFromUrdf(str(hand_urdf(side)))
        names = list(model.names)[1:]
        assert model.nq == model.nv == len(names) == 20
        assert sorted(names) == sorted([*generate.HAND_JOINTS[side], *dips(side)])
        for jid, name in enumerate(names, start=1):
            i = model.joints[jid].idx_q
            assert model.lowerPositionLimit[i] == mj.joint(name).range[0], name
            assert model.upperPositionLimit[i] == mj.joint(name).range[1], name
        # Root link = the wrist site frame; links = the hand's MJCF bodies and sites.
        assert model.frames[link_frame(model, f"{side}_wrist")].parentJoint == 0
        links = {f.name for f in model.frames if f.type == pin.FrameType.BODY}
        assert links == set(frames_below(mj, f"{side}_hand"))


def test_mimic_tags_match_mjcf_equalities(mj: mujoco.MjModel) -> None:
    coupling = {
        mj.joint(mj.eq_obj1id[e]).name: (mj.joint(mj.eq_obj2id[e]).name, *mj.eq_data[e, :2])
        for e in range(mj.neq)
    }
    for path in (ROBOT_URDF, hand_urdf("left"), hand_urdf("right")):
        mimics = {
            j.get("name"): j.find("mimic")
            for j in ET.parse(path).getroot().iter("joint")
            if j.find("mimic") is not None
        }
        assert len(mimics) == (8 if path == ROBOT_URDF else 4)
        for name, mimic in mimics.items():
            source, offset, multiplier = coupling[name]
            assert mimic.get("joint") == source == name[:-3] + "pip"
            assert float(mimic.get("multiplier")) == multiplier == K
            assert float(mimic.get("offset")) == offset == 0.0


def test_pinocchio_mimic_option() -> None:
    """Default: DIPs are independent revolute joints. ``mimic=True``: JointModelMimic."""
    for path, n_dip in ((ROBOT_URDF, 8), (hand_urdf("left"), 4)):
        plain = pin.buildModelFromUrdf(str(path))
        assert not any("Mimic" in j.shortname() for j in plain.joints)
        assert len(plain.mimicking_joints) == 0
        mimic = pin.buildModelFromUrdf(str(path), mimic=True)
        assert mimic.njoints == plain.njoints and mimic.nq == plain.nq - n_dip
        assert len(mimic.mimicking_joints) == n_dip
        for jid, src in zip(mimic.mimicking_joints, mimic.mimicked_joints, strict=True):
            name = mimic.names[jid]
            assert name.endswith("_dip") and mimic.names[src] == name[:-3] + "pip"
            joint = mimic.joints[jid]
            assert joint.shortname() == "JointModelMimic" and joint.nq == 0
            assert joint.extract().scaling == K and joint.extract().offset == 0.0
            assert joint.idx_q == mimic.joints[src].idx_q


def test_inertias_match_mujoco(mj: mujoco.MjModel) -> None:
    """Per moving body: mass, centre of mass and inertia tensor (body frame) as MuJoCo compiles
    them from the MJCF (explicit inertials, or colliding geoms at the default density)."""
    model = pin.buildModelFromUrdf(str(ROBOT_URDF))
    for jid in range(1, model.njoints):
        body = mj.body(mj.joint(model.names[jid]).bodyid[0])
        inertia = model.inertias[jid]  # joint frame = MJCF body frame (no rotations)
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, body.iquat)
        rot = rot.reshape(3, 3)
        tensor = rot @ np.diag(body.inertia) @ rot.T
        assert inertia.mass == pytest.approx(body.mass[0], rel=1e-12), body.name
        np.testing.assert_allclose(inertia.lever, body.ipos, atol=1e-12, err_msg=body.name)
        scale = np.abs(tensor).max()
        np.testing.assert_allclose(inertia.inertia, tensor, atol=1e-12 * scale, err_msg=body.name)


# ---------------------------------------------------------------------------------------------
# Kinematic agreement on random configurations.


def test_full_robot_frames_match_mjcf(mj: mujoco.MjModel) -> None:
    data = mujoco.MjData(mj)
    names = frames_below(mj, "torso")
    for side in SIDES:  # the frames that matter are all there
        assert {f"{side}_wrist", f"{side}_palm", *(f"{side}_{t}_tip" for t in TIPS)} <= set(names)
    worst = {}
    for mimic in (False, True):
        model = pin.buildModelFromUrdf(str(ROBOT_URDF), mimic=mimic)
        pdata = model.createData()
        fids = {n: link_frame(model, n) for n in names}
        worst_p = worst_r = 0.0
        for q in random_configs(mj):
            set_mj(mj, data, q)
            pin.framesForwardKinematics(model, pdata, pin_q(model, q))
            torso_mj = mj_pose(mj, data, "torso")
            torso_pin = pdata.oMf[fids["torso"]]
            torso_pin = (torso_pin.translation, torso_pin.rotation)
            for name in names:
                oMf = pdata.oMf[fids[name]]
                ep, er = pose_errors(
                    relative(torso_mj, mj_pose(mj, data, name)),
                    relative(torso_pin, (oMf.translation, oMf.rotation)),
                )
                worst_p, worst_r = max(worst_p, ep), max(worst_r, er)
        worst[mimic] = (worst_p, worst_r)
        assert worst_p < TOL and worst_r < TOL, (mimic, worst_p, worst_r)
    print(f"full robot, max error [m, rad]: independent DIPs {worst[False]}, mimic {worst[True]}")


@pytest.mark.parametrize("side", SIDES)
def test_hand_frames_match_mjcf_in_wrist_frame(mj: mujoco.MjModel, side: str) -> None:
    """Pinocchio poses relative to the root link == MJCF poses in the ``{side}_wrist`` site frame,
    whatever the arm does."""
    data = mujoco.MjData(mj)
    wrist = f"{side}_wrist"
    names = frames_below(mj, f"{side}_hand")
    worst = {}
    for mimic in (False, True):
        model = pin.buildModelFromUrdf(str(hand_urdf(side)), mimic=mimic)
        pdata = model.createData()
        fids = {n: link_frame(model, n) for n in names}
        worst_p = worst_r = 0.0
        for q in random_configs(mj):
            set_mj(mj, data, q)
            pin.framesForwardKinematics(model, pdata, pin_q(model, q))
            base_mj = mj_pose(mj, data, wrist)
            root = pdata.oMf[fids[wrist]]
            for name in names:
                oMf = pdata.oMf[fids[name]]
                ep, er = pose_errors(
                    relative(base_mj, mj_pose(mj, data, name)),
                    relative((root.translation, root.rotation), (oMf.translation, oMf.rotation)),
                )
                worst_p, worst_r = max(worst_p, ep), max(worst_r, er)
        worst[mimic] = (worst_p, worst_r)
        assert worst_p < TOL and worst_r < TOL, (mimic, worst_p, worst_r)
    print(f"{side} hand, max error [m, rad]: independent DIPs {worst[False]}, mimic {worst[True]}")


# ---------------------------------------------------------------------------------------------
# MuJoCo reading the URDF.


def test_mujoco_keeps_site_links_only_without_fusestatic() -> None:
    """MuJoCo's URDF import keeps every link as a spec body, but compiling with its URDF default
    ``fusestatic=True`` merges links on fixed joints (the wrist root, the hand base, the palm and
    fingertip frames) into their parents; ``spec.compiler.fusestatic = False`` keeps them.
    ``<mimic>`` becomes a joint equality."""
    path = str(hand_urdf("left"))
    frames = {"left_wrist", "left_hand", "left_palm", *(f"left_{t}_tip" for t in TIPS)}

    spec = mujoco.MjSpec.from_file(path)
    assert frames <= {b.name for b in spec.bodies}
    assert spec.compiler.fusestatic
    fused = spec.compile()
    assert not frames & {fused.body(b).name for b in range(fused.nbody)}

    spec = mujoco.MjSpec.from_file(path)
    spec.compiler.fusestatic = False
    kept = spec.compile()
    assert frames <= {kept.body(b).name for b in range(kept.nbody)}
    assert kept.njnt == 20 and kept.neq == 4
    for e in range(kept.neq):
        np.testing.assert_array_equal(kept.eq_data[e, :5], [0.0, K, 0.0, 0.0, 0.0])
