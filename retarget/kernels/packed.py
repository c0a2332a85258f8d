"""One-call-per-tick entry points over packed arrays.

A numba call costs ~0.15 us per array argument to unbox, so the per-tick kernels take a few flat
buffers instead of thirty arrays; the layouts are carved into views here (views allocate nothing).

Tree  ti (int64):   [n, nf, nq, parent(n), jtype(n), qidx(n), f_node(nf)]
      tf (float64): [mult(n), offset(n), axis(3n), t_pos(3n), t_rot(9n), f_pos(3nf), f_rot(9nf),
                     lower(nq), upper(nq)]
Hand  vi (int64):   [m, origin_f(m), task_f(m), h_origin(m), h_task(m), pinch(m)]
      vf (float64): [weights(m), HAND_PARAMS...]
Arm   af (float64): [posture(nq), ARM_PARAMS...]
"""

from __future__ import annotations

import math

import numba
import numpy as np

from retarget.kernels.filters import one_euro_step, so3_one_euro_step
from retarget.kernels.kinematics import fk_frames, fk_nodes
from retarget.kernels.poses import map_absolute, map_relative, quat_to_mat
from retarget.kernels.solvers import arm_ik_solve, hand_vector_solve, vector_residuals, vector_targets

__all__ = [
    "pack_tree", "tree_views", "hand_work_size", "hand_step", "hand_residuals", "hand_sequence", "arm_work_size",
    "arm_step", "bimanual_step",
    "H_SCALE", "H_SMOOTH", "H_PINCH_ON", "H_PINCH_OFF", "H_PINCH_W", "H_PINCH_T", "H_TOL", "H_ITERS", "H_COLD_ITERS",
    "H_F_MIN", "H_F_BETA", "H_F_D", "H_F_ON", "H_MAX_STEP", "H_HUBER", "H_LP_ALPHA", "H_ROT", "H_MAX_JUMP", "H_LEVER",
    "H_FRAME_ITERS", "H_LP_LEAD", "H_NPARAMS",
    "A_ROTW", "A_DAMP", "A_POSTURE", "A_STEP", "A_ITERS", "A_TOLM", "A_TOLR", "A_SCALE", "A_RMAP", "A_OFFSET",
    "A_ENGAGED", "A_PH0", "A_RH0", "A_PR0", "A_RR0", "A_PF_MIN", "A_PF_BETA", "A_PF_D", "A_RF_MIN", "A_RF_BETA",
    "A_RF_D", "A_F_ON", "A_EE", "A_COLD_ITERS", "A_NPARAMS",
]

# hand parameter slots (after the m weights)
H_SCALE, H_SMOOTH, H_PINCH_ON, H_PINCH_OFF, H_PINCH_W, H_PINCH_T, H_TOL, H_ITERS, H_COLD_ITERS = range(9)
H_F_MIN, H_F_BETA, H_F_D, H_F_ON, H_MAX_STEP = range(9, 14)
H_HUBER = 14  # Huber delta [m]; 0 = least squares
H_LP_ALPHA = 15  # output low-pass (dex-retargeting's LPFilter); 1 = off
H_ROT = 16  # 9 values: rotation keypoints' wrist frame -> robot hand base frame (row-major)
H_MAX_JUMP = 25  # the trust radius's ceiling [rad] (H_MAX_STEP is its floor, for a small error)
H_LEVER = 26  # [m]: the radius grows by error / lever
H_FRAME_ITERS = 27  # iteration cap per frame offline (hand_sequence); H_ITERS is the live per-tick cap
H_LP_LEAD = 28  # [rad]: the low-pass takes in at most this lead of the solution over the command
H_NPARAMS = 29

# arm parameter slots (after the nq posture values)
A_ROTW, A_DAMP, A_POSTURE, A_STEP, A_ITERS, A_TOLM, A_TOLR, A_SCALE = range(8)
A_RMAP = 8  # 9 values
A_OFFSET = 17  # 3
A_ENGAGED = 20
A_PH0 = 21  # 3
A_RH0 = 24  # 9
A_PR0 = 33  # 3
A_RR0 = 36  # 9
A_PF_MIN, A_PF_BETA, A_PF_D, A_RF_MIN, A_RF_BETA, A_RF_D, A_F_ON, A_EE, A_COLD_ITERS = range(45, 54)
A_NPARAMS = 54


