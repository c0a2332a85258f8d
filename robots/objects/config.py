"""The marked objects of a setup: which fiducial markers sit on which object, where, and which
camera sees them. A small TOML file a robot description or a tracker names.

```toml
dictionary = "apriltag_36h11"        # OpenCV's cv2.aruco dictionary
marker_size_m = 0.04                 # the black square's side; a marker's own size_m overrides it
camera = "head_cam"                  # the camera stream the tracker reads
intrinsics = "head_cam.toml"         # `teleop calibrate camera` (optional in the simulator)
camera_pose = "head_cam_pose.toml"   # `teleop calibrate camera-pose` (optional in the simulator)

[tracking]
max_age_s = 0.25                     # not re-measured for longer: reported as held, not fresh

[object.bottle]
markers = [{ id = 10, pos = [0, 0, 0.1305], rpy_deg = [0, 0, 0] }]
```

A marker's frame is OpenCV's: the centre of the black square, x to its right, y up, z out of the
face; ``pos`` and ``rpy_deg`` place it in the object's frame (the body frame a simulator reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robots.mount import vec3
from teleop.errors import ConfigError
from teleop.tomlcfg import check_keys, get, get_float, get_int, load_toml
from teleop.vision.transforms import make_transform, rpy_deg_to_matrix

__all__ = ["DICTIONARIES", "MarkerMount", "MarkedObject", "TrackingSettings", "ObjectsConfig", "load_objects"]

#: Dictionary names accepted here -> cv2.aruco constant names.
DICTIONARIES = {
    "apriltag_36h11": "DICT_APRILTAG_36h11",
    "apriltag_25h9": "DICT_APRILTAG_25h9",
    "apriltag_16h5": "DICT_APRILTAG_16h5",
    "aruco_4x4_50": "DICT_4X4_50",
    "aruco_5x5_100": "DICT_5X5_100",
    "aruco_6x6_250": "DICT_6X6_250",
}
REFINE = ("edges", "subpix", "none")
_TOP = {"dictionary", "marker_size_m", "camera", "intrinsics", "camera_pose", "tracking", "object"}
_TRACKING = {"max_age_s", "min_side_px", "max_reprojection_px", "min_ambiguity_ratio", "ambiguity_deg", "refine"}
_MARKER = {"id", "pos", "rpy_deg", "size_m"}
_POS_M = 2.0  # a marker sits on its object: within 2 m of the object's frame


@dataclass(frozen=True)
class MarkerMount:
    """One marker on an object: its id, the black square's side [m] and its pose in the object
    frame (``T_object_marker``, 4x4)."""

    id: int
    size_m: float
    T_object_marker: np.ndarray = field(compare=False)

    def corners_in_object(self) -> np.ndarray:
        """(4, 3) corners in OpenCV's order (top-left, top-right, bottom-right, bottom-left) [m]."""
        h = self.size_m / 2
        local = np.array([[-h, h, 0, 1], [h, h, 0, 1], [h, -h, 0, 1], [-h, -h, 0, 1]])
        return (self.T_object_marker @ local.T).T[:, :3]


@dataclass(frozen=True)
class MarkedObject:
    name: str
    markers: tuple[MarkerMount, ...]


@dataclass(frozen=True)
class TrackingSettings:
    max_age_s: float = 0.25  # a pose older than this is reported as held
    min_side_px: float = 10.0  # markers smaller in the image are not trusted (corner noise dominates)
    max_reprojection_px: float = 2.0  # a pose whose corners reproject farther than this is refused
    min_ambiguity_ratio: float = 3.0  # IPPE: the other solution must fit this many times worse,
    ambiguity_deg: float = 10.0  # or be this close to the first (a face-on marker's two are)
    refine: str = "edges"  # corners: "edges" (lines fitted to sub-pixel edges), "subpix" (OpenCV's), "none"


@dataclass(frozen=True)
class ObjectsConfig:
    dictionary: str
    camera: str
    objects: tuple[MarkedObject, ...]
    tracking: TrackingSettings = TrackingSettings()
    intrinsics: Path | None = None
    camera_pose: Path | None = None
    source: Path | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.objects)

    def marker_index(self) -> dict[int, tuple[int, MarkerMount]]:
        """marker id -> (object index, mount)."""
        return {m.id: (i, m) for i, o in enumerate(self.objects) for m in o.markers}

    def cv2_dictionary(self) -> Any:
        import cv2

        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, DICTIONARIES[self.dictionary]))


