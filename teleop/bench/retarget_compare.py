"""``teleop bench retarget --keypoints FILE.npy --robot CONFIG``: ours and dex-retargeting 0.5.0 on
the same real keypoints, like for like, in one run.

Like for like means both solve the same problem: the config's hand (its kinematics, task vectors,
scale, keypoint rotation), unit weights and no pinch priority (dex-retargeting's vector optimiser
has neither), no keypoint filter, and the same objective. dex-retargeting minimises the MEAN over
the m vectors of smooth-L1(|r_k|, beta = huber_delta) + normal_delta |q - q_prev|^2; ours the SUM
of Huber losses scaled to r^2 below delta, which is 2 m delta times its loss. So the reference gets
``normal_delta = ours / (2 m delta)``, and delta is the config's ``huber_delta`` or, when the
config has none, dex-retargeting's default 0.02 m for both. Each runs twice: unfiltered, and with
the same output low-pass alpha (the config's when < 1, else ``--low-pass``, default 0.1, the
default of dex-retargeting's config).

The reference sees the hand as a URDF written from our own compiled tree (``tree_to_urdf``): the
same joints, limits, couplings (as ``<mimic>``) and frames, rooted at the wrist frame, so a robot
whose hand lives in an MJCF (a composed robot) compares as a hand URDF does, with the keypoints
rotated by the config's ``keypoints_to_wrist_link`` first (a rotation commutes with the vectors).

Figures per solver and pass: residual mean/p95 [mm] (per frame, the mean |robot vector - target|
over the vectors, targets from the raw keypoints), the largest and p99 frame-to-frame joint jump
[rad] (between consecutive solved frames: what the robot receives), joint-limit violations
(frames with any joint outside, and the largest excess [rad]; dex-retargeting's bounds are widened
by 1e-3 rad), frames/s (solve time only), and ``speed_ratio`` = ours / reference frames/s. A frame
with NaN is rejected by ours (counted, the command held) and left out for the reference (which
cannot take it); the figures are over the frames both solved.
"""

from __future__ import annotations

import dataclasses
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from retarget.config import HandConfig, load_hand_config, load_retarget_config
from retarget.filters import FilterConfig
from retarget.hand import HandRetargeter
from retarget.kernels.kinematics import FIXED, PRISMATIC
from retarget.kinematics import KinematicTree, compile_tree
from retarget.offline import _check_keypoints, _load_array, retarget_sequence
from robots.description import load_description
from teleop.errors import ConfigError
from teleop.tomlcfg import load_toml
from teleop.types import Side

__all__ = ["tree_to_urdf", "load_compare_hand", "compare_on_keypoints", "video_keypoints", "like_for_like_hand",
           "fixed_trust_region", "residuals_mm", "DEX_HUBER_DELTA", "DEX_LOW_PASS_ALPHA"]

#: dex-retargeting 0.5.0's defaults (``RetargetingConfig``) for what a config of ours may leave out
DEX_HUBER_DELTA = 0.02
DEX_LOW_PASS_ALPHA = 0.1
#: NLopt's bounds in dex-retargeting are the URDF limits widened by this [rad]
DEX_LIMIT_SLACK = 1e-3
#: a One-Euro cutoff so high that the filter passes every sample through (to 1e-11 of a step at 30 frames/s):
#: the video tracker always smooths, so this is how it gives the raw tracked keypoints
_PASS_THROUGH = FilterConfig(min_cutoff_hz=1e12)


def video_keypoints(video: str | Path, side: Side = "right", max_frames: int | None = None,
                    max_hands: int = 1) -> tuple[np.ndarray, dict]:
    """The tracked keypoints of the ``side`` hand of ``video`` (N, 21, 3), wrist frame [m],
    UNFILTERED (the tracker's One-Euro filter set to pass through), NaN where that hand was not
    found; and a summary (frames, found, fps, seconds). ``max_hands`` 1: a one-hand video."""
    from retarget.video_track import track_video

    track = track_video(Path(video), max_frames=max_frames, max_hands=max_hands, keypoint_filter=_PASS_THROUGH)
    st = track.sides[side]
    info = {"video": Path(video).name, "side": side, "frames": track.frames, "found": int(st.found.sum()),
            "fps": track.fps, "tracking_s": round(track.seconds, 2), "filter": "none (raw tracked keypoints)"}
    return st.keypoints, info