def pack_tree(tree) -> tuple[np.ndarray, np.ndarray]:
    """(ti, tf) of a ``KinematicTree``."""
    ti = np.concatenate([[tree.n_nodes, len(tree.f_node), tree.nq], tree.parent, tree.jtype, tree.qidx, tree.f_node]).astype(np.int64)
    tf = np.concatenate([tree.mult, tree.offset, tree.axis.ravel(), tree.t_pos.ravel(), tree.t_rot.ravel(),
                         tree.f_pos.ravel(), tree.f_rot.ravel(), tree.lower, tree.upper]).astype(np.float64)
    return ti, tf


@numba.njit(cache=True, nogil=True, inline="always")
def tree_views(ti, tf):
    n, nf, nq = ti[0], ti[1], ti[2]
    o = 3
    parent = ti[o:o + n]
    jtype = ti[o + n:o + 2 * n]
    qidx = ti[o + 2 * n:o + 3 * n]
    f_node = ti[o + 3 * n:o + 3 * n + nf]
    k = 0
    mult = tf[k:k + n]
    k += n
    offset = tf[k:k + n]
    k += n
    axis = tf[k:k + 3 * n].reshape((n, 3))
    k += 3 * n
    t_pos = tf[k:k + 3 * n].reshape((n, 3))
    k += 3 * n
    t_rot = tf[k:k + 9 * n].reshape((n, 3, 3))
    k += 9 * n
    f_pos = tf[k:k + 3 * nf].reshape((nf, 3))
    k += 3 * nf
    f_rot = tf[k:k + 9 * nf].reshape((nf, 3, 3))
    k += 9 * nf
    lower = tf[k:k + nq]
    upper = tf[k + nq:k + 2 * nq]
    return n, nf, nq, parent, jtype, qidx, f_node, mult, offset, axis, t_pos, t_rot, f_pos, f_rot, lower, upper


@numba.njit(cache=True, nogil=True)
def hand_work_size(n, nf, nq, m):
    """Float and int work sizes of ``hand_step``."""
    floats = 63 * 3 + 1 + nq + 4 * m + 12 * n + 12 * nf + 3 * nf * nq + 2 * nq * nq + 6 * nq + m + 3
    floats += 63 + nq + 4 * m  # raw keypoints, low-pass state, raw targets and weights
    ints = m + nq + 2 + m
    return floats, ints


@numba.njit(cache=True, nogil=True, inline="always")
def _hand_views(work, iwork, n, nf, nq, m):
    k = 0
    kp_f = work[k:k + 63].reshape((21, 3))
    k += 63
    x_prev = work[k:k + 63]
    k += 63
    dx_prev = work[k:k + 63]
    k += 63
    t_prev = work[k:k + 1]
    k += 1
    q_prev = work[k:k + nq]
    k += nq
    target = work[k:k + 3 * m].reshape((m, 3))
    k += 3 * m
    w_eff = work[k:k + m]
    k += m
    node_pos = work[k:k + 3 * n].reshape((n, 3))
    k += 3 * n
    node_rot = work[k:k + 9 * n].reshape((n, 3, 3))
    k += 9 * n
    frame_pos = work[k:k + 3 * nf].reshape((nf, 3))
    k += 3 * nf
    frame_rot = work[k:k + 9 * nf].reshape((nf, 3, 3))
    k += 9 * nf
    jac_pos = work[k:k + 3 * nf * nq].reshape((nf, 3, nq))
    k += 3 * nf * nq
    hess = work[k:k + nq * nq].reshape((nq, nq))
    k += nq * nq
    chol = work[k:k + nq * (nq + 1)].reshape((nq, nq + 1))
    k += nq * (nq + 1)
    grad = work[k:k + nq]
    k += nq
    step = work[k:k + nq]
    k += nq
    q_try = work[k:k + nq]
    k += nq
    resid = work[k:k + m]
    k += m
    lo = work[k:k + nq]
    k += nq
    hi = work[k:k + nq]
    k += nq
    mu = work[k:k + 3]  # solver state: damping, trust radius, on the trust box
    k += 3
    kp_raw = work[k:k + 63].reshape((21, 3))
    k += 63
    q_lp = work[k:k + nq]
    k += nq
    target_raw = work[k:k + 3 * m].reshape((m, 3))
    k += 3 * m
    w_raw = work[k:k + m]
    jac_none = work[0:0].reshape((0, 3, nq))
    pinch_state = iwork[0:m]
    free = iwork[m:m + nq]
    pinch_raw = iwork[m + nq + 2:m + nq + 2 + m]
    return (kp_f, x_prev, dx_prev, t_prev, q_prev, target, w_eff, node_pos, node_rot, frame_pos, frame_rot,
            jac_pos, hess, chol, grad, step, q_try, resid, jac_none, pinch_state, free, lo, hi, mu,
            kp_raw, q_lp, target_raw, w_raw, pinch_raw)


