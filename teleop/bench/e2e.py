"""``teleop bench e2e``: a whole session (the bundled sim + synthetic hands and wrists) and the
end-to-end latency of every traced command, from the device sample's capture time to the robot
server taking the command as its setpoint, per stage of its way (``stages_ms``); with, in the
same run, the raw one-way latency of pyzmq messages of the same size between two processes (the
floor any design pays). The session runs in each loop mode asked for (``on_sample`` first: its
figures are the top-level keys; the others nest under their mode's name), and the tracing's own
cost per stage is measured alongside."""

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
from teleop.session.config import DeviceConfig, LoopSettings, load_session
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


def _bench_config(rate_hz: float, input_hz: float, port_base: int, load: str, realtime: int, dataset: str,
                  mode: str = "on_sample"):
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
        realtime=dataclasses.replace(cfg.realtime, priority=realtime), loop=LoopSettings(mode=mode),
    )


def trace_overhead_ns(stages: int = 11, passes: int = 20000) -> float:
    """What the always-on stage timing costs per stage per pass [ns]: the pipeline's timed loop
    over no-op stages against the same loop untimed, in this process."""
    from teleop.session.frame import Frame
    from teleop.session.pipeline import Pipeline

    class _Noop:
        name = "noop"

        def step(self, f) -> None:
            pass

    pipe = Pipeline([_Noop() for _ in range(stages)], Frame(4), None, None)  # type: ignore[arg-type]
    timed = list(enumerate(pipe.stages))
    f = pipe.frame

    def untimed() -> None:
        for _k, stage in timed:
            stage.step(f)

    best = {"timed": float("inf"), "untimed": float("inf")}
    for _ in range(5):  # the best of five: the machine's noise only ever adds
        for name, fn in (("timed", lambda: pipe._run(timed)), ("untimed", untimed)):
            t = time.perf_counter_ns()
            for _ in range(passes // 5):
                fn()
            best[name] = min(best[name], (time.perf_counter_ns() - t) / (passes // 5))
    return max(0.0, (best["timed"] - best["untimed"]) / stages)


def _one_session(cfg, seconds: float, size: int, port_base: int) -> dict:
    """One session with the raw pyzmq probe beside it; its figures."""
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
    raw_ms = np.array(raw[20:], dtype=np.float64) / 1e6
    x = summary.extra
    return {
        "loop_mode": x["loop_mode"],
        "realtime": x.get("realtime"),
        "seconds": summary.seconds,
        "latency_ms": summary.latency_ms,
        "raw_zmq_ms": percentiles(raw_ms),
        "stages_ms": x["stages_ms"],
        "stage_compute_us": x["stage_compute_us"],
        "loop_hz": summary.loop_hz,
        "jitter_ms": {"p99": summary.jitter_ms["p99"], "max": summary.jitter_ms["max"]},
        "deadline_misses": summary.deadline_misses,
        "ticks": summary.ticks,
        "commands": summary.commands,
        "traced_commands": x["traced_commands"],
        "sample_passes": x["sample_passes"],
        "engaged_s": summary.engaged_s,
        "faults": {k: v for k, v in summary.faults.items() if k not in LIMITS_APPLIED},
    }


def run(seconds: float = 10.0, rate_hz: float = 500.0, input_hz: float = 1000.0, port_base: int = 17750,
        load: str = "none", realtime: int = 0, modes: tuple[str, ...] = ("on_sample", "fixed")) -> dict:
    """``load``: one of ``LOADS``; ``realtime``: the loop thread's SCHED_FIFO priority (0 = off);
    ``modes``: the loop modes to run, one session each (the first one's figures are top-level)."""
    import tempfile

    from teleop.session.pipeline import MODES
    from teleop.session.trace import PATH_MEANING

    if load not in LOADS:
        raise ValueError(f"load must be one of {LOADS}, got {load!r}")
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"modes must be some of {MODES}, got {modes!r}")
    size = len(Encoder("session").encode(JointCommand(q=np.zeros(46), source_capture_ns=np.zeros(4, dtype=np.int64)),
                                         "robot/command"))
    runs = []
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="teleop-bench-e2e-") as tmp:
            cfg = _bench_config(rate_hz, input_hz, port_base, load, realtime, tmp, mode)
            runs.append(_one_session(cfg, seconds, size, port_base))
    first = runs[0]
    out = {
        "bench": "e2e",
        "session": "sim_synthetic (bundled humanoid, MuJoCo real time, synthetic hands and wrists)",
        "load": load + (" (the head camera at 10 Hz and the recorder, as make demo runs them)" * (load == "demo")),
        "rate_hz": rate_hz,
        "input_hz": input_hz,
        "message_bytes": size,
        **first,
        "latency_vs_raw_zmq_p50": round(first["latency_ms"]["p50"] / first["raw_zmq_ms"]["p50"], 2)
        if first["raw_zmq_ms"]["p50"] > 0 else None,
        "trace_overhead_us_per_stage": round(trace_overhead_ns() / 1e3, 3),
        "stages_meaning": PATH_MEANING,
        "latency_note": "latency_ms is stages_ms.total: the capture of the newest sample a command used (the one "
                        "it reacts to) -> the robot server taking it as its setpoint; oldest_input is the same for "
                        "the oldest of the four inputs it used",
    }
    for r in runs[1:]:
        out[r["loop_mode"]] = r
    return out
