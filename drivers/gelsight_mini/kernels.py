"""Numba kernels of the GelSight Mini tactile pipeline (docs/gelsight.md), on the processed image.

Every kernel is a pure function over preallocated arrays: it writes its outputs into arrays passed
in, allocates nothing and keeps no state; the wrappers in ``drivers/gelsight_mini/tactile.py`` own
the buffers. Each kernel has a plain-NumPy twin in ``teleop/bench/tactile.py`` that the tests
compare it with.

Conventions: images are (H, W) row-major, ``float32`` values in 0..1; positions are (x, y) [px]
with x along columns and y along rows, pixel centres at integer coordinates. Box windows are
truncated at the image border and normalised by the number of pixels they cover.

Stages per frame: ``rgb_to_gray`` -> ``box_blur`` (background) -> ``high_pass`` -> ``track_markers``;
``marker_free_weights`` -> ``masked_blur_rgb`` -> ``contact_threshold`` -> ``binary_erode`` /
``binary_dilate`` -> ``fill_holes``; ``contact_features``. Once per reference frame:
``label_dark_blobs`` (marker detection).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "rgb_to_gray",
    "box_blur",
    "high_pass",
    "label_dark_blobs",
    "track_markers",
    "marker_free_weights",
    "masked_blur_rgb",
    "contact_threshold",
    "binary_erode",
    "binary_dilate",
    "fill_holes",
    "contact_features",
    "N_FEATURES",
]

#: ``contact_features`` output: shear x, shear y [mm], contact area [mm^2], mean divergence, mean curl.
N_FEATURES = 5


@numba.njit(cache=True, nogil=True)
def rgb_to_gray(rgb: np.ndarray, out: np.ndarray) -> None:
    """Gray as the SDK computes it: per-pixel max over R, G, B, scaled to 0..1.

    Shapes: rgb (H, W, 3) uint8; out (H, W) float32.
    """
    h, w = out.shape
    scale = np.float32(1.0 / 255.0)
    for y in range(h):
        for x in range(w):
            r = rgb[y, x, 0]
            g = rgb[y, x, 1]
            b = rgb[y, x, 2]
            m = r if r > g else g
            m = m if m > b else b
            out[y, x] = np.float32(m) * scale


@numba.njit(cache=True, nogil=True)
def _blur_rows(src: np.ndarray, r: int, out: np.ndarray) -> None:
    h, w = src.shape
    for y in range(h):
        acc = 0.0
        for x in range(min(r, w - 1) + 1):
            acc += src[y, x]
        for x in range(w):
            lo = x - r
            hi = x + r
            n = min(hi, w - 1) - max(lo, 0) + 1
            out[y, x] = acc / n
            if hi + 1 < w:
                acc += src[y, hi + 1]
            if lo >= 0:
                acc -= src[y, lo]


@numba.njit(cache=True, nogil=True)
def _blur_cols(src: np.ndarray, r: int, acc: np.ndarray, out: np.ndarray) -> None:
    # Row-major sweep with one running sum per column (acc, Shape (W,)), so memory is read in order.
    h, w = src.shape
    for x in range(w):
        acc[x] = 0.0
    for y in range(min(r, h - 1) + 1):
        for x in range(w):
            acc[x] += src[y, x]
    for y in range(h):
        lo = y - r
        hi = y + r
        n = min(hi, h - 1) - max(lo, 0) + 1
        inv = 1.0 / n
        for x in range(w):
            out[y, x] = acc[x] * inv
        if hi + 1 < h:
            for x in range(w):
                acc[x] += src[hi + 1, x]
        if lo >= 0:
            for x in range(w):
                acc[x] -= src[lo, x]


@numba.njit(cache=True, nogil=True)
def box_blur(src: np.ndarray, r: int, tmp: np.ndarray, acc: np.ndarray, out: np.ndarray) -> None:
    """Mean over the (2r+1)^2 window (truncated at the border), separable running sums: O(1) per
    pixel whatever ``r``.

    Shapes: src, tmp, out (H, W) float32 (``out`` may not be ``src``); acc (W,) float64.
    """
    _blur_rows(src, r, tmp)
    _blur_cols(tmp, r, acc, out)


@numba.njit(cache=True, nogil=True)
def high_pass(
    gray: np.ndarray, r: int, passes: int, tmp: np.ndarray, tmp2: np.ndarray, acc: np.ndarray, out: np.ndarray
) -> None:
    """``gray`` minus its background: ``passes`` box blurs of radius ``r`` (2-3 passes approximate
    a Gaussian of sigma ~ r * sqrt(passes / 3)). Dark markers are negative.

    Shapes: gray, tmp, tmp2, out (H, W) float32; acc (W,) float64.
    """
    h, w = gray.shape
    box_blur(gray, r, tmp, acc, out)
    for _ in range(passes - 1):
        box_blur(out, r, tmp, acc, tmp2)
        for y in range(h):
            for x in range(w):
                out[y, x] = tmp2[y, x]
    for y in range(h):
        for x in range(w):
            out[y, x] = gray[y, x] - out[y, x]


@numba.njit(cache=True, nogil=True)
def label_dark_blobs(
    hp: np.ndarray,
    threshold: float,
    min_area: int,
    max_area: int,
    labels: np.ndarray,
    stack: np.ndarray,
    out_xy: np.ndarray,
    out_area: np.ndarray,
) -> int:
    """Marker detection: 4-connected components of ``hp < -threshold``, kept when their area is in
    [min_area, max_area]; writes their (unweighted) centroids. Returns how many were written
    (at most ``out_xy.shape[0]``; components are visited in raster order of their first pixel).

    Shapes: hp (H, W) float32; labels (H, W) int32 (overwritten: 0 background, k>0 component k,
    rejected ones included); stack (H*W,) int32; out_xy (K, 2) float64; out_area (K,) int32.
    """
    h, w = hp.shape
    for y in range(h):
        for x in range(w):
            labels[y, x] = 0
    next_label = 0
    n = 0
    for y0 in range(h):
        for x0 in range(w):
            if labels[y0, x0] != 0 or not hp[y0, x0] < -threshold:
                continue
            next_label += 1
            labels[y0, x0] = next_label
            top = 0
            stack[top] = y0 * w + x0
            top += 1
            area = 0
            sx = 0.0
            sy = 0.0
            while top > 0:
                top -= 1
                p = stack[top]
                py = p // w
                px = p - py * w
                area += 1
                sx += px
                sy += py
                for k in range(4):
                    qy = py + (1 if k == 0 else (-1 if k == 1 else 0))
                    qx = px + (1 if k == 2 else (-1 if k == 3 else 0))
                    if qy < 0 or qy >= h or qx < 0 or qx >= w:
                        continue
                    if labels[qy, qx] == 0 and hp[qy, qx] < -threshold:
                        labels[qy, qx] = next_label
                        stack[top] = qy * w + qx
                        top += 1
            if min_area <= area <= max_area and n < out_xy.shape[0]:
                out_xy[n, 0] = sx / area
                out_xy[n, 1] = sy / area
                out_area[n] = area
                n += 1
    return n


@numba.njit(cache=True, nogil=True)
def track_markers(
    hp: np.ndarray,
    prev: np.ndarray,
    n: int,
    search_radius: float,
    refine_radius: float,
    iterations: int,
    weight_floor: float,
    out: np.ndarray,
    found: np.ndarray,
) -> int:
    """Mean-shift on marker darkness: for each marker, ``iterations`` steps of the centroid of
    weights ``max(0, -hp - weight_floor)`` over a disc around the current estimate (radius
    ``search_radius`` for the first step, ``refine_radius`` after). A marker whose disc holds no
    weight keeps its previous position and gets ``found[i] = False``. Returns the number found.

    Shapes: hp (H, W) float32; prev, out (M, 2) float64 (x, y) [px], may be the same array;
    found (M,) bool; only the first ``n`` rows are used.
    """
    h, w = hp.shape
    n_found = 0
    for i in range(n):
        cx = prev[i, 0]
        cy = prev[i, 1]
        ok = True
        for it in range(iterations):
            rad = search_radius if it == 0 else refine_radius
            r2 = rad * rad
            rr = int(math.ceil(rad))
            ix = int(math.floor(cx + 0.5))
            iy = int(math.floor(cy + 0.5))
            sw = 0.0
            sx = 0.0
            sy = 0.0
            for y in range(max(iy - rr, 0), min(iy + rr, h - 1) + 1):
                dy = y - cy
                for x in range(max(ix - rr, 0), min(ix + rr, w - 1) + 1):
                    dx = x - cx
                    if dx * dx + dy * dy > r2:
                        continue
                    wt = -hp[y, x] - weight_floor
                    if wt > 0.0:
                        sw += wt
                        sx += wt * x
                        sy += wt * y
            if not sw > 0.0:
                ok = False
                break
            cx = sx / sw
            cy = sy / sw
        if ok:
            out[i, 0] = cx
            out[i, 1] = cy
            n_found += 1
        else:
            out[i, 0] = prev[i, 0]
            out[i, 1] = prev[i, 1]
        found[i] = ok
    return n_found


@numba.njit(cache=True, nogil=True)
def marker_free_weights(hp: np.ndarray, threshold: float, out: np.ndarray) -> None:
    """1 where the pixel is gel background (``hp >= -threshold``), 0 on markers.

    Shapes: hp (H, W) float32; out (H, W) uint8.
    """
    h, w = hp.shape
    for y in range(h):
        for x in range(w):
            out[y, x] = 1 if hp[y, x] >= -threshold else 0


@numba.njit(cache=True, nogil=True)
def masked_blur_rgb(
    rgb: np.ndarray, weight: np.ndarray, r: int, tmp: np.ndarray, acc: np.ndarray, out: np.ndarray
) -> None:
    """Normalised convolution: per channel, sum(weight * rgb) / sum(weight) over the (2r+1)^2 box,
    in 0..1; -1 where the window holds no weight. With marker-free weights this is the local gel
    colour with the markers left out. Sums are integers (exact).

    Shapes: rgb (H, W, 3) uint8; weight (H, W) uint8 (0 or 1); tmp (H, W, 4) int32 and acc (W, 4)
    int32, both C-contiguous; out (H, W, 3) float32.
    """
    h, w = weight.shape
    scale = 1.0 / 255.0
    for y in range(h):  # rows: running sums of w*R, w*G, w*B, w
        a0 = 0
        a1 = 0
        a2 = 0
        a3 = 0
        for x in range(min(r, w - 1) + 1):
            if weight[y, x]:
                a0 += rgb[y, x, 0]
                a1 += rgb[y, x, 1]
                a2 += rgb[y, x, 2]
                a3 += 1
        for x in range(w):
            tmp[y, x, 0] = a0
            tmp[y, x, 1] = a1
            tmp[y, x, 2] = a2
            tmp[y, x, 3] = a3
            hi = x + r + 1
            lo = x - r
            if hi < w and weight[y, hi]:
                a0 += rgb[y, hi, 0]
                a1 += rgb[y, hi, 1]
                a2 += rgb[y, hi, 2]
                a3 += 1
            if lo >= 0 and weight[y, lo]:
                a0 -= rgb[y, lo, 0]
                a1 -= rgb[y, lo, 1]
                a2 -= rgb[y, lo, 2]
                a3 -= 1
    # columns: one running sum per (column, channel), rows swept in memory order
    t2 = tmp.reshape(h, w * 4)
    a2d = acc.reshape(w * 4)
    for j in range(w * 4):
        a2d[j] = 0
    for y in range(min(r, h - 1) + 1):
        for j in range(w * 4):
            a2d[j] += t2[y, j]
    for y in range(h):
        for x in range(w):
            den = acc[x, 3]
            if den > 0:
                inv = scale / den
                out[y, x, 0] = acc[x, 0] * inv
                out[y, x, 1] = acc[x, 1] * inv
                out[y, x, 2] = acc[x, 2] * inv
            else:
                out[y, x, 0] = -1.0
                out[y, x, 1] = -1.0
                out[y, x, 2] = -1.0
        hi = y + r + 1
        lo = y - r
        if hi < h:
            for j in range(w * 4):
                a2d[j] += t2[hi, j]
        if lo >= 0:
            for j in range(w * 4):
                a2d[j] -= t2[lo, j]


@numba.njit(cache=True, nogil=True)
def contact_threshold(cur: np.ndarray, ref: np.ndarray, threshold: float, out: np.ndarray) -> None:
    """Contact where the largest per-channel change of the local gel colour exceeds ``threshold``
    (pixels where either colour is undefined, -1, are not contact).

    Shapes: cur, ref (H, W, 3) float32; out (H, W) bool.
    """
    h, w = out.shape
    for y in range(h):
        for x in range(w):
            if cur[y, x, 0] < 0.0 or ref[y, x, 0] < 0.0:
                out[y, x] = False
                continue
            d = 0.0
            for c in range(3):
                e = abs(cur[y, x, c] - ref[y, x, c])
                if e > d:
                    d = e
            out[y, x] = d > threshold


@numba.njit(cache=True, nogil=True)
def _morph(src: np.ndarray, r: int, erode: bool, tmp: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None:
    # Square structuring element, separable; windows truncated at the border (the border neither
    # erodes nor dilates). erode: all pixels in the window set; dilate: any. Both passes sweep
    # rows in memory order (the column pass keeps one running count per column).
    h, w = src.shape
    for y in range(h):
        cnt = 0
        for x in range(min(r, w - 1) + 1):
            cnt += 1 if src[y, x] else 0
        for x in range(w):
            n = min(x + r, w - 1) - max(x - r, 0) + 1
            tmp[y, x] = cnt == n if erode else cnt > 0
            if x + r + 1 < w and src[y, x + r + 1]:
                cnt += 1
            if x - r >= 0 and src[y, x - r]:
                cnt -= 1
    for x in range(w):
        counts[x] = 0
    for y in range(min(r, h - 1) + 1):
        for x in range(w):
            counts[x] += 1 if tmp[y, x] else 0
    for y in range(h):
        n = min(y + r, h - 1) - max(y - r, 0) + 1
        if erode:
            for x in range(w):
                out[y, x] = counts[x] == n
        else:
            for x in range(w):
                out[y, x] = counts[x] > 0
        if y + r + 1 < h:
            for x in range(w):
                counts[x] += 1 if tmp[y + r + 1, x] else 0
        if y - r >= 0:
            for x in range(w):
                counts[x] -= 1 if tmp[y - r, x] else 0


@numba.njit(cache=True, nogil=True)
def binary_erode(src: np.ndarray, r: int, tmp: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None:
    """Erosion by a (2r+1)^2 square. Shapes: src, tmp, out (H, W) bool (``out`` may not be ``src``);
    counts (W,) int32."""
    _morph(src, r, True, tmp, counts, out)


@numba.njit(cache=True, nogil=True)
def binary_dilate(src: np.ndarray, r: int, tmp: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None:
    """Dilation by a (2r+1)^2 square. Shapes: src, tmp, out (H, W) bool (``out`` may not be ``src``);
    counts (W,) int32."""
    _morph(src, r, False, tmp, counts, out)


@numba.njit(cache=True, nogil=True)
def fill_holes(mask: np.ndarray, stack: np.ndarray, seen: np.ndarray, out: np.ndarray) -> None:
    """``mask`` with every background region that does not reach the image border set (holes in
    the contact patch, e.g. the flat middle of a flat indenter, whose shading does not change).

    Work is limited to the mask's bounding box grown by one pixel: every background pixel outside
    it reaches the border in a straight line, so the flood starts from that ring.

    Shapes: mask, seen, out (H, W) bool (``out`` may be ``mask``); stack (H*W,) int32.
    """
    h, w = mask.shape
    y0 = h
    y1 = -1
    x0 = w
    x1 = -1
    for y in range(h):
        for x in range(w):
            out[y, x] = mask[y, x]
            if mask[y, x]:
                if y < y0:
                    y0 = y
                if y > y1:
                    y1 = y
                if x < x0:
                    x0 = x
                if x > x1:
                    x1 = x
    if y1 < 0:
        return
    y0 = max(y0 - 1, 0)
    y1 = min(y1 + 1, h - 1)
    x0 = max(x0 - 1, 0)
    x1 = min(x1 + 1, w - 1)
    top = 0
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            ring = y == y0 or y == y1 or x == x0 or x == x1
            if ring and not mask[y, x]:
                seen[y, x] = True
                stack[top] = y * w + x
                top += 1
            else:
                seen[y, x] = False
    while top > 0:
        top -= 1
        p = stack[top]
        py = p // w
        px = p - py * w
        for k in range(4):
            qy = py + (1 if k == 0 else (-1 if k == 1 else 0))
            qx = px + (1 if k == 2 else (-1 if k == 3 else 0))
            if qy < y0 or qy > y1 or qx < x0 or qx > x1:
                continue
            if not seen[qy, qx] and not mask[qy, qx]:
                seen[qy, qx] = True
                stack[top] = qy * w + qx
                top += 1
    for y in range(y0 + 1, y1):
        for x in range(x0 + 1, x1):
            if not seen[y, x]:
                out[y, x] = True


@numba.njit(cache=True, nogil=True)
def contact_features(
    ref: np.ndarray, cur: np.ndarray, n: int, mask: np.ndarray, mm_per_px: float, out: np.ndarray
) -> int:
    """Features of the displacement field d_i = cur_i - ref_i over the markers whose current
    position lies in the contact mask. Least-squares fit of d = t + e r + q (-r_y, r_x), with r the
    reference position minus the centroid of those markers:

    * out[0], out[1]: shear t = mean displacement [mm];
    * out[2]: contact area [mm^2] (mask pixels * mm_per_px^2);
    * out[3]: mean divergence 2e (dimensionless; > 0 when markers spread out under a press);
    * out[4]: mean curl 2q (dimensionless; for a rigid twist by a small angle a, 2a; positive
      from +x towards +y, i.e. clockwise on screen since y points down).

    Divergence and curl need 3 markers in contact, else 0. Returns the number of markers in contact.

    Shapes: ref, cur (M, 2) float64 (x, y) [px], first ``n`` rows used; mask (H, W) bool; out (5,) float64.
    """
    h, w = mask.shape
    area = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                area += 1
    for k in range(N_FEATURES):
        out[k] = 0.0
    out[2] = area * mm_per_px * mm_per_px
    k_in = 0
    tx = 0.0
    ty = 0.0
    cx = 0.0
    cy = 0.0
    for i in range(n):
        ix = min(max(int(math.floor(cur[i, 0] + 0.5)), 0), w - 1)
        iy = min(max(int(math.floor(cur[i, 1] + 0.5)), 0), h - 1)
        if mask[iy, ix]:
            k_in += 1
            tx += cur[i, 0] - ref[i, 0]
            ty += cur[i, 1] - ref[i, 1]
            cx += ref[i, 0]
            cy += ref[i, 1]
    if k_in == 0:
        return 0
    tx /= k_in
    ty /= k_in
    cx /= k_in
    cy /= k_in
    out[0] = tx * mm_per_px
    out[1] = ty * mm_per_px
    if k_in < 3:
        return k_in
    srr = 0.0
    sdiv = 0.0
    scurl = 0.0
    for i in range(n):
        ix = min(max(int(math.floor(cur[i, 0] + 0.5)), 0), w - 1)
        iy = min(max(int(math.floor(cur[i, 1] + 0.5)), 0), h - 1)
        if mask[iy, ix]:
            rx = ref[i, 0] - cx
            ry = ref[i, 1] - cy
            dx = cur[i, 0] - ref[i, 0] - tx
            dy = cur[i, 1] - ref[i, 1] - ty
            srr += rx * rx + ry * ry
            sdiv += rx * dx + ry * dy
            scurl += rx * dy - ry * dx
    if srr > 1e-9:
        out[3] = 2.0 * sdiv / srr
        out[4] = 2.0 * scurl / srr
    return k_in
