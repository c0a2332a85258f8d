"""The tracker against the simulator's ground truth: the bundled demo moves the bottle through the
air while the head camera renders; every rendered frame goes through the tracker and each
measured pose is compared with MuJoCo's pose of that body at the same instant.

"Faces the camera" is decided from the truth, per frame and marker: the marker's face points
towards the camera (within ``facing_deg``), it is in the image, and a ray from the camera to
each of its corners reaches the marker before anything else (a hand in front of it is an
occlusion, not a miss). The detection rate counts frames where some marker of the object faces
the camera and the object was measured."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import mujoco
import numpy as np

from robots.objects.config import ObjectsConfig, load_objects
from robots.objects.sim_camera import sim_camera_pose, sim_intrinsics
from robots.objects.tracker import FRESH, ObjectTracker
from teleop.vision.transforms import quat_to_matrix, rotation_angle_deg

__all__ = ["AccuracyRun", "run_demo_accuracy", "rotation_error_deg", "percentiles"]


def rotation_error_deg(q_a: np.ndarray, q_b: np.ndarray) -> float:
    """The angle [deg] between two orientations given as quaternions (w, x, y, z)."""
    return rotation_angle_deg(quat_to_matrix(q_a).T @ quat_to_matrix(q_b))


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan"), "n": 0}
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "max": round(float(a.max()), 3), "n": int(a.size)}


@dataclass
class AccuracyRun:
    frames: int = 0
    position_mm: dict[str, list[float]] = field(default_factory=dict)  # object -> per measured frame
    rotation_deg: dict[str, list[float]] = field(default_factory=dict)
    facing: dict[str, int] = field(default_factory=dict)  # frames where a marker of it faces the camera
    detected_facing: dict[str, int] = field(default_factory=dict)
    lifted_frames: int = 0  # frames with the bottle in the air (>= 3 cm over its start)
    in_air_mm: list[float] = field(default_factory=list)  # the bottle's errors in those frames
    in_air_deg: list[float] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    track_s: float = 0.0

    def summary(self, objects: tuple[str, ...] | None = None) -> dict:
        names = objects or tuple(self.position_mm)
        pos = [v for n in names for v in self.position_mm.get(n, [])]
        rot = [v for n in names for v in self.rotation_deg.get(n, [])]
        facing = sum(self.facing.get(n, 0) for n in names)
        hit = sum(self.detected_facing.get(n, 0) for n in names)
        return {
            "position_error_mm": percentiles(pos),
            "rotation_error_deg": percentiles(rot),
            "detection_rate": round(hit / facing, 4) if facing else float("nan"),
            "frames_facing": facing,
            "bottle_in_air": {"frames": self.lifted_frames, "position_error_mm": percentiles(self.in_air_mm),
                              "rotation_error_deg": percentiles(self.in_air_deg)},
            "per_object": {n: {"position_error_mm": percentiles(self.position_mm.get(n, [])),
                               "rotation_error_deg": percentiles(self.rotation_deg.get(n, [])),
                               "detection_rate": round(self.detected_facing.get(n, 0) / self.facing[n], 4)
                               if self.facing.get(n) else float("nan")} for n in names},
        }


def _faces_camera(model, data, cam_pos: np.ndarray, cam_body: int, geom: int, corners_world: np.ndarray,
                  normal: np.ndarray, centre: np.ndarray, facing_deg: float) -> bool:
    to_cam = cam_pos - centre
    if float(np.dot(normal, to_cam)) < math.cos(math.radians(facing_deg)) * np.linalg.norm(to_cam):
        return False
    geomid = np.zeros(1, np.int32)
    for corner in corners_world:
        target = corner + 0.002 * (centre - corner) / np.linalg.norm(centre - corner) + 0.0005 * normal
        vec = target - cam_pos
        # the camera's own body (a head around the lens) is not in the way
        dist = mujoco.mj_ray(model, data, cam_pos, vec / np.linalg.norm(vec), None, 1, cam_body, geomid)
        if dist < 0 or (geomid[0] != geom and dist < np.linalg.norm(vec) - 0.003):
            return False
    return True


class _Truth:
    """Where each configured marker is in the world, and whether it faces the camera."""

    def __init__(self, model, config: ObjectsConfig, camera: str) -> None:
        self.model, self.config, self.camera = model, config, camera
        self.body_ids = [model.body(o.name).id for o in config.objects]
        self.geom_ids = {m.id: model.geom(f"marker_{m.id}").id for o in config.objects for m in o.markers}

    def facing(self, data, K: np.ndarray, size: tuple[int, int], facing_deg: float) -> list[bool]:
        cam = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera)
        cam_pos = data.cam_xpos[cam].copy()
        T_cam = sim_camera_pose(self.model, data, self.camera)
        out = []
        for obj, body in zip(self.config.objects, self.body_ids, strict=True):
            R, p = data.xmat[body].reshape(3, 3), data.xpos[body]
            any_facing = False
            for m in obj.markers:
                corners = (R @ m.corners_in_object().T).T + p
                pc = (T_cam[:3, :3].T @ (corners - T_cam[:3, 3]).T).T
                if np.any(pc[:, 2] <= 0.05):
                    continue
                uv = (K @ pc.T).T
                uv = uv[:, :2] / uv[:, 2:]
                if np.any(uv < 2) or np.any(uv[:, 0] > size[0] - 2) or np.any(uv[:, 1] > size[1] - 2):
                    continue
                normal = R @ m.T_object_marker[:3, 2]
                centre = R @ m.T_object_marker[:3, 3] + p
                if _faces_camera(self.model, data, cam_pos, int(self.model.cam_bodyid[cam]), self.geom_ids[m.id],
                                 corners, normal, centre, facing_deg):
                    any_facing = True
                    break
            out.append(any_facing)
        return out


def run_demo_accuracy(description=None, width: int = 640, height: int = 480, camera_hz: float = 15.0,
                      seconds: float | None = None, start_s: float = 0.0, facing_deg: float = 70.0,
                      refine: str | None = None) -> AccuracyRun:
    """Step the bundled demo plan (``robots.scripted.bimanual_demo_plan``) in-process and track every
    rendered frame. ``seconds``: a slice of the plan from ``start_s`` (None: all of it); ``refine``:
    another corner refinement than the config's (a reference run)."""
    import time

    from robots.description import bundled_description_path
    from robots.mujoco_sim.model import load_sim_model
    from robots.scripted import actuator_indices, bimanual_demo_plan

    sim = load_sim_model(description or bundled_description_path())
    config = load_objects(sim.description.objects_path)
    if refine is not None:
        config = replace(config, tracking=replace(config.tracking, refine=refine))
    m = sim.model
    m.vis.global_.offwidth, m.vis.global_.offheight = max(width, 640), max(height, 480)
    m.vis.quality.shadowsize, m.vis.quality.offsamples = 0, 0
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, sim.home_key)
    mujoco.mj_forward(m, d)
    plan = bimanual_demo_plan(m, sim.description)
    act = actuator_indices(m, plan.joint_names)
    K = sim_intrinsics(m, config.camera, width, height).matrix()
    tracker = ObjectTracker(config, K, np.zeros(5), sim_camera_pose(m, d, config.camera))
    truth = _Truth(m, config, config.camera)
    renderer = mujoco.Renderer(m, height, width)
    run = AccuracyRun()
    names = config.names
    for n in names:
        run.position_mm[n], run.rotation_deg[n], run.facing[n], run.detected_facing[n] = [], [], 0, 0
    bottle = names.index("bottle") if "bottle" in names else 0
    z0 = float(d.xpos[truth.body_ids[bottle]][2])
    end_s = plan.duration_s if seconds is None else min(plan.duration_s, start_s + seconds)
    period, next_frame = 1.0 / camera_hz, start_s
    steps = 0
    try:
        while d.time < end_s:
            d.ctrl[act] = plan.command_at(d.time)
            mujoco.mj_step(m, d)
            steps += 1
            if d.time < next_frame:
                continue
            next_frame += period
            renderer.update_scene(d, camera=config.camera)
            image = renderer.render()
            tracker.T_base_camera = sim_camera_pose(m, d, config.camera)
            t0 = time.perf_counter()
            tracker.update(image, steps)
            run.track_s += time.perf_counter() - t0
            run.frames += 1
            _score(run, tracker, truth, d, K, (width, height), facing_deg, steps)
            if d.xpos[truth.body_ids[bottle]][2] - z0 >= 0.03:
                run.lifted_frames += 1
                if tracker.pose_ns[bottle] == steps and run.position_mm[names[bottle]]:
                    run.in_air_mm.append(run.position_mm[names[bottle]][-1])
                    run.in_air_deg.append(run.rotation_deg[names[bottle]][-1])
    finally:
        renderer.close()
    run.counters = tracker.counters.as_dict()
    return run


def _score(run: AccuracyRun, tracker: ObjectTracker, truth: _Truth, d, K, size, facing_deg: float,
           stamp: int) -> None:
    facing = truth.facing(d, K, size, facing_deg)
    for i, name in enumerate(tracker.config.names):
        fresh = tracker.status[i] == FRESH and tracker.pose_ns[i] == stamp
        if facing[i]:
            run.facing[name] += 1
            run.detected_facing[name] += int(fresh)
        if not fresh:
            continue
        body = truth.body_ids[i]
        run.position_mm[name].append(float(np.linalg.norm(tracker.pose[i, :3] - d.xpos[body]) * 1e3))
        run.rotation_deg[name].append(rotation_error_deg(tracker.pose[i, 3:], d.xquat[body]))
