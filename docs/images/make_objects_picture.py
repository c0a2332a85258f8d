"""Regenerate docs/images/objects.png, the picture in docs/objects.md: the bundled demo's head
camera at 640x480 while the right hand holds the bottle in the air, each object's tracked pose
drawn as axes (red x, green y, blue z) with its error against MuJoCo's pose written beside it.

    .venv/bin/python docs/images/make_objects_picture.py

Not part of the tests.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "objects.png"
AT_S = 6.5  # the bottle is up


def _label(cv2, img, text: str, at: tuple[int, int]) -> None:
    cv2.putText(img, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    importlib.import_module("teleop")  # picks the headless render backend before mujoco is imported
    import cv2
    import mujoco
    import numpy as np

    from robots.description import bundled_description_path
    from robots.mujoco_sim.model import load_sim_model
    from robots.objects.accuracy import rotation_error_deg
    from robots.objects.config import load_objects
    from robots.objects.sim_camera import sim_camera_pose, sim_intrinsics
    from robots.objects.tracker import FRESH, ObjectTracker
    from robots.scripted import actuator_indices, bimanual_demo_plan
    from teleop.vision.transforms import make_transform, quat_to_matrix

    sim = load_sim_model(bundled_description_path())
    m = sim.model
    m.vis.quality.shadowsize, m.vis.quality.offsamples = 0, 0
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, sim.home_key)
    config = load_objects(sim.description.objects_path)
    plan = bimanual_demo_plan(m, sim.description)
    act = actuator_indices(m, plan.joint_names)
    while d.time < AT_S:
        d.ctrl[act] = plan.command_at(d.time)
        mujoco.mj_step(m, d)
    with mujoco.Renderer(m, 480, 640) as r:
        r.update_scene(d, camera=config.camera)
        image = r.render().copy()
    K = sim_intrinsics(m, config.camera, 640, 480).matrix()
    T_cam = sim_camera_pose(m, d, config.camera)
    tracker = ObjectTracker(config, K, np.zeros(5), T_cam)
    tracker.update(image, 1)
    out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    cv2.aruco.drawDetectedMarkers(out, [c.reshape(1, 4, 2).astype(np.float32) for c in tracker.last.corners])
    inv = np.linalg.inv(T_cam)
    for i, name in enumerate(config.names):
        if tracker.status[i] != FRESH:
            continue
        T = inv @ make_transform(quat_to_matrix(tracker.pose[i, 3:]), tracker.pose[i, :3])
        rvec, _ = cv2.Rodrigues(T[:3, :3])
        cv2.drawFrameAxes(out, K, np.zeros(5), rvec, T[:3, 3], 0.05, 2)
        body = m.body(name).id
        err_mm = np.linalg.norm(tracker.pose[i, :3] - d.xpos[body]) * 1e3
        err_deg = rotation_error_deg(tracker.pose[i, 3:], d.xquat[body])
        uv = K @ T[:3, 3]
        _label(cv2, out, name, (int(uv[0] / uv[2]) + 8, int(uv[1] / uv[2]) + 18))
        _label(cv2, out, f"{name}: {err_mm:.1f} mm, {err_deg:.2f} deg from MuJoCo's pose", (12, 24 + 22 * i))
    cv2.imwrite(str(OUT), out)
    print(OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
