"""Hand retargeting: robot hand joints whose task vectors match the operator's.

``HandRetargeter.retarget(keypoints)`` takes the 21 human keypoints (wrist frame, metres; see
docs/hand-keypoints.md) and returns robot hand joints, warm-started from the previous solution.
The problem per tick (kernel ``hand_vector_solve``)::

    min_q  sum_k w_k |(p_task_k - p_origin_k)(q) - s * (h_task_k - h_origin_k)|^2 + smooth |q - q_prev|^2
    s.t.   lower <= q <= upper   (exactly: projection with an active set)
           |q - q_prev| <= max_step_rad per joint and solve (a trust region: no jumps)

Pinch priority (after DexPilot): a vector flagged ``pinch`` (thumb tip -> a fingertip) whose human
length drops below ``pinch_off_m`` blends toward weight ``pinch_weight`` and a target of
``pinch_target_m`` along the human direction, fully at ``pinch_on_m`` and below. DexPilot switches
at the thresholds; the ramp keeps the targets continuous so the hand never jumps into a pinch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from retarget.filters import FilterConfig
from retarget.kernels.packed import (
    H_COLD_ITERS, H_F_BETA, H_F_D, H_F_MIN, H_F_ON, H_ITERS, H_NPARAMS, H_PINCH_OFF, H_PINCH_ON, H_PINCH_T,
    H_MAX_STEP, H_PINCH_W, H_SCALE, H_SMOOTH, H_TOL, hand_residuals, hand_step, hand_work_size, pack_tree,
)
from retarget.kinematics import KinematicTree
from teleop.errors import ConfigError

__all__ = ["VectorSpec", "HandRetargeter"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class VectorSpec:
    """Task vectors: robot frame names and the human keypoint indices they follow."""

    origin_frames: tuple[str, ...]
    task_frames: tuple[str, ...]
    human_origin: tuple[int, ...]
    human_task: tuple[int, ...]
    weights: tuple[float, ...] = ()
    pinch: tuple[bool, ...] = ()  # default: thumb tip (4) -> another fingertip

    def __post_init__(self) -> None:
        m = len(self.origin_frames)
        if not (len(self.task_frames) == len(self.human_origin) == len(self.human_task) == m) or m == 0:
            raise ConfigError(
                f"task vectors: {len(self.origin_frames)} origin frames, {len(self.task_frames)} task frames, "
                f"{len(self.human_origin)}/{len(self.human_task)} human indices; they must be equal and > 0"
            )
        if self.weights and len(self.weights) != m:
            raise ConfigError(f"weights has {len(self.weights)} entries for {m} task vectors")
        if any(w < 0 for w in self.weights):
            raise ConfigError("weights must be >= 0")
        bad = [i for i in self.human_origin + self.human_task if not 0 <= i <= 20]
        if bad:
            raise ConfigError(f"human keypoint indices must be within 0..20 (MediaPipe order), got {bad}")
        if self.pinch and len(self.pinch) != m:
            raise ConfigError(f"pinch has {len(self.pinch)} entries for {m} task vectors")

    @property
    def n(self) -> int:
        return len(self.origin_frames)

    def pinch_flags(self) -> tuple[bool, ...]:
        if self.pinch:
            return self.pinch
        return tuple(o == 4 and t in (8, 12, 16, 20) for o, t in zip(self.human_origin, self.human_task))


class HandRetargeter:
    """One robot hand. Buffers are allocated once here; ``retarget`` allocates nothing when given
    ``out``. With ``keypoint_filter`` set, keypoints are One-Euro filtered inside the same kernel
    call (pass the capture time ``t_s``)."""

    def __init__(
        self,
        tree: KinematicTree,
        vectors: VectorSpec,
        *,
        scale: float = 1.0,
        smooth: float = 4e-3,
        pinch_on_m: float = 0.03,
        pinch_off_m: float = 0.05,
        pinch_weight: float = 200.0,
        pinch_target_m: float = 1e-4,
        max_iters: int = 3,
        cold_iters: int = 50,
        tol_rad: float = 2e-5,
        max_step_rad: float = 0.1,
        low_pass_alpha: float = 1.0,
        keypoint_filter: FilterConfig | None = None,
        q_init: npt.ArrayLike | None = None,
    ) -> None:
        if not scale > 0:
            raise ConfigError(f"scaling_factor must be > 0, got {scale}")
        if smooth < 0:
            raise ConfigError(f"normal_delta (smoothness) must be >= 0, got {smooth}")
        if not 0 < pinch_on_m <= pinch_off_m:
            raise ConfigError(f"pinch thresholds need 0 < on ({pinch_on_m}) <= off ({pinch_off_m})")
        if not 0 < low_pass_alpha <= 1:
            raise ConfigError(f"low_pass_alpha must be in (0, 1], got {low_pass_alpha}")
        if max_iters < 1 or cold_iters < 1:
            raise ConfigError("max_iters and cold_iters must be >= 1")
        if not max_step_rad > 0:
            raise ConfigError(f"max_step_rad must be > 0, got {max_step_rad}")
        self.tree = tree
        self.vectors = vectors
        self.low_pass_alpha = low_pass_alpha
        m, nq = vectors.n, tree.nq
        origin_f = [tree.frame_index(f) for f in vectors.origin_frames]
        task_f = [tree.frame_index(f) for f in vectors.task_frames]
        self.ti, self.tf = pack_tree(tree)
        self.vi = np.array([m, *origin_f, *task_f, *vectors.human_origin, *vectors.human_task,
                            *(int(b) for b in vectors.pinch_flags())], dtype=np.int64)
        params = np.zeros(H_NPARAMS)
        params[[H_SCALE, H_SMOOTH, H_PINCH_ON, H_PINCH_OFF, H_PINCH_W, H_PINCH_T, H_TOL, H_ITERS, H_COLD_ITERS]] = (
            scale, smooth, pinch_on_m, pinch_off_m, pinch_weight, pinch_target_m, tol_rad, max_iters, cold_iters)
        params[H_MAX_STEP] = max_step_rad
        if keypoint_filter is not None:
            params[[H_F_MIN, H_F_BETA, H_F_D, H_F_ON]] = (
                keypoint_filter.min_cutoff_hz, keypoint_filter.beta, keypoint_filter.d_cutoff_hz, 1.0)
        self.vf = np.concatenate([np.array(vectors.weights or (1.0,) * m, dtype=np.float64), params])
        nf_, ni_ = hand_work_size(tree.n_nodes, len(tree.f_node), nq, m)
        self.work = np.zeros(nf_)
        self.iwork = np.zeros(ni_, dtype=np.int64)
        self.flags = np.zeros(2, dtype=np.bool_)  # [filter initialised, cold start pending]
        self._q_init = np.clip(
            np.zeros(nq) if q_init is None else np.asarray(q_init, dtype=np.float64), tree.lower, tree.upper
        )
        self.q = self._q_init.copy()
        self._q_out = self._q_init.copy()
        self._resid = np.zeros(m)
        self.last_cost = 0.0
        self.last_iterations = 0
        self.rejected = 0  # samples with NaN/inf (the previous solution was held)
        self.reset()

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.tree.joint_names

    @property
    def pinching(self) -> npt.NDArray[np.int64]:
        """Per task vector: 1 while the pinch priority acts (human distance < ``pinch_off_m``). Shape (m,)."""
        return self.iwork[: self.vectors.n]

    def reset(self, q: npt.ArrayLike | None = None) -> None:
        """Forget the warm start and the filter (e.g. after the operator re-engages); the next
        solve runs up to ``cold_iters`` iterations."""
        q0 = self._q_init if q is None else np.clip(np.asarray(q, dtype=np.float64), self.tree.lower, self.tree.upper)
        self.q[:] = q0
        self._q_out[:] = q0
        self.iwork[:] = 0
        self.flags[0] = False
        self.flags[1] = True

    def warmup(self) -> None:
        """Compile/load the kernels and run them once (before the robot is engaged)."""
        kp = np.zeros((21, 3))
        kp[1:, 0] = np.linspace(0.02, 0.18, 20)
        self.retarget(kp, 0.0)
        self.residuals_m()
        self.reset()

    def retarget(self, keypoints: F64, t_s: float = 0.0, out: F64 | None = None) -> F64:
        """Robot hand joints for human ``keypoints`` (21, 3) in the wrist frame [m], captured at
        ``t_s`` [s] (used by the keypoint filter)."""
        if keypoints.shape != (21, 3):
            raise ValueError(f"keypoints must have shape (21, 3), got {keypoints.shape}")
        cost, iters = hand_step(keypoints, t_s, self.q, self.ti, self.tf, self.vi, self.vf, self.work, self.iwork, self.flags)
        if iters < 0:  # non-finite input: held the previous solution
            self.rejected += 1
        self.last_cost = cost
        self.last_iterations = iters
        if self.low_pass_alpha < 1.0:  # dex-retargeting's output low-pass, for configs ported from it
            self._q_out += self.low_pass_alpha * (self.q - self._q_out)
            src = self._q_out
        else:
            src = self.q
        if out is None:
            return src.copy()
        out[:] = src
        return out

    def residuals_m(self, q: F64 | None = None) -> F64:
        """|robot vector - target| per task vector [m] for ``q`` (default: the last solution),
        against the targets of the last ``retarget`` call."""
        q = self.q if q is None else np.ascontiguousarray(q, dtype=np.float64)
        hand_residuals(q, self.ti, self.tf, self.vi, self.work, self.iwork, self._resid)
        return self._resid.copy()
