"""``teleop bench sim``: how fast the bundled scene simulates, through the real server loop.

* ``realtime_factor``: the server free-running (``--fast``), physics + commands + state
  publishing, no cameras; simulated seconds per wall second.
* ``realtime_factor_camera``: the same with one 320x240 camera at 15 fps of simulated time,
  every frame rendered (the free-running server waits for each frame).
* ``reference.mj_step_only``: a bare ``mj_step`` loop on the same model in the same run, so the
  server's own overhead shows as a ratio that holds on a noisy machine.
* ``realtime``: the paced server for a few seconds: achieved state rate, tick overruns.
"""

from __future__ import annotations

import os
import time

import mujoco

from robots.description import bundled_description_path
from robots.mujoco_sim.model import load_sim_model
from robots.mujoco_sim.server import SimConfig, SimServer
from teleop.bus import RobotEndpoints

__all__ = ["run"]


def _server_rtf(desc, seconds: float, port_base: int, **cfg) -> tuple[float, dict]:
    config = SimConfig(description=desc, endpoints=RobotEndpoints.on(port_base=port_base), duration_s=seconds, **cfg)
    with SimServer(config) as server:
        t0 = time.perf_counter()
        stats = server.run()
        wall = time.perf_counter() - t0
    return seconds / wall, stats


def run(seconds: float = 10.0, port_base: int = 17720) -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    desc = bundled_description_path()
    sim = load_sim_model(desc)
    m = sim.model
    d = mujoco.MjData(m)
    if sim.home_key >= 0:
        mujoco.mj_resetDataKeyframe(m, d, sim.home_key)
    t0 = time.perf_counter()
    steps = int(seconds / m.opt.timestep)
    for _ in range(steps):
        mujoco.mj_step(m, d)
    step_rtf = seconds / (time.perf_counter() - t0)

    rtf, _ = _server_rtf(desc, seconds, port_base, realtime=False, cameras=())
    try:
        rtf_cam, cam_stats = _server_rtf(
            desc, seconds / 2, port_base + 10, realtime=False, cameras=("head_cam",), camera_hz=15.0,
            camera_width=320, camera_height=240,
        )
        cam_error = None
    except Exception as exc:  # no GL backend on this machine
        rtf_cam, cam_stats, cam_error = float("nan"), {}, str(exc)
    paced_s = min(3.0, seconds)
    rt_rtf, rt_stats = _server_rtf(desc, paced_s, port_base + 20, realtime=True, cameras=())
    out = {
        "bench": "sim",
        "model": "dexhumanoid scene (46 commanded joints, 3 free objects)",
        "timestep_s": m.opt.timestep,
        "sim_seconds": seconds,
        "realtime_factor": round(rtf, 2),
        "realtime_factor_camera": round(rtf_cam, 2),
        "camera": {"name": "head_cam", "size": [320, 240], "fps": 15, "frames": cam_stats.get("camera_frames", 0)},
        "reference": {"mj_step_only": round(step_rtf, 2)},
        "server_overhead_ratio": round(step_rtf / rtf, 3),
        "realtime": {
            "state_hz": round(rt_stats["ticks"] / (paced_s / rt_rtf), 1),
            "realtime_factor": round(rt_rtf, 3),
            "overruns": rt_stats["overruns"],
        },
        "render_backend": os.environ.get("MUJOCO_GL"),
    }
    if cam_error:
        out["camera_error"] = cam_error
    return out
