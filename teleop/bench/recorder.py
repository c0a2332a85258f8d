"""``teleop bench recorder``: the recorder process under the design load (500 Hz robot state,
500 Hz session commands, two 640x480 cameras at 30 fps) for a minute; what it dropped, how much
CPU it took, the rates in the log, and how fast the next episode can start.

Reference, same run: a bare pyzmq subscriber process receiving the same streams and doing
nothing else (the CPU any recorder pays just to receive).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from teleop.bench import wait_for_recorder
from teleop.bus.endpoints import RobotEndpoints, session_endpoints

__all__ = ["run"]

_BARE = """
import sys, zmq
ctx = zmq.Context(); subs = []
for ep in sys.argv[1:]:
    s = ctx.socket(zmq.SUB); s.rcvhwm = 0; s.connect(ep); s.subscribe(b""); subs.append(s)
poller = zmq.Poller()
for s in subs: poller.register(s, zmq.POLLIN)
print("ready", flush=True)
n = 0; quiet = 0
while True:
    ev = poller.poll(500)
    if not ev:
        quiet += 1
        if n and quiet > 4: break
        continue
    quiet = 0
    for s, _ in ev:
        while True:
            try: s.recv(zmq.NOBLOCK); n += 1
            except zmq.Again: break
print(n, flush=True)
"""


def _cpu_s(pid: int) -> float:
    """utime + stime of a process (and its reaped children) from /proc, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _frames(w: int, h: int, n: int, seed: int) -> list[np.ndarray]:
    """Moving content with sensor-like noise, so the encoder does real work."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for k in range(n):
        base = ((xx + 8 * k) % 64 < 32) * 120 + ((yy + 5 * k) % 48 < 24) * 80
        img = np.stack([base, np.roll(base, k, 1), 255 - base], -1) + rng.integers(0, 12, (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def run(seconds: float = 60.0, port_base: int = 17760, width: int = 640, height: int = 480, camera_hz: float = 30.0,
        state_hz: float = 500.0) -> dict:
    from teleop.bus.messages import CameraFrame, RobotState, SessionCommand, SessionInfo
    from teleop.bus.sockets import Bus

    robot = RobotEndpoints.on(port_base=port_base)
    tap, control = session_endpoints(port_base=port_base)
    tmp = Path(tempfile.mkdtemp(prefix="teleop-bench-recorder-"))
    n, b, f = 46, 3, 10
    cams = ("head_cam", "wrist_cam")
    images = {c: _frames(width, height, 30, i) for i, c in enumerate(cams)}
    sent = {"robot/state": 0, "session/command": 0, **{c: 0 for c in cams}}
    bus = Bus("bench")
    pub_state = bus.publisher(robot.state, sndhwm=1_000_000)
    pub_cam = bus.publisher(robot.camera, sndhwm=1_000_000)
    pub_tap = bus.publisher(tap, sndhwm=1_000_000)
    rec = subprocess.Popen([sys.executable, "-m", "teleop.cli", "record", "--dataset", str(tmp), "--port-base",
                            str(port_base)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bare = subprocess.Popen([sys.executable, "-c", _BARE, robot.state, robot.camera, tap], stdout=subprocess.PIPE,
                            text=True)
    rpc = bus.rpc_client(control, 2.0)
    try:
        assert bare.stdout is not None and bare.stdout.readline().strip() == "ready"
        wait_for_recorder(rpc, rec, lambda: f": {rec.stdout.read() if rec.stdout else ''}")
        time.sleep(0.5)
        info = SessionInfo(session="bench", operator="", robot="bench", rate_hz=state_hz,
                           joint_names=tuple(f"j{i}" for i in range(n)), session_toml="", description_toml="",
                           devices={}, channel_names={}, software="bench")
        pub_tap.publish(info, "session/info")
        rpc.request("start")
        cpu0_rec, cpu0_bare, t0 = _cpu_s(rec.pid), _cpu_s(bare.pid), time.monotonic()
        state = RobotState(time_s=0.0, mode="active", q=np.zeros(n), dq=np.zeros(n), target=np.zeros(n),
                           effort=np.zeros(n), body_pose=np.zeros((b, 7)), fingertip_force=np.zeros((f, 3)))
        period = 1.0 / state_hz
        cam_every = max(1, round(state_hz / camera_hz))
        k = 0
        nxt = time.monotonic()
        end = nxt + seconds
        while time.monotonic() < end:
            tick_ns = time.monotonic_ns()
            q = np.full(n, np.sin(k * 1e-3))
            pub_state.publish(state.__class__(**{**{s: getattr(state, s) for s in state.SCHEMA}, "q": q,
                                                 "time_s": k * period}), "robot/state", tick_ns)
            sent["robot/state"] += 1
            pub_tap.publish(SessionCommand(tick=k, state="engaged", q=q, target=q), "session/command", tick_ns)
            sent["session/command"] += 1
            if k % cam_every == 0:
                j = k // cam_every
                for c in cams:
                    pub_cam.publish(CameraFrame(camera=c, frame_index=j, time_s=k * period,
                                                image=images[c][j % len(images[c])]), f"robot/camera/{c}", tick_ns)
                    sent[c] += 1
            k += 1
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))
        wall = time.monotonic() - t0
        time.sleep(0.5)  # let the queues drain
        cpu_rec = _cpu_s(rec.pid) - cpu0_rec
        cpu_bare = _cpu_s(bare.pid) - cpu0_bare  # still running: it leaves after 2 s of silence
        t_stop = time.monotonic()
        stopped = rpc.request("stop", 30.0).values
        rpc.request("start", 30.0)
        switch_s = time.monotonic() - t_stop
        rpc.request("discard", 30.0)
        rpc.request("quit", 5.0)
        rec.wait(120)
        bare.wait(30)
        bare_n = int(bare.stdout.read().strip() or 0)
    finally:
        for p in (rec, bare):
            if p.poll() is None:
                p.kill()
                p.wait()
        bus.close()
    from recorder.reader import load_episode

    ep = load_episode(stopped["path"])
    logged = {"robot/state": len(ep.streams.get("robot/state", [])),
              "session/command": len(ep.streams.get("session/command", []))}
    frames = {c: ep.meta["videos"].get(c, {}).get("frames", 0) for c in cams}
    refs = {c: len(ep.streams.get(f"recorder/video/{c}", [])) for c in cams}
    dropped = sum(sent[t] - logged[t] for t in logged) + sum(sent[c] - frames[c] for c in cams)
    st = ep.streams.get("robot/state")
    size = sum(p.stat().st_size for p in Path(stopped["path"]).rglob("*") if p.is_file())
    return {
        "bench": "recorder",
        "seconds": round(wall, 2),
        "dropped": int(dropped),
        "recorder_cpu": round(cpu_rec / wall, 3),  # cores
        "reference_bare_receive_cpu": round(cpu_bare / wall, 3),
        "reference_bare_received": bare_n,
        "state_hz": round(st.rate_hz, 1) if st is not None else 0.0,
        "video_fps": [round(frames[c] / wall, 2) for c in cams],
        "sent": sent,
        "logged": logged,
        "video_frames": frames,
        "video_refs": refs,
        "bus_gaps": {k: v for k, v in ep.meta.get("dropped", {}).get("bus_gaps", {}).items()},
        "episode_switch_s": round(switch_s, 3),
        "episode_mb": round(size / 1e6, 1),
        "mb_per_s": round(size / 1e6 / wall, 2),
        "camera": f"{width}x{height}@{camera_hz:g}",
        "machine_cores": os.cpu_count(),
        "errors": ep.meta.get("errors", []),
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)))
