"""The tactile pipeline on the processed 320x240 RGB image: marker detection, tracking, contact
mask, force estimate and force calibration (docs/gelsight.md).

Each stage is a small class that owns its preallocated buffers and calls the numba kernels in
``kernels.py``; ``process`` returns views into those buffers (valid until the next call: copy what
you keep). ``TactilePipeline`` chains them; the driver and the benchmark use it.

Units: positions and displacements in px of the processed image (x right along columns, y down
along rows); ``mm_per_px`` (0.0634 for the Mini at 320x240) turns them into mm for the force
features. Force in the sensor frame: x, y shear along the image axes (the direction the gel surface
is dragged), z the normal load, positive when pressing. Torsion [N m] about the normal, positive
from +x towards +y (clockwise on screen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drivers.gelsight_mini import kernels as K
from teleop.errors import ConfigError

__all__ = [
    "TactileParams",
    "ForceConstants",
    "GrayHighPass",
    "MarkerDetector",
    "MarkerTracker",
    "ContactDetector",
    "ForceEstimator",
    "TactilePipeline",
    "TactileFrame",
    "CalibrationSample",
    "ForceCalibration",
    "calibrate_force",
    "select_markers",
    "GRAVITY_M_S2",
]

F64 = npt.NDArray[np.float64]
GRAVITY_M_S2 = 9.80665


@dataclass(frozen=True, kw_only=True)
class TactileParams:
    """Image-processing parameters (defaults tuned for the Mini at 320x240)."""

    # background for the high-pass (the SDK uses a Gaussian of sigma 20; 2 box passes of r=17 ~ sigma 14)
    background_radius_px: int = 17
    background_passes: int = 2
    marker_threshold: float = 0.05  # marker pixels: gray - background < -threshold (the SDK's -0.05)
    min_marker_area_px: int = 12
    max_marker_area_px: int = 500
    max_markers: int = 256
    border_margin_px: float = 4.0  # markers whose centre is closer to the border are dropped
    # tracking: mean-shift on darkness max(0, -(gray - background) - weight_floor)
    search_radius_px: float = 10.0  # first step: how far a marker may move between two frames
    refine_margin_px: float = 2.5  # later steps: disc of marker radius + this
    track_iterations: int = 5
    weight_floor: float = 0.02
    # contact: local marker-free colour against the reference
    contact_blur_radius_px: int = 7
    contact_threshold: float = 0.04  # largest channel change, 0..1 (0.04 ~ 10 grey levels)
    contact_open_radius_px: int = 1  # removes specks
    contact_close_radius_px: int = 3  # bridges gaps
    contact_fill_holes: bool = True
    mm_per_px: float = 0.0634  # the vendor's FAQ (gsrobotics README), at 320x240

    def __post_init__(self) -> None:
        for name in ("background_radius_px", "background_passes", "min_marker_area_px", "max_marker_area_px",
                     "max_markers", "track_iterations", "contact_blur_radius_px"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be >= 1")
        if self.min_marker_area_px > self.max_marker_area_px:
            raise ConfigError(f"min_marker_area_px={self.min_marker_area_px} > "
                              f"max_marker_area_px={self.max_marker_area_px}")
        for name in ("marker_threshold", "contact_threshold", "search_radius_px", "mm_per_px"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)}: must be > 0")
        if self.contact_open_radius_px < 0 or self.contact_close_radius_px < 0:
            raise ConfigError("contact_open_radius_px and contact_close_radius_px must be >= 0")


@dataclass(frozen=True, kw_only=True)
class ForceConstants:
    """Linear force model on the features of ``kernels.contact_features``:

    * Fx, Fy = k_shear_n_per_mm * mean marker displacement in contact [mm];
    * Fz = k_normal_n_per_mm2 * contact area [mm^2] + k_normal_div_n * mean divergence;
    * torsion = k_torsion_nm * mean curl [N m].

    The defaults are order-of-magnitude placeholders, not a calibration: run ``calibrate_force``
    (docs/gelsight.md) for each sensor and gel.
    """

    k_shear_n_per_mm: float = 2.0
    k_normal_n_per_mm2: float = 0.05
    k_normal_div_n: float = 0.0
    k_torsion_nm: float = 0.01

    def as_array(self) -> F64:
        return np.array([self.k_shear_n_per_mm, self.k_normal_n_per_mm2, self.k_normal_div_n, self.k_torsion_nm])


# -- stages -------------------------------------------------------------------------------------


class GrayHighPass:
    """RGB -> gray (max over channels) -> gray minus background. Shapes (H, W) float32."""

    def __init__(self, height: int, width: int, params: TactileParams) -> None:
        self.params = params
        self.gray = np.zeros((height, width), np.float32)
        self.hp = np.zeros((height, width), np.float32)
        self._tmp = np.zeros((height, width), np.float32)
        self._tmp2 = np.zeros((height, width), np.float32)
        self._acc = np.zeros(width, np.float64)

    def __call__(self, rgb: npt.NDArray[np.uint8],
                 out: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float32]:
        out = self.hp if out is None else out
        K.rgb_to_gray(rgb, self.gray)
        p = self.params
        K.high_pass(self.gray, p.background_radius_px, p.background_passes, self._tmp, self._tmp2, self._acc, out)
        return out


def select_markers(xy: F64, area: npt.NDArray[np.int32], height: int, width: int,
                   margin_px: float) -> tuple[F64, float]:
    """Drop markers near the border and the smaller of two markers closer than half the typical
    spacing (a blob split in two), then sort them row by row. Returns (positions (M, 2), median
    marker radius [px]). Runs once per reference, so it may allocate."""
    keep = (xy[:, 0] >= margin_px) & (xy[:, 0] <= width - 1 - margin_px) & \
        (xy[:, 1] >= margin_px) & (xy[:, 1] <= height - 1 - margin_px)
    xy, area = xy[keep], area[keep]
    if len(xy) >= 2:
        d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
        np.fill_diagonal(d, np.inf)
        spacing = float(np.median(d.min(axis=1)))
        drop = np.zeros(len(xy), bool)
        for i, j in zip(*np.nonzero(d < spacing / 2), strict=True):
            if i < j:
                drop[i if area[i] < area[j] else j] = True
        xy, area = xy[~drop], area[~drop]
    else:
        spacing = float(min(height, width))
    radius = float(np.sqrt(np.median(area) / np.pi)) if len(area) else 0.0
    if len(xy):  # rows: cluster by y with a tolerance of half the spacing, then x within a row
        order = np.argsort(xy[:, 1], kind="stable")
        row = np.zeros(len(xy), np.int64)
        r, y0 = 0, xy[order[0], 1]
        for k in order:
            if xy[k, 1] - y0 > spacing / 2:
                r, y0 = r + 1, xy[k, 1]
            row[k] = r
        xy = xy[np.lexsort((xy[:, 0], row))]
    return np.ascontiguousarray(xy, dtype=np.float64), radius


class MarkerDetector:
    """Markers on a reference frame: threshold the high-pass, connected components with area
    limits, centroids; then one tracking pass on the same frame refines each to the darkness
    centroid the tracker will use (so tracker bias cancels in the displacement)."""

    def __init__(self, height: int, width: int, params: TactileParams) -> None:
        self.params = params
        self.labels = np.zeros((height, width), np.int32)
        self._stack = np.zeros(height * width, np.int32)
        self._xy = np.zeros((params.max_markers, 2), np.float64)
        self._area = np.zeros(params.max_markers, np.int32)
        self._found = np.zeros(params.max_markers, np.bool_)

    def detect(self, hp: npt.NDArray[np.float32]) -> tuple[F64, float]:
        """Returns (positions (M, 2) [px], median marker radius [px]); new arrays."""
        p = self.params
        n = K.label_dark_blobs(hp, p.marker_threshold, p.min_marker_area_px, p.max_marker_area_px,
                               self.labels, self._stack, self._xy, self._area)
        xy, radius = select_markers(self._xy[:n].copy(), self._area[:n].copy(), hp.shape[0], hp.shape[1],
                                    p.border_margin_px)
        if len(xy):
            refined = xy.copy()
            K.track_markers(hp, xy, len(xy), radius + p.refine_margin_px, radius + p.refine_margin_px,
                            p.track_iterations, p.weight_floor, refined, self._found[: len(xy)])
            xy = refined
        return xy, radius


class MarkerTracker:
    """Follows the markers frame to frame from their previous positions. ``positions`` and
    ``displacement`` (Shape (M, 2) [px]) are views of preallocated buffers."""

    def __init__(self, params: TactileParams) -> None:
        self.params = params
        m = params.max_markers
        self._ref = np.zeros((m, 2), np.float64)
        self._pos = np.zeros((m, 2), np.float64)
        self._disp = np.zeros((m, 2), np.float64)
        self._found = np.zeros(m, np.bool_)
        self.n = 0
        self.radius = 0.0
        self.n_found = 0

    def reset(self, reference: F64, radius_px: float) -> None:
        n = len(reference)
        if n > self.params.max_markers:
            raise ConfigError(f"{n} markers > max_markers={self.params.max_markers}")
        self.n = n
        self.radius = radius_px
        self._ref[:n] = reference
        self._pos[:n] = reference
        self._disp[:n] = 0.0
        self._found[:n] = True
        self.n_found = n

    @property
    def reference(self) -> F64:
        return self._ref[: self.n]

    @property
    def positions(self) -> F64:
        return self._pos[: self.n]

    @property
    def displacement(self) -> F64:
        return self._disp[: self.n]

    @property
    def found(self) -> npt.NDArray[np.bool_]:
        return self._found[: self.n]

    def update(self, hp: npt.NDArray[np.float32]) -> F64:
        p = self.params
        n = self.n
        self.n_found = K.track_markers(hp, self._pos, n, p.search_radius_px, self.radius + p.refine_margin_px,
                                       p.track_iterations, p.weight_floor, self._pos, self._found)
        np.subtract(self._pos[:n], self._ref[:n], out=self._disp[:n])
        return self._disp[:n]


class ContactDetector:
    """Contact mask: the local gel colour with markers left out (normalised box blur) compared
    with the reference's; threshold, opening, closing, hole filling. ``mask`` (H, W) bool."""

    def __init__(self, height: int, width: int, params: TactileParams) -> None:
        self.params = params
        self.mask = np.zeros((height, width), np.bool_)
        self.ref_color = np.zeros((height, width, 3), np.float32)
        self.cur_color = np.zeros((height, width, 3), np.float32)
        self._weight = np.zeros((height, width), np.uint8)
        self._tmp4 = np.zeros((height, width, 4), np.int32)
        self._acc4 = np.zeros((width, 4), np.int32)
        self._raw = np.zeros((height, width), np.bool_)
        self._b1 = np.zeros((height, width), np.bool_)
        self._b2 = np.zeros((height, width), np.bool_)
        self._counts = np.zeros(width, np.int32)
        self._stack = np.zeros(height * width, np.int32)

    def _color(self, rgb: npt.NDArray[np.uint8], hp: npt.NDArray[np.float32], out: npt.NDArray[np.float32]) -> None:
        p = self.params
        K.marker_free_weights(hp, 0.5 * p.marker_threshold, self._weight)
        K.masked_blur_rgb(rgb, self._weight, p.contact_blur_radius_px, self._tmp4, self._acc4, out)

    def set_reference(self, rgb: npt.NDArray[np.uint8], hp: npt.NDArray[np.float32]) -> None:
        self._color(rgb, hp, self.ref_color)
        self.mask[:] = False

    def update(self, rgb: npt.NDArray[np.uint8], hp: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        p = self.params
        self._color(rgb, hp, self.cur_color)
        K.contact_threshold(self.cur_color, self.ref_color, p.contact_threshold, self._raw)
        src = self._raw
        if p.contact_open_radius_px > 0:
            K.binary_erode(src, p.contact_open_radius_px, self._b1, self._counts, self._b2)
            K.binary_dilate(self._b2, p.contact_open_radius_px, self._b1, self._counts, self.mask)
            src = self.mask
        if p.contact_close_radius_px > 0:
            K.binary_dilate(src, p.contact_close_radius_px, self._b1, self._counts, self._b2)
            K.binary_erode(self._b2, p.contact_close_radius_px, self._b1, self._counts, self.mask)
            src = self.mask
        if src is not self.mask:
            self.mask[:] = src
        if p.contact_fill_holes:
            K.fill_holes(self.mask, self._stack, self._b1, self.mask)
        return self.mask


class ForceEstimator:
    """Features (``kernels.contact_features``) -> force (3,) [N] and torsion [N m] with linear
    constants. ``features`` (5,) and ``force`` (3,) are preallocated."""

    def __init__(self, constants: ForceConstants, mm_per_px: float) -> None:
        self.constants = constants
        self.mm_per_px = mm_per_px
        self._k = constants.as_array()
        self.features = np.zeros(K.N_FEATURES, np.float64)
        self.force = np.zeros(3, np.float64)
        self.torsion = 0.0
        self.n_contact_markers = 0

    def update(self, reference: F64, positions: F64, n: int, mask: npt.NDArray[np.bool_]) -> F64:
        f = self.features
        self.n_contact_markers = K.contact_features(reference, positions, n, mask, self.mm_per_px, f)
        k = self._k
        self.force[0] = k[0] * f[0]
        self.force[1] = k[0] * f[1]
        self.force[2] = k[1] * f[2] + k[2] * f[3]
        self.torsion = k[3] * f[4]
        return self.force


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TactileFrame:
    """What ``TactilePipeline.process`` returns; arrays are views of the pipeline's buffers."""

    reference_px: F64  # (M, 2)
    positions_px: F64  # (M, 2)
    displacement_px: F64  # (M, 2)
    found: npt.NDArray[np.bool_]  # (M,)
    contact_mask: npt.NDArray[np.bool_]  # (H, W)
    features: F64  # (5,) see kernels.contact_features
    force_n: F64  # (3,)
    torsion_nm: float
    n_contact_markers: int


class TactilePipeline:
    """``set_reference(rgb)`` once (no contact), then ``process(rgb)`` per frame.

    Shapes: rgb (H, W, 3) uint8, RGB order, already cropped and resized (``capture.CropResize``).
    """

    def __init__(self, height: int = 240, width: int = 320, params: TactileParams | None = None,
                 constants: ForceConstants | None = None) -> None:
        self.height, self.width = height, width
        self.params = params or TactileParams()
        self.constants = constants or ForceConstants()
        self.prep = GrayHighPass(height, width, self.params)
        self.detector = MarkerDetector(height, width, self.params)
        self.tracker = MarkerTracker(self.params)
        self.contact = ContactDetector(height, width, self.params)
        self.estimator = ForceEstimator(self.constants, self.params.mm_per_px)
        self._ref_hp = np.zeros((height, width), np.float32)
        self.has_reference = False

    @property
    def n_markers(self) -> int:
        return self.tracker.n

    def _check(self, rgb: np.ndarray) -> None:
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image of shape {(self.height, self.width, 3)}, "
                             f"got {rgb.dtype} {rgb.shape}")

    def set_reference(self, rgb: npt.NDArray[np.uint8]) -> int:
        """Detect markers on a no-contact frame (or an average of a few); returns their number."""
        self._check(rgb)
        rgb = np.ascontiguousarray(rgb)
        hp = self.prep(rgb, self._ref_hp)
        xy, radius = self.detector.detect(hp)
        self.tracker.reset(xy, radius)
        self.contact.set_reference(rgb, hp)
        self.estimator.update(self.tracker.reference, self.tracker.positions, 0, self.contact.mask)
        self.has_reference = True
        return len(xy)

    def process(self, rgb: npt.NDArray[np.uint8]) -> TactileFrame:
        if not self.has_reference:
            raise RuntimeError("call set_reference() with a no-contact frame first")
        self._check(rgb)
        hp = self.prep(rgb)
        self.tracker.update(hp)
        mask = self.contact.update(rgb, hp)
        t = self.tracker
        self.estimator.update(t.reference, t.positions, t.n, mask)
        e = self.estimator
        return TactileFrame(t.reference, t.positions, t.displacement, t.found, mask, e.features, e.force,
                            e.torsion, e.n_contact_markers)

    def warmup(self) -> None:
        """Compile (or load from numba's cache) every kernel on a synthetic frame pair."""
        from drivers.gelsight_mini.synthetic import ContactField, render_gel

        pipe = TactilePipeline(self.height, self.width, self.params, self.constants)
        pipe.set_reference(render_gel(None, width=self.width, height=self.height))
        pipe.process(render_gel(ContactField(indent=0.5), width=self.width, height=self.height))


