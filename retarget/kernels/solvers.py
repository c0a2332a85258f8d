"""Numba optimisers of the per-tick path: vector hand retargeting and damped-least-squares arm IK.

Both are warm-started, keep joints inside their limits exactly (projection with an active set),
allocate nothing (all work arrays come from the caller) and never produce NaN: every linear system
is damped, so it stays positive definite near singularities.
"""

from __future__ import annotations

import math

import numba

from retarget.kernels.kinematics import fk_frames, fk_nodes, frame_jacobians

__all__ = ["hand_vector_solve", "arm_ik_solve", "vector_targets", "vector_residuals"]


@numba.njit(cache=True, nogil=True)
def _chol_solve(a, b, free, nfree, work, x):
    """Solve a[free][:, free] x[free] = b[free] for symmetric positive definite ``a``: gather the
    reduced system into ``work`` (contiguous), Cholesky in place, substitute, scatter. Entries of
    ``x`` outside ``free`` are set to 0. ``work`` needs (n, n + 1)."""
    n = a.shape[0]
    for ii in range(nfree):
        i = free[ii]
        for jj in range(ii + 1):
            work[ii, jj] = a[i, free[jj]]
        work[ii, n] = b[i]
    for j in range(nfree):
        s = work[j, j]
        for k in range(j):
            s -= work[j, k] * work[j, k]
        d = math.sqrt(s if s > 1e-300 else 1e-300)
        work[j, j] = d
        inv = 1.0 / d
        for i in range(j + 1, nfree):
            s = work[i, j]
            for k in range(j):
                s -= work[i, k] * work[j, k]
            work[i, j] = s * inv
    for i in range(nfree):  # L y = b (y over b's column)
        s = work[i, n]
        for k in range(i):
            s -= work[i, k] * work[k, n]
        work[i, n] = s / work[i, i]
    for i in range(nfree - 1, -1, -1):  # L^T x = y
        s = work[i, n]
        for k in range(i + 1, nfree):
            s -= work[k, i] * work[k, n]
        work[i, n] = s / work[i, i]
    for i in range(n):
        x[i] = 0.0
    for ii in range(nfree):
        x[free[ii]] = work[ii, n]


@numba.njit(cache=True, nogil=True)
def vector_targets(human, h_origin, h_task, weight, scale, rot, pinch, pinch_on_m, pinch_off_m, pinch_weight,
                   pinch_target_m, pinch_state, target, w_eff):
    """Per task vector: the robot-space target (m, 3) and the effective weight (m,). ``rot``
    (3, 3) takes a vector from the keypoints' wrist frame into the robot hand's base frame.

    Pinch priority (after DexPilot): for a ``pinch`` vector whose human length d is below
    ``pinch_off_m``, blend toward weight ``pinch_weight`` and a target of length ``pinch_target_m``
    with alpha = (off - d) / (off - on) clipped to [0, 1]. DexPilot switches at thresholds; the
    ramp keeps targets continuous, so the solution does not jump when a pinch starts or ends.
    ``pinch_state`` gets 1 where alpha > 0."""
    d_min = math.inf
    for k in range(h_origin.shape[0]):
        if pinch[k]:
            dx = human[h_task[k], 0] - human[h_origin[k], 0]
            dy = human[h_task[k], 1] - human[h_origin[k], 1]
            dz = human[h_task[k], 2] - human[h_origin[k], 2]
            d_min = min(d_min, math.sqrt(dx * dx + dy * dy + dz * dz))
    for k in range(h_origin.shape[0]):
        dx = human[h_task[k], 0] - human[h_origin[k], 0]
        dy = human[h_task[k], 1] - human[h_origin[k], 1]
        dz = human[h_task[k], 2] - human[h_origin[k], 2]
        # the vector in the robot hand's base frame (lengths, hence the pinch below, are unchanged)
        rx = rot[0, 0] * dx + rot[0, 1] * dy + rot[0, 2] * dz
        ry = rot[1, 0] * dx + rot[1, 1] * dy + rot[1, 2] * dz
        rz = rot[2, 0] * dx + rot[2, 1] * dy + rot[2, 2] * dz
        dx, dy, dz = rx, ry, rz
        tx, ty, tz = scale * dx, scale * dy, scale * dz
        w = weight[k]
        pinch_state[k] = 0
        if pinch[k]:
            d = math.sqrt(dx * dx + dy * dy + dz * dz)
            # only the closest pinch pair gets priority (pairs within 1 cm of it share it), so
            # two fingers never fight over the thumb
            closest = max(0.0, 1.0 - (d - d_min) / 0.01)
            if d < pinch_off_m and closest > 0.0:
                span = pinch_off_m - pinch_on_m
                alpha = closest * (1.0 if span <= 0.0 else min(1.0, (pinch_off_m - d) / span))
                f = pinch_target_m / d if d > 1e-9 else 0.0
                tx += alpha * (dx * f - tx)
                ty += alpha * (dy * f - ty)
                tz += alpha * (dz * f - tz)
                w += alpha * (pinch_weight - w)
                pinch_state[k] = 1
        target[k, 0] = tx
        target[k, 1] = ty
        target[k, 2] = tz
        w_eff[k] = w


