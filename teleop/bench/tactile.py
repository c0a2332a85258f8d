"""``teleop bench tactile``: the GelSight Mini per-frame pipeline (track + contact mask + force) on
320x240 synthetic frames with a known displacement field (a press, shear, twist and release,
``drivers.gelsight_mini.synthetic.press_sequence``), on one core, with a plain-NumPy
implementation of the same pipeline timed side by side as the reference.

* ``frame_ms``: ``TactilePipeline.process`` per frame (numba kernels), frames in order (tracking
  follows the motion); ``fps`` = 1000 / mean frame time.
* ``stages_ms``: p50 of each stage: ``detect`` (reference frame: high-pass + blobs + refinement,
  once per reference), ``prep`` (gray + high-pass), ``track``, ``mask``, ``force``.
* ``reference``: ``NumpyTactilePipeline`` (below), same algorithm vectorised with NumPy; the tests
  check each numba kernel against these functions. ``speedup`` = reference p50 / our p50.
* ``tracking_error_px``: mean |estimated - true displacement| over markers and frames;
  ``tracking_error_max_px`` the largest; ``contact_iou`` the mean IoU of the contact mask with the
  true contact disc over frames with contact.
* ``camera_decode_ms`` (when OpenCV is installed): one 3280x2464 MJPG frame decoded and
  cropped/resized to 320x240, at full scale and with libjpeg's 1/4 DCT scaling (the default).
"""

from __future__ import annotations

import gc
import math
import time
from typing import Any

import numpy as np

from drivers.gelsight_mini.synthetic import marker_grid, press_sequence, render_gel, true_displacement
from drivers.gelsight_mini.tactile import (
    ForceConstants,
    TactileParams,
    TactilePipeline,
    select_markers,
)
from teleop.loop import percentiles

__all__ = [
    "run",
    "NumpyTactilePipeline",
    "np_gray",
    "np_box_blur",
    "np_high_pass",
    "np_label_dark_blobs",
    "np_track_markers",
    "np_marker_free_weights",
    "np_masked_blur_rgb",
    "np_contact_threshold",
    "np_erode",
    "np_dilate",
    "np_fill_holes",
    "np_contact_features",
]


# -- plain-NumPy reference of every kernel ---------------------------------------------------------


def np_gray(rgb: np.ndarray) -> np.ndarray:
    return rgb.max(axis=2).astype(np.float32) * np.float32(1.0 / 255.0)


