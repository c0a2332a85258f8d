"""``teleop bench bus``: one-way latency of a full robot-state message through our bus (encode,
send, receive, strict decode) against raw pyzmq bytes of the same size, interleaved in one run
so machine noise hits both alike. Sender and receiver are separate processes on loopback TCP."""

from __future__ import annotations

import multiprocessing as mp
import struct
import time

import numpy as np

from teleop.loop import percentiles

__all__ = ["run"]


def _robot_state(n_joints: int = 46, bodies: int = 3, tips: int = 10):
    from teleop.bus import RobotState

    rng = np.random.default_rng(0)
    return RobotState(
        time_s=1.0,
        mode="active",
        q=rng.normal(size=n_joints),
        dq=rng.normal(size=n_joints),
        target=rng.normal(size=n_joints),
        effort=rng.normal(size=n_joints),
        body_pose=rng.normal(size=(bodies, 7)),
        fingertip_force=rng.normal(size=(tips, 3)),
        cmd_source_capture_ns=np.arange(4, dtype=np.int64),
    )


def _receiver(ours_ep: str, raw_ep: str, count: int, ready, conn) -> None:
    import zmq

    from teleop.bus import Bus, RobotState

    bus = Bus("bench-rx")
    sub = bus.subscriber(ours_ep, ["robot/state"], accept=(RobotState,), mode="lossless")
    raw = bus.context.socket(zmq.SUB)
    raw.linger = 0
    raw.rcvhwm = 0
    raw.connect(raw_ep)
    raw.subscribe(b"")
    poller = zmq.Poller()
    poller.register(sub.sock, zmq.POLLIN)
    poller.register(raw, zmq.POLLIN)
    ready.set()
    ours, base = [], []
    deadline = time.monotonic() + 120
    while (len(ours) < count or len(base) < count) and time.monotonic() < deadline:
        for sock, _ in poller.poll(1000):
            if sock is raw:
                data = raw.recv(copy=True)
                now = time.monotonic_ns()
                if data[:1] == b"x":
                    continue  # warm-up
                base.append(now - struct.unpack_from("<q", data, 1)[0])
            else:
                got = sub.recv(0)
                if got.header.seq >= 0 and got.msg.mode == "active":
                    ours.append(time.monotonic_ns() - got.header.send_ns)
    conn.send((ours, base, sub.stats.rejected_total))
    bus.close()


def run(count: int = 5000, rate_hz: float = 1000.0, port_base: int = 17710) -> dict:
    import zmq

    from teleop.bus import Bus
    from teleop.bus.codec import Encoder

    ours_ep = f"tcp://127.0.0.1:{port_base}"
    raw_ep = f"tcp://127.0.0.1:{port_base + 1}"
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    parent, child = ctx.Pipe()
    bus = Bus("bench-tx")
    pub = bus.publisher(ours_ep, sndhwm=0)
    raw = bus.context.socket(zmq.PUB)
    raw.linger = 0
    raw.sndhwm = 0
    raw.bind(raw_ep)
    proc = ctx.Process(target=_receiver, args=(ours_ep, raw_ep, count, ready, child), daemon=True)
    proc.start()
    try:
        ready.wait(60)
        state = _robot_state()
        size = len(Encoder("x").encode(state, "robot/state"))
        warm = state.__class__(**{**{k: getattr(state, k) for k in state.SCHEMA}, "mode": "warmup"})
        buf = bytearray(size)
        for _ in range(200):  # until both subscriptions are live
            pub.publish(warm, "robot/state")
            raw.send(b"x" + bytes(size - 1))
            time.sleep(0.005)
        period = 1.0 / rate_hz
        nxt = time.perf_counter()
        for i in range(count):
            pub.publish(state, "robot/state")
            nxt += period / 2
            while time.perf_counter() < nxt:
                time.sleep(0.0001)
            buf[0] = 0
            struct.pack_into("<q", buf, 1, time.monotonic_ns())
            raw.send(buf)
            nxt += period / 2
            while time.perf_counter() < nxt:
                time.sleep(0.0001)
        if not parent.poll(60):
            raise RuntimeError("bench receiver did not report")
        ours, base, rejected = parent.recv()
    finally:
        proc.join(10)
        bus.close()
    ours_us = np.array(ours) / 1e3
    base_us = np.array(base) / 1e3
    lat, ref = percentiles(ours_us), percentiles(base_us)
    return {
        "bench": "bus",
        "message": "robot_state (46 joints, 3 bodies, 10 fingertips)",
        "message_bytes": size,
        "transport": "tcp loopback, separate processes",
        "messages": {"ours": len(ours), "raw": len(base), "sent_each": count, "rejected": rejected},
        "rate_hz": rate_hz,
        "latency_us": lat,
        "raw_zmq_us": ref,
        "overhead_us": {"p50": round(lat["p50"] - ref["p50"], 2), "p99": round(lat["p99"] - ref["p99"], 2)},
        "ratio_p50": round(lat["p50"] / ref["p50"], 3) if ref["p50"] else None,
    }