@numba.njit(cache=True, nogil=True, inline="always")
def _robust(sq, huber):
    """Loss of one vector whose squared error is ``sq``: the square, or with ``huber`` > 0 the
    Huber loss scaled to match it below ``huber`` [m] (2 huber |r| - huber^2 above: linear)."""
    if huber > 0.0 and sq > huber * huber:
        return 2.0 * huber * math.sqrt(sq) - huber * huber
    return sq


@numba.njit(cache=True, nogil=True)
def _vector_cost(frame_pos, origin_f, task_f, target, w_eff, q, q_prev, smooth, huber):
    cost = 0.0
    for k in range(origin_f.shape[0]):
        s = 0.0
        for a in range(3):
            r = frame_pos[task_f[k], a] - frame_pos[origin_f[k], a] - target[k, a]
            s += r * r
        cost += w_eff[k] * _robust(s, huber)
    for i in range(q.shape[0]):
        d = q[i] - q_prev[i]
        cost += smooth * d * d
    return cost


@numba.njit(cache=True, nogil=True)
def vector_residuals(frame_pos, origin_f, task_f, target, out):
    """Length of (robot vector - target) per task vector [m], into ``out`` (m,)."""
    for k in range(origin_f.shape[0]):
        s = 0.0
        for a in range(3):
            r = frame_pos[task_f[k], a] - frame_pos[origin_f[k], a] - target[k, a]
            s += r * r
        out[k] = math.sqrt(s)


@numba.njit(cache=True, nogil=True)
def _fk_cost(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot, node_pos, node_rot,
             frame_pos, frame_rot, origin_f, task_f, target, w_eff, q_prev, smooth, huber):
    fk_nodes(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, node_pos, node_rot)
    fk_frames(node_pos, node_rot, f_node, f_pos, f_rot, frame_pos, frame_rot)
    return _vector_cost(frame_pos, origin_f, task_f, target, w_eff, q, q_prev, smooth, huber)


@numba.njit(cache=True, nogil=True)
def _trust_box(frame_pos, origin_f, task_f, target, w_eff, q_prev, lower, upper, radius_min, radius_max, lever, lo, hi):
    """The solve's box: the joint limits, intersected with q_prev +- r, where the radius r grows
    with the largest task-vector error e at the warm start: r = min(radius_max, radius_min + e /
    lever) [rad] (the joint motion that error calls for at a finger's length ``lever`` [m]). A
    small error (noise, slow motion) moves the hand little; a large one (a fast motion) is
    followed within one solve, up to ``radius_max``. Returns r."""
    e = 0.0
    for k in range(origin_f.shape[0]):
        if w_eff[k] == 0.0:
            continue
        s = 0.0
        for a in range(3):
            r = frame_pos[task_f[k], a] - frame_pos[origin_f[k], a] - target[k, a]
            s += r * r
        e = max(e, s)
    radius = min(radius_max, radius_min + math.sqrt(e) / lever)
    for i in range(q_prev.shape[0]):
        lo[i] = max(lower[i], q_prev[i] - radius)
        hi[i] = min(upper[i], q_prev[i] + radius)
    return radius