def _box_sum(a: np.ndarray, r: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Window sums along ``axis`` (truncated at the ends) and the window lengths."""
    n = a.shape[axis]
    c = np.cumsum(a, axis=axis, dtype=np.float64)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
    i = np.arange(n)
    lo = np.maximum(i - r, 0)
    hi = np.minimum(i + r, n - 1)
    s = np.take(c, hi + 1, axis=axis) - np.take(c, lo, axis=axis)
    return s, (hi - lo + 1).astype(np.float64)


def np_box_blur(src: np.ndarray, r: int) -> np.ndarray:
    s, n = _box_sum(src, r, 1)
    t = (s / n[None, :]).astype(np.float32)
    s, n = _box_sum(t, r, 0)
    return (s / n[:, None]).astype(np.float32)


def np_high_pass(gray: np.ndarray, r: int, passes: int) -> np.ndarray:
    b = np_box_blur(gray, r)
    for _ in range(passes - 1):
        b = np_box_blur(b, r)
    return gray - b


def np_label_dark_blobs(hp: np.ndarray, threshold: float, min_area: int, max_area: int,
                        max_out: int = 1 << 30) -> tuple[np.ndarray, np.ndarray]:
    """4-connected components by min-label propagation; ordered by their first pixel in raster
    order. Returns (centroids (K, 2), areas (K,))."""
    h, w = hp.shape
    fg = hp.astype(np.float64) < -threshold
    big = h * w + 1
    lab = np.where(fg, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        new = lab.copy()
        np.minimum(new[1:], lab[:-1], out=new[1:])
        np.minimum(new[:-1], lab[1:], out=new[:-1])
        np.minimum(new[:, 1:], lab[:, :-1], out=new[:, 1:])
        np.minimum(new[:, :-1], lab[:, 1:], out=new[:, :-1])
        new = np.where(fg, new, big)
        if np.array_equal(new, lab):
            break
        lab = new
    ids, inv = np.unique(lab[fg], return_inverse=True)
    ys, xs = np.nonzero(fg)
    area = np.bincount(inv, minlength=len(ids))
    sx = np.bincount(inv, weights=xs, minlength=len(ids))
    sy = np.bincount(inv, weights=ys, minlength=len(ids))
    keep = (area >= min_area) & (area <= max_area)
    xy = np.stack([sx[keep] / area[keep], sy[keep] / area[keep]], axis=1)
    return xy[:max_out], area[keep][:max_out].astype(np.int32)


def np_track_markers(hp: np.ndarray, prev: np.ndarray, search_radius: float, refine_radius: float,
                     iterations: int, weight_floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean-shift for all markers at once. Returns (positions (M, 2), found (M,))."""
    h, w = hp.shape
    pos = np.array(prev, dtype=np.float64)
    ok = np.ones(len(pos), bool)
    hp64 = hp.astype(np.float64)
    for it in range(iterations):
        rad = search_radius if it == 0 else refine_radius
        rr = int(math.ceil(rad))
        off = np.arange(-rr, rr + 1)
        ix = np.floor(pos[:, 0] + 0.5).astype(np.int64)
        iy = np.floor(pos[:, 1] + 0.5).astype(np.int64)
        xx = ix[:, None, None] + off[None, None, :]
        yy = iy[:, None, None] + off[None, :, None]
        inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        disc = (xx - pos[:, 0, None, None]) ** 2 + (yy - pos[:, 1, None, None]) ** 2 <= rad * rad
        wt = -hp64[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)] - weight_floor
        wt = np.where(inside & disc & (wt > 0), wt, 0.0)
        sw = wt.sum(axis=(1, 2))
        sx = (wt * xx).sum(axis=(1, 2))
        sy = (wt * yy).sum(axis=(1, 2))
        step = ok & (sw > 0)
        ok &= sw > 0
        safe = np.where(sw > 0, sw, 1.0)
        pos[step, 0] = (sx / safe)[step]
        pos[step, 1] = (sy / safe)[step]
    pos[~ok] = np.asarray(prev)[~ok]
    return pos, ok


def np_marker_free_weights(hp: np.ndarray, threshold: float) -> np.ndarray:
    return (hp.astype(np.float64) >= -threshold).astype(np.uint8)


