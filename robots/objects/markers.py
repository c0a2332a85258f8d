"""Fiducial markers in one image: detection (OpenCV's ``cv2.aruco.ArucoDetector``, sub-pixel
corners) and the camera-frame pose of a set of marker corners (``solvePnP``: IPPE for one square
marker, SQPnP then Levenberg-Marquardt for several), with the checks that keep a bad pose out:
too small in the image, reprojection error, and IPPE's two-fold ambiguity (a marker seen edge-on
or far away fits two mirror poses almost equally well; then neither is trusted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robots.objects.config import ObjectsConfig
from teleop.vision.transforms import rotation_angle_deg

__all__ = ["Detections", "MarkerDetector", "PoseFit", "fit_pose", "refine_corners"]

_EDGE_HALF_PX = 1.5  # edge profiles reach this far either side of the edge (border and margin are a cell each)
_EDGE_STEP_PX = 0.25
_EDGE_CONTRAST = 20  # grey levels between the black border and the white margin, at least
PRIOR_DEG = 20.0  # an ambiguous square's solution this close to the last pose is the one
_CORNER_NOISE_PX = 0.05  # below this a reprojection error says nothing about which pose is right


@dataclass
class Detections:
    ids: np.ndarray  # (m,) int
    corners: np.ndarray  # (m, 4, 2) float, OpenCV's corner order


@dataclass
class PoseFit:
    """``T_camera_object`` (4x4) or None, why not (``""`` when it fitted), and the mean corner
    reprojection error [px]."""

    T: np.ndarray | None
    problem: str
    error_px: float


class MarkerDetector:
    def __init__(self, config: ObjectsConfig) -> None:
        import cv2

        self._cv2 = cv2
        self._refine = config.tracking.refine == "edges"
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = (cv2.aruco.CORNER_REFINE_SUBPIX if config.tracking.refine == "subpix"
                                         else cv2.aruco.CORNER_REFINE_NONE)  # "edges": refine_corners does better
        self._detector = cv2.aruco.ArucoDetector(config.cv2_dictionary(), params)

    def detect(self, image: np.ndarray) -> Detections:
        """``image``: (h, w, 3) RGB or (h, w) grey uint8."""
        cv2 = self._cv2
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        corners, ids, _rejected = self._detector.detectMarkers(grey)
        if ids is None or not len(ids):
            return Detections(np.zeros(0, np.int64), np.zeros((0, 4, 2)))
        quads = np.asarray(corners, np.float64).reshape(-1, 4, 2)
        if self._refine:
            for k in range(len(quads)):
                for _ in range(2):  # the second pass samples along the refined edges
                    quads[k] = refine_corners(grey, quads[k])
        return Detections(ids.reshape(-1).astype(np.int64), quads)


def _edge_points(grey: np.ndarray, a: np.ndarray, b: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Sub-pixel points of the edge a -> b: along profiles across it, where the grey level crosses
    halfway from the black border (inside) to the white margin (outside)."""
    import cv2

    length = float(np.linalg.norm(b - a))
    t = (b - a) / length
    n = np.array([t[1], -t[0]])
    if np.dot(n, (a + b) / 2 - centre) < 0:
        n = -n  # outwards
    offs = np.arange(-_EDGE_HALF_PX, _EDGE_HALF_PX + 1e-9, _EDGE_STEP_PX)
    pts = a + np.linspace(0.15, 0.85, max(4, int(length)))[:, None] * (b - a)  # away from the corners
    grid = pts[:, None, :] + offs[None, :, None] * n
    prof = cv2.remap(grey, grid[..., 0].astype(np.float32), grid[..., 1].astype(np.float32),
                     cv2.INTER_LINEAR).astype(np.float64)
    half = len(offs) // 2
    lo, hi = prof[:, :half].min(axis=1), prof[:, half + 1:].max(axis=1)
    mid = (lo + hi) / 2
    rising = (prof[:, :-1] < mid[:, None]) & (prof[:, 1:] >= mid[:, None])
    rows = np.flatnonzero((hi - lo > _EDGE_CONTRAST) & rising.any(axis=1))
    j = np.argmax(rising[rows], axis=1)  # the first dark -> bright step from inside
    f0, f1 = prof[rows, j] - mid[rows], prof[rows, j + 1] - mid[rows]
    return pts[rows] + (offs[j] - _EDGE_STEP_PX * f0 / (f1 - f0))[:, None] * n