@numba.njit(cache=True, nogil=True)
def _normal_equations(frame_pos, jac_pos, origin_f, task_f, target, w_eff, q, q_prev, smooth, huber, hess, grad,
                      row, cols):
    """Gauss-Newton model at q: hess = J^T W J + smooth I, grad = J^T W r + smooth (q - q_prev),
    W with the Huber loss's IRLS weights (an outlier pulls linearly). Built over the sparse rows
    of each task vector (a fingertip vector depends on a few joints only); ``row`` and ``cols``
    (nq,) are scratch."""
    nq = q.shape[0]
    for i in range(nq):
        grad[i] = smooth * (q[i] - q_prev[i])
        for j in range(nq):
            hess[i, j] = 0.0
        hess[i, i] = smooth
    for k in range(origin_f.shape[0]):
        o = origin_f[k]
        t = task_f[k]
        w = w_eff[k]
        if w == 0.0:
            continue
        r0 = frame_pos[t, 0] - frame_pos[o, 0] - target[k, 0]
        r1 = frame_pos[t, 1] - frame_pos[o, 1] - target[k, 1]
        r2 = frame_pos[t, 2] - frame_pos[o, 2] - target[k, 2]
        sq = r0 * r0 + r1 * r1 + r2 * r2
        if huber > 0.0 and sq > huber * huber:
            w *= huber / math.sqrt(sq)
        for a in range(3):
            r = r0 if a == 0 else (r1 if a == 1 else r2)
            nnz = 0
            for i in range(nq):
                d = jac_pos[t, a, i] - jac_pos[o, a, i]
                if d != 0.0:
                    row[nnz] = d
                    cols[nnz] = i
                    nnz += 1
            for ii in range(nnz):
                i = cols[ii]
                di = w * row[ii]
                grad[i] += di * r
                for jj in range(ii + 1):
                    hess[i, cols[jj]] += di * row[jj]
    for i in range(nq):
        for j in range(i):
            hess[j, i] = hess[i, j]


@numba.njit(cache=True, nogil=True)
def _free_set(q, lo, hi, grad, free):
    """Active set: a joint at a bound whose gradient pushes it outward stays there. Returns
    (number of free joints, largest free gradient)."""
    nfree = 0
    gmax = 0.0
    for i in range(q.shape[0]):
        if (q[i] <= lo[i] and grad[i] > 0.0) or (q[i] >= hi[i] and grad[i] < 0.0):
            continue
        free[nfree] = i
        nfree += 1
        gmax = max(gmax, abs(grad[i]))
    return nfree, gmax


@numba.njit(cache=True, nogil=True)
def _damped_step(q, lo, hi, hess, grad, mu, free, nfree, chol, step, q_try):
    """Solve (H + mu I) s = -g over the free joints, project q + s into [lo, hi]; ``step`` gets
    the projected step. Returns (largest |step|, the model's predicted decrease for it)."""
    nq = q.shape[0]
    for i in range(nq):
        hess[i, i] += mu
        grad[i] = -grad[i]
    _chol_solve(hess, grad, free, nfree, chol, step)
    smax = 0.0
    for i in range(nq):
        hess[i, i] -= mu
        grad[i] = -grad[i]
        q_try[i] = min(max(q[i] + step[i], lo[i]), hi[i])
        step[i] = q_try[i] - q[i]
        smax = max(smax, abs(step[i]))
    pred = 0.0  # -(g.s + s.H.s / 2) of the undamped model
    for i in range(nq):
        hs = 0.0
        for j in range(nq):
            hs += hess[i, j] * step[j]
        pred -= step[i] * (grad[i] + 0.5 * hs)
    return smax, pred


