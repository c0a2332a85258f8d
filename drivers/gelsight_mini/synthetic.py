"""Synthetic GelSight Mini images with a known marker displacement field: for the tests, the
benchmark and a fake camera (``video="synthetic"``).

The scene, in processed-image coordinates (x right, y down, px, pixel centres at integers): a
smooth coloured background (three side lights and a vignette), a regular grid of dark dots
(7 rows x 9 columns, radius ~4.5 px, like the Mini at 320x240), and optionally a contact disc in
which the gel is indented (colour shading that depends on the surface slope, like the RGB lights
of a GelSight, plus a slight uniform tint) and the dots are displaced by a smooth field:
translation + rotation + radial bulge, full inside the disc and decaying outside it. Dots are
anti-aliased (linear coverage ramp), so sub-pixel displacements show in the image.

``render_gel(..., raw_size=(W, H))`` renders a larger "camera" frame such that
``capture.CropResize`` (crop ``border_fraction`` per side, resize) gives back the processed scene,
so replay files exercise the crop/resize path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from drivers.gelsight_mini.capture import FrameSource, crop_box
from teleop.errors import DeviceError

__all__ = [
    "ContactField",
    "marker_grid",
    "render_gel",
    "press_motion",
    "press_sequence",
    "true_displacement",
    "write_video",
    "SyntheticCamera",
]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class ContactField:
    """A contact at ``center_px`` with radius ``radius_px``. Marker displacement at reference
    position p, with r = p - center and weight w = 1 inside the disc, exp(-(|r| - a)^2 / (2 f^2))
    outside (a = radius, f = falloff)::

        u(p) = w * (translation + (R(rotation) - I) r + bulge * r / a)

    so inside the disc the mean divergence is 2 (cos(rot) - 1) + 2 bulge / a and the mean curl is
    2 sin(rot). ``indent`` (0..1) is how strongly the contact shows in the colours (0: invisible).
    """

    center_px: tuple[float, float] = (160.0, 120.0)
    radius_px: float = 40.0
    translation_px: tuple[float, float] = (0.0, 0.0)
    rotation_rad: float = 0.0
    bulge_px: float = 0.0
    falloff_px: float = 15.0
    indent: float = 0.0

    def weight(self, dist: np.ndarray) -> np.ndarray:
        out = np.exp(-0.5 * ((dist - self.radius_px) / self.falloff_px) ** 2)
        return np.where(dist <= self.radius_px, 1.0, out)

    def displacement(self, xy: F64) -> F64:
        """Shape (N, 2) -> (N, 2) [px]."""
        xy = np.asarray(xy, dtype=np.float64)
        r = xy - np.asarray(self.center_px)
        dist = np.hypot(r[:, 0], r[:, 1])
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        rot = np.stack([(c - 1) * r[:, 0] - s * r[:, 1], s * r[:, 0] + (c - 1) * r[:, 1]], axis=1)
        u = np.asarray(self.translation_px) + rot + self.bulge_px * r / self.radius_px
        return self.weight(dist)[:, None] * u

    def contact_mask(self, height: int, width: int) -> npt.NDArray[np.bool_]:
        """The true contact disc (empty when ``indent`` is 0). Shape (H, W)."""
        if self.indent <= 0:
            return np.zeros((height, width), bool)
        yy, xx = np.mgrid[0:height, 0:width]
        return (xx - self.center_px[0]) ** 2 + (yy - self.center_px[1]) ** 2 <= self.radius_px**2


def marker_grid(width: int = 320, height: int = 240, grid: tuple[int, int] = (7, 9)) -> F64:
    """Reference marker centres, row by row. Shape (rows * cols, 2) (x, y) [px]."""
    rows, cols = grid
    xs = np.linspace(0.1 * width, 0.9 * width, cols)
    ys = np.linspace(0.125 * height, 0.875 * height, rows)
    return np.array([(x, y) for y in ys for x in xs], dtype=np.float64)


def true_displacement(field: ContactField | None, reference_xy: F64) -> F64:
    if field is None:
        return np.zeros_like(np.asarray(reference_xy, float))
    return field.displacement(reference_xy)


def render_gel(
    field: ContactField | None = None,
    *,
    width: int = 320,
    height: int = 240,
    grid: tuple[int, int] = (7, 9),
    dot_radius_px: float = 4.5,
    marker_contrast: float = 0.75,
    noise: float = 1.5,
    seed: int = 0,
    raw_size: tuple[int, int] | None = None,
    border_fraction: float = 0.15,
) -> npt.NDArray[np.uint8]:
    """An RGB uint8 image, Shape (height, width, 3), or (raw_h, raw_w, 3) with ``raw_size=(raw_w,
    raw_h)`` (a camera frame that crops and resizes to the processed scene). ``noise`` is the
    standard deviation of Gaussian pixel noise in grey levels (seeded by ``seed``)."""
    if raw_size is None:
        rw, rh = width, height
        sx = sy = 1.0
        bx = by = 0
    else:
        rw, rh = raw_size
        top, bottom, left, right = crop_box(rh, rw, border_fraction)
        by, bx = top, left
        sx = width / (right - left)
        sy = height / (bottom - top)
    # processed-image coordinates of every raw pixel centre
    u = (np.arange(rw) + 0.5 - bx) * sx - 0.5
    v = (np.arange(rh) + 0.5 - by) * sy - 0.5
    uu, vv = np.meshgrid(u, v)
    un, vn = uu / width, vv / height
    vignette = 1.0 - 0.18 * ((2 * un - 1) ** 2 + (2 * vn - 1) ** 2)
    img = np.empty((rh, rw, 3), np.float64)
    img[..., 0] = (125 + 55 * (1 - un) + 10 * vn) * vignette
    img[..., 1] = (120 + 45 * vn + 15 * un) * vignette
    img[..., 2] = (110 + 55 * un + 10 * (1 - vn)) * vignette

    if field is not None and field.indent > 0:
        cx, cy = field.center_px
        a = field.radius_px
        rx, ry = (uu - cx) / a, (vv - cy) / a
        dist = np.hypot(rx, ry)
        # soft (1 px) disc edge; slope of a paraboloid cap lights each channel from one side
        inside = np.clip((a - dist * a) / sx + 0.5, 0.0, 1.0)
        k = 60.0 * field.indent
        tint = 22.0 * field.indent
        img[..., 0] += inside * (k * rx + tint)
        img[..., 1] += inside * (k * ry + tint)
        img[..., 2] += inside * (-k * (0.7 * rx + 0.7 * ry) + tint)

    ref = marker_grid(width, height, grid)
    cur = ref + true_displacement(field, ref)
    dark = np.zeros((rh, rw), np.float64)
    rad_raw = dot_radius_px / sx  # dots are round in the processed image (sx == sy for the Mini)
    half = int(math.ceil(rad_raw + 2))
    for x, y in cur:
        xr = (x + 0.5) / sx + bx - 0.5
        yr = (y + 0.5) / sy + by - 0.5
        x0, x1 = max(int(xr) - half, 0), min(int(xr) + half + 1, rw)
        y0, y1 = max(int(yr) - half, 0), min(int(yr) + half + 1, rh)
        if x0 >= x1 or y0 >= y1:
            continue
        py, px = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(px - xr, py - yr)
        cov = np.clip(rad_raw + 0.5 - d, 0.0, 1.0)
        np.maximum(dark[y0:y1, x0:x1], cov, out=dark[y0:y1, x0:x1])
    img *= (1.0 - marker_contrast * dark)[..., None]
    if noise > 0:
        img += np.random.default_rng(seed).normal(0.0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def press_motion(t: float, center_px: tuple[float, float] = (160.0, 120.0), radius_px: float = 40.0,
                 shear_px: tuple[float, float] = (2.5, -1.5), twist_rad: float = 0.04,
                 bulge_px: float = 1.0, indent: float = 0.6) -> ContactField | None:
    """A press, shear, twist and release, as t goes 0 -> 1 (None at rest, t < 0.1 or t > 0.95).
    Each quantity ramps smoothly; the largest marker displacement is ~3.5 px."""

    def ramp(a: float, b: float) -> float:  # 0 before a, 1 after b, smooth in between
        s = min(max((t - a) / (b - a), 0.0), 1.0)
        return s * s * (3 - 2 * s)

    if t < 0.1 or t > 0.95:
        return None
    press = ramp(0.1, 0.25) * (1 - ramp(0.8, 0.95))
    shear = ramp(0.3, 0.45) * (1 - ramp(0.7, 0.85))
    twist = ramp(0.5, 0.6) * (1 - ramp(0.7, 0.8))
    return ContactField(center_px=center_px, radius_px=radius_px,
                        translation_px=(shear * shear_px[0], shear * shear_px[1]),
                        rotation_rad=twist * twist_rad, bulge_px=press * bulge_px, indent=press * indent)


def press_sequence(n_frames: int, **kwargs: object) -> list[ContactField | None]:
    """``n_frames`` fields of ``press_motion`` evenly over t in [0, 1)."""
    return [press_motion(k / n_frames, **kwargs) for k in range(n_frames)]  # type: ignore[arg-type]


def write_video(path: str | Path, frames: Iterable[npt.NDArray[np.uint8]], fps: float = 25.0,
                quality: int = 95) -> Path:
    """Write RGB frames to a video with OpenCV: ``.avi`` as Motion-JPEG (OpenCV's own encoder, the
    sensor's codec; ``quality`` 1..100), ``.mp4``/``.mov``/``.mkv`` with FFmpeg's ``mp4v`` (its
    default quality; ``quality`` is not used)."""
    from drivers.gelsight_mini.capture import load_cv2

    cv2 = load_cv2()
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".avi":
        api, fourcc = cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG")
    elif ext in (".mp4", ".mov", ".mkv", ".m4v"):
        api, fourcc = cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v")
    else:
        raise ValueError(f"write_video: unsupported extension {ext!r}; use .avi (MJPG) or .mp4")
    writer = None
    try:
        for rgb in frames:
            if writer is None:
                h, w = rgb.shape[:2]
                params = [cv2.VIDEOWRITER_PROP_QUALITY, int(quality)] if ext == ".avi" else []
                writer = cv2.VideoWriter(str(path), api, fourcc, float(fps), (w, h), params)
                if not writer.isOpened():
                    raise DeviceError(f"write_video: OpenCV could not open a writer for {path}")
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    finally:
        if writer is not None:
            writer.release()
    return path


class SyntheticCamera(FrameSource):
    """A fake camera: renders ``fields`` (a sequence, cycled) or ``press_sequence(n_frames)`` at
    the processed size, paced at ``fps`` when ``realtime``. ``frame_index`` is the index (into the
    cycle) of the last frame returned; ``field_at(k)`` its field."""

    def __init__(self, width: int = 320, height: int = 240, *, fields: Sequence[ContactField | None] | None = None,
                 n_frames: int = 100, fps: float = 25.0, realtime: bool = True, loop: bool = True,
                 noise: float = 1.5, render: Callable[..., npt.NDArray[np.uint8]] = render_gel) -> None:
        self.width, self.height = width, height
        self.fields = list(fields) if fields is not None else press_sequence(n_frames)
        self.nominal_fps = fps
        self.realtime = realtime
        self.loop = loop
        self.noise = noise
        self._render = render
        self.description = f"synthetic ({len(self.fields)} frames, {fps:g} fps)"
        self.frame_index = -1
        self.eof = False
        self._k = 0
        self._t0 = 0.0

    def field_at(self, k: int) -> ContactField | None:
        return self.fields[k % len(self.fields)]

    def open(self) -> None:
        self._k = 0
        self._t0 = time.monotonic()
        self.eof = False

    def read(self, out: npt.NDArray[np.uint8]) -> int | None:
        if self._k >= len(self.fields) and not self.loop:
            self.eof = True
            time.sleep(0.02)
            return None
        if self.realtime:
            due = self._t0 + self._k / self.nominal_fps
            wait = due - time.monotonic()
            if wait > 0.1:
                time.sleep(0.1)
                return None
            if wait > 0:
                time.sleep(wait)
        k = self._k % len(self.fields)
        out[:] = self._render(self.fields[k], width=self.width, height=self.height, noise=self.noise, seed=self._k)
        self.frame_index = k
        self._k += 1
        return time.monotonic_ns()

    def close(self) -> None:
        pass