@numba.njit(cache=True, nogil=True, inline="always")
def _finite_sample(keypoints, t_s):
    if not math.isfinite(t_s):
        return False
    for i in range(21):
        for a in range(3):
            if not math.isfinite(keypoints[i, a]):
                return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _low_pass(q, q_lp, alpha, lead, lower, upper, q_out):
    """y += alpha (q - y), the lead q - y clipped to +-``lead`` first: a solution that runs far
    ahead of the command (a fast fist, a tracking jump) is taken in at alpha * lead per frame, so
    the command's step stays bounded while the filter still catches up. alpha = 1 within the
    lead passes q exactly; otherwise the result is clipped to the limits (against rounding)."""
    for i in range(q.shape[0]):
        d = q[i] - q_lp[i]
        if alpha >= 1.0 and -lead <= d <= lead:
            q_lp[i] = q[i]
        else:
            q_lp[i] = min(max(q_lp[i] + alpha * min(max(d, -lead), lead), lower[i]), upper[i])
        q_out[i] = q_lp[i]


@numba.njit(cache=True, nogil=True)
def hand_step(keypoints, t_s, q, ti, tf, vi, vf, work, iwork, flags, q_out, per_frame=False):
    """Filter the keypoints (One-Euro, if enabled), build the task-vector targets, solve, low-pass
    the solution (if enabled) into ``q_out`` (nq,), the command. ``q`` (nq,) is the solver's warm
    start and result (never low-passed, as in dex-retargeting). ``per_frame``: the call is a whole
    frame offline, whose iteration cap is H_FRAME_ITERS, not the live per-tick H_ITERS (a live
    sample is solved over the several ticks it lasts). ``flags`` (2,) bool: [filter
    initialised, cold start pending]. Returns (cost, iterations); iterations -1: the sample was
    not finite and ``q_out`` holds the previous command."""
    n, nf, nq, parent, jtype, qidx, f_node, mult, offset, axis, t_pos, t_rot, f_pos, f_rot, lower, upper = tree_views(ti, tf)
    m = vi[0]
    origin_f = vi[1:1 + m]
    task_f = vi[1 + m:1 + 2 * m]
    h_origin = vi[1 + 2 * m:1 + 3 * m]
    h_task = vi[1 + 3 * m:1 + 4 * m]
    pinch = vi[1 + 4 * m:1 + 5 * m]
    weights = vf[0:m]
    p = vf[m:m + H_NPARAMS]
    rot = p[H_ROT:H_ROT + 9].reshape((3, 3))
    (kp_f, x_prev, dx_prev, t_prev, q_prev, target, w_eff, node_pos, node_rot, frame_pos, frame_rot,
     jac_pos, hess, chol, grad, step, q_try, resid, jac_none, pinch_state, free, lo, hi, mu,
     kp_raw, q_lp, target_raw, w_raw, pinch_raw) = _hand_views(work, iwork, n, nf, nq, m)
    cold = flags[1]
    if cold:  # after a reset the command is the reset pose until the first solution replaces it
        for i in range(nq):
            q_lp[i] = q[i]
    if not _finite_sample(keypoints, t_s):  # a NaN/inf sample never reaches the filter state or the solution
        _low_pass(q_lp, q_lp, 0.0, 0.0, lower, upper, q_out)  # hold the command
        return math.nan, -1
    for i in range(21):
        for a in range(3):
            kp_raw[i, a] = keypoints[i, a]  # the residual is reported against the raw sample
    if p[H_F_ON] > 0.0:
        one_euro_step(keypoints.reshape(63), t_s, x_prev, dx_prev, t_prev, flags[0:1],
                      p[H_F_MIN], p[H_F_BETA], p[H_F_D], kp_f.reshape(63))
    else:
        for i in range(21):
            for a in range(3):
                kp_f[i, a] = keypoints[i, a]
    vector_targets(kp_f, h_origin, h_task, weights, p[H_SCALE], rot, pinch, p[H_PINCH_ON], p[H_PINCH_OFF],
                   p[H_PINCH_W], p[H_PINCH_T], pinch_state, target, w_eff)
    for i in range(nq):
        q_prev[i] = q[i]
    flags[1] = False
    # a cold start has no previous solution to stay near: no smoothness term, more iterations,
    # no trust box. A live tick moves at most max_step (a sample lasts several ticks); a whole
    # frame's radius grows with the error up to max_jump (_trust_box).
    iters = int(p[H_COLD_ITERS]) if cold else int(p[H_FRAME_ITERS] if per_frame else p[H_ITERS])
    smooth = 0.0 if cold else p[H_SMOOTH]
    r_min = math.inf if cold else p[H_MAX_STEP]
    r_max = math.inf if cold else (p[H_MAX_JUMP] if per_frame else p[H_MAX_STEP])
    if cold:
        mu[0] = 1e-4
    cost, it = hand_vector_solve(
        q, q_prev, lower, upper, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot,
        origin_f, task_f, target, w_eff, smooth, p[H_HUBER], iters, p[H_TOL], r_min, r_max, p[H_LEVER],
        node_pos, node_rot, frame_pos, frame_rot, jac_pos, jac_none, hess, grad, chol, step, q_try, free, lo, hi, mu,
    )
    # output low-pass, started from the first solution (not from the reset pose: no first-frame jump)
    if cold:
        _low_pass(q, q_lp, 1.0, math.inf, lower, upper, q_out)
    else:
        _low_pass(q, q_lp, p[H_LP_ALPHA], p[H_LP_LEAD], lower, upper, q_out)
    return cost, it


