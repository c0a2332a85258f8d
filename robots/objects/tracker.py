"""Marked objects' poses from one camera: detected markers -> each object's pose in the camera
frame (one marker: its IPPE pose times its mount; several: one PnP over all their corners) ->
the robot's base frame through the camera's pose (``T_base_camera``).

The output has the simulator's body-pose layout (``RobotState.body_pose``: x y z, then w x y z,
one row per object) plus, per object, the capture time of the frame it was measured in and a
status: ``FRESH`` (measured in the newest frame), ``HELD`` (not seen in the newest frame: the row
is the last measurement, its capture time says how old) or ``UNSEEN`` (never measured: the row is
the identity at the origin). A held pose is never reported as fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robots.objects.config import ObjectsConfig
from robots.objects.markers import Detections, MarkerDetector, fit_pose
from teleop.vision.transforms import matrix_to_quat

__all__ = ["FRESH", "HELD", "UNSEEN", "STATUS_NAMES", "ObjectTracker", "age_status", "TrackerCounters",
           "matrix_to_pose"]

FRESH, HELD, UNSEEN = 0, 1, 2
STATUS_NAMES = ("fresh", "held", "unseen")


def matrix_to_pose(T: np.ndarray, out: np.ndarray) -> None:
    """4x4 -> ``out`` (7,): x y z, w x y z (w >= 0)."""
    out[:3] = T[:3, 3]
    out[3:] = matrix_to_quat(T)


def age_status(status: np.ndarray, pose_ns: np.ndarray, now_ns: int, max_age_s: float) -> np.ndarray:
    """In place: fresh rows measured longer than ``max_age_s`` before ``now_ns`` become held (a
    camera that stopped delivers no newer frame to say so). Returns ``status``."""
    status[(status == FRESH) & ((now_ns - pose_ns) > int(max_age_s * 1e9))] = HELD
    return status


@dataclass
class TrackerCounters:
    frames: int = 0
    markers_seen: int = 0
    unknown_ids: int = 0  # markers of no configured object (another setup's, or a misread)
    too_small: int = 0
    ambiguous: int = 0  # single-marker poses refused for IPPE's two-fold ambiguity
    reprojection: int = 0
    no_solution: int = 0
    behind_camera: int = 0
    measured: dict[str, int] = field(default_factory=dict)  # object -> frames it was measured in

    def as_dict(self) -> dict[str, int]:
        out = {k: v for k, v in self.__dict__.items() if k != "measured"}
        out.update({f"measured.{k}": v for k, v in self.measured.items()})
        return out


class ObjectTracker:
    """``update(image, capture_ns)`` per frame; then ``pose`` (b, 7), ``pose_ns`` (b,) and
    ``status`` (b,) hold every object's newest measurement, in base-frame coordinates."""

    def __init__(self, config: ObjectsConfig, K: np.ndarray, dist: np.ndarray, T_base_camera: np.ndarray) -> None:
        self.config = config
        self.K = np.asarray(K, np.float64)
        self.dist = np.asarray(dist, np.float64).reshape(-1)
        self.T_base_camera = np.asarray(T_base_camera, np.float64)
        self.detector = MarkerDetector(config)
        self._index = config.marker_index()
        b = len(config.objects)
        self.pose = np.zeros((b, 7))
        self.pose[:, 3] = 1.0
        self.pose_ns = np.zeros(b, np.int64)
        self.status = np.full(b, UNSEEN, np.uint8)
        self._camera_pose = np.tile(np.eye(4), (b, 1, 1))  # T_camera_object of the last measurement
        self.counters = TrackerCounters(measured={o.name: 0 for o in config.objects})
        self.last: Detections | None = None

    def _visible(self, det: Detections) -> dict[int, list[tuple[int, np.ndarray]]]:
        """object index -> [(marker index in det, corners)] of the markers worth using."""
        c = self.counters
        by_object: dict[int, list[tuple[int, np.ndarray]]] = {}
        for k, marker_id in enumerate(det.ids):
            hit = self._index.get(int(marker_id))
            if hit is None:
                c.unknown_ids += 1
                continue
            corners = det.corners[k]
            side = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1).min()
            if side < self.config.tracking.min_side_px:
                c.too_small += 1
                continue
            by_object.setdefault(hit[0], []).append((int(marker_id), corners))
        return by_object

    def _fit(self, seen: list[tuple[int, np.ndarray]],
             prior: np.ndarray | None) -> tuple[np.ndarray | None, str]:
        if len(seen) == 1:
            marker_id, corners = seen[0]
            mount = self._index[marker_id][1]
            h = mount.size_m / 2
            local = np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0]])
            fit = fit_pose(local, corners, self.K, self.dist, mount.size_m, self.config,
                           None if prior is None else prior @ mount.T_object_marker)
            if fit.T is None:
                return None, fit.problem
            return fit.T @ np.linalg.inv(mount.T_object_marker), ""
        obj = np.concatenate([self._index[m][1].corners_in_object() for m, _ in seen])
        img = np.concatenate([c for _, c in seen])
        fit = fit_pose(obj, img, self.K, self.dist, None, self.config)
        return fit.T, fit.problem

    def update(self, image: np.ndarray, capture_ns: int) -> None:
        """Measure every object in ``image`` (RGB or grey) captured at ``capture_ns``."""
        c = self.counters
        c.frames += 1
        det = self.detector.detect(image)
        self.last = det
        c.markers_seen += len(det.ids)
        measured = np.zeros(len(self.status), bool)
        recent = capture_ns - self.pose_ns <= int(self.config.tracking.max_age_s * 1e9)
        for i, seen in self._visible(det).items():
            prior = self._camera_pose[i] if recent[i] and self.status[i] != UNSEEN else None
            T, problem = self._fit(seen, prior)
            if T is None:
                setattr(c, problem, getattr(c, problem) + 1)
                continue
            self._camera_pose[i] = T
            matrix_to_pose(self.T_base_camera @ T, self.pose[i])
            self.pose_ns[i] = capture_ns
            measured[i] = True
            c.measured[self.config.objects[i].name] += 1
        self.status[measured] = FRESH
        self.status[~measured & (self.status == FRESH)] = HELD

    def status_at(self, now_ns: int, out: np.ndarray) -> np.ndarray:
        """The status as of ``now_ns`` (``age_status``), into ``out``."""
        np.copyto(out, self.status)
        return age_status(out, self.pose_ns, now_ns, self.config.tracking.max_age_s)
