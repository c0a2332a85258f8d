"""Camera calibration from pictures of a board (``teleop.vision.boards``): the board found in
each picture, the intrinsics from many of them (``cv2.calibrateCamera``), the board's pose in one
picture (``cv2.solvePnP``), and a fixed camera's pose in the robot's base frame from a board lying
at a known pose there. Hand-eye calibration is in ``teleop.vision.handeye``.

Every result says which pictures it used, which it left out and why, and how good it is; too few
usable pictures is a ``CalibrationError`` that says what to take again."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from teleop.vision.boards import Board, BoardView, CheckerBoard, NotFound
from teleop.vision.devices import load_cv2
from teleop.vision.errors import CalibrationError
from teleop.vision.extrinsics import CameraPose
from teleop.vision.images import Frame
from teleop.vision.intrinsics import Intrinsics
from teleop.vision.transforms import F64, PoseSpread, invert_transform, make_transform, mean_transform

__all__ = ["Rejected", "NamedView", "Detections", "find_boards", "IntrinsicsResult", "calibrate_intrinsics",
           "BoardPose", "board_pose", "CameraPoseResult", "camera_pose_from_board", "require_views",
           "board_poses", "MIN_INTRINSICS_IMAGES", "MAX_INTRINSICS_IMAGES"]

#: Fewest pictures that showing the board that an intrinsics calibration accepts.
MIN_INTRINSICS_IMAGES = 8
#: More pictures than this add time, not accuracy: an even selection of them is used.
MAX_INTRINSICS_IMAGES = 60
#: A picture whose reprojection error is this many times the median (and over 0.5 px) is left out.
OUTLIER_FACTOR = 3.0
#: Image cells (8 x 6) the board's corners should reach, over all pictures, for a trustworthy centre.
COVERAGE_GOOD = 0.5
#: The board should be tilted at least this much in some pictures, or the focal length is poorly defined.
TILT_GOOD_DEG = 20.0


class Rejected(NamedTuple):
    """A picture left out, and why."""

    name: str
    reason: str


class NamedView(NamedTuple):
    name: str
    view: BoardView


@dataclass(frozen=True)
class Detections:
    """The board in a set of pictures: the ``views`` where it was found, the pictures left out, the
    image size (width, height) [px] of the first readable picture, and how many pictures there were."""

    board: Board
    views: tuple[NamedView, ...]
    rejected: tuple[Rejected, ...]
    image_size: tuple[int, int]
    total: int

    def only(self, names: Iterable[str], reason: str) -> Detections:
        """The same with only the views named ``names``; the others are rejected with ``reason``."""
        keep = set(names)
        dropped = tuple(Rejected(v.name, reason) for v in self.views if v.name not in keep)
        return Detections(self.board, tuple(v for v in self.views if v.name in keep), self.rejected + dropped,
                          self.image_size, self.total)


def find_boards(frames: Iterable[Frame], board: Board) -> Detections:
    """Look for ``board`` in every frame; a frame that cannot be decoded, has another size than the
    first, or shows no usable board is rejected with the reason."""
    views: list[NamedView] = []
    rejected: list[Rejected] = []
    size: tuple[int, int] | None = None
    total = 0
    for frame in frames:
        total += 1
        if frame.gray is None:
            rejected.append(Rejected(frame.name, "cannot decode it as an image"))
            continue
        h, w = frame.gray.shape[:2]
        if size is None:
            size = (w, h)
        elif (w, h) != size:
            rejected.append(Rejected(frame.name, f"{w}x{h} px, the first picture was {size[0]}x{size[1]}"))
            continue
        found = board.detect(frame.gray)
        if isinstance(found, NotFound):
            rejected.append(Rejected(frame.name, found.reason))
        else:
            views.append(NamedView(frame.name, found))
    if total == 0:
        raise CalibrationError("no pictures to read")
    if size is None:
        raise CalibrationError(f"none of the {total} pictures could be decoded as an image")
    return Detections(board, tuple(views), tuple(rejected), size, total)


def require_views(found: Detections, need: int, hint: str) -> None:
    """CalibrationError when fewer than ``need`` pictures show the board, with the commonest reasons."""
    n = len(found.views)
    if n >= need:
        return
    shows = "show the whole board" if isinstance(found.board, CheckerBoard) else "show enough of the board"
    reasons = Counter(r.reason for r in found.rejected).most_common(3)
    why = "; ".join(f"{count} x {reason}" for reason, count in reasons)
    raise CalibrationError(f"only {n} of {found.total} pictures {shows} ({found.board.spec}); at least {need} are "
                           f"needed: {hint}" + (f". Left out: {why}" if why else ""))


# -- intrinsics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntrinsicsResult:
    """The calibrated ``intrinsics`` and how good they are: the RMS reprojection error over all
    corners [px], per picture, the standard deviation of fx, fy, cx, cy [px], the share of the image
    the corners reached, the largest board tilt [deg], and warnings in words."""

    intrinsics: Intrinsics
    rms_px: float
    used: tuple[str, ...]
    per_image_px: tuple[float, ...]
    rejected: tuple[Rejected, ...]
    std_px: tuple[float, float, float, float]
    coverage: float
    max_tilt_deg: float
    warnings: tuple[str, ...]

    def report_lines(self) -> list[str]:
        k = self.intrinsics
        sfx, sfy, scx, scy = self.std_px
        lines = [
            f"RMS reprojection error {self.rms_px:.3f} px over {len(self.used)} pictures "
            f"(worst picture {max(self.per_image_px):.3f} px)",
            f"fx {k.fx:.2f} +- {sfx:.2f}, fy {k.fy:.2f} +- {sfy:.2f}, cx {k.cx:.2f} +- {scx:.2f}, "
            f"cy {k.cy:.2f} +- {scy:.2f} px at {k.width}x{k.height}",
            f"corners reached {self.coverage:.0%} of the image; board tilted up to {self.max_tilt_deg:.0f} deg",
        ]
        return lines + [f"warning: {w}" for w in self.warnings]


def calibrate_intrinsics(found: Detections, *, fix_k3: bool = True, min_images: int = MIN_INTRINSICS_IMAGES,
                         max_images: int = MAX_INTRINSICS_IMAGES) -> IntrinsicsResult:
    """Intrinsics from the board views (``cv2.calibrateCameraExtended``): the pinhole and the
    distortion k1, k2, p1, p2 (and k3 unless ``fix_k3``: only wide-angle lenses need it, and with
    few pictures it overfits). Of more than ``max_images`` views an even selection is used.
    Pictures whose error is far above the others' are left out and the calibration run again."""
    require_views(found, min_images, "take pictures with the board filling a good part of the image, tilted "
                  "20-45 degrees in different directions, and some near the edges and corners")
    if len(found.views) > max_images:
        pick = np.linspace(0, len(found.views) - 1, max_images).round().astype(int)
        found = found.only((found.views[i].name for i in pick), f"not needed: {max_images} pictures are plenty "
                           "(with a video, --every N picks fewer frames)")
    result = _calibrate(found, fix_k3)
    errors = np.asarray(result[-1])
    median = float(np.median(errors))
    bad = [v.name for v, e in zip(found.views, errors, strict=True) if e > max(OUTLIER_FACTOR * median, 0.5)]
    if bad and len(found.views) - len(bad) >= min_images:
        found = found.only((v.name for v in found.views if v.name not in bad),
                           f"reprojection error over {OUTLIER_FACTOR:g}x the median {median:.2f} px (blurred, or "
                           "the board bent or moved?)")
        result = _calibrate(found, fix_k3)
    rms, k, dist, rvecs, std, errors = result
    w, h = found.image_size
    intr = Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]),
                      tuple(float(d) for d in dist[:5]), w, h, source="teleop calibrate camera")
    coverage = _coverage([v.view.image_points for v in found.views], found.image_size)
    cv2 = load_cv2()
    tilts = [math.degrees(math.acos(min(1.0, abs(cv2.Rodrigues(r)[0][2, 2])))) for r in rvecs]
    std4 = (float(std[0]), float(std[1]), float(std[2]), float(std[3]))
    warnings = []
    if rms > 1.0:
        warnings.append(f"the RMS error {rms:.2f} px is high (good is under 0.5 px): blurred pictures, a board "
                        "that is not flat, or a wrong square size?")
    if coverage < COVERAGE_GOOD:
        warnings.append(f"the corners reached only {coverage:.0%} of the image: add pictures with the board near "
                        "the edges and corners")
    if max(tilts) < TILT_GOOD_DEG:
        warnings.append(f"the board was never tilted more than {max(tilts):.0f} deg: the focal length is poorly "
                        "defined; add pictures tilted 30-45 degrees")
    if std4[0] > 0.01 * intr.fx:
        warnings.append(f"fx is uncertain by {std4[0]:.1f} px ({std4[0] / intr.fx:.1%}): add pictures")
    return IntrinsicsResult(intr, float(rms), tuple(v.name for v in found.views), tuple(float(e) for e in errors),
                            found.rejected, std4, coverage, float(max(tilts)), tuple(warnings))


