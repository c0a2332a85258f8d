"""``teleop bench retarget``: the retargeting core on a deterministic synthetic motion set (open,
fist, pinch each finger, point, spread, smooth transitions; seed 0) for the bundled robot, with
dex-retargeting run side by side in the same run as the reference.

* ``hand_us``: one hand solve per frame, on the same vector set as the reference, unit weights,
  no pinch priority, no input filter (dex-retargeting's vector optimiser has none of these), our
  per-tick iteration count, warm-started. ``residual_mm`` is the mean |robot vector - scale *
  human vector| over vectors and frames, computed with the same FK for both solvers' outputs.
* ``arm_us``: one arm step (filter + clutch-relative mapping + IK) on a figure-eight wrist path.
* ``bimanual_tick_us``: the full tick with the bundled config (both hands with pinch priority and
  filters, both arms).
* ``offline_frames_per_s``: ``retarget_sequence`` on one core, bundled config.
* ``reference``: dex-retargeting's ``SeqRetargeting`` (vector, SLSQP), in ``.venv-bench`` (see
  ``make bench-setup``) or in-process when importable. ``speedup`` = reference p50 / our p50.
  Like for like: ours with the Huber loss at dex-retargeting's default delta (0.02 m) and each
  frame solved whole (``per_frame``), the reference with ``normal_delta`` scaled to its mean loss
  (``retarget_compare``'s rule: ours / (2 m delta)), so both weigh smoothness against the fit alike.

With real keypoints (``--keypoints FILE.npy`` or ``--video VIDEO``) ``run`` is
``retarget_compare.compare_on_keypoints`` instead: ours and dex-retargeting on those keypoints,
unfiltered and low-passed, for a robot description or a hand-only config (``--robot``).
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import time
from pathlib import Path

import numpy as np

from retarget.bimanual import BimanualRetargeter
from retarget.config import load_retarget_config
from retarget.hand import HandRetargeter, VectorSpec
from retarget.human_hand import HumanHand
from retarget.kinematics import compile_tree
from retarget.motions import motion_set
from retarget.offline import build_hand, retarget_sequence
from robots.description import bundled_description_path, load_description
from teleop.bench.retarget_compare import DEX_HUBER_DELTA
from teleop.bench.retarget_reference import reference as dex_reference
from teleop.errors import ConfigError
from teleop.loop import percentiles
from teleop.types import Side

__all__ = ["run"]

REPO = Path(__file__).resolve().parents[2]


def _timed(fn, n: int) -> np.ndarray:
    out = np.zeros(n)
    gc.disable()
    try:
        for k in range(n):
            t = time.perf_counter_ns()
            fn(k)
            out[k] = time.perf_counter_ns() - t
    finally:
        gc.enable()
    return out / 1e3  # us


def _residual_mm(tree, vectors: VectorSpec, scale: float, q: np.ndarray, kp: np.ndarray) -> float:
    o = [tree.frame_index(f) for f in vectors.origin_frames]
    t = [tree.frame_index(f) for f in vectors.task_frames]
    errs = []
    for k in range(len(q)):
        pos = tree.fk(q[k]).pos
        robot = pos[t] - pos[o]
        human = scale * (kp[k][list(vectors.human_task)] - kp[k][list(vectors.human_origin)])
        errs.append(np.linalg.norm(robot - human, axis=1).mean())
    return float(np.mean(errs)) * 1e3


def _wrist_path(n: int, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n) / rate_hz
    pos = np.stack([0.08 * np.sin(0.8 * t), 0.06 * np.sin(1.6 * t), 0.04 * np.cos(0.8 * t) - 0.04], axis=1)
    ang = 0.3 * np.sin(0.5 * t)
    quat = np.stack([np.cos(ang / 2), np.sin(ang / 2) * 0.6, np.sin(ang / 2) * 0.8, np.zeros(n)], axis=1)
    return pos, quat


def run(reference: bool = True, repeats: int = 3, *, keypoints: str | None = None, video: str | None = None,
        keypoints_out: str | None = None, robot: str | None = None, hand: str | None = None,
        side: Side | None = None, low_pass: float | None = None) -> dict:
    """The synthetic benchmark; with ``keypoints`` (a .npy) or ``video`` (its tracked right hand,
    unfiltered; saved to ``keypoints_out`` if given) the real-keypoint comparison on ``robot`` (a
    robot description or a hand-only config, ``hand`` its URDF; default the bundled robot).
    ``video`` + ``keypoints_out`` without ``robot`` only writes the keypoints."""
    if keypoints is not None or video is not None:
        return _real(reference, keypoints, video, keypoints_out, robot, hand, side, low_pass)
    if keypoints_out is not None or robot is not None or hand is not None:
        raise ConfigError("--keypoints-out needs --video; --robot/--hand need --keypoints FILE.npy or --video")
    return _synthetic(reference, repeats)


def _real(reference: bool, keypoints: str | None, video: str | None, keypoints_out: str | None, robot: str | None,
          hand: str | None, side: Side | None, low_pass: float | None) -> dict:
    from teleop.bench.retarget_compare import compare_on_keypoints, video_keypoints

    if keypoints is not None and video is not None:
        raise ConfigError("give --keypoints FILE.npy or --video VIDEO, not both")
    source: str | np.ndarray = str(keypoints)
    tracked = None
    if video is not None:
        source, tracked = video_keypoints(video, side or "right")
        if keypoints_out is not None:
            Path(keypoints_out).parent.mkdir(parents=True, exist_ok=True)
            np.save(keypoints_out, source)
            tracked["keypoints_out"] = str(keypoints_out)
            if robot is None:
                return {"bench": "retarget", "tracked": tracked}
    result = compare_on_keypoints(source, robot or bundled_description_path(), hand_urdf=hand, side=side,
                                  low_pass=low_pass, reference=reference)
    if tracked is not None:
        result["tracked"] = tracked
    return result


def _synthetic(reference: bool, repeats: int) -> dict:
    desc = load_description(bundled_description_path())
    cfg = load_retarget_config(desc)
    angles, _labels = motion_set(rate_hz=100.0, seed=0)
    n = len(angles)
    kps = {s: HumanHand(s).keypoints_batch(angles) for s in ("left", "right")}

    # -- one hand, the comparison configuration -------------------------------------------------
    hc = cfg.hands["left"]
    vectors = dataclasses.replace(hc.vectors, weights=(), pinch=(False,) * hc.vectors.n)
    tree = compile_tree(hc.model_path, hc.wrist_frame, hc.frames, hc.joints)
    hand = HandRetargeter(tree, vectors, scale=hc.scale, smooth=hc.smooth, max_iters=hc.max_iters,
                          cold_iters=hc.cold_iters, frame_iters=hc.frame_iters, max_step_rad=hc.max_step_rad,
                          max_jump_rad=hc.max_jump_rad, huber_delta=DEX_HUBER_DELTA)
    hand.warmup()
    kp = kps["left"]
    q_ours = np.zeros((n, tree.nq))
    hand_times = []
    for _ in range(repeats):
        hand.reset()
        hand_times.append(_timed(lambda k: hand.retarget(kp[k], k * 0.01, q_ours[k], per_frame=True), n))
    hand_us = np.concatenate(hand_times)
    residual = _residual_mm(tree, vectors, hc.scale, q_ours, kp)

    # -- one arm --------------------------------------------------------------------------------
    bi = BimanualRetargeter(desc, cfg)
    bi.warmup()
    wpos, wquat = _wrist_path(n, 100.0)
    arm = bi.sides["left"].arm
    q_arm = np.zeros(arm.tree.nq)
    arm_times = []
    reach = 0
    for r in range(repeats):
        arm.engage(wpos[0], wquat[0], arm.posture)
        arm_times.append(_timed(lambda k, r=r: arm.step(wpos[k], wquat[k], r * 100 + k * 0.01, q_arm), n))
        reach += sum(1 for k in range(0, n, 10) if arm.step(wpos[k], wquat[k], r * 100 + 10 + k * 0.01, q_arm).reachable)
    arm_us = np.concatenate(arm_times)

    # -- bimanual tick ----------------------------------------------------------------------------
    kp2 = np.stack([kps["left"], kps["right"]], axis=1)  # (T, 2, 21, 3)
    wp2 = np.stack([wpos + [0, 0.2, 0], wpos - [0, 0.2, 0]], axis=1)
    wq2 = np.stack([wquat, wquat], axis=1)
    out = np.zeros(bi.n_command)
    tick_times = []
    for r in range(repeats):
        bi.reset()
        for i, side in enumerate(("left", "right")):
            bi.engage(side, wp2[0, i], wq2[0, i], bi.sides[side].arm.posture)
        tick_times.append(_timed(lambda k, r=r: bi.tick(r * 100 + k * 0.01, kp2[k], wp2[k], wq2[k], out), n))
    tick_us = np.concatenate(tick_times)

    # -- offline ------------------------------------------------------------------------------------
    off_hand = build_hand(bundled_description_path(), "left")
    retarget_sequence(off_hand, kp[:50], fps=100.0)  # load kernels
    long = np.tile(kp, (10, 1, 1))
    off = retarget_sequence(off_hand, long, fps=100.0)

    result: dict = {
        "bench": "retarget",
        "robot": desc.name,
        "motion": {"frames": n, "rate_hz": 100.0, "seed": 0, "repeats": repeats},
        "hand_us": percentiles(hand_us),
        "arm_us": percentiles(arm_us),
        "bimanual_tick_us": percentiles(tick_us),
        "residual_mm": round(residual, 3),
        "offline_frames_per_s": round(off.frames_per_s, 1),
        "offline_residual_mm": round(float(np.nanmean(off.residual_m)) * 1e3, 3),
        "arm_reachable_fraction": round(reach / (repeats * len(range(0, n, 10))), 3),
        "hand_config": {"vectors": vectors.n, "scale": hc.scale, "normal_delta": hc.smooth,
                        "huber_delta": DEX_HUBER_DELTA, "frame_iters": hc.frame_iters,
                        "iterations_per_tick": hc.max_iters},
        "python": sys.version.split()[0],
    }
    if not reference:
        result["reference"] = {"name": "dex-retargeting", "skipped": True}
        result["speedup"] = None
        return result
    request = {
        "urdf_path": str(hc.model_path),
        "wrist_link_name": hc.wrist_frame,
        "target_joint_names": list(hc.joints),
        "target_origin_link_names": list(vectors.origin_frames),
        "target_task_link_names": list(vectors.task_frames),
        "target_link_human_indices": [list(vectors.human_origin), list(vectors.human_task)],
        "scaling_factor": hc.scale,
        "normal_delta": hc.smooth / (2 * vectors.n * DEX_HUBER_DELTA),  # its loss is the mean: ours / (2 m delta)
        "huber_delta": DEX_HUBER_DELTA,
        "low_pass_alpha": -1,
        "keypoints": kp,
    }
    try:
        ref = dex_reference(request)
    except Exception as exc:  # reported, not fatal: our numbers stand on their own
        result["reference"] = {"name": "dex-retargeting", "error": f"{type(exc).__name__}: {exc}"}
        result["speedup"] = None
        return result
    ref_us = np.asarray(ref["times_ns"], dtype=np.float64) / 1e3
    q_ref = np.clip(np.asarray(ref["q"]), tree.lower, tree.upper)  # its bounds are widened by 1e-3 rad
    ref_hand = percentiles(ref_us)
    result["reference"] = {
        "name": "dex-retargeting",
        "version": ref.get("version"),
        "optimizer": ref.get("optimizer"),
        "normal_delta": request["normal_delta"],
        "hand_us": ref_hand,
        "residual_mm": round(_residual_mm(tree, vectors, hc.scale, q_ref, kp), 3),
    }
    result["speedup"] = round(ref_hand["p50"] / result["hand_us"]["p50"], 1)
    result["speedup_p99"] = round(ref_hand["p99"] / result["hand_us"]["p99"], 1)
    return result