def refine_corners(grey: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """(4, 2) corners -> the intersections of lines fitted to each edge's sub-pixel points. The
    detector's own corners sit on the border's pixel centres, about half a pixel inside the
    true square: 3% of a 15-pixel marker, which is 3% of its distance."""
    centre = quad.mean(axis=0)
    lines = []
    for k in range(4):
        e = _edge_points(grey, quad[k], quad[(k + 1) % 4], centre)
        if len(e) < 3:
            return quad  # too little contrast to do better
        m0 = e.mean(axis=0)
        lines.append((m0, np.linalg.svd(e - m0)[2][0]))
    out = np.empty((4, 2))
    for k in range(4):
        (p1, d1), (p2, d2) = lines[k - 1], lines[k]
        A = np.array([d1, -d2]).T
        if abs(np.linalg.det(A)) < 1e-6:
            return quad
        out[k] = p1 + np.linalg.solve(A, p2 - p1)[0] * d1
    if np.max(np.abs(out - quad)) > 3.0:  # a fit that wandered off: keep the detector's corners
        return quad
    return out


def _matrix(cv2: Any, rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = np.asarray(tvec).reshape(3)
    return T


def _reprojection(cv2: Any, obj: np.ndarray, img: np.ndarray, rvec: np.ndarray, tvec: np.ndarray,
                  K: np.ndarray, dist: np.ndarray) -> float:
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    return float(np.mean(np.linalg.norm(proj.reshape(-1, 2) - img, axis=1)))


def fit_pose(obj_points: np.ndarray, img_points: np.ndarray, K: np.ndarray, dist: np.ndarray,
             square_side_m: float | None, config: ObjectsConfig, prior: np.ndarray | None = None) -> PoseFit:
    """Pose of the points' frame in the camera frame. ``obj_points`` (4k, 3) [m] in the object's
    frame, ``img_points`` (4k, 2) [px]. ``square_side_m``: the points are one square marker in its
    own frame (IPPE_SQUARE, with the ambiguity check); None: several markers (SQPnP + LM).
    ``prior``: a recent pose of the same frame (4x4): an ambiguous square takes the solution
    within ``PRIOR_DEG`` of it, if exactly one is."""
    import cv2

    st = config.tracking
    obj = np.ascontiguousarray(obj_points, np.float64)
    img = np.ascontiguousarray(img_points, np.float64)
    if square_side_m is not None:
        n, rvecs, tvecs, errs = cv2.solvePnPGeneric(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        if n == 0:
            return PoseFit(None, "no_solution", float("inf"))
        errs = np.asarray(errs).reshape(-1)
        best = int(np.argmin(errs))
        # both fit about equally (within the corners' noise) and they disagree: the mirror pose
        # is as likely as this one
        if (n > 1 and errs[1 - best] < st.min_ambiguity_ratio * max(errs[best], _CORNER_NOISE_PX)
                and rotation_angle_deg(cv2.Rodrigues(rvecs[0])[0].T @ cv2.Rodrigues(rvecs[1])[0]) > st.ambiguity_deg):
            near = [] if prior is None else [
                k for k in range(n) if rotation_angle_deg(cv2.Rodrigues(rvecs[k])[0].T @ prior[:3, :3]) < PRIOR_DEG]
            if len(near) != 1:
                return PoseFit(None, "ambiguous", float(errs[best]))
            best = near[0]
        rvec, tvec = rvecs[best], tvecs[best]
    else:
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            return PoseFit(None, "no_solution", float("inf"))
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
    if float(np.asarray(tvec).reshape(3)[2]) <= 0:
        return PoseFit(None, "behind_camera", float("inf"))
    err = _reprojection(cv2, obj, img, rvec, tvec, K, dist)
    if err > st.max_reprojection_px:
        return PoseFit(None, "reprojection", err)
    return PoseFit(_matrix(cv2, rvec, tvec), "", err)
