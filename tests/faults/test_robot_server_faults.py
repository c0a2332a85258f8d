"""Hostile input against a real ``teleop sim`` process, over real sockets: malformed frames of
every kind the audit found, an amplifying command, a request flood. The server must count each
rejection, stay alive, never move, and keep its e-stop and watchdog timing."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from support.ports import free_port_base

from robots.mujoco_sim.process import connect_when_ready, start_sim_process, stop_process
from teleop.bus import Bus, JointCommand, Request, RobotEndpoints, RobotState
from teleop.bus.codec import SCHEMA_VERSION, Encoder, encode_raw
from teleop.bus.endpoints import TOPIC_COMMAND, TOPIC_STATE
from teleop.errors import RobotError


@pytest.fixture(scope="module")
def sim():
    base = free_port_base(4)
    log = Path(tempfile.gettempdir()) / f"faults-sim-{base}.log"
    proc = start_sim_process(base, log, ["--cameras", "none"])
    client = connect_when_ready(RobotEndpoints.on(port_base=base).rpc, proc, log, source="faults")
    try:
        yield proc, client
    finally:
        client.disconnect()
        stop_process(proc)


def _hostile(n: int) -> list[list[bytes]]:
    topic = TOPIC_COMMAND.encode() + b"\0"
    head = {"v": SCHEMA_VERSION, "k": "joint_command", "t": TOPIC_COMMAND, "s": "x", "q": 0, "tc": 0, "ts": 0}
    enc = Encoder("attacker")
    return [
        [topic + encode_raw({**head, b"k": "x", "b": {"q": np.zeros(n)}})],  # bytes and str header keys
        [topic + encode_raw({**head, "v": np.array([1, 1]), "b": {"q": np.zeros(n)}})],  # v an array
        [topic + encode_raw({**head, "v": np.array([1]), "b": {"q": np.ones(n)}})],  # v = [1]
        [topic + encode_raw({**head, "v": True, "b": {"q": np.ones(n)}})],
        [topic + encode_raw({**head, "b": {"q": np.ones(n), b"author": "x", "extra": 1}})],  # bytes body keys
        [enc.encode(JointCommand(q=np.ones(n)), TOPIC_COMMAND + "EVIL")],  # prefix match is not a topic
        [enc.encode(JointCommand(q=np.ones(n), source_capture_ns=np.arange(125_000, dtype=np.int64)), TOPIC_COMMAND)],
    ]


def _stats(client) -> dict:
    return client.stats()


def test_hostile_commands_are_counted_and_move_nothing(sim):
    proc, client = sim
    n = client.spec.n_joints
    before = _stats(client)
    home = client.get_state(1.0).target.copy()
    with Bus("attacker") as bus:
        pub = bus.publisher(client.endpoints.command, bind=False)
        time.sleep(0.3)
        for frames in _hostile(n):
            count = int(_stats(client)["rejected_total"])
            pub.send_raw(frames)
            deadline = time.monotonic() + 2.0
            while int(_stats(client)["rejected_total"]) == count and time.monotonic() < deadline:
                time.sleep(0.005)
        # the request socket too: mixed keys, an array version, a bytes op
        req = bus.context.socket(zmq.REQ)
        req.linger = 0
        req.connect(client.rpc_endpoint)
        for payload in ({"v": 1, b"k": "request", "k": "request"}, {"v": np.array([1, 2]), "k": "request"}):
            req.send(b"rpc\0" + encode_raw(payload))
            assert req.poll(2000), "the robot server stopped answering requests"
            req.recv()
        req.close(0)
    after = _stats(client)
    rejected = {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in after if k.startswith("rejected.")}
    assert int(after["rejected_total"]) - int(before["rejected_total"]) == len(_hostile(n)), rejected
    assert rejected.get("rejected.bad_topic") == 1 and rejected.get("rejected.too_large") == 1, rejected
    assert int(after["rpc_rejected_total"]) - int(before["rpc_rejected_total"]) == 2
    assert int(after["commands"]) == int(before["commands"]), "a hostile command was applied"
    state = client.get_state(1.0)
    assert proc.poll() is None and state.mode != "active"
    np.testing.assert_array_equal(state.target, home)


def test_an_amplifying_command_cannot_grow_the_state(sim):
    _, client = sim
    with Bus("amplify") as bus:
        sub = bus.subscriber(client.endpoints.state, [TOPIC_STATE], accept=(RobotState,), mode="lossless")
        pub = bus.publisher(client.endpoints.command, bind=False)
        time.sleep(0.3)
        big = np.arange(125_000, dtype=np.int64)
        small = np.arange(16, dtype=np.int64)
        q = client.get_state(1.0).target.copy()
        for _ in range(20):
            pub.publish(JointCommand(q=q, source_capture_ns=big), TOPIC_COMMAND)
            pub.publish(JointCommand(q=q, source_capture_ns=small), TOPIC_COMMAND)
            time.sleep(0.005)
        sizes = []
        t_end = time.monotonic() + 0.3
        while time.monotonic() < t_end:
            frame = sub.sock.recv()
            sizes.append(len(frame))
    assert max(sizes) < 8_000, f"a robot state grew to {max(sizes)} bytes"


def test_a_request_flood_keeps_state_watchdog_and_estop_timing(sim):
    """400k pipelined pings once kept the server from stepping for seconds; now requests get a
    bounded share of each tick and an e-stop from another client is seen within ticks."""
    proc, client = sim
    gaps: list[float] = []
    estop_seen: list[float] = []
    stop = threading.Event()
    t_estop = [0.0]

    def watch_states() -> None:
        with Bus("watch") as bus:
            sub = bus.subscriber(client.endpoints.state, [TOPIC_STATE], accept=(RobotState,), mode="lossless")
            last = None
            while not stop.is_set():
                try:
                    got = sub.recv(0.5)
                except Exception:
                    gaps.append(float("inf"))
                    continue
                now = time.monotonic()
                if last is not None:
                    gaps.append(now - last)
                last = now
                if got.msg.mode == "estop" and t_estop[0] and not estop_seen:
                    estop_seen.append(now - t_estop[0])

    watcher = threading.Thread(target=watch_states, daemon=True)
    watcher.start()
    with Bus("flood") as bus:
        flood = bus.context.socket(zmq.DEALER)
        flood.linger = 0
        flood.sndhwm = 0
        flood.connect(client.rpc_endpoint)
        ping = Encoder("flood").encode(Request(op="ping"), "rpc")
        for _ in range(100_000):
            flood.send_multipart([b"", ping])
        time.sleep(0.5)  # the flood is queued at the server
        rpc = bus.rpc_client(client.rpc_endpoint, 2.0)
        t_estop[0] = time.monotonic()
        rpc.request("estop")
        answered = time.monotonic() - t_estop[0]
        time.sleep(0.5)
        rpc.request("release")
        flood.close(0)
    stop.set()
    watcher.join(3)
    assert proc.poll() is None
    assert estop_seen, "the e-stop never showed in the state during the flood"
    # margins a loaded 2-core machine keeps (seen: 1.8 s with the suite running beside a busy loop);
    # without the bounded share per tick the 100k pings ahead of it took ~50 s. `teleop bench faults`
    # reports the real numbers (~4 ms)
    assert answered < 2.5 and estop_seen[0] < 2.5, (answered, estop_seen)
    assert max(gaps) < 0.25, f"the state stream stopped for {max(gaps) * 1e3:.0f} ms during the flood"
    assert int(client.stats()["requests_deferred"]) > 0


def test_reset_refuses_bad_numbers_before_anything_moves(sim):
    _, client = sim
    before = client.get_state(1.0).body_pose.copy()
    for args in ({"bottle_dx": float("nan")}, {"bottle_dx": float("inf")}, {"bottle_dy": True},
                 {"bottle_dx": 0.01, "bottle_dz": "up"}, {"bottle_dx": 0.9}):
        with pytest.raises(RobotError) as info:
            client.request("reset", **args)
        assert "finite number" in str(info.value) or "-0.5..0.5" in str(info.value), info.value
    after = client.get_state(1.0).body_pose
    assert np.isfinite(after).all()
    np.testing.assert_allclose(after[:, :3], before[:, :3], atol=0.02)  # no teleport to MuJoCo's default pose