def _calibrate(found: Detections, fix_k3: bool):
    cv2 = load_cv2()
    obj = [v.view.object_points.astype(np.float32).reshape(-1, 1, 3) for v in found.views]
    img = [v.view.image_points.astype(np.float32).reshape(-1, 1, 2) for v in found.views]
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9)
    try:
        rms, k, dist, rvecs, _, std, _, errors = cv2.calibrateCameraExtended(
            obj, img, found.image_size, None, None, flags=flags, criteria=criteria)
    except cv2.error as exc:
        raise CalibrationError(f"OpenCV could not calibrate from these {len(obj)} pictures ({exc.err}); take "
                               "pictures with the board tilted in different directions") from None
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(dist)) and k[0, 0] > 0 and k[1, 1] > 0):
        raise CalibrationError("the calibration did not converge; take pictures with the board tilted in "
                               "different directions")
    return float(rms), k, dist.reshape(-1), rvecs, std.reshape(-1), errors.reshape(-1)


def _coverage(points: list[npt.NDArray[np.float32]], size: tuple[int, int], cells: tuple[int, int] = (8, 6)) -> float:
    hit = np.zeros(cells[::-1], dtype=bool)
    for p in points:
        cx = np.clip((p[:, 0] / size[0] * cells[0]).astype(int), 0, cells[0] - 1)
        cy = np.clip((p[:, 1] / size[1] * cells[1]).astype(int), 0, cells[1] - 1)
        hit[cy, cx] = True
    return float(hit.mean())


