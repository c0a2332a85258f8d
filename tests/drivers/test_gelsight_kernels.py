"""GelSight Mini tactile pipeline: each numba kernel against its plain-NumPy twin
(``teleop/bench/tactile.py``), no per-frame allocation, and accuracy on synthetic frames with a
known displacement field (``drivers/gelsight_mini/synthetic.py``)."""

from __future__ import annotations

import math
import tracemalloc

import numba
import numpy as np
import pytest
from numba.core.runtime import _nrt_python as nrt
from numba.core.runtime import rtsys

from drivers.gelsight_mini import kernels as K
from drivers.gelsight_mini.synthetic import ContactField, marker_grid, press_motion, render_gel, true_displacement
from drivers.gelsight_mini.tactile import (
    CalibrationSample,
    ForceConstants,
    TactileParams,
    TactilePipeline,
    calibrate_force,
)
from teleop.bench import tactile as ref
from teleop.errors import ConfigError

H, W = 240, 320
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def reference_image() -> np.ndarray:
    return render_gel(None, seed=100)


@pytest.fixture(scope="module")
def pipe(reference_image) -> TactilePipeline:
    p = TactilePipeline()
    assert p.set_reference(reference_image) == 63
    return p


@pytest.fixture(scope="module")
def grid(pipe) -> np.ndarray:
    """The true reference positions in the pipeline's marker order."""
    truth = marker_grid()
    order = np.argmin(np.linalg.norm(pipe.tracker.reference[:, None] - truth[None], axis=-1), axis=1)
    assert len(set(order.tolist())) == len(order)
    return truth[order]


def _hp(img: np.ndarray, params: TactileParams | None = None) -> np.ndarray:
    p = params or TactileParams()
    return ref.np_high_pass(ref.np_gray(img), p.background_radius_px, p.background_passes)


# -- kernels vs NumPy -------------------------------------------------------------------------------


def test_rgb_to_gray_is_max_over_channels():
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    out = np.zeros((H, W), np.float32)
    K.rgb_to_gray(rgb, out)
    np.testing.assert_array_equal(out, ref.np_gray(rgb))


@pytest.mark.parametrize("r", [0, 1, 5, 17, 400])
def test_box_blur_matches_numpy(r):
    src = RNG.random((H, W), dtype=np.float32)
    out, tmp = np.zeros_like(src), np.zeros_like(src)
    K.box_blur(src, r, tmp, np.zeros(W), out)
    np.testing.assert_allclose(out, ref.np_box_blur(src, r), atol=2e-6)
    if r == 400:  # window wider than the image: every pixel is the global mean
        np.testing.assert_allclose(out, src.mean(), atol=2e-6)


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_high_pass_matches_numpy(passes, reference_image):
    gray = ref.np_gray(reference_image)
    out = np.zeros_like(gray)
    K.high_pass(gray, 17, passes, np.zeros_like(gray), np.zeros_like(gray), np.zeros(W), out)
    np.testing.assert_allclose(out, ref.np_high_pass(gray, 17, passes), atol=3e-6)


def test_label_dark_blobs_matches_numpy(reference_image):
    hp = _hp(reference_image)
    hp[5:8, 5:7] = -1.0  # a blob below min_area (6 px)
    hp[100:130, 0:30] = -1.0  # one above max_area (900 px), touching the border
    labels = np.zeros((H, W), np.int32)
    xy, area = np.zeros((256, 2)), np.zeros(256, np.int32)
    n = K.label_dark_blobs(hp, 0.05, 12, 500, labels, np.zeros(H * W, np.int32), xy, area)
    exp_xy, exp_area = ref.np_label_dark_blobs(hp, 0.05, 12, 500)
    assert n == len(exp_xy) >= 60
    np.testing.assert_allclose(xy[:n], exp_xy, atol=1e-9)
    np.testing.assert_array_equal(area[:n], exp_area)
    # capacity: never writes more than out_xy holds
    assert K.label_dark_blobs(hp, 0.05, 12, 500, labels, np.zeros(H * W, np.int32), xy[:10], area[:10]) == 10