def _int_box_sum(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    n = a.shape[axis]
    c = np.cumsum(a, axis=axis, dtype=np.int64)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
    i = np.arange(n)
    return np.take(c, np.minimum(i + r, n - 1) + 1, axis=axis) - np.take(c, np.maximum(i - r, 0), axis=axis)


def np_masked_blur_rgb(rgb: np.ndarray, weight: np.ndarray, r: int) -> np.ndarray:
    stack = np.concatenate([weight[..., None].astype(np.int64) * rgb, weight[..., None]], axis=2)
    s = _int_box_sum(_int_box_sum(stack, r, 1), r, 0)
    den = s[..., 3:4]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = s[..., :3] * ((1.0 / 255.0) / den)
    return np.where(den > 0, out, -1.0).astype(np.float32)


def np_contact_threshold(cur: np.ndarray, ref: np.ndarray, threshold: float) -> np.ndarray:
    d = np.abs(cur - ref).max(axis=2).astype(np.float64)
    return (d > threshold) & (cur[..., 0] >= 0) & (ref[..., 0] >= 0)


def _np_morph(src: np.ndarray, r: int, erode: bool) -> np.ndarray:
    out = src
    for axis in (1, 0):
        s, n = _box_sum(out.astype(np.float64), r, axis)
        n = n[None, :] if axis == 1 else n[:, None]
        out = (s == n) if erode else (s > 0)
    return out


def np_erode(src: np.ndarray, r: int) -> np.ndarray:
    return _np_morph(src, r, True)


def np_dilate(src: np.ndarray, r: int) -> np.ndarray:
    return _np_morph(src, r, False)


def _np_reach_rows(reach: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Spread ``reach`` along rows through runs of ``free`` pixels (segmented any)."""
    h, w = free.shape
    start = np.ones((h, w), bool)
    start[:, 1:] = free[:, 1:] != free[:, :-1]
    seg = np.cumsum(start.ravel()).reshape(h, w)
    hit = np.zeros(seg.max() + 1, bool)
    hit[seg[reach & free]] = True
    return free & hit[seg]


def np_fill_holes(mask: np.ndarray) -> np.ndarray:
    free = ~mask
    reach = np.zeros_like(mask)
    reach[0], reach[-1], reach[:, 0], reach[:, -1] = free[0], free[-1], free[:, 0], free[:, -1]
    while True:
        new = _np_reach_rows(reach, free)
        new = _np_reach_rows(new.T.copy(), free.T.copy()).T
        if np.array_equal(new, reach):
            break
        reach = new
    return mask | ~reach


def np_contact_features(ref: np.ndarray, cur: np.ndarray, mask: np.ndarray, mm_per_px: float) -> tuple[np.ndarray, int]:
    h, w = mask.shape
    out = np.zeros(5)
    out[2] = mask.sum() * mm_per_px * mm_per_px
    ix = np.clip(np.floor(cur[:, 0] + 0.5).astype(int), 0, w - 1)
    iy = np.clip(np.floor(cur[:, 1] + 0.5).astype(int), 0, h - 1)
    sel = mask[iy, ix]
    k = int(sel.sum())
    if k == 0:
        return out, 0
    d = cur[sel] - ref[sel]
    t = d.mean(axis=0)
    out[0:2] = t * mm_per_px
    if k < 3:
        return out, k
    r = ref[sel] - ref[sel].mean(axis=0)
    dd = d - t
    srr = (r**2).sum()
    if srr > 1e-9:
        out[3] = 2 * (r * dd).sum() / srr
        out[4] = 2 * (r[:, 0] * dd[:, 1] - r[:, 1] * dd[:, 0]).sum() / srr
    return out, k


class NumpyTactilePipeline:
    """The ``TactilePipeline`` algorithm in plain NumPy (allocates freely)."""

    def __init__(self, height: int = 240, width: int = 320, params: TactileParams | None = None,
                 constants: ForceConstants | None = None) -> None:
        self.height, self.width = height, width
        self.params = params or TactileParams()
        self.k = (constants or ForceConstants()).as_array()

    def _hp(self, rgb: np.ndarray) -> np.ndarray:
        p = self.params
        return np_high_pass(np_gray(rgb), p.background_radius_px, p.background_passes)

    def _color(self, rgb: np.ndarray, hp: np.ndarray) -> np.ndarray:
        p = self.params
        return np_masked_blur_rgb(rgb, np_marker_free_weights(hp, 0.5 * p.marker_threshold), p.contact_blur_radius_px)

    def set_reference(self, rgb: np.ndarray) -> int:
        p = self.params
        hp = self._hp(rgb)
        xy, area = np_label_dark_blobs(hp, p.marker_threshold, p.min_marker_area_px, p.max_marker_area_px,
                                       p.max_markers)
        xy, self.radius = select_markers(xy, area, self.height, self.width, p.border_margin_px)
        rad = self.radius + p.refine_margin_px
        self.ref, _ = np_track_markers(hp, xy, rad, rad, p.track_iterations, p.weight_floor)
        self.pos = self.ref.copy()
        self.ref_color = self._color(rgb, hp)
        return len(self.ref)

    def process(self, rgb: np.ndarray) -> dict[str, Any]:
        p = self.params
        hp = self._hp(rgb)
        self.pos, found = np_track_markers(hp, self.pos, p.search_radius_px, self.radius + p.refine_margin_px,
                                           p.track_iterations, p.weight_floor)
        mask = np_contact_threshold(self._color(rgb, hp), self.ref_color, p.contact_threshold)
        if p.contact_open_radius_px:
            mask = np_dilate(np_erode(mask, p.contact_open_radius_px), p.contact_open_radius_px)
        if p.contact_close_radius_px:
            mask = np_erode(np_dilate(mask, p.contact_close_radius_px), p.contact_close_radius_px)
        if p.contact_fill_holes:
            mask = np_fill_holes(mask)
        f, n_in = np_contact_features(self.ref, self.pos, mask, p.mm_per_px)
        k = self.k
        force = np.array([k[0] * f[0], k[0] * f[1], k[1] * f[2] + k[2] * f[3]])
        return {"displacement_px": self.pos - self.ref, "found": found, "contact_mask": mask, "features": f,
                "force_n": force, "torsion_nm": k[3] * f[4], "n_contact_markers": n_in}


# -- the benchmark ---------------------------------------------------------------------------------------


def _decode_ms(repeats: int = 5) -> dict[str, float] | None:
    try:
        import cv2
    except ImportError:
        return None
    from drivers.gelsight_mini.capture import CropResize

    raw = render_gel(press_sequence(10)[5], raw_size=(3280, 2464), noise=2.0)
    ok, jpg = cv2.imencode(".jpg", raw[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        return None
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        crop = CropResize(320, 240, 0.15)
        out = np.zeros((240, 320, 3), np.uint8)
        res = {}
        for name, flag in (("full", cv2.IMREAD_COLOR), ("reduce_4", cv2.IMREAD_REDUCED_COLOR_4)):
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                bgr = cv2.imdecode(jpg, flag)
                if bgr is None:
                    return None
                crop(bgr, out)
                ts.append((time.perf_counter() - t) * 1e3)
            res[name] = round(float(np.median(ts)), 2)
        return res
    finally:
        cv2.setNumThreads(threads)


def run(frames: int = 300, reference_frames: int | None = 100, decode: bool = True) -> dict[str, Any]:
    """Time both pipelines on ``frames`` synthetic frames (the NumPy one on the first
    ``reference_frames`` of them, all when None: it is ~10x slower). Returns the JSON-ready result
    (module docstring)."""
    frames = max(int(frames), 20)
    fields = press_sequence(frames)
    images = [render_gel(f, seed=k) for k, f in enumerate(fields)]
    truth = marker_grid()
    ref_img = images[0]

    pipe = TactilePipeline()
    pipe.warmup()
    n = pipe.set_reference(ref_img)
    # truth in detection order: nearest grid point to each detected marker
    order = np.argmin(np.linalg.norm(pipe.tracker.reference[:, None] - truth[None], axis=-1), axis=1)
    grid = truth[order]

    gc.disable()
    try:
        detect = []
        for _ in range(20):
            t = time.perf_counter_ns()
            pipe.set_reference(ref_img)
            detect.append(time.perf_counter_ns() - t)
        pipe.set_reference(ref_img)
        total, errs, ious = [], [], []
        for k, img in enumerate(images):
            t = time.perf_counter_ns()
            out = pipe.process(img)
            total.append(time.perf_counter_ns() - t)
            errs.append(np.linalg.norm(out.displacement_px - true_displacement(fields[k], grid), axis=1))
            field = fields[k]
            if field is not None and field.indent > 0.3:
                true_mask = field.contact_mask(240, 320)
                ious.append((true_mask & out.contact_mask).sum() / max((true_mask | out.contact_mask).sum(), 1))
        stages: dict[str, list[int]] = {"prep": [], "track": [], "mask": [], "force": []}
        pipe.set_reference(ref_img)
        t_ = pipe.tracker
        for img in images:
            t0 = time.perf_counter_ns()
            hp = pipe.prep(img)
            t1 = time.perf_counter_ns()
            t_.update(hp)
            t2 = time.perf_counter_ns()
            mask = pipe.contact.update(img, hp)
            t3 = time.perf_counter_ns()
            pipe.estimator.update(t_.reference, t_.positions, t_.n, mask)
            t4 = time.perf_counter_ns()
            for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                stages[key].append(dt)

        ref = NumpyTactilePipeline()
        ref.set_reference(ref_img)
        n_ref = len(images) if reference_frames is None else max(1, min(int(reference_frames), len(images)))
        ref_total = []
        for img in images[:n_ref]:
            t = time.perf_counter_ns()
            ref.process(img)
            ref_total.append(time.perf_counter_ns() - t)
    finally:
        gc.enable()

    ms = np.asarray(total) / 1e6
    ref_ms = np.asarray(ref_total) / 1e6
    err = np.concatenate(errs)
    result: dict[str, Any] = {
        "bench": "tactile",
        "frames": frames,
        "image": [320, 240],
        "frame_ms": percentiles(ms),
        "fps": round(1000.0 / float(ms.mean()), 1),
        "stages_ms": {"detect": round(float(np.median(detect)) / 1e6, 4),
                      **{k: round(float(np.median(v)) / 1e6, 4) for k, v in stages.items()}},
        "reference": {"name": "numpy", "frames": n_ref, "frame_ms": percentiles(ref_ms),
                      "fps": round(1000.0 / float(ref_ms.mean()), 1)},
        "speedup": round(float(np.median(ref_ms) / np.median(ms)), 1),
        "markers": int(n),
        "tracking_error_px": round(float(err.mean()), 4),
        "tracking_error_max_px": round(float(err.max()), 4),
        "contact_iou": round(float(np.mean(ious)), 3) if ious else None,
    }
    if decode:
        result["camera_decode_ms"] = _decode_ms()
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)))
