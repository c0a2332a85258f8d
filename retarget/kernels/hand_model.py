"""Forward kinematics of the parametric human hand (21 keypoints from 20 joint angles).

Layout (see ``retarget/human_hand.py`` and ``docs/hand-keypoints.md``): five chains, thumb,
index, middle, ring, pinky (chain ``c``); angles ``4 * c .. 4 * c + 3``; keypoints
``1 + 4 * c .. 4 + 4 * c``; keypoint 0 is the wrist at the origin. The skeleton is given in the
LEFT-hand wrist frame (y towards the thumb); ``sign_y = -1`` mirrors the result to a right hand.

Per chain, with ``q0..q3`` its four angles (plus calibration offsets):

- in-plane angle ``psi`` (rotation about the palm normal z, + turns x towards +y):
  thumb ``rest_yaw - q1`` (cmc_flex swings across the palm), long fingers
  ``rest_yaw + s * q0`` with ``s = +1`` for index and middle, ``-1`` for ring and pinky
  (abduction spreads away from the middle finger; the middle finger's + is towards the thumb);
- tilt ``a`` out of the palm plane towards +z: thumb ``q0`` (cmc_abd), fingers ``q1`` (mcp_flex);
- a fixed axial twist ``tau`` about the first segment (the thumb's pronation; 0 for fingers).

Chain frame ``R = Rz(psi) Ry(-a) Rx(tau)``; segment ``j`` points along
``R (cos phi_j, 0, sin phi_j)`` with ``phi = (0, q2, q2 + q3)``, so the two distal flexions curl
the segments towards the (twisted) palmar side in one plane.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["hand_keypoints", "hand_keypoints_batch"]


@numba.njit(cache=True, nogil=True)
def hand_keypoints(
    angles_rad: np.ndarray,
    angle_offset_rad: np.ndarray,
    base_pos_m: np.ndarray,
    seg_len_m: np.ndarray,
    rest_yaw_rad: np.ndarray,
    twist_rad: np.ndarray,
    sign_y: float,
    out: np.ndarray,
) -> None:
    """Write the 21 keypoints of one hand into ``out``.

    Shapes: angles_rad (20,), angle_offset_rad (20,), base_pos_m (5, 3) (thumb CMC and the four
    MCPs, left-hand frame), seg_len_m (5, 3), rest_yaw_rad (5,), twist_rad (5,), out (21, 3).
    ``sign_y`` is +1.0 for a left hand and -1.0 for a right hand.
    """
    out[0, 0] = 0.0
    out[0, 1] = 0.0
    out[0, 2] = 0.0
    for c in range(5):
        k = 4 * c
        q0 = angles_rad[k] + angle_offset_rad[k]
        q1 = angles_rad[k + 1] + angle_offset_rad[k + 1]
        q2 = angles_rad[k + 2] + angle_offset_rad[k + 2]
        q3 = angles_rad[k + 3] + angle_offset_rad[k + 3]
        if c == 0:
            psi = rest_yaw_rad[0] - q1
            tilt = q0
        elif c <= 2:
            psi = rest_yaw_rad[c] + q0
            tilt = q1
        else:
            psi = rest_yaw_rad[c] - q0
            tilt = q1
        cp = math.cos(psi)
        sp = math.sin(psi)
        ca = math.cos(tilt)
        sa = math.sin(tilt)
        ct = math.cos(twist_rad[c])
        st = math.sin(twist_rad[c])
        # columns x and z of R = Rz(psi) Ry(-tilt) Rx(tau)
        exx = cp * ca
        exy = sp * ca
        exz = sa
        ezx = -cp * sa * ct + sp * st
        ezy = -sp * sa * ct - cp * st
        ezz = ca * ct
        px = base_pos_m[c, 0]
        py = base_pos_m[c, 1]
        pz = base_pos_m[c, 2]
        kp = 1 + k
        out[kp, 0] = px
        out[kp, 1] = sign_y * py
        out[kp, 2] = pz
        phi = 0.0
        for j in range(3):
            if j == 1:
                phi = q2
            elif j == 2:
                phi = q2 + q3
            cf = math.cos(phi)
            sf = math.sin(phi)
            length = seg_len_m[c, j]
            px += length * (cf * exx + sf * ezx)
            py += length * (cf * exy + sf * ezy)
            pz += length * (cf * exz + sf * ezz)
            out[kp + 1 + j, 0] = px
            out[kp + 1 + j, 1] = sign_y * py
            out[kp + 1 + j, 2] = pz


@numba.njit(cache=True, nogil=True)
def hand_keypoints_batch(
    angles_rad: np.ndarray,
    angle_offset_rad: np.ndarray,
    base_pos_m: np.ndarray,
    seg_len_m: np.ndarray,
    rest_yaw_rad: np.ndarray,
    twist_rad: np.ndarray,
    sign_y: float,
    out: np.ndarray,
) -> None:
    """``hand_keypoints`` for every row. Shapes: angles_rad (T, 20), out (T, 21, 3)."""
    for t in range(angles_rad.shape[0]):
        hand_keypoints(
            angles_rad[t],
            angle_offset_rad,
            base_pos_m,
            seg_len_m,
            rest_yaw_rad,
            twist_rad,
            sign_y,
            out[t],
        )
