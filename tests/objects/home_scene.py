"""The bundled scene at its home keyframe, seen by the head camera (rendered with MuJoCo)."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robots.description import bundled_description_path
from robots.mujoco_sim.model import SimModel, load_sim_model
from robots.objects.config import ObjectsConfig, load_objects
from robots.objects.sim_camera import sim_camera_pose, sim_intrinsics

W, H = 640, 480


@dataclass
class HomeScene:
    sim: SimModel
    data: mujoco.MjData
    config: ObjectsConfig
    image: np.ndarray  # (H, W, 3) RGB
    K: np.ndarray
    T_base_camera: np.ndarray

    def truth(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        body = self.sim.model.body(name).id
        return self.data.xpos[body].copy(), self.data.xquat[body].copy()


def home_scene() -> HomeScene:
    sim = load_sim_model(bundled_description_path())
    m = sim.model
    m.vis.quality.shadowsize, m.vis.quality.offsamples = 0, 0
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, sim.home_key)
    mujoco.mj_forward(m, d)
    config = load_objects(sim.description.objects_path)
    with mujoco.Renderer(m, H, W) as r:
        r.update_scene(d, camera=config.camera)
        image = r.render().copy()
    K = sim_intrinsics(m, config.camera, W, H).matrix()
    return HomeScene(sim, d, config, image, K, sim_camera_pose(m, d, config.camera))