def _marker(t: Any, size_m: float, where: str, prefix: str) -> MarkerMount:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: '{prefix}' must be a table like {{ id = 3, pos = [0, 0, 0.05] }}, got {t!r}")
    check_keys(t, _MARKER, where, prefix + ".")
    marker_id = get_int(t, "id", -1, where, prefix + ".", low=0, high=4095)
    if "id" not in t:
        raise ConfigError(f"{where}: missing key '{prefix}.id'")
    size = get_float(t, "size_m", size_m, where, prefix + ".", low=0.002, high=2.0)
    pos = vec3(t, "pos", where, prefix + ".", _POS_M)
    rpy = vec3(t, "rpy_deg", where, prefix + ".", 360.0)
    return MarkerMount(marker_id, size, make_transform(rpy_deg_to_matrix(rpy), pos))


def _refine(tr: dict[str, Any], where: str) -> str:
    value = get(tr, "refine", str, where, "tracking.", required=False) or "edges"
    if value not in REFINE:
        raise ConfigError(f"{where}: key 'tracking.refine' = {value!r}; allowed: {list(REFINE)}")
    return value


def _path(raw: dict[str, Any], key: str, base: Path, where: str) -> Path | None:
    value = get(raw, key, str, where, required=False)
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def parse_objects(raw: dict[str, Any], source: Path | None = None) -> ObjectsConfig:
    where = f"objects config {source}" if source else "objects config"
    check_keys(raw, _TOP, where)
    dictionary = get(raw, "dictionary", str, where, required=False) or "apriltag_36h11"
    if dictionary not in DICTIONARIES:
        raise ConfigError(f"{where}: dictionary {dictionary!r} is not known; known: {sorted(DICTIONARIES)}")
    size_m = get_float(raw, "marker_size_m", 0.04, where, low=0.002, high=2.0)
    camera = get(raw, "camera", str, where, required=False) or "head_cam"
    tr = get(raw, "tracking", dict, where, required=False) or {}
    check_keys(tr, _TRACKING, where, "tracking.")
    p = "tracking."
    tracking = TrackingSettings(
        max_age_s=get_float(tr, "max_age_s", 0.25, where, p, low=0.005, high=10.0),
        min_side_px=get_float(tr, "min_side_px", 10.0, where, p, low=4.0, high=1000.0),
        max_reprojection_px=get_float(tr, "max_reprojection_px", 2.0, where, p, low=0.1, high=50.0),
        min_ambiguity_ratio=get_float(tr, "min_ambiguity_ratio", 3.0, where, p, low=1.0, high=1000.0),
        ambiguity_deg=get_float(tr, "ambiguity_deg", 10.0, where, p, low=0.0, high=90.0),
        refine=_refine(tr, where),
    )
    table = get(raw, "object", dict, where, required=False) or {}
    if not table:
        raise ConfigError(f"{where}: no [object.NAME] table; each marked object needs one with its markers")
    objects, seen = [], {}
    for name, obj in table.items():
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: 'object.{name}' must be a table with a 'markers' list")
        check_keys(obj, {"markers"}, where, f"object.{name}.")
        marks = get(obj, "markers", list, where, f"object.{name}.")
        if not marks:
            raise ConfigError(f"{where}: 'object.{name}.markers' lists no marker")
        mounts = tuple(_marker(m, size_m, where, f"object.{name}.markers[{i}]") for i, m in enumerate(marks))
        for m in mounts:
            if m.id in seen:
                raise ConfigError(f"{where}: marker id {m.id} is on both {seen[m.id]!r} and {name!r}; "
                                  "each marker belongs to one object")
            seen[m.id] = name
        objects.append(MarkedObject(name, mounts))
    base = source.parent if source else Path.cwd()
    return ObjectsConfig(dictionary, camera, tuple(objects), tracking, _path(raw, "intrinsics", base, where),
                         _path(raw, "camera_pose", base, where), source)


def load_objects(path: str | Path) -> ObjectsConfig:
    path = Path(path).expanduser()
    return parse_objects(load_toml(path, "objects config"), path)
