"""One-Euro filter steps (Casiez, Roussel, Vogel, CHI 2012) over preallocated state arrays.

``one_euro_step`` filters N independent channels sharing one clock. ``so3_one_euro_step`` filters
a unit quaternion (w, x, y, z) on the rotation manifold: the "difference" to the previous output
is the rotation vector ``log(q_prev^-1 q)`` (shortest arc, so ``q`` and ``-q`` give the same
result), the derivative is the angular velocity, and the low-pass step is a geodesic interpolation
``q_prev exp(alpha log(q_prev^-1 q))``. One cutoff from the angular speed serves all three axes,
so the filter is independent of the frame the rotation is expressed in.

State: ``t_prev`` Shape (1,) float64, ``initialised`` Shape (1,) bool_. The first sample (or the
first after ``initialised[0] = False``) is passed through. A sample whose ``dt`` is not > 0
(repeated or out-of-order timestamp, NaN time) returns the previous output and leaves the state
alone. ``out`` may be the input array itself.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["one_euro_step", "so3_one_euro_step", "smoothing_factor"]


@numba.njit(cache=True, nogil=True)
def smoothing_factor(dt_s: float, cutoff_hz: float) -> float:
    """Smoothing factor of a first-order low-pass at ``cutoff_hz`` for a time step ``dt_s``."""
    r = 2.0 * math.pi * cutoff_hz * dt_s
    return r / (r + 1.0)


@numba.njit(cache=True, nogil=True)
def one_euro_step(
    x: np.ndarray,
    t_s: float,
    x_prev: np.ndarray,
    dx_prev: np.ndarray,
    t_prev: np.ndarray,
    initialised: np.ndarray,
    min_cutoff_hz: float,
    beta: float,
    d_cutoff_hz: float,
    out: np.ndarray,
) -> None:
    """One sample of N channels.

    Shapes: x, x_prev, dx_prev, out (N,); t_prev (1,); initialised (1,).
    """
    n = x.shape[0]
    if not initialised[0]:
        for i in range(n):
            x_prev[i] = x[i]
            dx_prev[i] = 0.0
            out[i] = x[i]
        t_prev[0] = t_s
        initialised[0] = True
        return
    dt = t_s - t_prev[0]
    if not dt > 0.0:
        for i in range(n):
            out[i] = x_prev[i]
        return
    a_d = smoothing_factor(dt, d_cutoff_hz)
    for i in range(n):
        xi = x[i]
        dx = (xi - x_prev[i]) / dt
        dx_hat = a_d * dx + (1.0 - a_d) * dx_prev[i]
        a = smoothing_factor(dt, min_cutoff_hz + beta * abs(dx_hat))
        x_hat = a * xi + (1.0 - a) * x_prev[i]
        x_prev[i] = x_hat
        dx_prev[i] = dx_hat
        out[i] = x_hat
    t_prev[0] = t_s


@numba.njit(cache=True, nogil=True)
def so3_one_euro_step(
    q: np.ndarray,
    t_s: float,
    q_prev: np.ndarray,
    w_prev: np.ndarray,
    t_prev: np.ndarray,
    initialised: np.ndarray,
    min_cutoff_hz: float,
    beta: float,
    d_cutoff_hz: float,
    out: np.ndarray,
) -> None:
    """One quaternion sample. Shapes: q, q_prev, out (4,) as (w, x, y, z); w_prev (3,) the filtered
    angular velocity [rad/s] in the body frame; t_prev (1,); initialised (1,).

    ``q`` need not be normalised; the output is a unit quaternion in the hemisphere of the previous
    output (consecutive outputs have a non-negative dot product), so a sign flip of the input never
    flips the output. The first output has w >= 0.
    """
    qw = q[0]
    qx = q[1]
    qy = q[2]
    qz = q[3]
    nrm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    if not initialised[0]:
        if not nrm > 0.0:  # no orientation yet: identity
            qw, qx, qy, qz, nrm = 1.0, 0.0, 0.0, 0.0, 1.0
        s = 1.0 / nrm if qw >= 0.0 else -1.0 / nrm
        q_prev[0] = qw * s
        q_prev[1] = qx * s
        q_prev[2] = qy * s
        q_prev[3] = qz * s
        for i in range(3):
            w_prev[i] = 0.0
        for i in range(4):
            out[i] = q_prev[i]
        t_prev[0] = t_s
        initialised[0] = True
        return
    dt = t_s - t_prev[0]
    if not (dt > 0.0 and nrm > 0.0):
        for i in range(4):
            out[i] = q_prev[i]
        return
    pw = q_prev[0]
    px = q_prev[1]
    py = q_prev[2]
    pz = q_prev[3]
    # d = conj(p) * q / |q|  (rotation from the previous output to the sample, body frame)
    dw = (pw * qw + px * qx + py * qy + pz * qz) / nrm
    dx = (pw * qx - px * qw - py * qz + pz * qy) / nrm
    dy = (pw * qy + px * qz - py * qw - pz * qx) / nrm
    dz = (pw * qz - px * qy + py * qx - pz * qw) / nrm
    if dw < 0.0:  # shortest arc: q and -q are the same rotation
        dw, dx, dy, dz = -dw, -dx, -dy, -dz
    # rotation vector r = log(d) = angle * axis
    sv = math.sqrt(dx * dx + dy * dy + dz * dz)
    if sv < 1e-12:
        k = 2.0  # angle / sin(angle / 2) -> 2 as the angle -> 0
    else:
        k = 2.0 * math.atan2(sv, dw) / sv
    rx = k * dx
    ry = k * dy
    rz = k * dz
    a_d = smoothing_factor(dt, d_cutoff_hz)
    wx = a_d * rx / dt + (1.0 - a_d) * w_prev[0]
    wy = a_d * ry / dt + (1.0 - a_d) * w_prev[1]
    wz = a_d * rz / dt + (1.0 - a_d) * w_prev[2]
    speed = math.sqrt(wx * wx + wy * wy + wz * wz)
    a = smoothing_factor(dt, min_cutoff_hz + beta * speed)
    # e = exp(a * r / 2 as a quaternion half-angle)
    half = 0.5 * a * math.sqrt(rx * rx + ry * ry + rz * rz)
    ew = math.cos(half)
    if half < 1e-12:
        c = 0.5 * a
    else:
        c = 0.5 * a * math.sin(half) / half
    ex = c * rx
    ey = c * ry
    ez = c * rz
    # new = p * e, renormalised against rounding drift
    nw = pw * ew - px * ex - py * ey - pz * ez
    nx = pw * ex + px * ew + py * ez - pz * ey
    ny = pw * ey - px * ez + py * ew + pz * ex
    nz = pw * ez + px * ey - py * ex + pz * ew
    inv = 1.0 / math.sqrt(nw * nw + nx * nx + ny * ny + nz * nz)
    q_prev[0] = nw * inv
    q_prev[1] = nx * inv
    q_prev[2] = ny * inv
    q_prev[3] = nz * inv
    w_prev[0] = wx
    w_prev[1] = wy
    w_prev[2] = wz
    for i in range(4):
        out[i] = q_prev[i]
    t_prev[0] = t_s