def test_track_markers_matches_numpy(reference_image, grid):
    img = render_gel(ContactField(translation_px=(1.7, -2.2), rotation_rad=0.03, bulge_px=1.0, indent=0.5), seed=3)
    hp = _hp(img)
    prev = np.vstack([grid, [[48.0, 45.0]]])  # the last one has no marker near it: lost
    out, found = np.zeros_like(prev), np.zeros(len(prev), bool)
    n_found = K.track_markers(hp, prev, len(prev), 10.0, 7.2, 5, 0.02, out, found)
    exp, exp_found = ref.np_track_markers(hp, prev, 10.0, 7.2, 5, 0.02)
    np.testing.assert_allclose(out, exp, atol=1e-9)
    np.testing.assert_array_equal(found, exp_found)
    assert n_found == len(grid) and not found[-1] and tuple(out[-1]) == (48.0, 45.0)
    # in place (prev is out) gives the same
    inplace = prev.copy()
    K.track_markers(hp, inplace, len(prev), 10.0, 7.2, 5, 0.02, inplace, found)
    np.testing.assert_allclose(inplace, exp, atol=1e-12)


def test_masked_blur_and_threshold_match_numpy(reference_image):
    img = render_gel(ContactField(indent=0.6, translation_px=(2, 1)), seed=4)
    hp = _hp(img)
    wt = np.zeros((H, W), np.uint8)
    K.marker_free_weights(hp, 0.025, wt)
    np.testing.assert_array_equal(wt, ref.np_marker_free_weights(hp, 0.025))
    wt[50:70, 50:70] = 0  # a window with no weight at all -> -1
    for r in (1, 7):
        out = np.zeros((H, W, 3), np.float32)
        K.masked_blur_rgb(img, wt, r, np.zeros((H, W, 4), np.int32), np.zeros((W, 4), np.int32), out)
        exp = ref.np_masked_blur_rgb(img, wt, r)
        np.testing.assert_allclose(out, exp, rtol=1e-6, atol=1e-7)
        assert (out[60, 60] == -1.0).all() and (out[60, 40] >= 0).all()  # no weight only inside the hole
    cur = out
    base = ref.np_masked_blur_rgb(reference_image, ref.np_marker_free_weights(_hp(reference_image), 0.025), 7)
    mask = np.zeros((H, W), bool)
    K.contact_threshold(cur, base, 0.04, mask)
    np.testing.assert_array_equal(mask, ref.np_contact_threshold(cur, base, 0.04))
    assert 2000 < mask.sum() < 8000


@pytest.mark.parametrize("r", [1, 2, 3])
def test_erode_dilate_match_numpy(r):
    src = RNG.random((H, W)) < 0.6
    src[100:180, 100:200] = True
    tmp, out, counts = np.zeros_like(src), np.zeros_like(src), np.zeros(W, np.int32)
    K.binary_erode(src, r, tmp, counts, out)
    np.testing.assert_array_equal(out, ref.np_erode(src, r))
    K.binary_dilate(src, r, tmp, counts, out)
    np.testing.assert_array_equal(out, ref.np_dilate(src, r))


def _rings() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    m = np.zeros((H, W), bool)
    d = np.hypot(xx - 160, yy - 120)
    m |= (d > 30) & (d < 34)  # a closed ring: its inside is a hole
    m |= (np.hypot(xx - 60, yy - 60) > 20) & (np.hypot(xx - 60, yy - 60) < 23)
    m[0:40, 250:254] = True  # an open U at the top border: not a hole
    m[36:40, 250:300] = True
    m[0:40, 296:300] = True
    m[200:230, 0:3] = True  # touching the left border
    return m


@pytest.mark.parametrize("kind", ["rings", "random", "empty", "full"])
def test_fill_holes_matches_numpy(kind):
    m = {"rings": _rings(), "random": RNG.random((H, W)) < 0.45, "empty": np.zeros((H, W), bool),
         "full": np.ones((H, W), bool)}[kind]
    out = np.zeros_like(m)
    K.fill_holes(m, np.zeros(H * W, np.int32), np.zeros_like(m), out)
    exp = ref.np_fill_holes(m)
    np.testing.assert_array_equal(out, exp)
    if kind == "rings":
        assert out[120, 160] and out[60, 60] and not out[10, 275]
    inplace = m.copy()
    K.fill_holes(inplace, np.zeros(H * W, np.int32), np.zeros_like(m), inplace)
    np.testing.assert_array_equal(inplace, exp)


