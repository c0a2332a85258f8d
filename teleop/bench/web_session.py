"""``teleop bench web``, its session part: the XR page's frames driving a whole session ([web]
serving the page and the console, a ``webxr`` device for both hands, the safety filter, the bus
to the MuJoCo robot server), with the console open in a real browser showing the head camera.

* ``page_to_arrival_ms``: the client's send -> the session's server has the frame (per frame; the
  client stamps ``t_ms`` with its send time, this host's CLOCK_MONOTONIC).
* ``arrival_to_robot_setpoint_ms``: the session's own command trace (teleop/session/trace.py):
  the frame's arrival (the sample's capture time) -> the robot server took the command as its
  setpoint; ``stages_ms`` splits it. Their p50s add up to ``page_to_robot_setpoint_ms_p50``.
* ``camera_to_console_drawn_ms``: the sim renders ``head_cam`` -> the console page in Chromium
  drew it (the page acknowledges each drawn frame; the acknowledgement's own hop, ~0.3 ms, is in).
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import threading
import time
from pathlib import Path

from teleop.loop import percentiles

__all__ = ["run_session"]

_CHROMIUM = "/usr/bin/chromium"


def _config(port_base: int, web_dir: Path, size: tuple[int, int]):
    from teleop.session.config import parse_session

    w, h = size
    raw = {"session": {"rate_hz": 200.0},
           "robot": {"kind": "sim", "port_base": port_base,
                     "sim_args": ["--cameras", "head_cam", "--camera-size", f"{w}x{h}", "--camera-hz", "30"]},
           "device": {"xr": {"driver": "webxr"}},
           "input": {side: {"hand": "xr", "wrist": "xr"} for side in ("left", "right")},
           "controls": {"engage": ["auto"]},
           "haptics": {"enabled": False},
           "web": {"enabled": True, "host": "127.0.0.1", "port": 0, "config_dir": str(web_dir)}}
    return parse_session(raw)


def _console(server, ready: threading.Event, stop: threading.Event, result: dict) -> None:
    """The console in headless Chromium, acknowledging every camera frame it draws."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        result["skipped"] = "no playwright (pip install playwright)"
        ready.set()
        return
    if not Path(_CHROMIUM).exists() and not shutil.which("chromium"):
        result["skipped"] = "no Chromium (apt-get install -y chromium)"
        ready.set()
        return
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_CHROMIUM, headless=True)
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"https://localhost:{server.port}/console.html?token={server.token}")
            page.wait_for_function("() => window.teleopConsole.cameraFrames > 0", timeout=30000)
            page.evaluate("() => { window.teleopConsole.ackCamera = true; }")
            ready.set()
            stop.wait()
            result["frames_drawn"] = page.evaluate("() => window.teleopConsole.cameraFrames")
            browser.close()
    except Exception as exc:  # a bench reports, it does not fail on the browser
        result["skipped"] = f"the browser failed: {exc}"[:200]
    finally:
        ready.set()


def run_session(seconds: float, port_base: int, size: tuple[int, int]) -> dict:
    from teleop.bench.web import _client
    from teleop.session.session import Session

    spawn = mp.get_context("spawn")
    arrivals: list[float] = []  # page send -> arrival [ms]
    console: dict = {}
    stop, ready = threading.Event(), threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        session = Session(_config(port_base, Path(tmp), size), status="quiet", keys=False)
        parent, child = spawn.Pipe()
        started: dict = {}

        def on_tick(s: Session, tick: int) -> None:
            now = time.monotonic()
            if s.web is None:
                return
            if "browser" not in started:  # the console first: its start-up is not in the figures
                started["server"] = s.web.server
                started["browser"] = threading.Thread(target=_console, args=(s.web.server, ready, stop, console),
                                                      daemon=True)
                started["browser"].start()
                return
            if "client" in started:
                if parent.poll() or now > started["until"]:
                    s.stop()
                elif s.state in ("idle", "stale") and now > started["engage_at"]:
                    s.request("engage")  # as an operator would after a hold (a loaded machine's sim can lag)
                    started["engage_at"] = now + 0.5
                return
            if not ready.is_set():
                return
            server = s.web.server
            sink = server._on_frame  # the webxr device's: wrapped to time the page -> arrival hop

            def timed(msg, recv_ns: int) -> None:
                arrivals.append(recv_ns / 1e6 - msg.t_ms)
                sink(msg, recv_ns)

            server.attach_xr(timed, server._on_state)
            started["client"] = spawn.Process(target=_client, args=(server.port, server.token, None,
                                                                    str(server.cert.cert_path), seconds, child),
                                              daemon=True)
            started["client"].start()
            started["until"] = now + seconds + 30
            started["engage_at"] = now + 1.0

        session.on_tick = on_tick
        cpu0 = time.process_time()
        summary = session.run(seconds=seconds + 60)
        cpu_s = time.process_time() - cpu0
        drawn = started["server"].camera_drawn_ms() if "server" in started else []
        stop.set()
        if "browser" in started:
            started["browser"].join(20)
        got = parent.recv() if parent.poll(5) else {}
        if "client" in started:
            started["client"].join(10)
    stages = summary.extra.get("stages_ms", {})
    total = stages.get("total", {})
    arrival = percentiles(arrivals)
    return {
        "frames_sent": len(got.get("sent", [])), "frames_arrived": len(arrivals),
        "commands": summary.commands, "engaged_s": summary.engaged_s, "loop_hz": summary.loop_hz,
        "page_to_arrival_ms": arrival,
        "arrival_to_robot_setpoint_ms": total,
        "page_to_robot_setpoint_ms_p50": round(arrival["p50"] + total.get("p50", float("nan")), 4),
        "stages_ms": {k: v for k, v in stages.items() if k not in ("total",)},
        "camera_to_console_drawn_ms": percentiles(drawn),
        "console_frames_drawn": console.get("frames_drawn", 0),
        "console_fps": round(console.get("frames_drawn", 0) / seconds, 1),
        "console": console.get("skipped", "chromium"),
        "faults": summary.faults, "process_cpu_pct": round(100 * cpu_s / max(summary.seconds, 1e-9), 1),
    }