# -- one board pose ---------------------------------------------------------------------------------


class BoardPose(NamedTuple):
    """``T_camera_board`` (4, 4) [m] (camera axes: x right, y down, z forward) and the RMS
    reprojection error of the corners with that pose [px]."""

    T_camera_board: F64
    error_px: float


def board_pose(view: BoardView, intrinsics: Intrinsics) -> BoardPose:
    """The board's pose in the camera frame from one view (``cv2.solvePnP``: IPPE for the planar
    board, then Levenberg-Marquardt refinement). ``intrinsics`` must be for the picture's size."""
    cv2 = load_cv2()
    obj = view.object_points.astype(np.float64).reshape(-1, 1, 3)
    img = view.image_points.astype(np.float64).reshape(-1, 1, 2)
    k, dist = intrinsics.matrix(), np.asarray(intrinsics.dist, dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError("cv2.solvePnP found no pose for the board")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, dist)
    err = float(np.sqrt(np.mean(np.sum((proj - img) ** 2, axis=2))))
    return BoardPose(make_transform(cv2.Rodrigues(rvec)[0], tvec.reshape(3)), err)


def board_poses(found: Detections, intrinsics: Intrinsics) -> list[tuple[str, BoardPose]]:
    """``board_pose`` of every view, with the intrinsics scaled to the pictures' size."""
    if not found.board.orientation_known:
        raise CalibrationError(f"board {found.board.spec} looks the same turned half a turn, so its pose is "
                               "ambiguous; use a checkerboard with one odd and one even corner count (9x6) or a "
                               "ChArUco board")
    w, h = found.image_size
    if intrinsics.width and abs(intrinsics.width / intrinsics.height - w / h) > 0.01:
        raise CalibrationError(f"the intrinsics ({intrinsics.source}) are for {intrinsics.width}x{intrinsics.height} "
                               f"px, the pictures are {w}x{h}: another aspect ratio means another crop of the sensor; "
                               "calibrate the camera at this size (`teleop calibrate camera`)")
    k = intrinsics.for_size(w, h)
    return [(v.name, board_pose(v.view, k)) for v in found.views]