def test_contact_features_match_numpy_and_field(grid):
    yy, xx = np.mgrid[0:H, 0:W]
    mask = np.hypot(xx - 160, yy - 120) < 60
    for field in (ContactField(translation_px=(1.0, -0.5)), ContactField(rotation_rad=0.04),
                  ContactField(bulge_px=2.0, radius_px=60), ContactField()):
        cur = grid + field.displacement(grid)
        out = np.zeros(5)
        n_in = K.contact_features(grid, cur, len(grid), mask, 0.0634, out)
        exp, exp_n = ref.np_contact_features(grid, cur, mask, 0.0634)
        np.testing.assert_allclose(out, exp, atol=1e-12)
        assert n_in == exp_n > 3
    # a rigid twist by a: curl 2 sin(a); a uniform spread: divergence 2 * bulge / radius
    out = np.zeros(5)
    K.contact_features(grid, grid + ContactField(rotation_rad=0.04, radius_px=200).displacement(grid), len(grid),
                       mask, 1.0, out)
    assert out[4] == pytest.approx(2 * math.sin(0.04), rel=1e-9)
    K.contact_features(grid, grid + ContactField(bulge_px=2.0, radius_px=200).displacement(grid), len(grid),
                       mask, 1.0, out)
    assert out[3] == pytest.approx(2 * 2.0 / 200, rel=1e-9)
    assert K.contact_features(grid, grid, len(grid), np.zeros((H, W), bool), 1.0, out) == 0
    assert not out.any()


def test_pipeline_matches_numpy_pipeline(reference_image):
    ours, theirs = TactilePipeline(), ref.NumpyTactilePipeline()
    assert ours.set_reference(reference_image) == theirs.set_reference(reference_image)
    np.testing.assert_allclose(ours.tracker.reference, theirs.ref, atol=1e-9)
    for k in range(0, 40, 3):
        img = render_gel(press_motion(k / 40), seed=k)
        a, b = ours.process(img), theirs.process(img)
        np.testing.assert_allclose(a.displacement_px, b["displacement_px"], atol=1e-8)
        assert (a.contact_mask != b["contact_mask"]).sum() <= 2
        np.testing.assert_allclose(a.force_n, b["force_n"], rtol=1e-3, atol=1e-6)


# -- no allocation per frame ------------------------------------------------------------------------------


@numba.njit
def _noop(*args):
    return 0


def _allocs(fn) -> int:
    nrt.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        fn()
        after = rtsys.get_allocation_stats()
    finally:
        nrt.memsys_disable_stats()
    return after.alloc - before.alloc


def test_kernels_allocate_nothing_per_frame(pipe):
    """Each per-frame kernel, called as the pipeline calls it, makes no more numba runtime
    allocations than passing the same arguments to a function that does nothing (argument
    unboxing)."""
    calls = []
    originals = {}
    names = ["rgb_to_gray", "high_pass", "track_markers", "marker_free_weights", "masked_blur_rgb",
             "contact_threshold", "binary_erode", "binary_dilate", "fill_holes", "contact_features"]
    mp = pytest.MonkeyPatch()
    for name in names:
        originals[name] = getattr(K, name)
        mp.setattr(K, name, lambda *a, _n=name: calls.append((_n, a)) or originals[_n](*a))
    try:
        pipe.process(render_gel(press_motion(0.5), seed=1))
    finally:
        mp.undo()
    assert sorted({n for n, _ in calls}) == sorted(names)
    for name, args in calls:
        _noop(*args)  # compile
        baseline = _allocs(lambda a=args: _noop(*a))
        assert _allocs(lambda n=name, a=args: originals[n](*a)) == baseline, name


def test_process_creates_no_arrays(pipe):
    imgs = [render_gel(press_motion(k / 10), seed=k) for k in range(10)]
    for img in imgs:
        pipe.process(img)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for img in imgs:
            pipe.process(img)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 16_000  # an image-sized temporary would be >= 76 kB


# -- accuracy on synthetic frames --------------------------------------------------------------------------

FIELDS = [
    ContactField(translation_px=(0.4, 0.0)),
    ContactField(translation_px=(2.0, -1.5)),
    ContactField(translation_px=(-3.0, 2.5), radius_px=60),
    ContactField(rotation_rad=0.03),
    ContactField(rotation_rad=-0.06, radius_px=50),
    ContactField(bulge_px=1.5),
    ContactField(bulge_px=3.0, radius_px=50, center_px=(120, 100)),
    ContactField(translation_px=(1.5, 1.0), rotation_rad=0.04, bulge_px=1.0, indent=0.7),
    ContactField(translation_px=(-2.0, -2.0), rotation_rad=-0.03, bulge_px=2.0, indent=0.5, center_px=(200, 140)),
]


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"t{f.translation_px}r{f.rotation_rad}b{f.bulge_px}")
def test_recovers_known_displacement_field(reference_image, grid, field):
    p = TactilePipeline()
    p.set_reference(reference_image)
    out = p.process(render_gel(field, seed=11))
    err = np.linalg.norm(out.displacement_px - true_displacement(field, grid), axis=1)
    assert np.abs(true_displacement(field, grid)).max() > 0.35
    assert err.mean() < 0.3 and err.max() < 0.3, (err.mean(), err.max())
    assert out.found.all()


