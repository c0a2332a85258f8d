"""Offline retargeting of keypoint sequences (the video-retargeting path).

``retarget_sequence`` runs a whole (T, 21, 3) sequence through one kernel call (warm start from
frame to frame; One-Euro filtering on the given timestamps when the config has [filter.keypoints];
the config's output low-pass). Its residual is the command's, against the RAW keypoints. Keypoints
may be in the wrist frame already, or in a camera/world frame with a wrist pose per frame, or in
a camera/world frame with the wrist frame estimated from the keypoints themselves (wrist, index
MCP, middle MCP, pinky MCP). The hand comes from a robot description (``build_hand``) or from a
hand-only config (``build_hand_from_config``: a hand URDF with no arm). ``retarget_files`` spreads
several sequences over worker processes.
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

__all__ = ["SequenceResult", "retarget_sequence", "to_wrist_frame", "wrist_frame_from_keypoints", "build_hand",
           "build_hand_from_config", "retarget_files"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SequenceResult:
    q: F64  # (T, nq), joint order ``joint_names``: the commands (low-passed if the config says so)
    residual_m: F64  # (T,) mean |robot vector - target| per frame, targets from the raw keypoints; NaN: rejected
    joint_names: tuple[str, ...]
    seconds: float
    rejected_frames: int
    iterations: npt.NDArray[np.int64] | None = None  # (T,) solver iterations per frame; -1: rejected
    on_trust_box: npt.NDArray[np.bool_] | None = None  # (T,) the solution ended on the trust box (it bound)

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
    """Retarget a sequence in the wrist frame; starts cold (``hand.reset()``). Frames with NaN/inf
    hold the previous command and are counted in ``rejected_frames``."""
    kp = _check_keypoints(keypoints)
    t = len(kp)
    times = np.arange(t) / fps if times_s is None else np.ascontiguousarray(times_s, dtype=np.float64)
    if times.shape != (t,):
        raise ConfigError(f"times must have shape ({t},), got {times.shape}")
    hand.reset()
    out_q = np.zeros((t, hand.tree.nq))
    out_r = np.zeros(t)
    resid = np.zeros(hand.vectors.n)
    info = np.zeros((t, 2), dtype=np.int64)
    t0 = time.perf_counter()
    rejected = hand_sequence(kp, times, hand.q, hand.ti, hand.tf, hand.vi, hand.vf, hand.work, hand.iwork, hand.flags,
                             out_q, out_r, resid, info)
    seconds = time.perf_counter() - t0
    if t:
        hand._q_out[:] = out_q[-1]  # the retargeter's state is the last frame's, as after retarget()
    return SequenceResult(out_q, out_r, hand.tree.joint_names, seconds, int(rejected), info[:, 0], info[:, 1] > 0)


def _warm(hand: HandRetargeter) -> HandRetargeter:
    warm = np.zeros((1, 21, 3))
    warm[0, 1:, 0] = np.linspace(0.02, 0.18, 20)
    retarget_sequence(hand, warm)  # load the kernel from numba's cache outside any timing
    return hand


def build_hand(robot_config: str | Path, side: Side, filter_keypoints: bool = True, max_iters: int | None = None) -> HandRetargeter:
    """The hand retargeter of ``side`` from a robot description TOML (and its retargeting config).
    The keypoints are filtered if the config has [filter.keypoints] and ``filter_keypoints``.
    ``max_iters`` overrides the config's iteration cap per frame (``frame_iters``)."""
    from retarget.config import load_retarget_config
    from robots.description import load_description

    desc = load_description(robot_config)
    cfg = load_retarget_config(desc)
    if side not in cfg.hands:
        raise ConfigError(f"robot {desc.name!r} has no {side} hand to retarget to")
    return _warm(HandRetargeter.from_config(
        cfg.hands[side], keypoint_filter=cfg.keypoint_filter if filter_keypoints else None,
        limit_overrides=desc.position_overrides, frame_iters=max_iters,
    ))