@numba.njit(cache=True, nogil=True)
def hand_residuals(q, ti, tf, vi, vf, work, iwork, out):
    """|robot vector - target| per task vector [m] for ``q``, the targets built from the last
    accepted RAW keypoints (before the One-Euro filter): what the hand achieves for the input."""
    n, nf, nq, parent, jtype, qidx, f_node, mult, offset, axis, t_pos, t_rot, f_pos, f_rot, lower, upper = tree_views(ti, tf)
    m = vi[0]
    p = vf[m:m + H_NPARAMS]
    (kp_f, x_prev, dx_prev, t_prev, q_prev, target, w_eff, node_pos, node_rot, frame_pos, frame_rot,
     jac_pos, hess, chol, grad, step, q_try, resid, jac_none, pinch_state, free, lo, hi, mu,
     kp_raw, q_lp, target_raw, w_raw, pinch_raw) = _hand_views(work, iwork, n, nf, nq, m)
    vector_targets(kp_raw, vi[1 + 2 * m:1 + 3 * m], vi[1 + 3 * m:1 + 4 * m], vf[0:m], p[H_SCALE],
                   p[H_ROT:H_ROT + 9].reshape((3, 3)), vi[1 + 4 * m:1 + 5 * m], p[H_PINCH_ON], p[H_PINCH_OFF],
                   p[H_PINCH_W], p[H_PINCH_T], pinch_raw, target_raw, w_raw)
    fk_nodes(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, node_pos, node_rot)
    fk_frames(node_pos, node_rot, f_node, f_pos, f_rot, frame_pos, frame_rot)
    vector_residuals(frame_pos, vi[1:1 + m], vi[1 + m:1 + 2 * m], target_raw, out)


@numba.njit(cache=True, nogil=True)
def arm_work_size(n, nf, nq):
    floats = 12 * n + 12 * nf + 6 * nf * nq + 6 * nq + 36 + 42 + 6 + 6 + 6 + 9 + 3 + 2 * nq + 3 + 3 + 4 + 9 + 3 + 9 + 9 + 9 + 7 + 8
    return floats, 6


