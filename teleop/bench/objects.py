"""``teleop bench objects``: the marker tracker's speed and accuracy, each beside a reference
measured in the same run.

- Speed: frames/s on one core (OpenCV limited to one thread) at 640x480 and 1280x720 with 1, 3
  and 10 markers in view, drawn at known poses; the reference is plain OpenCV on the same frames
  (``ArucoDetector`` with its sub-pixel corners, then ``solvePnP`` IPPE_SQUARE per marker), which
  is what a lab writes first.
- Accuracy: the bundled demo moves the bottle through the air while the head camera renders at
  640x480; every frame is tracked and compared with MuJoCo's poses (robots/objects/accuracy.py).
  The reference is the same tracker with OpenCV's own sub-pixel corners instead of ours.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["run"]

SIZES = ((640, 480), (1280, 720))
COUNTS = (1, 3, 10)
_FRAMES = 40


def _scene(width: int, height: int, count: int, seed: int):
    """A config with ``count`` one-marker objects and frames with each at a known pose."""
    import cv2

    from robots.objects.config import parse_objects
    from robots.objects.synthetic import draw_marker, tilted

    rng = np.random.default_rng(seed)
    config = parse_objects({"marker_size_m": 0.05,
                            "object": {f"o{i}": {"markers": [{"id": i}]} for i in range(count)}})
    f = (height / 2) / np.tan(np.radians(35))
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    frames, truth = [], []
    for _ in range(4):
        # a cluttered, textured background (smoothed noise), not a blank wall
        canvas = cv2.GaussianBlur(rng.integers(40, 220, (height, width), dtype=np.uint8), (0, 0), 3)
        poses = []
        cols = int(np.ceil(np.sqrt(count)))
        for i in range(count):
            z = rng.uniform(0.45, 0.75)
            gx, gy = (i % cols + 0.5) / cols - 0.5, (i // cols + 0.5) / cols - 0.5
            T = tilted(rng.uniform(20, 40), z, gx * z * width / f * 0.8, gy * z * height / f * 0.8,
                       rng.uniform(-180, 180))
            draw_marker(canvas, config, i, 0.05, T, K)
            poses.append(T)
        frames.append(canvas)
        truth.append(poses)
    return config, K, frames, truth


def _reference_frame(detector, cv2, grey: np.ndarray, K: np.ndarray, obj: np.ndarray) -> int:
    corners, ids, _ = detector.detectMarkers(grey)
    found = 0
    for c in corners or ():
        ok, _r, _t = cv2.solvePnP(obj, c.reshape(4, 2).astype(np.float64), K, None, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        found += int(ok)
    return found


def _speed(width: int, height: int, count: int) -> dict:
    import cv2

    from robots.objects.tracker import FRESH, ObjectTracker

    config, K, frames, truth = _scene(width, height, count, seed=count * 7 + width)
    tracker = ObjectTracker(config, K, np.zeros(5), np.eye(4))
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    reference = cv2.aruco.ArucoDetector(config.cv2_dictionary(), params)
    h = 0.025
    obj = np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0]])
    ours_s, ref_s, measured, errors = [], [], 0, []
    for k in range(_FRAMES):
        grey = frames[k % len(frames)]
        t0 = time.perf_counter()
        tracker.update(grey, k + 1)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _reference_frame(reference, cv2, grey, K, obj)
        ref_s.append(time.perf_counter() - t0)
        fresh = tracker.status == FRESH
        measured += int(fresh.sum())
        for i in np.flatnonzero(fresh):
            errors.append(float(np.linalg.norm(tracker.pose[i, :3] - truth[k % len(frames)][i][:3, 3]) * 1e3))
    ours, ref = float(np.median(ours_s)), float(np.median(ref_s))
    return {"fps": round(1 / ours, 1), "ms_p50": round(ours * 1e3, 3),
            "ms_p99": round(float(np.percentile(ours_s, 99)) * 1e3, 3),
            "reference_fps": round(1 / ref, 1), "reference_ms_p50": round(ref * 1e3, 3),
            "ratio_to_reference": round(ref / ours, 3), "measured_rate": round(measured / (_FRAMES * count), 4),
            "position_error_mm_p50": round(float(np.median(errors)), 3) if errors else None}


def run(seconds: float | None = None) -> dict:
    import cv2

    from robots.objects.accuracy import run_demo_accuracy

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # per core
    try:
        speed = {f"{w}x{h}": {str(n): _speed(w, h, n) for n in COUNTS} for w, h in SIZES}
    finally:
        cv2.setNumThreads(threads)
    t0 = time.perf_counter()
    ours = run_demo_accuracy(seconds=seconds)
    wall = time.perf_counter() - t0
    ref = run_demo_accuracy(seconds=seconds, refine="subpix")
    s, r = ours.summary(), ref.summary()
    return {
        "bench": "objects",
        "note": "speed: one core, frames with 1/3/10 AprilTag 36h11 markers (5 cm, 0.45-0.75 m, tilted 20-40 deg) "
                "drawn at known poses on a textured background; reference = OpenCV ArucoDetector "
                "(CORNER_REFINE_SUBPIX) + solvePnP "
                "IPPE_SQUARE per marker. accuracy: the bundled demo's head camera at 640x480, every rendered frame "
                "against MuJoCo's poses; reference = the same tracker with OpenCV's sub-pixel corners",
        "fps_per_core": {size: {n: v["fps"] for n, v in row.items()} for size, row in speed.items()},
        "reference_fps_per_core": {size: {n: v["reference_fps"] for n, v in row.items()}
                                   for size, row in speed.items()},
        "speed": speed,
        "position_error_mm": s["position_error_mm"],
        "rotation_error_deg": s["rotation_error_deg"],
        "detection_rate": s["detection_rate"],
        "frames": ours.frames,
        "frames_facing": s["frames_facing"],
        "bottle_in_air": s["bottle_in_air"],
        "per_object": s["per_object"],
        "counters": ours.counters,
        "track_ms_per_frame": round(ours.track_s / max(ours.frames, 1) * 1e3, 3),
        "accuracy_wall_s": round(wall, 2),
        "reference": {"name": "OpenCV sub-pixel corners (CORNER_REFINE_SUBPIX), same tracker",
                      "position_error_mm": r["position_error_mm"], "rotation_error_deg": r["rotation_error_deg"],
                      "detection_rate": r["detection_rate"], "bottle_in_air": r["bottle_in_air"],
                      "counters": ref.counters},
    }
