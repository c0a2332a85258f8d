"""Offline retargeting of keypoint sequences (the video-retargeting path).

``retarget_sequence`` runs a whole (T, 21, 3) sequence through one kernel call (warm start from
frame to frame, One-Euro filtering on the given timestamps). Keypoints may be in the wrist frame
already, or in a camera/world frame with a wrist pose per frame, or in a camera/world frame with
the wrist frame estimated from the keypoints themselves (wrist, index MCP, middle MCP, pinky MCP).
``retarget_files`` spreads several sequences over worker processes.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from retarget.hand import HandRetargeter
from retarget.kernels.packed import hand_sequence
from retarget.kernels.poses import quat_to_mat
from teleop.errors import ConfigError
from teleop.types import Side

__all__ = ["SequenceResult", "retarget_sequence", "to_wrist_frame", "wrist_frame_from_keypoints", "build_hand", "retarget_files"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SequenceResult:
    q: F64  # (T, nq), joint order ``joint_names``
    residual_m: F64  # (T,) mean |robot vector - target| per frame
    joint_names: tuple[str, ...]
    seconds: float
    rejected_frames: int

    @property
    def frames_per_s(self) -> float:
        return len(self.q) / self.seconds if self.seconds > 0 else float("inf")


def _check_keypoints(kp: np.ndarray, what: str = "keypoints") -> F64:
    kp = np.asarray(kp)
    if kp.ndim != 3 or kp.shape[1:] != (21, 3):
        raise ConfigError(f"{what} must have shape (T, 21, 3) (MediaPipe order, metres), got {kp.shape}")
    if kp.shape[0] == 0:
        raise ConfigError(f"{what} is empty")
    return np.ascontiguousarray(kp, dtype=np.float64)


def wrist_frame_from_keypoints(kp: F64, side: Side) -> tuple[F64, F64]:
    """Wrist pose per frame from the keypoints (T, 21, 3): origin at keypoint 0, x toward the
    middle MCP (9), z the palm normal out of the palm, y = z x x. Returns positions (T, 3) and
    rotations (T, 3, 3) in the keypoints' frame."""
    kp = _check_keypoints(kp)
    origin = kp[:, 0]
    x = kp[:, 9] - origin
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    across = kp[:, 5] - kp[:, 17]  # index MCP - pinky MCP: toward the thumb
    # left hand: thumb on +y; right hand: thumb on -y
    y = across if side == "left" else -across
    y = y - np.sum(y * x, axis=1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=1, keepdims=True) + 1e-12
    z = np.cross(x, y)
    return origin, np.stack([x, y, z], axis=2)


def to_wrist_frame(kp: F64, wrist_pos: F64, wrist_rot: F64) -> F64:
    """Keypoints (T, 21, 3) from a camera/world frame into the wrist frame, given the wrist pose
    per frame: positions (T, 3) and rotations (T, 3, 3) or quaternions (T, 4) (w, x, y, z)."""
    kp = _check_keypoints(kp)
    t = len(kp)
    wrist_pos = np.asarray(wrist_pos, dtype=np.float64)
    wrist_rot = np.asarray(wrist_rot, dtype=np.float64)
    if wrist_pos.shape != (t, 3):
        raise ConfigError(f"wrist positions must have shape ({t}, 3), got {wrist_pos.shape}")
    if wrist_rot.shape == (t, 4):
        mats = np.zeros((t, 3, 3))
        for k in range(t):
            quat_to_mat(wrist_rot[k], mats[k])
        wrist_rot = mats
    if wrist_rot.shape != (t, 3, 3):
        raise ConfigError(f"wrist orientations must have shape ({t}, 4) quaternions or ({t}, 3, 3), got {wrist_rot.shape}")
    return np.einsum("tji,tkj->tki", wrist_rot, kp - wrist_pos[:, None, :])