@numba.njit(cache=True, nogil=True)
def hand_vector_solve(
    q, q_prev, lower, upper,
    parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot,
    origin_f, task_f, target, w_eff, smooth, huber, max_iters, tol, radius_min, radius_max, lever,
    node_pos, node_rot, frame_pos, frame_rot, jac_pos, jac_none, hess, grad, chol, step, q_try, free, lo, hi, state,
):
    """Minimise sum_k w_k rho(|(p_task_k - p_origin_k)(q) - target_k|) + smooth |q - q_prev|^2 over
    lower <= q <= upper and the trust box (``_trust_box``: radius from the warm-start error) by
    projected Levenberg-Marquardt, from ``q`` (updated in place). rho(r) = r^2, or with ``huber``
    > 0 the Huber loss (``_robust``) by iteratively reweighted least squares.

    The damping follows the gain ratio rho = actual / predicted decrease (Nielsen's rule): a step
    the model predicted well shrinks the damping (toward Gauss-Newton, a second-order step), a
    poor one grows it (toward a short gradient step); a rejected step re-solves with the same
    model, so it costs one FK, no Jacobian. Iterations (trial steps, one FK each) continue until
    the step, the gradient or the relative decrease is small, at most ``max_iters``: a frame whose
    error is large gets more of them, a converged one stops at once. ``state`` (3,): [damping,
    trust radius used, 1 if the solution ends on the trust box (not a joint limit)], the damping
    carried from call to call. Returns (final cost, iterations)."""
    nq = q.shape[0]
    for i in range(nq):
        q[i] = min(max(q[i], lower[i]), upper[i])
    cost = _fk_cost(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot, node_pos,
                    node_rot, frame_pos, frame_rot, origin_f, task_f, target, w_eff, q_prev, smooth, huber)
    state[1] = _trust_box(frame_pos, origin_f, task_f, target, w_eff, q_prev, lower, upper, radius_min, radius_max,
                          lever, lo, hi)
    for i in range(nq):
        q[i] = min(max(q[i], lo[i]), hi[i])
    mu = min(max(state[0], 1e-9), 1e3)
    nu = 2.0
    model_stale = True  # the frames are at q: build the model there
    fk_at_q = True
    it = 0
    while it < max_iters:
        if model_stale:
            frame_jacobians(node_pos, node_rot, parent, jtype, qidx, mult, axis, f_node, frame_pos, jac_pos, jac_none)
            _normal_equations(frame_pos, jac_pos, origin_f, task_f, target, w_eff, q, q_prev, smooth, huber, hess,
                              grad, q_try, free)
            model_stale = False
        nfree, gmax = _free_set(q, lo, hi, grad, free)
        if gmax < 1e-12:  # stationary on the feasible set
            break
        smax, pred = _damped_step(q, lo, hi, hess, grad, mu, free, nfree, chol, step, q_try)
        if smax < tol:  # negligible step: converged
            break
        it += 1
        c_try = _fk_cost(q_try, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot,
                         node_pos, node_rot, frame_pos, frame_rot, origin_f, task_f, target, w_eff, q_prev, smooth,
                         huber)
        fk_at_q = False
        gain = cost - c_try
        if gain > 0.0:
            if pred > 0.0:  # (a step cut by the box may not decrease the model: keep the damping then)
                rho = gain / pred
                mu = max(mu * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), 1e-9)
            nu = 2.0
            for i in range(nq):
                q[i] = q_try[i]
            cost = c_try
            fk_at_q = True
            model_stale = True
            if gain <= 1e-9 * cost + 1e-15 or smax < tol:
                break
        else:
            mu = min(mu * nu, 1e6)
            nu *= 2.0
    if not fk_at_q:  # leave the frames at the solution
        _fk_cost(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot, node_pos, node_rot,
                 frame_pos, frame_rot, origin_f, task_f, target, w_eff, q_prev, smooth, huber)
    bound = 0.0
    for i in range(nq):
        if (q[i] <= lo[i] and lo[i] > lower[i]) or (q[i] >= hi[i] and hi[i] < upper[i]):
            bound = 1.0
    state[0] = mu
    state[2] = bound
    return cost, it


@numba.njit(cache=True, nogil=True)
def _rot_log(r, out):
    """Axis-angle vector of rotation matrix ``r`` (3,) into ``out``; stable near 0 and pi."""
    tr = r[0, 0] + r[1, 1] + r[2, 2]
    c = max(-1.0, min(1.0, 0.5 * (tr - 1.0)))
    angle = math.acos(c)
    vx = r[2, 1] - r[1, 2]
    vy = r[0, 2] - r[2, 0]
    vz = r[1, 0] - r[0, 1]
    if angle < 1e-6:
        out[0], out[1], out[2] = 0.5 * vx, 0.5 * vy, 0.5 * vz
        return
    s = math.sin(angle)
    if s > 1e-6:
        f = angle / (2.0 * s)
        out[0], out[1], out[2] = f * vx, f * vy, f * vz
        return
    # angle near pi: axis from the diagonal
    ax = math.sqrt(max(0.0, (r[0, 0] + 1.0) * 0.5))
    ay = math.sqrt(max(0.0, (r[1, 1] + 1.0) * 0.5))
    az = math.sqrt(max(0.0, (r[2, 2] + 1.0) * 0.5))
    if ax >= ay and ax >= az:
        ay = math.copysign(ay, r[0, 1])
        az = math.copysign(az, r[0, 2])
    elif ay >= az:
        ax = math.copysign(ax, r[0, 1])
        az = math.copysign(az, r[1, 2])
    else:
        ax = math.copysign(ax, r[0, 2])
        ay = math.copysign(ay, r[1, 2])
    n = math.sqrt(ax * ax + ay * ay + az * az)
    out[0], out[1], out[2] = angle * ax / n, angle * ay / n, angle * az / n


@numba.njit(cache=True, nogil=True)
def _pose_error(frame_pos, frame_rot, fi, target_pos, target_rot, err, rtmp, rvec):
    for a in range(3):
        err[a] = target_pos[a] - frame_pos[fi, a]
    # rotation error: log(R_target R^T), in the base frame
    for a in range(3):
        for b in range(3):
            s = 0.0
            for c in range(3):
                s += target_rot[a, c] * frame_rot[fi, b, c]
            rtmp[a, b] = s
    _rot_log(rtmp, rvec)
    err[3], err[4], err[5] = rvec[0], rvec[1], rvec[2]


