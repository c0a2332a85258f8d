"""``teleop bench web``: the XR page's link, measured against a bare WebSocket in the same run.

Headline keys from a whole session (teleop/bench/web_session.py): ``hand_to_setpoint_ms`` (the
page's send -> the robot's setpoint) against ``raw_ws_ms`` (a bare TLS WebSocket, same client,
same ticks), ``camera_to_page_ms`` (sim render -> drawn by the console in Chromium). ``link``,
the same frames without a session:

* ``hand_to_retarget_ms``: a client (a subprocess, TLS, the page's JSON format) sends both hands
  at 90 Hz to the ``webxr`` driver; the send -> the ``BimanualRetargeter`` tick that used it.
* ``raw_ws_ms``: at the same time, a message of the same size to a bare aiohttp WebSocket server
  over TLS (its own subprocess), send -> the server has it (one way; ``raw_ws_rtt_ms``: the echo back).
* ``camera_to_page_ms`` and ``camera_fps``: the sim renders ``head_cam`` at 640x480 (its own
  process); bus publish time -> the client has the JPEG decoded (a Python client).
* ``server_cpu_pct``: CPU time of this process (web server, driver, camera relay, retargeter) over
  wall time while streaming (also the headline's).
All clocks are this host's CLOCK_MONOTONIC, shared by the processes.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from teleop.bench.web_peers import RATE_HZ, echo_server
from teleop.bench.web_peers import client as headset
from teleop.loop import percentiles

__all__ = ["run"]

_CAMERA = (640, 480)


def _sim(port_base: int, stop, ready) -> None:
    import teleop  # noqa: F401  (the headless render backend)
    from robots.mujoco_sim.server import SimConfig, SimServer
    from teleop.bus.endpoints import RobotEndpoints

    cfg = SimConfig(endpoints=RobotEndpoints.on(port_base=port_base), cameras=("head_cam",), camera_hz=30.0,
                    camera_width=_CAMERA[0], camera_height=_CAMERA[1])
    with SimServer(cfg) as server:
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        ready.set()
        stop.wait(120)
        server.stop()
        thread.join(10)


def run(seconds: float = 10.0, port_base: int = 17710) -> dict:
    """The link alone (``link``), then the same frames through a whole session (``session``,
    teleop/bench/web_session.py); the headline keys are the session's, the camera's from the
    console in Chromium when there is one."""
    from teleop.bench.web_session import run_session

    link = _run_link(seconds, port_base)
    session = run_session(seconds, port_base + 10, _CAMERA)
    browser = session["camera_to_console_drawn_ms"]
    in_browser = browser["p50"] == browser["p50"]  # not NaN: the console drew frames
    return {
        "bench": "web",
        "note": "hand_to_setpoint_ms: the page's send -> the robot server's setpoint through a whole session "
                "(webxr driver, retargeting, safety filter, bus, MuJoCo robot server), per command; raw_ws_ms: a "
                "bare TLS WebSocket, same client, same ticks; camera: sim render -> drawn by the console in "
                "Chromium (else a Python client); link: the same without the session (up to the retargeter)",
        "seconds": seconds, "rate_hz": RATE_HZ,
        "hand_to_setpoint_ms": session["hand_to_setpoint_ms"],
        "raw_ws_ms": session["raw_ws_ms"], "raw_ws_rtt_ms": session["raw_ws_rtt_ms"],
        "camera": link["camera"], "camera_client": "chromium console" if in_browser else "python",
        "camera_to_page_ms": browser if in_browser else link["camera_to_page_ms"],
        "camera_fps": session["console_fps"] if in_browser else link["camera_fps"],
        "server_cpu_pct": link["server_cpu_pct"],
        "session": session, "link": link,
    }


def _run_link(seconds: float, port_base: int) -> dict:
    from retarget.bimanual import BimanualRetargeter
    from robots.description import bundled_description_path, load_description

    spawn = mp.get_context("spawn")
    sim_stop, sim_ready = spawn.Event(), spawn.Event()
    # not a daemon: the sim starts its own camera process
    sim = spawn.Process(target=_sim, args=(port_base, sim_stop, sim_ready))
    sim.start()
    retarget = BimanualRetargeter(load_description(bundled_description_path()))
    retarget.warmup()
    out = np.zeros(retarget.n_command)
    try:
        return _measure(seconds, port_base, sim_ready, sim, retarget, out)
    finally:
        sim_stop.set()
        sim.join(15)
        if sim.is_alive():
            sim.terminate()


def _measure(seconds: float, port_base: int, sim_ready, sim, retarget, out: np.ndarray) -> dict:
    from drivers.samples import HandSample, PoseSample
    from drivers.webxr import WebXRConfig, WebXRDriver
    from teleop.bus.endpoints import RobotEndpoints
    from teleop.errors import DeviceTimeoutError

    spawn = mp.get_context("spawn")
    deadline = time.monotonic() + 60
    while not sim_ready.wait(0.2):
        if not sim.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sim (with a 640x480 head camera) did not start; `teleop sim` shows why")
    with tempfile.TemporaryDirectory() as tmp:
        drv = WebXRDriver(WebXRConfig(host="127.0.0.1", port=0, config_dir=Path(tmp), camera_hz=30.0,
                                      camera=RobotEndpoints.on(port_base=port_base).camera))
        drv.connect()
        server = drv.server
        echo_parent, echo_child = spawn.Pipe()
        echo = spawn.Process(target=echo_server, args=(str(server.cert.cert_path), str(server.cert.key_path),
                                                        echo_child), daemon=True)
        echo.start()
        echo_port = echo_parent.recv()
        parent, child = spawn.Pipe()
        client = spawn.Process(target=headset, args=(server.port, server.token, echo_port,
                                                     str(server.cert.cert_path), seconds, child), daemon=True)
        done_ns: list[int] = []
        tick_ns: list[int] = []
        kp, pos = np.zeros((2, 21, 3)), np.zeros((2, 3))
        quat = np.tile([1.0, 0, 0, 0], (2, 1))
        engaged = False
        cpu0, wall0 = time.process_time(), time.monotonic()
        client.start()
        deadline = time.monotonic() + seconds + 20
        while time.monotonic() < deadline and not parent.poll():
            try:
                s = drv.get_sample(timeout_s=0.2)
            except DeviceTimeoutError:
                continue
            i = 0 if s.side == "left" else 1
            if isinstance(s, HandSample):
                kp[i] = s.keypoints
            elif isinstance(s, PoseSample):
                pos[i], quat[i] = s.position_m, s.quat_wxyz
                if i == 1:  # the frame's last sample: tick as the session would
                    if not engaged:
                        for side, k in (("left", 0), ("right", 1)):
                            retarget.engage(side, pos[k], quat[k], out[retarget.sides[side].arm_slice])
                        engaged = True
                    t0 = time.monotonic_ns()
                    retarget.tick(s.capture_ns * 1e-9, kp, pos, quat, out)
                    done_ns.append(time.monotonic_ns())
                    tick_ns.append(done_ns[-1] - t0)
        cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
        got = parent.recv()
        client.join(10)
        stats = server.stats()
        encode_s, encoded = server._relay.encode_s, server._relay.encoded
        drv_errors = dict(drv.health().errors)
        drv.disconnect()
        echo_parent.send("stop")
        echo.join(5)
    for p in (echo, client):
        if p.is_alive():
            p.terminate()
    sent = got["sent"]
    n = min(len(sent), len(done_ns))
    hand = np.array(done_ns[:n]) - np.array(sent[:n])  # in order: TCP and the driver keep it
    cam = np.array(got["camera"], dtype=np.int64).reshape(-1, 3)
    cam_span_s = (cam[-1, 1] - cam[0, 1]) * 1e-9 if len(cam) > 1 else float("nan")
    rendered = int(cam[-1, 2] - cam[0, 2]) if len(cam) > 1 else 0
    return {
        "note": "the webxr driver's samples -> a BimanualRetargeter tick (no session); camera client Python "
                "(websockets + cv2.imdecode)",
        "message_bytes": got["bytes"], "frames_sent": len(sent), "frames_ticked": len(done_ns),
        "hand_to_retarget_ms": percentiles(hand, 1e-6),
        "raw_ws_ms": percentiles(got["raw_one"], 1e-6),
        "raw_ws_rtt_ms": percentiles(got["raw_rtt"], 1e-6),
        "camera": {"size": list(_CAMERA), "sim_hz": 30.0, "relay_hz": 30.0},
        "camera_to_page_ms": percentiles(cam[:, 1] - cam[:, 0], 1e-6),
        "camera_fps": round((len(cam) - 1) / cam_span_s, 2) if len(cam) > 1 else 0.0,
        "sim_render_fps": round(rendered / cam_span_s, 2) if len(cam) > 1 else 0.0,  # the sim's own bound
        "retarget_tick_ms": percentiles(tick_ns, 1e-6),
        "jpeg_encode_ms": round(1e3 * encode_s / max(1, encoded), 3),
        "server_cpu_pct": round(100 * cpu_s / wall_s, 1),
        "server_stats": stats, "driver_errors": drv_errors,
    }
