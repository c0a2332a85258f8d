"""``teleop bench web``, its session part: the XR page's frames driving a whole session ([web]
serving the page and the console, a ``webxr`` device for both hands, the safety filter, the bus
to the MuJoCo robot server), with the console open in a real browser showing the head camera.

* ``hand_to_setpoint_ms``: per command, the client's send of the frame the command reacted to ->
  the robot server took the command as its setpoint. The client stamps ``t_ms`` with its send
  time (this host's CLOCK_MONOTONIC); the session's own command trace (teleop/session/trace.py)
  gives each command's capture (the frame's arrival) and its capture -> setpoint time; the two
  are joined on the arrival time. ``stages_ms`` splits arrival -> setpoint.
* ``raw_ws_ms``: a message of the same size to a bare aiohttp TLS WebSocket, sent by the same
  client at the same ticks (one way; ``raw_ws_rtt_ms`` the echo back).
* ``camera_to_console_drawn_ms``: the sim renders ``head_cam`` -> the console page in Chromium
  drew it (the page acknowledges each drawn frame; the acknowledgement's own hop, ~0.3 ms, is in).

The client streams until the session has been engaged for ``seconds`` (a loaded machine engages
late; a fixed stream length would then measure nothing).
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

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


class _Operator(threading.Thread):
    """Off the session's loop: the console in headless Chromium (acknowledging every camera frame
    it draws), then the echo server and the headset's client, once the console shows the camera."""

    CAP_S = 60.0  # the client streams at most this long past ``seconds`` waiting for the engage

    def __init__(self, server, seconds: float) -> None:
        super().__init__(daemon=True)
        self.server, self.seconds = server, seconds
        self.finish = mp.get_context("spawn").Event()  # the session was engaged for ``seconds``
        self.done = threading.Event()  # the client finished (or could not start)
        self.result: dict = {"console": "chromium"}
        self.streaming_at = 0.0

    def run(self) -> None:
        try:
            self._console()
        except Exception as exc:  # a bench reports, it does not fail on the browser
            self.result["console"] = f"the browser failed: {exc}"[:200]
            self._stream()
        finally:
            self.done.set()

    def _console(self) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.result["console"] = "skipped: no playwright (pip install playwright)"
            return self._stream()
        if not Path(_CHROMIUM).exists() and not shutil.which("chromium"):
            self.result["console"] = "skipped: no Chromium (apt-get install -y chromium)"
            return self._stream()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_CHROMIUM, headless=True)
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"https://localhost:{self.server.port}/console.html?token={self.server.token}")
            page.wait_for_function("() => window.teleopConsole.cameraFrames > 0", timeout=30000)
            page.evaluate("() => { window.teleopConsole.ackCamera = true; }")
            first = page.evaluate("() => window.teleopConsole.cameraFrames")
            t0 = time.monotonic()
            self._stream()
            drawn = page.evaluate("() => window.teleopConsole.cameraFrames") - first
            self.result["console_fps"] = round(drawn / (time.monotonic() - t0), 1)
            browser.close()

    def _stream(self) -> None:
        from teleop.bench.web_peers import client as headset
        from teleop.bench.web_peers import echo_server

        spawn = mp.get_context("spawn")
        cert = self.server.cert
        echo_parent, echo_child = spawn.Pipe()
        echo = spawn.Process(target=echo_server, args=(str(cert.cert_path), str(cert.key_path), echo_child),
                             daemon=True)
        echo.start()
        echo_port = echo_parent.recv()
        parent, child = spawn.Pipe()
        cap = self.seconds + self.CAP_S
        client = spawn.Process(target=headset, args=(self.server.port, self.server.token, echo_port,
                                                     str(cert.cert_path), cap, child, self.finish), daemon=True)
        client.start()
        self.streaming_at = time.monotonic()
        if parent.poll(cap + 30):
            self.result["client"] = parent.recv()
        client.join(10)
        echo_parent.send("stop")
        echo.join(5)
        for p in (client, echo):
            if p.is_alive():
                p.terminate()


def _joined(trace, sent_ms: dict[int, float]) -> np.ndarray:
    """Per traced command: the page's send -> the robot's setpoint [ms]."""
    captures, total_ms = trace.completed()
    out = [total + (capture / 1e6 - sent_ms[capture]) for capture, total in zip(captures, total_ms, strict=True)
           if capture in sent_ms]
    return np.array(out)


def run_session(seconds: float, port_base: int, size: tuple[int, int]) -> dict:
    from teleop.session.session import Session

    sent_ms: dict[int, float] = {}  # a frame's arrival [ns] -> the client's send [ms]
    with tempfile.TemporaryDirectory() as tmp:
        session = Session(_config(port_base, Path(tmp), size), status="quiet", keys=False)
        state: dict = {}

        def on_tick(s: Session, tick: int) -> None:
            if s.web is None:
                return
            op = state.get("operator")
            if op is None:
                server = s.web.server
                sink = server._on_frame  # the webxr device's: wrapped to note each frame's send time

                def timed(msg, recv_ns: int) -> None:
                    sent_ms[recv_ns] = msg.t_ms
                    sink(msg, recv_ns)

                server.attach_xr(timed, server._on_state)
                state["operator"] = op = _Operator(server, seconds)
                state["server"], state["engage_at"] = server, 0.0
                op.start()
            now = time.monotonic()
            if s.state in ("ramping", "engaged"):  # ``seconds`` counts from the engage, however late it came
                state.setdefault("driven_from", now)
                if now - state["driven_from"] >= seconds:
                    op.finish.set()
            if op.done.is_set():
                s.stop()
            elif op.streaming_at and now > op.streaming_at + 1.0 and s.state in ("idle", "stale") \
                    and now > state["engage_at"]:  # the client's process is up by then
                s.request("engage")  # as an operator would after a hold (a loaded machine's sim can lag)
                state["engage_at"] = now + 0.5

        session.on_tick = on_tick
        cpu0 = time.process_time()
        summary = session.run(seconds=seconds + _Operator.CAP_S + 120)
        cpu_s = time.process_time() - cpu0
        op = state.get("operator")
        if op is not None:
            op.join(20)
        trace = session.output.trace
        drawn = state["server"].camera_drawn_ms() if "server" in state else []
    result = op.result if op is not None else {}
    got = result.get("client", {})
    stages = summary.extra.get("stages_ms", {})
    return {
        "frames_sent": len(got.get("sent", [])), "frames_arrived": len(sent_ms), "commands_traced": trace.n,
        "engaged_s": summary.engaged_s, "loop_hz": summary.loop_hz,
        "hand_to_setpoint_ms": percentiles(_joined(trace, sent_ms)),
        "raw_ws_ms": percentiles(got.get("raw_one", []), 1e-6),
        "raw_ws_rtt_ms": percentiles(got.get("raw_rtt", []), 1e-6),
        "arrival_to_setpoint_ms": stages.get("total", {}),
        "stages_ms": {k: v for k, v in stages.items() if k not in ("total", "oldest_input")},
        "camera_to_console_drawn_ms": percentiles(drawn),
        "console_fps": result.get("console_fps", 0.0), "console": result.get("console", ""),
        "faults": summary.faults, "process_cpu_pct": round(100 * cpu_s / max(summary.seconds, 1e-9), 1),
    }