def test_detection_finds_the_grid(pipe, grid):
    assert pipe.n_markers == 63
    assert np.abs(pipe.tracker.reference - grid).max() < 0.1
    assert 4.0 < pipe.tracker.radius < 5.5
    # row-major order: y non-decreasing by row, x increasing within a row
    rows = pipe.tracker.reference.reshape(7, 9, 2)
    assert (np.diff(rows[:, :, 0], axis=1) > 0).all() and (np.diff(rows[:, 0, 1]) > 0).all()


def test_crop_resize_frame_tracks_like_the_processed_one(grid):
    """A raw camera-size frame, cropped and resized by capture.CropResize, gives the same markers."""
    cv2 = pytest.importorskip("cv2")
    from drivers.gelsight_mini.capture import CropResize

    cr, out = CropResize(320, 240, 0.15), np.zeros((H, W, 3), np.uint8)
    field = ContactField(translation_px=(1.0, -2.0), indent=0.5)
    p = TactilePipeline()
    p.set_reference(cr(render_gel(None, raw_size=(820, 616)), out).copy())
    assert np.abs(p.tracker.reference - grid).max() < 0.2
    got = p.process(cr(render_gel(field, raw_size=(820, 616), seed=2), out))
    err = np.linalg.norm(got.displacement_px - true_displacement(field, grid), axis=1)
    assert err.max() < 0.3
    assert cv2 is not None


@pytest.mark.parametrize("field", [
    ContactField(indent=0.6),
    ContactField(indent=0.35, radius_px=30, center_px=(110, 90)),
    ContactField(indent=0.8, radius_px=60, center_px=(190, 130), translation_px=(2, 0)),
    ContactField(indent=0.5, radius_px=45, center_px=(300, 120)),  # cut by the image border
])
def test_contact_mask_overlaps_true_disc(reference_image, field):
    p = TactilePipeline()
    p.set_reference(reference_image)
    mask = p.process(render_gel(field, seed=5)).contact_mask
    true = field.contact_mask(H, W)
    iou = (mask & true).sum() / (mask | true).sum()
    assert iou > 0.7, iou


def test_no_contact_gives_empty_mask_and_zero_force(reference_image):
    p = TactilePipeline()
    p.set_reference(reference_image)
    for seed in range(3):
        out = p.process(render_gel(None, seed=seed + 20))
        assert not out.contact_mask.any()
        assert not out.force_n.any() and out.torsion_nm == 0.0
    # markers moving without visible contact: still no force (the shear is read inside contact only)
    out = p.process(render_gel(ContactField(translation_px=(2, 0)), seed=30))
    assert not out.force_n.any()


def test_force_follows_shear_direction_and_grows(reference_image):
    for angle in np.deg2rad([0, 60, 135, 250]):
        d = np.array([math.cos(angle), math.sin(angle)])
        mags = []
        for s in (0.5, 1.0, 2.0, 3.0):
            p = TactilePipeline()
            p.set_reference(reference_image)
            f = p.process(render_gel(ContactField(translation_px=tuple(s * d), indent=0.6), seed=9)).force_n
            cos = f[:2] @ d / np.linalg.norm(f[:2])
            assert cos > 0.99, (np.rad2deg(angle), s, f)
            mags.append(np.linalg.norm(f[:2]))
        assert np.all(np.diff(mags) > 0), mags