def _rpy(r: np.ndarray) -> tuple[float, float, float]:
    """URDF roll-pitch-yaw (R = Rz(y) Ry(p) Rx(r)) of a rotation matrix."""
    pitch = float(np.arcsin(-np.clip(r[2, 0], -1.0, 1.0)))
    if abs(r[2, 0]) < 1.0 - 1e-9:
        return float(np.arctan2(r[2, 1], r[2, 2])), pitch, float(np.arctan2(r[1, 0], r[0, 0]))
    return float(np.arctan2(-r[1, 2], r[1, 1])), pitch, 0.0  # gimbal lock: yaw folded into roll


def _origin(parent: ET.Element, pos: np.ndarray, rot: np.ndarray) -> None:
    ET.SubElement(parent, "origin", xyz=" ".join(f"{v:.17g}" for v in pos),
                  rpy=" ".join(f"{v:.17g}" for v in _rpy(rot)))


def tree_to_urdf(tree: KinematicTree, path: str | Path) -> Path:
    """Write ``tree`` as a URDF rooted at its base frame: a link per node and per frame, each
    independent joint with its limits, each coupled joint as ``<mimic>`` of its source. Its FK
    equals the tree's (checked against pinocchio in tests/retarget/test_solver_real.py)."""
    names = tree.node_names or tuple(f"node{i}" for i in range(tree.n_nodes))
    primary: dict[int, int] = {}  # independent coordinate -> the node that carries its name and limits
    for i in range(tree.n_nodes):
        if tree.jtype[i] != FIXED and names[i] == tree.joint_names[tree.qidx[i]]:
            primary[int(tree.qidx[i])] = i
    for i in range(tree.n_nodes):
        if tree.jtype[i] != FIXED and tree.mult[i] == 1.0 and tree.offset[i] == 0.0:
            primary.setdefault(int(tree.qidx[i]), i)
    root = ET.Element("robot", name="retarget_compare")
    ET.SubElement(root, "link", name=tree.base_frame)
    link = [f"{names[i]}_link" for i in range(tree.n_nodes)]
    for i in range(tree.n_nodes):
        ET.SubElement(root, "link", name=link[i])
        kind = "fixed" if tree.jtype[i] == FIXED else ("prismatic" if tree.jtype[i] == PRISMATIC else "revolute")
        q = int(tree.qidx[i])
        is_primary = kind != "fixed" and primary.get(q) == i
        jname = tree.joint_names[q] if is_primary else f"{names[i]}_node"
        j = ET.SubElement(root, "joint", name=jname, type=kind)
        _origin(j, tree.t_pos[i], tree.t_rot[i])
        ET.SubElement(j, "parent", link=tree.base_frame if tree.parent[i] < 0 else link[tree.parent[i]])
        ET.SubElement(j, "child", link=link[i])
        if kind == "fixed":
            continue
        ET.SubElement(j, "axis", xyz=" ".join(f"{v:.17g}" for v in tree.axis[i]))
        lo, hi = float(tree.lower[q]), float(tree.upper[q])
        if not is_primary:
            m, c = float(tree.mult[i]), float(tree.offset[i])
            lo, hi = sorted((c + m * lo, c + m * hi))
            ET.SubElement(j, "mimic", joint=tree.joint_names[q], multiplier=f"{m:.17g}", offset=f"{c:.17g}")
        ET.SubElement(j, "limit", lower=f"{lo:.17g}", upper=f"{hi:.17g}", effort="1", velocity="1")
    for k, fname in enumerate(tree.frame_names):
        if fname == tree.base_frame:
            continue
        ET.SubElement(root, "link", name=fname)
        j = ET.SubElement(root, "joint", name=f"{fname}_frame", type="fixed")
        _origin(j, tree.f_pos[k], tree.f_rot[k])
        node = int(tree.f_node[k])
        ET.SubElement(j, "parent", link=tree.base_frame if node < 0 else link[node])
        ET.SubElement(j, "child", link=fname)
    path = Path(path)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)
    return path


