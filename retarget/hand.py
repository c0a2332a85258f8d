"""Hand retargeting: robot hand joints whose task vectors match the operator's.

``HandRetargeter.retarget(keypoints)`` takes the 21 human keypoints (wrist frame, metres; see
docs/hand-keypoints.md) and returns robot hand joints, warm-started from the previous solution.
The problem per tick (kernel ``hand_vector_solve``)::

    min_q  sum_k w_k rho(|(p_task_k - p_origin_k)(q) - s R (h_task_k - h_origin_k)|) + smooth |q - q_prev|^2
    s.t.   lower <= q <= upper   (exactly: projection with an active set)
           |q - q_prev| <= r per joint (a trust box: a live tick r = max_step_rad; a whole frame
                                        r = min(max_jump_rad, max_step_rad + error / TRUST_LEVER_M))

by Levenberg-Marquardt with gain-ratio damping, iterating until converged: at most ``max_iters``
per live tick, ``frame_iters`` per frame offline (docs/retargeting.md, "The solver").

rho(r) = r^2, or with ``huber_delta`` the Huber loss (quadratic up to delta, linear beyond, as
dex-retargeting's smooth-L1 on each vector's error norm), solved by iteratively reweighted least
squares. R (``keypoint_rotation``) takes vectors from the keypoints' wrist frame into the robot
hand's base frame (identity when the hand is rooted in our wrist convention). The command is the
solution, low-passed when ``low_pass_alpha`` < 1 (dex-retargeting's output filter, started from
the first solution after each reset, taking in at most ``low_pass_lead_rad`` of lead per frame);
the solver's warm start is the unfiltered solution.

Pinch priority (after DexPilot): a vector flagged ``pinch`` (thumb tip -> a fingertip) whose human
length drops below ``pinch_off_m`` blends toward weight ``pinch_weight`` and a target of
``pinch_target_m`` along the human direction, fully at ``pinch_on_m`` and below. DexPilot switches
at the thresholds; the ramp keeps the targets continuous so the hand never jumps into a pinch.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from retarget.filters import FilterConfig
from retarget.kernels.packed import (
    H_COLD_ITERS,
    H_F_BETA,
    H_F_D,
    H_F_MIN,
    H_F_ON,
    H_FRAME_ITERS,
    H_HUBER,
    H_ITERS,
    H_LEVER,
    H_LP_ALPHA,
    H_LP_LEAD,
    H_MAX_JUMP,
    H_MAX_STEP,
    H_NPARAMS,
    H_PINCH_OFF,
    H_PINCH_ON,
    H_PINCH_T,
    H_PINCH_W,
    H_ROT,
    H_SCALE,
    H_SMOOTH,
    H_TOL,
    hand_residuals,
    hand_step,
    hand_work_size,
    pack_tree,
)
from retarget.kinematics import KinematicTree, compile_tree
from retarget.vectors import VectorSpec
from teleop.errors import ConfigError

if TYPE_CHECKING:
    from retarget.config import HandConfig

__all__ = ["VectorSpec", "HandRetargeter"]

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

#: [m] the trust radius grows by (largest task-vector error) / this: about a finger's length, so an
#: error asks for the joint motion that would remove it at a fingertip
TRUST_LEVER_M = 0.1


class HandRetargeter:
    """One robot hand. Buffers are allocated once here; ``retarget`` allocates nothing when given
    ``out``. With ``keypoint_filter`` set, keypoints are One-Euro filtered inside the same kernel
    call (pass the capture time ``t_s``). ``q_init`` is the pose a reset starts from (clipped to
    the limits; default zeros)."""

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
        frame_iters: int = 20,
        tol_rad: float = 5e-4,
        max_step_rad: float = 0.1,
        max_jump_rad: float = 0.6,
        low_pass_alpha: float = 1.0,
        low_pass_lead_rad: float = 1.2,
        huber_delta: float | None = None,
        keypoint_rotation: npt.ArrayLike | None = None,
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
        if max_iters < 1 or cold_iters < 1 or frame_iters < 1:
            raise ConfigError("max_iters, cold_iters and frame_iters must be >= 1")
        if not 0 < max_step_rad <= max_jump_rad < np.inf:
            raise ConfigError(f"the trust radius needs 0 < max_step_rad ({max_step_rad}) <= max_jump_rad "
                              f"({max_jump_rad}) [rad]")
        if not low_pass_lead_rad > 0:
            raise ConfigError(f"low_pass_lead_rad must be > 0, got {low_pass_lead_rad}")
        if huber_delta is not None and not 0 < huber_delta < np.inf:
            raise ConfigError(f"huber_delta must be > 0 [m] (or None: least squares), got {huber_delta}")
        rot = np.eye(3) if keypoint_rotation is None else np.asarray(keypoint_rotation, dtype=np.float64)
        if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0:
            raise ConfigError(f"keypoint_rotation must be a 3x3 rotation matrix, got {rot.tolist()}")
        self.tree = tree
        self.vectors = vectors
        self.low_pass_alpha = low_pass_alpha
        self.huber_delta = huber_delta
        self.keypoint_filter = keypoint_filter
        m, nq = vectors.n, tree.nq
        origin_f = [tree.frame_index(f) for f in vectors.origin_frames]
        task_f = [tree.frame_index(f) for f in vectors.task_frames]
        self.ti, self.tf = pack_tree(tree)
        self.vi = np.array([m, *origin_f, *task_f, *vectors.human_origin, *vectors.human_task,
                            *(int(b) for b in vectors.pinch_flags())], dtype=np.int64)
        params = np.zeros(H_NPARAMS)
        params[[H_SCALE, H_SMOOTH, H_PINCH_ON, H_PINCH_OFF, H_PINCH_W, H_PINCH_T, H_TOL, H_ITERS, H_COLD_ITERS]] = (
            scale, smooth, pinch_on_m, pinch_off_m, pinch_weight, pinch_target_m, tol_rad, max_iters, cold_iters)
        params[[H_MAX_STEP, H_MAX_JUMP, H_LEVER, H_FRAME_ITERS, H_LP_LEAD]] = (
            max_step_rad, max_jump_rad, TRUST_LEVER_M, frame_iters, low_pass_lead_rad)
        params[H_HUBER] = huber_delta or 0.0
        params[H_LP_ALPHA] = low_pass_alpha
        params[H_ROT:H_ROT + 9] = rot.ravel()
        if keypoint_filter is not None:
            params[[H_F_MIN, H_F_BETA, H_F_D, H_F_ON]] = (
                keypoint_filter.min_cutoff_hz, keypoint_filter.beta, keypoint_filter.d_cutoff_hz, 1.0)
        self.vf = np.concatenate([np.array(vectors.weights or (1.0,) * m, dtype=np.float64), params])
        nf_, ni_ = hand_work_size(tree.n_nodes, len(tree.f_node), nq, m)
        self.work = np.zeros(nf_)
        self.iwork = np.zeros(ni_, dtype=np.int64)
        self.flags = np.zeros(2, dtype=np.bool_)  # [filter initialised, cold start pending]
        q0 = np.zeros(nq) if q_init is None else np.asarray(q_init, dtype=np.float64)
        if q0.shape != (nq,) or not np.isfinite(q0).all():
            raise ConfigError(f"q_init must be {nq} finite numbers (one per joint {tree.joint_names}), "
                              f"got {q0.tolist()}")
        self._q_init = np.clip(q0, tree.lower, tree.upper)
        self.q = self._q_init.copy()
        self._q_out = self._q_init.copy()
        self._resid = np.zeros(m)
        self.last_cost = 0.0
        self.last_iterations = 0
        self.rejected = 0  # samples with NaN/inf or the wrong shape (the previous command was held)
        self._warned_shape = False
        self.reset()

    @classmethod
    def from_config(
        cls, config: HandConfig, *, keypoint_filter: FilterConfig | None = None,
        limit_overrides: dict[str, tuple[float, float]] | None = None, max_iters: int | None = None,
        frame_iters: int | None = None,
    ) -> HandRetargeter:
        """The retargeter a parsed ``[hand]`` config describes (offline, the live loop and the
        Python API all build it here, so every key means the same everywhere). ``max_iters``
        overrides the config's per-tick iterations, ``frame_iters`` its per-frame cap offline."""
        hc = config
        tree = compile_tree(hc.model_path, hc.wrist_frame, hc.frames, hc.joints, limit_overrides)
        return cls(
            tree, hc.vectors, scale=hc.scale, smooth=hc.smooth, pinch_on_m=hc.pinch_on_m, pinch_off_m=hc.pinch_off_m,
            pinch_weight=hc.pinch_weight, pinch_target_m=hc.pinch_target_m, max_iters=max_iters or hc.max_iters,
            cold_iters=hc.cold_iters, frame_iters=frame_iters or hc.frame_iters, max_step_rad=hc.max_step_rad,
            max_jump_rad=hc.max_jump_rad, low_pass_alpha=hc.low_pass_alpha, low_pass_lead_rad=hc.low_pass_lead_rad,
            huber_delta=hc.huber_delta, keypoint_rotation=hc.keypoint_rotation, keypoint_filter=keypoint_filter,
            q_init=hc.initial_pose(tree),
        )

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
        self._q_out[:] = q0  # the kernel starts its low-pass here too (cold start pending)
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

    def retarget(self, keypoints: npt.ArrayLike, t_s: float = 0.0, out: F64 | None = None, *,
                 per_frame: bool = False) -> F64:
        """Robot hand joints (the command) for human ``keypoints`` (21, 3) in the wrist frame [m],
        captured at ``t_s`` [s] (used by the keypoint filter). A sample of another shape, or with
        NaN/inf, is rejected: counted in ``rejected``, the previous command returned.
        By default this is one live tick, as the live loop's kernel runs it (at most ``max_iters``
        iterations, joints moving at most ``max_step_rad``); ``per_frame``: a whole keypoint frame,
        as offline (up to ``frame_iters`` iterations until converged, a trust radius growing with
        the error up to ``max_jump_rad``)."""
        kp = keypoints
        if not (isinstance(kp, np.ndarray) and kp.dtype == np.float64 and kp.flags.c_contiguous):
            kp = np.ascontiguousarray(kp, dtype=np.float64)
        if kp.shape != (21, 3):
            if not self._warned_shape:  # once: no per-tick logs
                self._warned_shape = True
                logger.warning("hand keypoints of shape %s rejected (need (21, 3)); the previous command is held",
                               kp.shape)
            self.rejected += 1
            self.last_cost, self.last_iterations = float("nan"), -1
        else:
            cost, iters = hand_step(kp, t_s, self.q, self.ti, self.tf, self.vi, self.vf, self.work, self.iwork,
                                    self.flags, self._q_out, per_frame)
            if iters < 0:  # non-finite input: held the previous command
                self.rejected += 1
            self.last_cost = cost
            self.last_iterations = iters
        if out is None:
            return self._q_out.copy()
        out[:] = self._q_out
        return out

    def residuals_m(self, q: F64 | None = None) -> F64:
        """|robot vector - target| per task vector [m] for ``q`` (default: the last command),
        the targets built from the raw keypoints of the last accepted ``retarget`` call (before
        any keypoint filter)."""
        q = self._q_out if q is None else np.ascontiguousarray(q, dtype=np.float64)
        hand_residuals(q, self.ti, self.tf, self.vi, self.vf, self.work, self.iwork, self._resid)
        return self._resid.copy()
