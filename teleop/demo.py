"""``teleop demo`` (what ``make demo`` runs): the bundled humanoid in MuJoCo, headless, driven
over the bus by a scripted bimanual motion (the right hand picks up the bottle while the left
hand runs through fist, spread and pinches), ending with a summary.

The robot server runs as its own process (``teleop sim``) exactly as an operator would start it;
this process is a bus client. Later the full teleop session replaces the scripted client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from robots.client import RobotClient
from robots.description import bundled_description_path
from robots.mujoco_sim.model import load_sim_model
from robots.scripted import bimanual_demo_plan
from teleop.bus import RobotEndpoints
from teleop.errors import LinkError, TeleopError
from teleop.loop import LoopTimer, percentiles

__all__ = ["run_demo", "format_summary", "start_sim_process"]


def start_sim_process(port_base: int, log_path: Path, extra: list[str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "teleop.cli", "sim", "--port-base", str(port_base), *(extra or [])]
    log = open(log_path, "w")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def connect_when_ready(rpc: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 120.0) -> RobotClient:
    """Connect to a server that is still starting (importing, compiling the model)."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = RobotClient(rpc, source="demo", timeout_s=1.0)
        try:
            client.connect()
            return client
        except LinkError:
            client.disconnect()
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise TeleopError(f"the robot server exited with code {proc.returncode}:\n{tail}") from None
            if time.monotonic() > deadline:
                raise TeleopError(f"the robot server did not answer within {timeout_s:.0f} s; see {log_path}") from None


def run_demo(port_base: int = 7610, rate_hz: float = 250.0, camera_hz: float = 10.0) -> dict:
    desc_path = bundled_description_path()
    sim = load_sim_model(desc_path)
    plan = bimanual_demo_plan(sim.model, sim.description)
    log_path = Path(tempfile.gettempdir()) / f"teleop-demo-sim-{os.getpid()}.log"
    proc = start_sim_process(port_base, log_path, ["--camera-hz", str(camera_hz), "--cameras", "head_cam"])
    ep = RobotEndpoints.on(port_base=port_base)
    try:
        client = connect_when_ready(ep.rpc, proc, log_path)
        try:
            return _drive(client, plan, rate_hz, log_path)
        finally:
            client.disconnect()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _drive(client: RobotClient, plan, rate_hz: float, log_path: Path) -> dict:
    spec = client.spec
    cams = client.camera_subscriber(("head_cam",), mode="lossless") if "head_cam" in spec.camera_names else None
    first = client.get_state(2.0)
    rest_z = {name: float(first.body_pose[i, 2]) for i, name in enumerate(spec.body_names)}
    peak_z = dict(rest_z)
    latencies: list[float] = []
    seen_seq = -1
    states = 0
    frames = 0
    timer = LoopTimer(rate_hz)
    timer.start()
    t0 = time.perf_counter()
    while (t := time.perf_counter() - t0) < plan.duration_s:
        client.send_command(plan.command_at(t))
        state = client.read_latest()
        if state is not None:
            states += 1
            if state.cmd_seq != seen_seq and state.cmd_applied_ns:
                seen_seq = state.cmd_seq
                latencies.append((state.cmd_applied_ns - state.cmd_capture_ns) / 1e6)
            for i, name in enumerate(spec.body_names):
                peak_z[name] = max(peak_z[name], float(state.body_pose[i, 2]))
        if cams is not None:
            while cams.wait(0):
                cams.recv(0)
                frames += 1
        timer.wait()
    elapsed = time.perf_counter() - t0
    final = client.get_state(1.0)
    stats = client.stats()
    loop = timer.summary()
    lift_cm = {name: round((peak_z[name] - rest_z[name]) * 100, 1) for name in spec.body_names}
    home_err = float(np.max(np.abs(final.q - plan.command_at(plan.duration_s))))
    return {
        "robot": spec.name,
        "seconds": round(elapsed, 2),
        "commands": timer.ticks,
        "command_hz": loop.achieved_hz,
        "loop_jitter_ms": loop.jitter_ms,
        "deadline_misses": loop.deadline_misses,
        "state_msgs": states,
        "state_hz_server": spec.state_hz,
        "command_to_applied_ms": percentiles(latencies),
        "camera_frames_head": frames,
        "lift_cm": lift_cm,
        "lifted": any(v >= 5.0 for v in lift_cm.values()),
        "final_joint_error_rad": round(home_err, 4),
        "server": {
            k: stats.get(k, 0)
            for k in ("ticks", "overruns", "watchdog_trips", "rejected_total", "rate_limited", "camera_frames", "camera_skipped")
        },
        "server_log": str(log_path),
    }


def format_summary(s: dict) -> str:
    lat = s["command_to_applied_ms"]
    lifted = ", ".join(f"{k} {v:+.1f} cm" for k, v in s["lift_cm"].items())
    srv = s["server"]
    return "\n".join(
        [
            f"demo summary ({s['robot']}, {s['seconds']} s)",
            f"  commands        {s['commands']} at {s['command_hz']} Hz, jitter p99 {s['loop_jitter_ms']['p99']} ms, "
            f"{s['deadline_misses']} deadline misses",
            f"  robot state     {s['state_hz_server']:.0f} Hz from the server, {srv['ticks']} ticks, {srv['overruns']} overruns",
            f"  latency         command -> applied p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms",
            f"  cameras         {s['camera_frames_head']} head_cam frames received ({srv.get('camera_skipped', 0)} skipped)",
            f"  objects         peak lift: {lifted}",
            f"  result          {'object lifted' if s['lifted'] else 'NO object lifted'}; final joint error "
            f"{s['final_joint_error_rad']} rad; faults: {srv['watchdog_trips']} watchdog trips, "
            f"{srv['rejected_total']} rejected messages",
            f"  server log      {s['server_log']}",
        ]
    )
