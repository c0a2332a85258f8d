"""A simulated camera as a calibrated one: MuJoCo's pinhole (``fovy``, square pixels, centred) as
intrinsics, and its pose in the world as ``T_base_camera`` with OpenCV's axes (x right, y down,
z forward; MuJoCo's camera looks along -z with y up)."""

from __future__ import annotations

import math

import mujoco
import numpy as np

from teleop.errors import ConfigError
from teleop.vision.intrinsics import Intrinsics

__all__ = ["sim_intrinsics", "sim_camera_pose"]

_MJ_TO_CV = np.diag([1.0, -1.0, -1.0])


def _camera_id(model: mujoco.MjModel, name: str) -> int:
    cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    if cam < 0:
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        raise ConfigError(f"objects config: camera {name!r} is not in the model; cameras: {names}")
    return cam


def sim_intrinsics(model: mujoco.MjModel, name: str, width: int, height: int) -> Intrinsics:
    fovy = float(model.cam_fovy[_camera_id(model, name)])
    f = (height / 2) / math.tan(math.radians(fovy) / 2)
    # OpenCV puts pixel centres at whole coordinates: the image's centre is (w - 1) / 2
    return Intrinsics(f, f, (width - 1) / 2, (height - 1) / 2, width=width, height=height,
                      source=f"sim camera {name} (fovy {fovy:g})")


def sim_camera_pose(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> np.ndarray:
    """4x4 ``T_world_camera`` (OpenCV axes) from ``data``'s kinematics."""
    cam = _camera_id(model, name)
    T = np.eye(4)
    T[:3, :3] = data.cam_xmat[cam].reshape(3, 3) @ _MJ_TO_CV
    T[:3, 3] = data.cam_xpos[cam]
    return T
