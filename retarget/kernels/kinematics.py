"""Tree forward kinematics and frame Jacobians over flat arrays (see retarget/kinematics.py for
the layout). Pure functions: they read the tree arrays and write into caller-owned outputs.

Node i: pose = pose[parent[i]] * (T_pos[i], T_rot[i]) * motion(jtype[i], axis[i], value), with
value = offset[i] + mult[i] * q[qidx[i]] (mimic/coupled joints share an independent coordinate).
Node order is topological (parents first); parent -1 is the tree's base frame.
"""

from __future__ import annotations

import math

import numba

__all__ = ["fk_nodes", "fk_frames", "frame_jacobians", "FIXED", "REVOLUTE", "PRISMATIC"]

FIXED = 0
REVOLUTE = 1
PRISMATIC = 2


@numba.njit(cache=True, nogil=True)
def fk_nodes(q, parent, jtype, qidx, mult, offset, axis, t_pos, t_rot, node_pos, node_rot):
    """Node poses in the base frame. Shapes: q (nq,), node_pos (n, 3), node_rot (n, 3, 3)."""
    n = parent.shape[0]
    for i in range(n):
        p = parent[i]
        # pre-transform from the parent node
        if p < 0:
            for a in range(3):
                node_pos[i, a] = t_pos[i, a]
                for b in range(3):
                    node_rot[i, a, b] = t_rot[i, a, b]
        else:
            for a in range(3):
                s = node_pos[p, a]
                for b in range(3):
                    s += node_rot[p, a, b] * t_pos[i, b]
                node_pos[i, a] = s
            if t_rot[i, 0, 0] == 1.0 and t_rot[i, 1, 1] == 1.0 and t_rot[i, 2, 2] == 1.0:
                for a in range(3):  # identity pre-rotation (most chain links): copy
                    for b in range(3):
                        node_rot[i, a, b] = node_rot[p, a, b]
            else:
                for a in range(3):
                    for b in range(3):
                        s = 0.0
                        for c in range(3):
                            s += node_rot[p, a, c] * t_rot[i, c, b]
                        node_rot[i, a, b] = s
        jt = jtype[i]
        if jt == FIXED:
            continue
        v = offset[i] + mult[i] * q[qidx[i]]
        ux, uy, uz = axis[i, 0], axis[i, 1], axis[i, 2]
        if jt == PRISMATIC:
            for a in range(3):
                node_pos[i, a] += v * (node_rot[i, a, 0] * ux + node_rot[i, a, 1] * uy + node_rot[i, a, 2] * uz)
            continue
        # revolute: node_rot = node_rot @ Rodrigues(axis, v)
        c = math.cos(v)
        s = math.sin(v)
        t = 1.0 - c
        r00 = c + t * ux * ux
        r01 = t * ux * uy - s * uz
        r02 = t * ux * uz + s * uy
        r10 = t * ux * uy + s * uz
        r11 = c + t * uy * uy
        r12 = t * uy * uz - s * ux
        r20 = t * ux * uz - s * uy
        r21 = t * uy * uz + s * ux
        r22 = c + t * uz * uz
        for a in range(3):
            m0 = node_rot[i, a, 0]
            m1 = node_rot[i, a, 1]
            m2 = node_rot[i, a, 2]
            node_rot[i, a, 0] = m0 * r00 + m1 * r10 + m2 * r20
            node_rot[i, a, 1] = m0 * r01 + m1 * r11 + m2 * r21
            node_rot[i, a, 2] = m0 * r02 + m1 * r12 + m2 * r22


@numba.njit(cache=True, nogil=True)
def fk_frames(node_pos, node_rot, f_node, f_pos, f_rot, frame_pos, frame_rot):
    """Frame poses from node poses. Shapes: frame_pos (nf, 3), frame_rot (nf, 3, 3)."""
    for f in range(f_node.shape[0]):
        k = f_node[f]
        if k < 0:  # attached to the base frame itself
            for a in range(3):
                frame_pos[f, a] = f_pos[f, a]
                for b in range(3):
                    frame_rot[f, a, b] = f_rot[f, a, b]
            continue
        for a in range(3):
            s = node_pos[k, a]
            for b in range(3):
                s += node_rot[k, a, b] * f_pos[f, b]
            frame_pos[f, a] = s
            for b in range(3):
                s = 0.0
                for c in range(3):
                    s += node_rot[k, a, c] * f_rot[f, c, b]
                frame_rot[f, a, b] = s


@numba.njit(cache=True, nogil=True)
def frame_jacobians(node_pos, node_rot, parent, jtype, qidx, mult, axis, f_node, frame_pos, jac_pos, jac_rot):
    """Position and rotation Jacobians of every frame w.r.t. the independent coordinates, in the
    base frame (world-aligned at the frame origin). Shapes: jac_pos, jac_rot (nf, 3, nq); both are
    overwritten. Pass a (0, 3, nq) array as jac_rot to skip rotations."""
    nf = f_node.shape[0]
    nq = jac_pos.shape[2]
    want_rot = jac_rot.shape[0] == nf
    for f in range(nf):
        for a in range(3):
            for j in range(nq):
                jac_pos[f, a, j] = 0.0
                if want_rot:
                    jac_rot[f, a, j] = 0.0
        k = f_node[f]
        while k >= 0:
            jt = jtype[k]
            if jt != FIXED:
                ux, uy, uz = axis[k, 0], axis[k, 1], axis[k, 2]
                zx = node_rot[k, 0, 0] * ux + node_rot[k, 0, 1] * uy + node_rot[k, 0, 2] * uz
                zy = node_rot[k, 1, 0] * ux + node_rot[k, 1, 1] * uy + node_rot[k, 1, 2] * uz
                zz = node_rot[k, 2, 0] * ux + node_rot[k, 2, 1] * uy + node_rot[k, 2, 2] * uz
                col = qidx[k]
                m = mult[k]
                if jt == REVOLUTE:
                    dx = frame_pos[f, 0] - node_pos[k, 0]
                    dy = frame_pos[f, 1] - node_pos[k, 1]
                    dz = frame_pos[f, 2] - node_pos[k, 2]
                    jac_pos[f, 0, col] += m * (zy * dz - zz * dy)
                    jac_pos[f, 1, col] += m * (zz * dx - zx * dz)
                    jac_pos[f, 2, col] += m * (zx * dy - zy * dx)
                    if want_rot:
                        jac_rot[f, 0, col] += m * zx
                        jac_rot[f, 1, col] += m * zy
                        jac_rot[f, 2, col] += m * zz
                else:
                    jac_pos[f, 0, col] += m * zx
                    jac_pos[f, 1, col] += m * zy
                    jac_pos[f, 2, col] += m * zz
            k = parent[k]
