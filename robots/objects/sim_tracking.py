"""Object poses in the simulator the way a real setup gets them: the tracker reads the sim's own
rendered camera frames off the bus (as it would a real camera's) and the server reports what it
measured in ``RobotState.body_pose``, with capture times and status, instead of MuJoCo's truth.

MuJoCo's truth at each frame's capture is kept beside it (``body_pose_truth``), so an episode
recorded this way can be scored against the ground truth later. A real robot never has that
field. The camera's intrinsics and pose come from the model (a perfectly calibrated camera), so
what is measured is the tracker, not a calibration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

import numpy as np

from robots.objects.config import ObjectsConfig
from robots.objects.sim_camera import sim_camera_pose, sim_intrinsics
from robots.objects.tracker import UNSEEN, ObjectTracker
from teleop.errors import ConfigError

__all__ = ["SimObjectTracking"]

logger = logging.getLogger(__name__)

_KEEP_FRAMES = 64  # submitted frames remembered (a frame is tracked within a few of its render)


class SimObjectTracking:
    """``on_render(data)`` when the server asks for a frame; ``start(endpoint, keys)``; then
    ``fill()`` gives (pose, pose_ns, status, truth) for the next state; ``stop()``."""

    def __init__(self, sim, config: ObjectsConfig, width: int, height: int) -> None:
        model = sim.model
        names = list(sim.body_names)
        missing = [n for n in config.names if n not in names]
        if missing:
            raise ConfigError(f"objects config {config.source}: objects {missing} are not free bodies of the model; "
                              f"free bodies: {names}")
        self.rows = np.array([names.index(n) for n in config.names], np.int64)  # tracker row -> body row
        self.config, self.sim = config, sim
        K = sim_intrinsics(model, config.camera, width, height).matrix()
        self.tracker = ObjectTracker(config, K, np.zeros(5), np.eye(4))
        b = len(names)
        self._pose = np.zeros((b, 7))
        self._pose[:, 3] = 1.0
        self._pose_ns = np.zeros(b, np.int64)
        self._status = np.full(b, UNSEEN, np.uint8)
        self._truth = np.zeros((b, 7))
        self._truth[:, 3] = 1.0
        self._scratch = np.zeros(len(config.names), np.uint8)
        self._renders: OrderedDict[float, tuple[int, np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error = ""
        self.frames = 0

    def on_render(self, data) -> None:
        """The physics loop submitted a frame at ``data.time``: remember when, the truth, the camera."""
        sim = self.sim
        truth = np.concatenate([data.xpos[sim.body_ids], data.xquat[sim.body_ids]], axis=1)
        cam = sim_camera_pose(sim.model, data, self.config.camera)
        with self._lock:
            self._renders[float(data.time)] = (time.monotonic_ns(), truth, cam)
            while len(self._renders) > _KEEP_FRAMES:
                self._renders.popitem(last=False)

    def start(self, endpoint: str, keys=None) -> None:
        from teleop.bus import Bus, CameraFrame, CurveKeys
        from teleop.bus.endpoints import TOPIC_CAMERA

        self._bus = Bus("sim-objects", keys=CurveKeys.load(keys) if keys else None)
        self._sub = self._bus.subscriber(endpoint, [TOPIC_CAMERA + self.config.camera], accept=(CameraFrame,),
                                         mode="latest", max_bytes=64 << 20)
        self._thread = threading.Thread(target=self._run, name="sim-objects", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._sub.wait(0.1):
                    continue
                got = self._sub.latest()  # newest frame wins
                if got is not None:
                    self._track(got.msg)
        except Exception as exc:  # the server keeps running; poses go stale and say so
            self.error = f"object tracking stopped: {type(exc).__name__}: {exc}"
            logger.error("%s", self.error)

    def _track(self, frame) -> None:
        with self._lock:
            render = self._renders.get(float(frame.time_s))
        if render is None:
            return  # older than anything remembered
        capture_ns, truth, cam = render
        tr = self.tracker
        tr.T_base_camera = cam
        tr.update(frame.image, capture_ns)
        self.frames += 1
        with self._lock:
            measured = tr.pose_ns == capture_ns
            rows = self.rows
            self._pose[rows] = tr.pose
            self._pose_ns[rows] = tr.pose_ns
            self._status[rows] = tr.status
            self._truth[rows[measured]] = truth[rows[measured]]

    def fill(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies for one ``RobotState``: pose (b, 7), pose_ns (b,), status (b,), truth (b, 7)."""
        with self._lock:
            pose, pose_ns, truth = self._pose.copy(), self._pose_ns.copy(), self._truth.copy()
            status = self._status.copy()
        status[self.rows] = self.tracker.status_at(time.monotonic_ns(), self._scratch)
        return pose, pose_ns, status, truth

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._bus.close()
            self._thread = None