@numba.njit(cache=True, nogil=True)
def arm_ik_solve(
    q, q_posture, lower, upper, target_pos, target_rot,
    parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, f_node, f_pos, f_rot, ee,
    rot_weight_m, damping, posture_gain, max_step_rad, max_iters, tol_m, tol_rad,
    node_pos, node_rot, frame_pos, frame_rot, jac_pos, jac_rot, jmat, a6, chol6, rhs6, y6, err, rtmp, rvec,
    dq, free6, q_best, result,
):
    """Damped least squares toward a wrist pose (position + orientation, base frame), posture
    in the null space, step norm bounded, joints clamped to limits. ``q`` is updated in place
    with the best configuration found; ``result`` gets (position error [m], rotation error
    [rad], iterations)."""
    nq = q.shape[0]
    best = 1e300
    it = 0
    for i in range(6):
        free6[i] = i
    for it in range(max_iters):
        fk_nodes(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, node_pos, node_rot)
        fk_frames(node_pos, node_rot, f_node, f_pos, f_rot, frame_pos, frame_rot)
        _pose_error(frame_pos, frame_rot, ee, target_pos, target_rot, err, rtmp, rvec)
        pe = math.sqrt(err[0] ** 2 + err[1] ** 2 + err[2] ** 2)
        re = math.sqrt(err[3] ** 2 + err[4] ** 2 + err[5] ** 2)
        score = pe + rot_weight_m * re
        if score < best:
            best = score
            for i in range(nq):
                q_best[i] = q[i]
            result[0] = pe
            result[1] = re
        if pe < tol_m and re < tol_rad:
            break
        frame_jacobians(node_pos, node_rot, parent, jtype, qidx, mult, axis, f_node, frame_pos, jac_pos, jac_rot)
        for a in range(3):
            for i in range(nq):
                jmat[a, i] = jac_pos[ee, a, i]
                jmat[a + 3, i] = rot_weight_m * jac_rot[ee, a, i]
        for a in range(3, 6):
            err[a] *= rot_weight_m
        # damping grows near singularities and with the error (no NaN, bounded steps)
        lam2 = damping * damping * (1.0 + 100.0 * (pe * pe + (rot_weight_m * re) ** 2))
        for a in range(6):
            for b in range(a + 1):
                s = 0.0
                for i in range(nq):
                    s += jmat[a, i] * jmat[b, i]
                a6[a, b] = s
                a6[b, a] = s
            a6[a, a] += lam2
        _chol_solve(a6, err, free6, 6, chol6, y6)
        for i in range(nq):
            s = 0.0
            for a in range(6):
                s += jmat[a, i] * y6[a]
            dq[i] = s
        # posture in the null space: (I - J^+ J) k (q_posture - q), J^+ = J^T (J J^T + lam2)^-1
        if posture_gain > 0.0:
            for a in range(6):
                s = 0.0
                for i in range(nq):
                    s += jmat[a, i] * posture_gain * (q_posture[i] - q[i])
                rhs6[a] = s
            _chol_solve(a6, rhs6, free6, 6, chol6, y6)
            for i in range(nq):
                s = 0.0
                for a in range(6):
                    s += jmat[a, i] * y6[a]
                dq[i] += posture_gain * (q_posture[i] - q[i]) - s
        norm = 0.0
        for i in range(nq):
            norm += dq[i] * dq[i]
        norm = math.sqrt(norm)
        f = max_step_rad / norm if norm > max_step_rad else 1.0
        for i in range(nq):
            q[i] = min(max(q[i] + f * dq[i], lower[i]), upper[i])
    # evaluate the last step too
    fk_nodes(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, node_pos, node_rot)
    fk_frames(node_pos, node_rot, f_node, f_pos, f_rot, frame_pos, frame_rot)
    _pose_error(frame_pos, frame_rot, ee, target_pos, target_rot, err, rtmp, rvec)
    pe = math.sqrt(err[0] ** 2 + err[1] ** 2 + err[2] ** 2)
    re = math.sqrt(err[3] ** 2 + err[4] ** 2 + err[5] ** 2)
    if pe + rot_weight_m * re < best:
        result[0] = pe
        result[1] = re
    else:
        for i in range(nq):
            q[i] = q_best[i]
    result[2] = it + 1
