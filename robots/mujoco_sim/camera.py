"""Offscreen camera rendering in its own process, so physics never waits for a frame and never
competes with the renderer for the GIL (software rendering takes ~30 ms per 320x240 frame).

The physics loop writes ``qpos`` and time into shared memory and raises a request (``submit``);
the render process sets its own ``MjData``, runs kinematics, renders every camera and publishes
``camera_frame`` messages on the camera endpoint. If it is still busy when the next frame is due,
that frame is skipped and counted (real-time mode); ``wait_idle`` lets a free-running simulation
keep every frame instead.

Nothing the physics loop touches takes a lock the render process could hold: the request is a
byte on a pipe, the answers are counters in shared memory. A render process killed at any moment
(``kill -9``, the OOM killer) cannot stall physics; its frames just stop, and ``error`` says so.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

from robots.description import RobotDescription
from teleop.errors import ConfigError

__all__ = ["CameraWorker"]

logger = logging.getLogger(__name__)

_DONE, _FRAMES, _STOP = 0, 1, 2  # CameraWorker._counters

#: Frames queued per camera subscriber at most, in bytes (about 18 s of one 320x240 camera at 15 Hz).
CAMERA_QUEUE_BYTES = 64 * 1024 * 1024


def _render_main(
    description: RobotDescription, names: tuple[str, ...], width: int, height: int, shadows: bool,
    endpoint: str, keys: Path | None, shared, wake, counters, report,
) -> None:
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    # Rendering is best effort; physics is not. One llvmpipe thread and a lower priority keep a
    # software renderer from starving the physics loop on a small machine.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    try:
        os.nice(5)
    except OSError:
        pass
    import mujoco

    from robots.mujoco_sim.model import load_sim_model
    from teleop.bus import Bus, CameraFrame, CurveKeys
    from teleop.bus.endpoints import TOPIC_CAMERA

    try:
        model = load_sim_model(description).model
        vis = model.vis
        vis.global_.offwidth = max(vis.global_.offwidth, width)
        vis.global_.offheight = max(vis.global_.offheight, height)
        if not shadows:
            # Shadow maps and multisampling cost 5-8x on a software (CPU) renderer: 150-300 ms
            # vs 30-40 ms per 320x240 frame here. Visual settings only.
            vis.quality.shadowsize = 0
            vis.quality.offsamples = 0
        renderer = mujoco.Renderer(model, height, width)
    except Exception as exc:
        report.put(
            f"cannot start offscreen rendering ({type(exc).__name__}: {exc}). Set MUJOCO_GL=egl "
            "(needs libegl1) or MUJOCO_GL=osmesa (needs libosmesa6), or run without cameras (--cameras none)."
        )
        return
    try:
        bus = Bus("sim-camera", keys=CurveKeys.load(keys) if keys else None)
        # A subscriber that never reads holds at most CAMERA_QUEUE_BYTES of frames here, not the
        # default 10,000 (2.3 GB at 320x240)
        pub = bus.publisher(endpoint, sndhwm=max(4, CAMERA_QUEUE_BYTES // (width * height * 3)))
    except Exception as exc:  # a LinkError names the port and says what to do
        report.put(f"cannot publish camera frames: {exc}")
        return
    report.put("ready")
    data = mujoco.MjData(model)
    buf = np.frombuffer(shared, dtype=np.float64)
    index = 0
    parent = os.getppid()
    try:
        while not counters[_STOP] and os.getppid() == parent:  # never outlive the server
            if not wake.poll(0.1):
                continue
            wake.recv_bytes()
            data.qpos[:] = buf[1:]
            time_s = float(buf[0])
            mujoco.mj_kinematics(model, data)
            mujoco.mj_camlight(model, data)
            for name in names:
                renderer.update_scene(data, camera=name)
                image = renderer.render()
                frame = CameraFrame(camera=name, frame_index=index, time_s=time_s, image=image)
                pub.publish(frame, TOPIC_CAMERA + name)
            index += 1
            counters[_FRAMES] += 1
            counters[_DONE] += 1
    except Exception as exc:
        report.put(f"camera process failed: {type(exc).__name__}: {exc}")
    finally:
        renderer.close()
        bus.close()


class CameraWorker:
    def __init__(
        self,
        description: RobotDescription,
        nq: int,
        names: tuple[str, ...],
        width: int,
        height: int,
        endpoint: str,
        keys: Path | None = None,
        shadows: bool = False,
    ) -> None:
        ctx = mp.get_context("spawn")
        self._shared = ctx.RawArray("d", nq + 1)  # [time_s, qpos...]
        self._buf = np.frombuffer(self._shared, dtype=np.float64)
        wake_child, self._wake = ctx.Pipe(duplex=False)  # (receive end, send end)
        self._counters = ctx.RawArray("q", 3)  # renders done, frames, stop: lock-free (see the module doc)
        self._submitted = 0
        self._report = ctx.Queue()
        self.skipped = 0
        self.error: str | None = None
        self._proc = ctx.Process(
            target=_render_main,
            args=(description, names, width, height, shadows, endpoint, keys, self._shared, wake_child,
                  self._counters, self._report),
            name="sim-camera",
            daemon=True,
        )

    @property
    def frames(self) -> int:
        return int(self._counters[_FRAMES])

    def _idle(self) -> bool:
        return self._counters[_DONE] >= self._submitted

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the render process and wait until its renderer exists (raises if it cannot)."""
        self._proc.start()
        try:
            msg = self._report.get(timeout=timeout_s)
        except Exception:
            self.stop()
            raise ConfigError(f"camera renderer did not start within {timeout_s:.0f} s") from None
        if msg != "ready":
            self.stop()
            self.error = msg
            raise ConfigError(msg)

    def _poll_error(self) -> None:
        if self.error is None and not self._report.empty():
            self.error = self._report.get_nowait()
            logger.error("%s", self.error)
        if self.error is None and not self._proc.is_alive():
            self.error = (f"camera process died (exit code {self._proc.exitcode}); no more camera frames this run "
                          "(restart the server to get them back)")
            logger.error("%s", self.error)

    def submit(self, qpos: np.ndarray, time_s: float) -> bool:
        """Queue a render of this state; False (and counted) if the previous one is not done."""
        if not self._idle():
            self.skipped += 1
            if self.skipped % 64 == 0:
                self._poll_error()
            return False
        self._poll_error()
        if self.error is not None and not self._proc.is_alive():
            self.skipped += 1
            return False
        self._buf[0] = time_s
        self._buf[1:] = qpos
        self._submitted += 1
        try:
            self._wake.send_bytes(b"r")  # one byte per render, at most one outstanding: never blocks
        except OSError:  # the process died since the check: its end of the pipe is closed
            self._poll_error()
            return False
        return True

    def wait_idle(self, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self._idle():
            if time.monotonic() > deadline or not self._proc.is_alive():
                return False
            time.sleep(0.0005)
        return True

    def stop(self) -> None:
        self._counters[_STOP] = 1
        if self._proc.is_alive():
            self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._poll_error()
