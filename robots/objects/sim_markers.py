"""Markers drawn on the simulator's objects, from the same objects config the tracker reads: one
thin textured plate per marker (the marker from ``cv2.aruco.generateImageMarker`` with a one-cell
white margin), placed at the marker's pose on its body. Visual only: no contact, no mass.

The plate is a mesh with explicit texture coordinates, so the image's top-left corner is the
marker's top-left corner (OpenCV's marker frame: x right, y up, z out of the face) whatever the
renderer's texture conventions.
"""

from __future__ import annotations

import numpy as np

from robots.objects.config import MarkerMount, ObjectsConfig
from teleop.errors import ConfigError
from teleop.vision.transforms import matrix_to_quat

__all__ = ["marker_image", "add_marker_plates", "MARGIN_CELLS"]

MARGIN_CELLS = 1  # white cells around the marker's black border (detectors need a quiet zone)
_CELL_PX = 24
_THICKNESS_M = 0.001
_LIFT_M = 0.0002  # the face sits this far off the surface it is stuck on (no z-fighting)


def _cells(config: ObjectsConfig) -> int:
    """Cells across the black square: the dictionary's bits plus a one-cell black border."""
    return int(config.cv2_dictionary().markerSize) + 2


def marker_image(config: ObjectsConfig, marker_id: int, cell_px: int = _CELL_PX) -> np.ndarray:
    """(s, s) uint8: the marker with its white margin, as printed or drawn."""
    import cv2

    cells = _cells(config)
    img = cv2.aruco.generateImageMarker(config.cv2_dictionary(), marker_id, cells * cell_px, borderBits=1)
    m = MARGIN_CELLS * cell_px
    return cv2.copyMakeBorder(img, m, m, m, m, cv2.BORDER_CONSTANT, value=255)


def _plate_mesh(spec, name: str, half: float) -> None:
    h, t = half, _THICKNESS_M
    vert = [-h, -h, 0, h, -h, 0, h, h, 0, -h, h, 0, -h, -h, -t, h, -h, -t, h, h, -t, -h, h, -t]
    uv = [0, 1, 1, 1, 1, 0, 0, 0] * 2  # image row 0 at the top (+y) of the face
    faces = [0, 1, 2, 0, 2, 3, 4, 6, 5, 4, 7, 6, 0, 4, 5, 0, 5, 1, 1, 5, 6, 1, 6, 2, 2, 6, 7, 2, 7, 3, 3, 7, 4, 3, 4, 0]
    mesh = spec.add_mesh(name=name)
    mesh.uservert = vert
    mesh.usertexcoord = uv
    mesh.userface = faces


def _add_plate(spec, config: ObjectsConfig, body, mount: MarkerMount) -> None:
    import mujoco

    name = f"marker_{mount.id}"
    img = np.ascontiguousarray(np.repeat(marker_image(config, mount.id)[:, :, None], 3, axis=2))
    tex = spec.add_texture(name=name, type=mujoco.mjtTexture.mjTEXTURE_2D, width=img.shape[1], height=img.shape[0],
                           nchannel=3)
    tex.data = img.tobytes()
    mat = spec.add_material(name=name)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = name
    cells = _cells(config)
    _plate_mesh(spec, name, mount.size_m / 2 * (cells + 2 * MARGIN_CELLS) / cells)
    T = mount.T_object_marker
    pos = T[:3, 3] + T[:3, 2] * _LIFT_M
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=name, material=name, pos=pos,
                  quat=matrix_to_quat(T), contype=0, conaffinity=0, mass=0, group=1)


def add_marker_plates(spec, config: ObjectsConfig, where: str) -> None:
    """Add every configured marker to its body in ``spec`` (a ``mujoco.MjSpec``)."""
    for obj in config.objects:
        body = spec.body(obj.name)
        if body is None:
            free = [b.name for b in spec.bodies if b.name]
            raise ConfigError(f"{where}: the objects config names body {obj.name!r}, which the model does not have; "
                              f"bodies: {free[:12]}")
        for mount in obj.markers:
            _add_plate(spec, config, body, mount)