def load_compare_hand(config: str | Path, hand_urdf: str | Path | None = None,
                      side: Side | None = None) -> tuple[HandConfig, dict[str, tuple[float, float]] | None, str]:
    """The ``[hand]`` of ``config``: a robot description TOML (its retargeting config, ``side``
    default right) or a hand-only retargeting TOML (a ``[hand]`` table; ``hand_urdf`` instead of
    its ``urdf_path``). Returns (hand config, the description's limit overrides, a label)."""
    config = Path(config)
    raw = load_toml(config, "robot description or retargeting config")
    if "hand" in raw:
        hc = load_hand_config(config, urdf=hand_urdf, side=side).hand
        return hc, None, f"{config.name} (hand only, {hc.side})"
    if hand_urdf is not None:
        raise ConfigError(f"{config}: --hand URDF goes with a hand-only retargeting config (a [hand] table), "
                          f"not with a robot description")
    desc = load_description(config)
    cfg = load_retarget_config(desc)
    side = side or "right"
    if side not in cfg.hands:
        raise ConfigError(f"robot {desc.name!r} has no {side} hand to retarget to")
    return cfg.hands[side], desc.position_overrides, f"{desc.name}, {side} hand"


def residuals_mm(tree: KinematicTree, hc: HandConfig, q: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """Per frame: mean |robot vector - s R (human vector)| over the task vectors [mm] (numpy FK)."""
    v = hc.vectors
    o = [tree.frame_index(f) for f in v.origin_frames]
    t = [tree.frame_index(f) for f in v.task_frames]
    rot = np.eye(3) if hc.keypoint_rotation is None else np.array(hc.keypoint_rotation)
    human = hc.scale * (kp[:, list(v.human_task)] - kp[:, list(v.human_origin)]) @ rot.T  # (T, m, 3)
    out = np.empty(len(q))
    for k in range(len(q)):
        pos = tree.fk(q[k]).pos
        out[k] = np.linalg.norm(pos[t] - pos[o] - human[k], axis=1).mean()
    return out * 1e3


def _figures(tree: KinematicTree, hc: HandConfig, q: np.ndarray, kp: np.ndarray, seconds: float,
             slack: float = 0.0) -> dict:
    r = residuals_mm(tree, hc, q, kp)
    jump = np.abs(np.diff(q, axis=0)).max(axis=1) if len(q) > 1 else np.zeros(1)
    excess = np.maximum(tree.lower - q, q - tree.upper).max(axis=1)
    out = {
        "residual_mm": {"mean": round(float(r.mean()), 3), "p95": round(float(np.percentile(r, 95)), 3)},
        "joint_jump_rad": {"max": round(float(jump.max()), 4), "p99": round(float(np.percentile(jump, 99)), 4)},
        "limit_violations": {"frames": int((excess > 0).sum()), "max_rad": round(float(max(excess.max(), 0.0)), 6)},
        "frames_per_s": round(len(q) / seconds, 1) if seconds > 0 else None,
    }
    if slack:
        out["limit_violations"]["bound_slack_rad"] = slack
    return out


def like_for_like_hand(tree: KinematicTree, hc: HandConfig, delta: float, alpha: float) -> HandRetargeter:
    """Our retargeter as the reference is configured (unit weights, no pinch, no keypoint filter)."""
    vectors = dataclasses.replace(hc.vectors, weights=(), pinch=(False,) * hc.vectors.n)
    hand = HandRetargeter(
        tree, vectors, scale=hc.scale, smooth=hc.smooth, max_iters=hc.max_iters, cold_iters=hc.cold_iters,
        frame_iters=hc.frame_iters, max_step_rad=hc.max_step_rad, max_jump_rad=hc.max_jump_rad,
        low_pass_alpha=alpha, low_pass_lead_rad=hc.low_pass_lead_rad, huber_delta=delta,
        keypoint_rotation=hc.keypoint_rotation, q_init=hc.initial_pose(tree),
    )
    hand.warmup()
    return hand


def _ours(hand: HandRetargeter, kp: np.ndarray, ok: np.ndarray, min_seconds: float) -> tuple[np.ndarray, dict]:
    """``retarget_sequence`` (what ``teleop retarget`` runs), repeated for a steady rate: (q, report)."""
    retarget_sequence(hand, kp[:2])  # load the sequence kernel outside the timing
    res = retarget_sequence(hand, kp)
    passes, spent = 1, res.seconds
    while spent < min_seconds:  # one pass of a short file is a few ms: repeat for a steady rate
        spent += retarget_sequence(hand, kp).seconds
        passes += 1
    assert res.iterations is not None and res.on_trust_box is not None
    its = res.iterations[1:][ok[1:]]  # frame 0 is the cold start
    report = {
        "rejected_frames": res.rejected_frames,
        "iterations_per_frame": {"mean": round(float(its.mean()), 2), "p99": int(np.percentile(its, 99)),
                                 "max": int(its.max())} if its.size else None,
        "trust_box_bound_fraction": round(float(res.on_trust_box[1:][ok[1:]].mean()), 4) if its.size else None,
        "_seconds": spent / passes,
    }
    return res.q, report


def fixed_trust_region(hand: HandRetargeter, kp: np.ndarray) -> np.ndarray:
    """The solver as the live loop ticks it, one tick per frame: ``max_iters`` iterations and a
    fixed trust radius ``max_step_rad`` (what offline retargeting ran before part 3)."""
    hand.reset()
    out = np.zeros((len(kp), hand.tree.nq))
    for k in range(len(kp)):
        hand.retarget(kp[k], k / 30.0, out[k])
    return out


def _request(tree: KinematicTree, hc: HandConfig, urdf: Path, delta: float, alpha: float, kp: np.ndarray) -> dict:
    v = hc.vectors
    rot = np.eye(3) if hc.keypoint_rotation is None else np.array(hc.keypoint_rotation)
    return {
        "urdf_path": str(urdf), "wrist_link_name": tree.base_frame, "target_joint_names": list(tree.joint_names),
        "target_origin_link_names": list(v.origin_frames), "target_task_link_names": list(v.task_frames),
        "target_link_human_indices": [list(v.human_origin), list(v.human_task)], "scaling_factor": hc.scale,
        # its loss is ours / (2 m delta): the same smoothing relative to the fit
        "normal_delta": hc.smooth / (2 * v.n * delta), "huber_delta": delta, "low_pass_alpha": alpha,
        "keypoints": np.ascontiguousarray(kp @ rot.T),  # into the hand's base frame, as ours rotates them
    }


def compare_on_keypoints(keypoints: str | Path | np.ndarray, config: str | Path, *, hand_urdf: str | Path | None = None,
                         side: Side | None = None, low_pass: float | None = None, reference: bool = True,
                         min_seconds: float = 0.5) -> dict:
    """Ours and dex-retargeting on the same keypoints (T, 21, 3), unfiltered and low-passed (see module doc)."""
    from teleop.bench.retarget_reference import reference as dex_reference

    what = str(keypoints) if not isinstance(keypoints, np.ndarray) else "keypoints"
    raw = _load_array(keypoints, "keypoints") if not isinstance(keypoints, np.ndarray) else keypoints
    kp = _check_keypoints(raw, what)
    hc, overrides, label = load_compare_hand(config, hand_urdf, side)
    tree = compile_tree(hc.model_path, hc.wrist_frame, hc.frames, hc.joints, overrides)
    delta = hc.huber_delta or DEX_HUBER_DELTA
    if low_pass is not None and not 0.0 < low_pass < 1.0:
        raise ConfigError(f"--low-pass must be in (0, 1), got {low_pass}")
    alpha = hc.low_pass_alpha if hc.low_pass_alpha < 1.0 else (low_pass or DEX_LOW_PASS_ALPHA)
    ok = np.isfinite(kp).all(axis=(1, 2))
    if ok.sum() < 2:
        raise ConfigError(f"{what}: {int(ok.sum())} finite frame(s) of {len(kp)}; nothing to compare")
    result: dict = {
        "bench": "retarget", "keypoints": {"source": what, "frames": len(kp), "rejected_frames": int((~ok).sum())},
        "hand": label, "joints": list(tree.joint_names),
        "objective": {"vectors": hc.vectors.n, "huber_delta_m": delta, "normal_delta_ours": hc.smooth,
                      "normal_delta_reference": hc.smooth / (2 * hc.vectors.n * delta), "scaling_factor": hc.scale,
                      "weights": "unit", "pinch": False, "keypoint_filter": False},
        "solver": {"frame_iters": hc.frame_iters, "cold_iters": hc.cold_iters, "max_step_rad": hc.max_step_rad,
                   "max_jump_rad": hc.max_jump_rad, "low_pass_lead_rad": hc.low_pass_lead_rad},
    }
    with tempfile.TemporaryDirectory(prefix="retarget-compare-") as tmp:
        urdf = tree_to_urdf(tree, Path(tmp) / "hand.urdf")
        for name, a in (("unfiltered", 1.0), ("low_pass", alpha)):
            hand = like_for_like_hand(tree, hc, delta, a)
            q, extra = _ours(hand, kp, ok, min_seconds)
            ours = {**_figures(tree, hc, q[ok], kp[ok], extra.pop("_seconds")), **extra}
            run: dict = {"low_pass_alpha": a if a < 1.0 else None, "ours": ours}
            fixed = fixed_trust_region(hand, kp)[ok]
            run["ours_fixed_trust_region"] = {k: v for k, v in _figures(tree, hc, fixed, kp[ok], 0.0).items()
                                              if k != "frames_per_s"}
            result[name] = run
            if not reference:
                run["reference"] = {"name": "dex-retargeting", "skipped": True}
                continue
            try:
                ref = dex_reference(_request(tree, hc, urdf, delta, a if a < 1.0 else -1.0, kp[ok]))
            except FileNotFoundError as exc:  # no reference venv here: said, not an error
                run["reference"] = {"name": "dex-retargeting", "skipped": str(exc)}
                continue
            except Exception as exc:  # reported, not fatal: our figures stand on their own
                run["reference"] = {"name": "dex-retargeting", "error": f"{type(exc).__name__}: {exc}"[:500]}
                continue
            ref_s = float(np.sum(ref["times_ns"])) / 1e9
            fig = _figures(tree, hc, np.asarray(ref["q"]), kp[ok], ref_s, DEX_LIMIT_SLACK)
            run["reference"] = {"name": "dex-retargeting", "version": ref.get("version"),
                                "held_frames": ref.get("meta", {}).get("held_frames"), **fig}
            run["speed_ratio"] = round(ours["frames_per_s"] / fig["frames_per_s"], 1)
            run["ours_not_worse"] = {
                "residual": bool(ours["residual_mm"]["mean"] <= fig["residual_mm"]["mean"]),
                "max_jump": bool(ours["joint_jump_rad"]["max"] <= fig["joint_jump_rad"]["max"]),
                "limits": bool(ours["limit_violations"]["frames"] == 0),
                "speed_100x": bool(run["speed_ratio"] >= 100.0),
            }
    return result