# -- calibration ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CalibrationSample:
    """One static load: the features of the frame (``TactileFrame.features``, best averaged over
    a second of frames) and the known load on the gel in the sensor frame. A weight of m kg resting
    on the horizontal gel is ``force_n=(0, 0, m * g)``; a weight hung on a string over a pulley
    and tied to an indenter drags it along x with ``(m * g, 0, Fz)``. ``torque_nm`` from a weight
    on a lever arm (NaN when not applied: the sample is not used for torsion)."""

    features: F64
    force_n: tuple[float, float, float] | F64
    torque_nm: float = float("nan")

    @classmethod
    def from_weight(cls, features: F64, mass_kg: float, axis: str = "z", normal_n: float = 0.0) -> CalibrationSample:
        """A weight of ``mass_kg`` pulling along ``axis`` ("x", "-x", "y", "-y" or "z"), with
        ``normal_n`` of known normal load under shear."""
        f = mass_kg * GRAVITY_M_S2
        vec = {"x": (f, 0.0, normal_n), "-x": (-f, 0.0, normal_n), "y": (0.0, f, normal_n),
               "-y": (0.0, -f, normal_n), "z": (0.0, 0.0, f)}
        if axis not in vec:
            raise ConfigError(f"axis={axis!r}: allowed values are {sorted(vec)}")
        return cls(features=np.asarray(features, float), force_n=vec[axis])


