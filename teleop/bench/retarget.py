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
"""

from __future__ import annotations

import dataclasses
import gc
import os
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
from teleop.loop import percentiles

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


def _reference(request: dict) -> dict:
    from teleop.bench import retarget_reference as ref

    if ref.reference_available():
        return ref.run_reference(request)
    python = os.environ.get("TELEOP_BENCH_PYTHON") or str(REPO / ".venv-bench" / "bin" / "python")
    if not Path(python).exists():
        raise FileNotFoundError(f"no dex-retargeting here and no {python}; run `make bench-setup`")
    return ref.run_reference_subprocess(request, python)


def run(reference: bool = True, repeats: int = 3) -> dict:
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
                          cold_iters=hc.cold_iters, max_step_rad=hc.max_step_rad)
    hand.warmup()
    kp = kps["left"]
    q_ours = np.zeros((n, tree.nq))
    hand_times = []
    for _ in range(repeats):
        hand.reset()
        hand_times.append(_timed(lambda k: hand.retarget(kp[k], k * 0.01, q_ours[k]), n))
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
        "hand_config": {"vectors": vectors.n, "scale": hc.scale, "normal_delta": hc.smooth, "iterations_per_tick": hc.max_iters},
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
        "normal_delta": hc.smooth,
        "huber_delta": 0.02,
        "low_pass_alpha": -1,
        "keypoints": kp,
    }
    try:
        ref = _reference(request)
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
        "hand_us": ref_hand,
        "residual_mm": round(_residual_mm(tree, vectors, hc.scale, q_ref, kp), 3),
    }
    result["speedup"] = round(ref_hand["p50"] / result["hand_us"]["p50"], 1)
    result["speedup_p99"] = round(ref_hand["p99"] / result["hand_us"]["p99"], 1)
    return result
