"""``teleop bench e2e``: a whole session (the bundled sim + synthetic hands and wrists) and the
end-to-end latency of every traced command, from the device sample's capture time to the robot
server taking the command as its setpoint; with, in the same run, the raw one-way latency of
pyzmq messages of the same size between two processes (the floor any design pays)."""

from __future__ import annotations

import dataclasses
import json
import struct
import subprocess
import sys
import threading
import time

import numpy as np

from teleop.bus import Encoder, JointCommand
from teleop.loop import percentiles
from teleop.session.config import DeviceConfig, load_session
from teleop.session.safety import LIMITS_APPLIED
from teleop.session.session import Session

__all__ = ["run"]

_RECEIVER = """
import json, struct, sys, time, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.SUB); s.linger = 0; s.rcvhwm = 0
s.bind(sys.argv[1]); s.subscribe(b"")
print("ready", flush=True)
lat = []
first = True
while True:
    if not s.poll(120000 if first else 3000):
        break
    first = False
    data = s.recv()
    if data[:1] == b"x":
        break
    if data[:1] == b"w":
        continue
    lat.append(time.monotonic_ns() - struct.unpack_from("<q", data, 1)[0])
print(json.dumps(lat), flush=True)
"""


def _raw_probe(endpoint: str, size: int, stop: threading.Event, period_s: float = 0.005) -> None:
    import zmq

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.sndhwm = 0
    pub.connect(endpoint)
    buf = bytearray(size)
    for _ in range(100):  # joining
        pub.send(b"w" + bytes(size - 1))
        time.sleep(0.005)
    while not stop.is_set():
        buf[0] = 0
        struct.pack_into("<q", buf, 1, time.monotonic_ns())
        pub.send(buf)
        time.sleep(period_s)
    pub.send(b"x")
    time.sleep(0.05)
    pub.close(0)
    ctx.term()


#: what ``--load`` adds around the session: ``demo`` runs the head camera and the recorder as
#: ``make demo`` does (the sim renders on the CPU, the recorder encodes the video)
LOADS = ("none", "demo")


def _bench_config(rate_hz: float, input_hz: float, port_base: int, load: str, realtime: int, dataset: str):
    cfg = load_session("sim_synthetic")
    devices = {name: DeviceConfig(d.name, d.driver, {**d.options, "rate_hz": input_hz})
               for name, d in cfg.devices.items()}
    sim_args: tuple[str, ...] = ("--cameras", "none")
    recorder = cfg.recorder
    if load == "demo":
        demo = load_session("sim_demo")
        sim_args = tuple(demo.robot.sim_args)
        recorder = dataclasses.replace(demo.recorder, dataset=dataset)
    return dataclasses.replace(
        cfg, rate_hz=rate_hz, devices=devices, recorder=recorder,
        robot=dataclasses.replace(cfg.robot, port_base=port_base, sim_args=sim_args),
        realtime=dataclasses.replace(cfg.realtime, priority=realtime),
    )


def run(seconds: float = 10.0, rate_hz: float = 500.0, input_hz: float = 1000.0, port_base: int = 17750,
        load: str = "none", realtime: int = 0) -> dict:
    """``load``: one of ``LOADS``; ``realtime``: the loop thread's SCHED_FIFO priority (0 = off)."""
    import tempfile

    if load not in LOADS:
        raise ValueError(f"load must be one of {LOADS}, got {load!r}")
    tmp = tempfile.TemporaryDirectory(prefix="teleop-bench-e2e-")
    cfg = _bench_config(rate_hz, input_hz, port_base, load, realtime, tmp.name)
    size = len(Encoder("session").encode(JointCommand(q=np.zeros(46), source_capture_ns=np.zeros(4, dtype=np.int64)),
                                         "robot/command"))
    endpoint = f"tcp://127.0.0.1:{port_base + 20}"
    rx = subprocess.Popen([sys.executable, "-c", _RECEIVER, endpoint], stdout=subprocess.PIPE, text=True)
    assert rx.stdout is not None
    rx.stdout.readline()
    stop = threading.Event()
    probe = threading.Thread(target=_raw_probe, args=(endpoint, size, stop), daemon=True)
    session = Session(cfg, status="quiet", keys=False)

    def start_probe(s: Session, tick: int) -> None:  # once the session loop is running
        if tick == 0:
            probe.start()

    session.on_tick = start_probe
    try:
        summary = session.run(seconds=seconds)
    finally:
        stop.set()
        if probe.is_alive():
            probe.join(5)
        raw = json.loads(rx.communicate(timeout=30)[0].strip().splitlines()[-1] or "[]")
        tmp.cleanup()
    raw_ms = np.array(raw[20:], dtype=np.float64) / 1e6
    return {
        "bench": "e2e",
        "session": "sim_synthetic (bundled humanoid, MuJoCo real time, synthetic hands and wrists)",
        "load": load + (" (the head camera at 10 Hz and the recorder, as make demo runs them)" * (load == "demo")),
        "realtime": summary.extra.get("realtime"),
        "seconds": summary.seconds,
        "rate_hz": rate_hz,
        "input_hz": input_hz,
        "latency_ms": summary.latency_ms,
        "raw_zmq_ms": percentiles(raw_ms),
        "message_bytes": size,
        "loop_hz": summary.loop_hz,
        "jitter_ms": {"p99": summary.jitter_ms["p99"], "max": summary.jitter_ms["max"]},
        "deadline_misses": summary.deadline_misses,
        "ticks": summary.ticks,
        "commands": summary.commands,
        "engaged_s": summary.engaged_s,
        "faults": {k: v for k, v in summary.faults.items() if k not in LIMITS_APPLIED},
        "latency_note": "capture -> setpoint includes the sample's age when the loop reads it (up to one input period)",
    }