def test_normal_force_and_torsion_grow_with_load(reference_image):
    fz, tz = [], []
    for k, (radius, twist) in enumerate([(32, 0.01), (40, 0.02), (48, 0.04), (56, 0.06)]):
        p = TactilePipeline()
        p.set_reference(reference_image)
        out = p.process(render_gel(ContactField(radius_px=radius, indent=0.6, bulge_px=radius / 30,
                                                rotation_rad=twist), seed=k))
        fz.append(out.force_n[2])
        tz.append(out.torsion_nm)
    assert fz[0] > 0 and np.all(np.diff(fz) > 0), fz
    assert tz[0] > 0 and np.all(np.diff(tz) > 0), tz
    p = TactilePipeline()
    p.set_reference(reference_image)
    assert p.process(render_gel(ContactField(rotation_rad=-0.04, indent=0.6), seed=1)).torsion_nm < 0


# -- force calibration ------------------------------------------------------------------------------------


def _features(reference_image) -> list[np.ndarray]:
    p = TactilePipeline()
    p.set_reference(reference_image)
    feats = []
    for k, f in enumerate([
        ContactField(indent=0.5, radius_px=30, bulge_px=0.5),
        ContactField(indent=0.6, radius_px=40, bulge_px=1.5, translation_px=(1.5, 0.0)),
        ContactField(indent=0.6, radius_px=50, bulge_px=1.0, translation_px=(0.0, -2.0), rotation_rad=0.03),
        ContactField(indent=0.7, radius_px=35, bulge_px=2.0, translation_px=(-1.0, 1.0), rotation_rad=-0.05),
        ContactField(indent=0.5, radius_px=45, bulge_px=0.2, rotation_rad=0.02),
    ]):
        p.set_reference(reference_image)
        feats.append(p.process(render_gel(f, seed=40 + k)).features.copy())
    return feats


def test_calibration_recovers_known_constants(reference_image):
    true = ForceConstants(k_shear_n_per_mm=3.2, k_normal_n_per_mm2=0.08, k_normal_div_n=4.0, k_torsion_nm=0.02)
    rng = np.random.default_rng(1)
    samples = []
    for f in _features(reference_image):
        force = (true.k_shear_n_per_mm * f[0], true.k_shear_n_per_mm * f[1],
                 true.k_normal_n_per_mm2 * f[2] + true.k_normal_div_n * f[3])
        noisy = np.array(force) * (1 + 1e-3 * rng.standard_normal(3))
        samples.append(CalibrationSample(features=f, force_n=noisy, torque_nm=true.k_torsion_nm * f[4]))
    cal = calibrate_force(samples)
    got = cal.constants
    assert got.k_shear_n_per_mm == pytest.approx(true.k_shear_n_per_mm, rel=0.01)
    assert got.k_normal_n_per_mm2 == pytest.approx(true.k_normal_n_per_mm2, rel=0.02)
    assert got.k_normal_div_n == pytest.approx(true.k_normal_div_n, rel=0.1)
    assert got.k_torsion_nm == pytest.approx(true.k_torsion_nm, rel=1e-6)
    assert cal.samples == 5 and cal.rms_residual_n[0] < 0.01


def test_calibration_with_weights_only(reference_image):
    """Only weights resting on the gel (no shear, no torque): the normal constant is fitted, the
    others keep their base values."""
    feats = _features(reference_image)
    base = ForceConstants()
    samples = [CalibrationSample.from_weight(np.array([0, 0, f[2], 0, 0]), 0.002 * f[2]) for f in feats]
    got = calibrate_force(samples, base).constants
    assert got.k_normal_n_per_mm2 == pytest.approx(0.002 * 9.80665, rel=1e-9)
    assert got.k_shear_n_per_mm == base.k_shear_n_per_mm and got.k_torsion_nm == base.k_torsion_nm


def test_calibration_errors():
    with pytest.raises(ConfigError, match="no samples"):
        calibrate_force([])
    with pytest.raises(ConfigError, match="features"):
        calibrate_force([CalibrationSample(features=np.zeros(3), force_n=(0, 0, 1))])
    with pytest.raises(ConfigError, match="axis"):
        CalibrationSample.from_weight(np.zeros(5), 0.1, axis="w")


@pytest.mark.parametrize("bad", [{"marker_threshold": 0}, {"min_marker_area_px": 600}, {"track_iterations": 0},
                                 {"contact_open_radius_px": -1}])
def test_params_reject_bad_values(bad):
    with pytest.raises(ConfigError):
        TactileParams(**bad)


def test_process_rejects_wrong_image(pipe):
    with pytest.raises(ValueError, match="320"):
        pipe.process(np.zeros((480, 640, 3), np.uint8))
    with pytest.raises(RuntimeError, match="set_reference"):
        TactilePipeline().process(np.zeros((H, W, 3), np.uint8))