@dataclass(frozen=True)
class ForceCalibration:
    constants: ForceConstants
    rms_residual_n: tuple[float, float, float]  # shear, normal [N]; torsion [N m]
    samples: int


def calibrate_force(samples: Sequence[CalibrationSample], base: ForceConstants | None = None) -> ForceCalibration:
    """Least-squares fit of the linear model of ``ForceConstants`` (through the origin: no load,
    no features) to samples of known load:

    * k_shear from Fx = k fx and Fy = k fy stacked over samples (needs samples with shear);
    * (k_normal_area, k_normal_div) from Fz = a * area + b * divergence (needs pressed samples;
      when the divergence carries no information, e.g. only one indenter, b comes out ~0);
    * k_torsion from torque = k * curl over samples with a known torque.

    A constant whose samples do not excite it (all features ~0) keeps its value from ``base``.
    """
    base = base or ForceConstants()
    if not samples:
        raise ConfigError("calibrate_force: no samples; record a few loads with known weights (docs/gelsight.md)")
    feats = np.array([np.asarray(s.features, float) for s in samples])
    if feats.ndim != 2 or feats.shape[1] != K.N_FEATURES:
        raise ConfigError(f"calibrate_force: features must be Shape ({K.N_FEATURES},) each, got {feats.shape[1:]}")
    force = np.array([np.asarray(s.force_n, float) for s in samples])
    torque = np.array([s.torque_nm for s in samples], float)

    def fit(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray | None, float]:
        if a.size == 0 or not np.any(np.abs(a) > 1e-12):
            return None, float("nan")
        k, *_ = np.linalg.lstsq(a, b, rcond=None)
        return k, float(np.sqrt(np.mean((a @ k - b) ** 2)))

    k_s, r_s = fit(np.concatenate([feats[:, 0], feats[:, 1]])[:, None], np.concatenate([force[:, 0], force[:, 1]]))
    k_n, r_n = fit(feats[:, 2:4], force[:, 2])
    has_t = ~np.isnan(torque)
    k_t, r_t = fit(feats[has_t, 4:5], torque[has_t])
    constants = ForceConstants(
        k_shear_n_per_mm=float(k_s[0]) if k_s is not None else base.k_shear_n_per_mm,
        k_normal_n_per_mm2=float(k_n[0]) if k_n is not None else base.k_normal_n_per_mm2,
        k_normal_div_n=float(k_n[1]) if k_n is not None else base.k_normal_div_n,
        k_torsion_nm=float(k_t[0]) if k_t is not None else base.k_torsion_nm,
    )
    return ForceCalibration(constants, (r_s, r_n, r_t), len(samples))