# -- a fixed camera from a board at a known pose ----------------------------------------------------


@dataclass(frozen=True)
class CameraPoseResult:
    """The camera's pose in the base frame (the mean over the pictures), how far the single
    pictures' poses are from it, the RMS reprojection error per picture [px], and warnings."""

    pose: CameraPose
    spread: PoseSpread
    used: tuple[str, ...]
    per_image_px: tuple[float, ...]
    rejected: tuple[Rejected, ...]
    warnings: tuple[str, ...]

    def report_lines(self) -> list[str]:
        s = self.spread
        x, y, z = self.pose.pos
        r, p, yaw = self.pose.rpy_deg
        lines = [
            f"camera at [{x:.4f}, {y:.4f}, {z:.4f}] m, rpy [{r:.2f}, {p:.2f}, {yaw:.2f}] deg in the base frame",
            f"from {len(self.used)} picture{'' if len(self.used) == 1 else 's'}: spread {s.pos_rms_m * 1000:.2f} mm "
            f"(worst {s.pos_max_m * 1000:.2f}), "
            f"{s.rot_rms_deg:.3f} deg (worst {s.rot_max_deg:.3f}); reprojection error up to "
            f"{max(self.per_image_px):.3f} px",
        ]
        return lines + [f"warning: {w}" for w in self.warnings]


def camera_pose_from_board(found: Detections, intrinsics: Intrinsics, T_base_board: npt.ArrayLike,  # noqa: N803
                           source: str = "teleop calibrate camera-pose") -> CameraPoseResult:
    """A fixed camera's pose in the base frame, ``T_base_camera = T_base_board inv(T_camera_board)``,
    averaged over the pictures (the camera and the board must not move between them).
    ``T_base_board`` (4, 4): where the board frame (``teleop.vision.boards``) is in the base frame."""
    require_views(found, 1, "put the whole board in the camera's view, well lit")
    t_base_board = np.asarray(T_base_board, dtype=np.float64)
    poses = board_poses(found, intrinsics)
    estimates = [t_base_board @ invert_transform(bp.T_camera_board) for _, bp in poses]
    mean, spread = mean_transform(estimates)
    errors = tuple(bp.error_px for _, bp in poses)
    warnings = []
    if spread.pos_max_m > 0.005 or spread.rot_max_deg > 0.5:
        warnings.append(f"the pictures disagree by up to {spread.pos_max_m * 1000:.1f} mm, {spread.rot_max_deg:.2f} "
                        "deg: did the camera or the board move between them?")
    if max(errors) > 1.0:
        warnings.append(f"a reprojection error of {max(errors):.2f} px: are the intrinsics for this camera, at this "
                        "resolution and focus?")
    return CameraPoseResult(CameraPose.from_matrix(mean, source=source), spread, tuple(n for n, _ in poses), errors,
                            found.rejected, tuple(warnings))