@numba.njit(cache=True, nogil=True)
def arm_step(wrist_pos, wrist_quat, t_s, q, ti, tf, af, work, iwork, flags):
    """Filter the tracker wrist pose (One-Euro on position and SO(3), if enabled), map it into the
    robot base frame (absolute, or clutch-relative once engaged), solve IK from ``q`` (updated in
    place). ``flags`` (3,) bool: [position filter initialised, orientation filter initialised,
    cold start pending]. Returns (position error [m], rotation error [rad], iterations)."""
    n, nf, nq, parent, jtype, qidx, f_node, mult, offset, axis, t_pos, t_rot, f_pos, f_rot, lower, upper = tree_views(ti, tf)
    posture = af[0:nq]
    p = af[nq:nq + A_NPARAMS]
    k = 0
    node_pos = work[k:k + 3 * n].reshape((n, 3))
    k += 3 * n
    node_rot = work[k:k + 9 * n].reshape((n, 3, 3))
    k += 9 * n
    frame_pos = work[k:k + 3 * nf].reshape((nf, 3))
    k += 3 * nf
    frame_rot = work[k:k + 9 * nf].reshape((nf, 3, 3))
    k += 9 * nf
    jac_pos = work[k:k + 3 * nf * nq].reshape((nf, 3, nq))
    k += 3 * nf * nq
    jac_rot = work[k:k + 3 * nf * nq].reshape((nf, 3, nq))
    k += 3 * nf * nq
    jmat = work[k:k + 6 * nq].reshape((6, nq))
    k += 6 * nq
    a6 = work[k:k + 36].reshape((6, 6))
    k += 36
    chol6 = work[k:k + 42].reshape((6, 7))
    k += 42
    rhs6 = work[k:k + 6]
    k += 6
    y6 = work[k:k + 6]
    k += 6
    err = work[k:k + 6]
    k += 6
    rtmp = work[k:k + 9].reshape((3, 3))
    k += 9
    rvec = work[k:k + 3]
    k += 3
    dq = work[k:k + nq]
    k += nq
    q_best = work[k:k + nq]
    k += nq
    result = work[k:k + 3]
    k += 3
    p_f = work[k:k + 3]
    k += 3
    q_f = work[k:k + 4]
    k += 4
    r_h = work[k:k + 9].reshape((3, 3))
    k += 9
    p_t = work[k:k + 3]
    k += 3
    r_t = work[k:k + 9].reshape((3, 3))
    k += 9
    t1 = work[k:k + 9].reshape((3, 3))
    k += 9
    t2 = work[k:k + 9].reshape((3, 3))
    k += 9
    px_prev = work[k:k + 3]
    k += 3
    pdx_prev = work[k:k + 3]
    k += 3
    pt_prev = work[k:k + 1]
    k += 1
    rq_prev = work[k:k + 4]
    k += 4
    rw_prev = work[k:k + 3]
    k += 3
    rt_prev = work[k:k + 1]
    for a in range(3):  # a NaN/inf pose never reaches the filter state or the solution: hold
        if not math.isfinite(wrist_pos[a]):
            return math.nan, math.nan, -1.0
    for a in range(4):
        if not math.isfinite(wrist_quat[a]):
            return math.nan, math.nan, -1.0
    if not math.isfinite(t_s):
        return math.nan, math.nan, -1.0
    if p[A_F_ON] > 0.0:
        one_euro_step(wrist_pos, t_s, px_prev, pdx_prev, pt_prev, flags[0:1], p[A_PF_MIN], p[A_PF_BETA], p[A_PF_D], p_f)
        so3_one_euro_step(wrist_quat, t_s, rq_prev, rw_prev, rt_prev, flags[1:2], p[A_RF_MIN], p[A_RF_BETA], p[A_RF_D], q_f)
    else:
        for a in range(3):
            p_f[a] = wrist_pos[a]
        for a in range(4):
            q_f[a] = wrist_quat[a]
    quat_to_mat(q_f, r_h)
    r_map = p[A_RMAP:A_RMAP + 9].reshape((3, 3))
    if p[A_ENGAGED] > 0.0:
        map_relative(p_f, r_h, p[A_PH0:A_PH0 + 3], p[A_RH0:A_RH0 + 9].reshape((3, 3)), p[A_PR0:A_PR0 + 3],
                     p[A_RR0:A_RR0 + 9].reshape((3, 3)), p[A_SCALE], r_map, p_t, r_t, t1, t2)
    else:
        map_absolute(p_f, r_h, p[A_SCALE], r_map, p[A_OFFSET:A_OFFSET + 3], p_t, r_t)
    iters = int(p[A_COLD_ITERS]) if flags[2] else int(p[A_ITERS])  # more after a reset/engage
    flags[2] = False
    arm_ik_solve(
        q, posture, lower, upper, p_t, r_t, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot,
        int(p[A_EE]), p[A_ROTW], p[A_DAMP], p[A_POSTURE], p[A_STEP], iters, p[A_TOLM], p[A_TOLR],
        node_pos, node_rot, frame_pos, frame_rot, jac_pos, jac_rot, jmat, a6, chol6, rhs6, y6, err, rtmp, rvec,
        dq, iwork, q_best, result,
    )
    return result[0], result[1], result[2]


