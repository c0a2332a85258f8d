"""Offscreen camera rendering on its own thread, so physics never waits for a frame.

The physics loop hands over a copy of ``qpos`` (``submit``); the worker sets its own ``MjData``,
runs kinematics and renders every camera, then publishes ``camera_frame`` messages. If the worker
is still busy when the next frame is due, that frame is skipped and counted (real-time mode);
``wait_idle`` lets a free-running simulation keep every frame instead.
"""

from __future__ import annotations

import logging
import threading

import mujoco
import numpy as np

from teleop.bus import Bus, CameraFrame
from teleop.bus.endpoints import TOPIC_CAMERA
from teleop.errors import ConfigError

__all__ = ["CameraWorker"]

logger = logging.getLogger(__name__)


class CameraWorker:
    def __init__(
        self, model: mujoco.MjModel, names: tuple[str, ...], width: int, height: int, bus: Bus, endpoint: str
    ) -> None:
        self.model = model
        self.names = names
        self.width, self.height = width, height
        self.bus = bus
        self.endpoint = endpoint
        self.frames = 0
        self.skipped = 0
        self.error: str | None = None
        self._qpos = np.zeros(model.nq)
        self._time_s = 0.0
        self._index = 0
        self._idle = threading.Event()
        self._idle.set()
        self._work = threading.Condition()
        self._pending = False
        self._stop = False
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the thread and wait until the renderer exists (raises if it cannot)."""
        # The offscreen buffer must hold the requested size.
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, self.width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, self.height)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise ConfigError(f"camera renderer did not start within {timeout_s} s")
        if self.error:
            raise ConfigError(self.error)

    def submit(self, qpos: np.ndarray, time_s: float) -> bool:
        """Queue a render of this state; False (and counted) if the previous one is not done."""
        if not self._idle.is_set():
            self.skipped += 1
            return False
        with self._work:
            self._qpos[:] = qpos
            self._time_s = time_s
            self._pending = True
            self._idle.clear()
            self._work.notify()
        return True

    def wait_idle(self, timeout_s: float = 5.0) -> bool:
        return self._idle.wait(timeout_s)

    def stop(self) -> None:
        with self._work:
            self._stop = True
            self._work.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            renderer = mujoco.Renderer(self.model, self.height, self.width)
            pub = self.bus.publisher(self.endpoint)
        except Exception as exc:  # no GL backend, port taken, ...
            self.error = (
                f"cannot start offscreen rendering ({type(exc).__name__}: {exc}). Set MUJOCO_GL=egl "
                "(needs libegl1) or MUJOCO_GL=osmesa (needs libosmesa6), or run without cameras (--cameras none)."
            )
            self._ready.set()
            return
        data = mujoco.MjData(self.model)
        self._ready.set()
        try:
            while True:
                with self._work:
                    while not self._pending and not self._stop:
                        self._work.wait()
                    if self._stop:
                        return
                    data.qpos[:] = self._qpos
                    time_s = self._time_s
                    self._pending = False
                mujoco.mj_kinematics(self.model, data)
                mujoco.mj_camlight(self.model, data)
                for name in self.names:
                    renderer.update_scene(data, camera=name)
                    image = renderer.render()
                    pub.publish(CameraFrame(camera=name, frame_index=self._index, time_s=time_s, image=image), TOPIC_CAMERA + name)
                self._index += 1
                self.frames += 1
                self._idle.set()
        except Exception as exc:
            self.error = f"camera thread failed: {type(exc).__name__}: {exc}"
            logger.exception("camera thread failed")
            self._idle.set()
        finally:
            renderer.close()