def _load_array(path: str | Path, what: str) -> np.ndarray:
    """One array from a .npy file, or a ConfigError saying why not (missing, not an array file)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"{what} file {path}: not a NumPy .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise ConfigError(f"{what} file {path}: holds several arrays (an .npz); save one array with np.save")
    return arr


def load_wrist_poses(path: str | Path, frames: int) -> tuple[F64, F64]:
    """A wrist pose file: (T, 4, 4) homogeneous matrices or (T, 7) [x, y, z, qw, qx, qy, qz]."""
    arr = _load_array(path, "wrist poses")
    if arr.shape == (frames, 4, 4):
        return arr[:, :3, 3], arr[:, :3, :3]
    if arr.shape == (frames, 7):
        return arr[:, :3], arr[:, 3:]
    raise ConfigError(f"{path}: wrist poses must be ({frames}, 4, 4) matrices or ({frames}, 7) [x y z qw qx qy qz], got {arr.shape}")


def retarget_sequence(hand: HandRetargeter, keypoints: F64, fps: float = 30.0, times_s: F64 | None = None) -> SequenceResult:
    """Retarget a sequence in the wrist frame; starts cold (``hand.reset()``)."""
    kp = _check_keypoints(keypoints)
    t = len(kp)
    times = np.arange(t) / fps if times_s is None else np.ascontiguousarray(times_s, dtype=np.float64)
    if times.shape != (t,):
        raise ConfigError(f"times must have shape ({t},), got {times.shape}")
    hand.reset()
    out_q = np.zeros((t, hand.tree.nq))
    out_r = np.zeros(t)
    resid = np.zeros(hand.vectors.n)
    t0 = time.perf_counter()
    rejected = hand_sequence(kp, times, hand.q, hand.ti, hand.tf, hand.vi, hand.vf, hand.work, hand.iwork, hand.flags,
                             out_q, out_r, resid)
    seconds = time.perf_counter() - t0
    return SequenceResult(out_q, out_r, hand.tree.joint_names, seconds, int(rejected))


def build_hand(robot_config: str | Path, side: Side, filter_keypoints: bool = True, max_iters: int | None = None) -> HandRetargeter:
    """The hand retargeter of ``side`` from a robot description TOML (and its retargeting config)."""
    from retarget.config import load_retarget_config
    from retarget.kinematics import compile_tree
    from robots.description import load_description

    desc = load_description(robot_config)
    cfg = load_retarget_config(desc)
    if side not in cfg.hands:
        raise ConfigError(f"robot {desc.name!r} has no {side} hand to retarget to")
    hc = cfg.hands[side]
    tree = compile_tree(hc.model_path, hc.wrist_frame, hc.frames, hc.joints, desc.position_overrides)
    hand = HandRetargeter(
        tree, hc.vectors, scale=hc.scale, smooth=hc.smooth, pinch_on_m=hc.pinch_on_m, pinch_off_m=hc.pinch_off_m,
        pinch_weight=hc.pinch_weight, pinch_target_m=hc.pinch_target_m, max_iters=max_iters or hc.max_iters,
        cold_iters=hc.cold_iters, max_step_rad=hc.max_step_rad, low_pass_alpha=hc.low_pass_alpha,
        keypoint_filter=cfg.keypoint_filter if filter_keypoints else None,
    )
    warm = np.zeros((1, 21, 3))
    warm[0, 1:, 0] = np.linspace(0.02, 0.18, 20)
    retarget_sequence(hand, warm)  # load the kernel from numba's cache outside any timing
    return hand


@dataclass(frozen=True)
class _Job:
    robot_config: str
    side: Side
    keypoints: str
    out: str
    frame: Literal["wrist", "world"]
    wrist_pose: str | None
    fps: float
    filter_keypoints: bool
    max_iters: int | None


def _run_job(job: _Job) -> dict:
    hand = build_hand(job.robot_config, job.side, job.filter_keypoints, job.max_iters)
    kp = _check_keypoints(_load_array(job.keypoints, "keypoints"), job.keypoints)
    if job.frame == "world":
        if job.wrist_pose:
            pos, rot = load_wrist_poses(job.wrist_pose, len(kp))
        else:
            pos, rot = wrist_frame_from_keypoints(kp, job.side)
        kp = to_wrist_frame(kp, pos, rot)
    res = retarget_sequence(hand, kp, fps=job.fps)
    Path(job.out).parent.mkdir(parents=True, exist_ok=True)
    np.save(job.out, res.q)
    finite = res.residual_m[np.isfinite(res.residual_m)]
    return {
        "input": job.keypoints,
        "output": job.out,
        "frames": len(kp),
        "seconds": round(res.seconds, 4),
        "frames_per_s": round(res.frames_per_s, 1),
        "residual_mm": {"mean": round(float(finite.mean()) * 1e3, 3) if finite.size else None,
                        "p99": round(float(np.percentile(finite, 99)) * 1e3, 3) if finite.size else None},
        "rejected_frames": res.rejected_frames,
        "joint_names": list(res.joint_names),
    }


def retarget_files(
    robot_config: str | Path, side: Side, inputs: list[str], outputs: list[str], *, frame: Literal["wrist", "world"] = "wrist",
    wrist_poses: list[str | None] | None = None, fps: float = 30.0, filter_keypoints: bool = True,
    workers: int | None = None, max_iters: int | None = None,
) -> dict:
    """Retarget several sequence files, in parallel across ``workers`` processes (default: cores)."""
    if len(inputs) != len(outputs):
        raise ConfigError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    poses = wrist_poses or [None] * len(inputs)
    jobs = [_Job(str(robot_config), side, i, o, frame, p, fps, filter_keypoints, max_iters) for i, o, p in zip(inputs, outputs, poses)]
    n = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    t0 = time.perf_counter()
    if n == 1:
        results = [_run_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(_run_job, jobs))
    wall = time.perf_counter() - t0
    frames = sum(r["frames"] for r in results)
    solve_s = sum(r["seconds"] for r in results)
    return {
        "sequences": len(results),
        "frames": frames,
        "workers": n,
        "wall_s": round(wall, 3),
        "frames_per_s_wall": round(frames / wall, 1),
        "frames_per_s_per_core": round(frames / solve_s, 1) if solve_s > 0 else None,
        "results": results,
    }