def build_hand_from_config(config_path: str | Path, urdf: str | Path | None = None, side: Side | None = None, *,
                           filter_keypoints: bool = True, max_iters: int | None = None) -> HandRetargeter:
    """A hand without an arm: the retargeter a hand-only config describes (``retarget/configs/``),
    on ``urdf`` if given (else its ``urdf_path``), for ``side`` (default: the config's, else right).
    ``max_iters`` overrides the config's iteration cap per frame (``frame_iters``)."""
    from retarget.config import load_hand_config

    cfg = load_hand_config(config_path, urdf=urdf, side=side)
    return _warm(HandRetargeter.from_config(
        cfg.hand, keypoint_filter=cfg.keypoint_filter if filter_keypoints else None, frame_iters=max_iters))


@dataclass(frozen=True)
class _Job:
    robot_config: str | None
    hand_config: str | None
    hand_urdf: str | None
    side: Side
    keypoints: str
    out: str
    frame: Literal["wrist", "world"]
    wrist_pose: str | None
    fps: float
    filter_keypoints: bool
    max_iters: int | None


def _mean_iterations(res: SequenceResult) -> float | None:
    """Mean solver iterations over the solved frames after the first (the cold start)."""
    its = res.iterations[1:] if res.iterations is not None else np.zeros(0)
    its = its[its >= 0]
    return round(float(its.mean()), 2) if its.size else None


def _run_job(job: _Job) -> dict:
    if job.hand_config is not None:
        hand = build_hand_from_config(job.hand_config, job.hand_urdf, job.side, filter_keypoints=job.filter_keypoints,
                                      max_iters=job.max_iters)
    else:
        assert job.robot_config is not None
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
        # of the commands, against the raw keypoints (never the filtered ones)
        "residual_mm": {"mean": round(float(finite.mean()) * 1e3, 3) if finite.size else None,
                        "p99": round(float(np.percentile(finite, 99)) * 1e3, 3) if finite.size else None},
        "keypoint_filter": hand.keypoint_filter is not None,
        "rejected_frames": res.rejected_frames,
        "iterations_per_frame": _mean_iterations(res),
        "joint_names": list(res.joint_names),
    }


def retarget_files(
    robot_config: str | Path | None, side: Side | None, inputs: list[str], outputs: list[str], *,
    frame: Literal["wrist", "world"] = "wrist", wrist_poses: list[str | None] | None = None, fps: float = 30.0,
    filter_keypoints: bool = True, workers: int | None = None, max_iters: int | None = None,
    hand_config: str | Path | None = None, hand_urdf: str | Path | None = None,
) -> dict:
    """Retarget several sequence files, in parallel across ``workers`` processes (default: cores),
    to a robot's hand (``robot_config``, ``side`` required) or to a hand-only config
    (``hand_config`` [+ ``hand_urdf``]; ``side`` defaults to the config's, else right)."""
    if len(inputs) != len(outputs):
        raise ConfigError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    if hand_config is not None:
        from retarget.config import load_hand_config

        side = load_hand_config(hand_config, urdf=hand_urdf, side=side).side  # bad configs fail here, once
    elif robot_config is None or side is None:
        raise ConfigError("give a robot description and a side, or a hand-only config")
    poses = wrist_poses or [None] * len(inputs)
    robot = None if robot_config is None else str(robot_config)
    cfg, urdf = (None if hand_config is None else str(hand_config)), (None if hand_urdf is None else str(hand_urdf))
    jobs = [_Job(robot, cfg, urdf, side, i, o, frame, p, fps, filter_keypoints, max_iters)
            for i, o, p in zip(inputs, outputs, poses, strict=True)]
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
        "side": side,
        "sequences": len(results),
        "frames": frames,
        "workers": n,
        "wall_s": round(wall, 3),
        "frames_per_s_wall": round(frames / wall, 1),
        "frames_per_s_per_core": round(frames / solve_s, 1) if solve_s > 0 else None,
        "results": results,
    }