@numba.njit(cache=True, nogil=True)
def hand_sequence(keypoints, times, q, ti, tf, vi, vf, work, iwork, flags, out_q, out_residual, resid, out_info):
    """Offline: ``hand_step`` over a whole sequence (T, 21, 3) with one call, warm-starting each
    frame from the previous one, each frame solved whole (``per_frame``). Writes the commands
    (T, nq) and per frame the mean task-vector residual [m] of that command against the raw
    keypoints (T,); a frame with non-finite input holds the previous command and gets a NaN
    residual. ``out_info`` (T, 2) int64: per frame [iterations (-1: rejected), 1 if the solution
    ended on the trust box]. Returns the number of rejected frames."""
    rejected = 0
    m = vi[0]
    n, nf, nq = ti[0], ti[1], ti[2]
    for k in range(keypoints.shape[0]):
        cost, iters = hand_step(keypoints[k], times[k], q, ti, tf, vi, vf, work, iwork, flags, out_q[k], True)
        out_info[k, 0] = iters
        if iters < 0:
            rejected += 1
            out_residual[k] = math.nan
            out_info[k, 1] = 0
            continue
        out_info[k, 1] = int(_hand_views(work, iwork, n, nf, nq, m)[23][2])  # the solver state's "on the box"
        hand_residuals(out_q[k], ti, tf, vi, vf, work, iwork, resid)
        s = 0.0
        for j in range(resid.shape[0]):
            s += resid[j]
        out_residual[k] = s / resid.shape[0]
    return rejected


@numba.njit(cache=True)  # keeps the GIL: releasing it in a control loop invites a 5 ms wait to get it back
def bimanual_step(
    keypoints, wrist_pos, wrist_quat, t_s, out, slices, results,
    hl_q, hl_ti, hl_tf, hl_vi, hl_vf, hl_work, hl_iwork, hl_flags,
    hr_q, hr_ti, hr_tf, hr_vi, hr_vf, hr_work, hr_iwork, hr_flags,
    al_q, al_ti, al_tf, al_af, al_work, al_iwork, al_flags,
    ar_q, ar_ti, ar_tf, ar_af, ar_work, ar_iwork, ar_flags, per_frame,
):
    """Both hands and both arms in one call (one dispatch per tick). ``slices`` (8,) int64:
    start/stop of left arm, left hand, right arm, right hand in ``out``; a hand with
    ``*_ti[0] == 0`` nodes is skipped. ``results`` (8,): per arm (pos err, rot err, iterations)
    then per hand the iteration count. ``per_frame``: the hands solve whole frames (offline, a
    video), not one live tick each."""
    if hl_ti[0] > 0:
        c, it = hand_step(keypoints[0], t_s, hl_q, hl_ti, hl_tf, hl_vi, hl_vf, hl_work, hl_iwork, hl_flags,
                          out[slices[2]:slices[3]], per_frame)
        results[6] = it
    if hr_ti[0] > 0:
        c, it = hand_step(keypoints[1], t_s, hr_q, hr_ti, hr_tf, hr_vi, hr_vf, hr_work, hr_iwork, hr_flags,
                          out[slices[6]:slices[7]], per_frame)
        results[7] = it
    pe, re, it = arm_step(wrist_pos[0], wrist_quat[0], t_s, al_q, al_ti, al_tf, al_af, al_work, al_iwork, al_flags)
    results[0], results[1], results[2] = pe, re, it
    for i in range(al_q.shape[0]):
        out[slices[0] + i] = al_q[i]
    pe, re, it = arm_step(wrist_pos[1], wrist_quat[1], t_s, ar_q, ar_ti, ar_tf, ar_af, ar_work, ar_iwork, ar_flags)
    results[3], results[4], results[5] = pe, re, it
    for i in range(ar_q.shape[0]):
        out[slices[4] + i] = ar_q[i]
