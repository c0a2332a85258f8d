"""The recorder (a real ``teleop record`` process) under hostile or unlucky input: malformed
control requests, a flood of large messages (memory and disk stay bounded), and a second
session appearing on the tap (an episode holds one session only)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq
from support.ports import free_port_base

from recorder.episode import list_episodes, read_meta
from recorder.log import frame_header, read_records
from robots.mujoco_sim.process import stop_process
from teleop.bus import Bus
from teleop.bus.codec import encode_raw
from teleop.bus.messages import SessionCommand, SessionEvent, SessionInfo


def _info(name: str) -> SessionInfo:
    return SessionInfo(session=name, operator="", robot="toy", rate_hz=100.0, joint_names=("a", "b"), session_toml="",
                       description_toml="", devices={}, channel_names={}, software="test")


def _command(tick: int) -> SessionCommand:
    return SessionCommand(tick=tick, state="engaged", q=np.full(2, float(tick)), target=np.zeros(2))


def _record(tmp_path: Path, base: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "teleop.cli", "record", "--dataset", str(tmp_path / "data"),
           "--tap", f"tcp://127.0.0.1:{base}", "--control", f"tcp://127.0.0.1:{base + 1}",
           "--state", f"tcp://127.0.0.1:{base + 2}", "--camera", "none", "--start", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=(tmp_path / "rec.log").open("w"))


def _status(bus: Bus, base: int) -> dict:
    rpc = bus.rpc_client(f"tcp://127.0.0.1:{base + 1}", 5.0)
    try:
        return dict(rpc.request("status").values)
    finally:
        rpc.close()


def _wait(cond, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_hostile_control_requests_and_a_flood_keep_the_recorder_bounded(tmp_path):
    base = free_port_base(3)
    rec = _record(tmp_path, base, "--max-queue-mb", "16", "--max-episode-gb", "0.05")
    try:
        with Bus("session-flood") as bus:
            pub = bus.publisher(f"tcp://127.0.0.1:{base}", sndhwm=0)
            _wait(lambda: _status(bus, base) is not None)
            # malformed requests: mixed key types, an array version, garbage; the recorder answers each
            req = bus.context.socket(zmq.REQ)
            req.linger = 0
            req.connect(f"tcp://127.0.0.1:{base + 1}")
            for payload in (b"rpc\0" + encode_raw({"v": 1, b"k": 1, "k": "request"}),
                            b"rpc\0" + encode_raw({"v": np.array([1, 2]), "k": "request"}), b"\xff" * 40):
                req.send(payload)
                assert req.poll(5000), "the recorder's control socket stopped answering"
                req.recv()
            req.close(0)
            for _ in range(20):
                pub.publish(_info("flood"), "session/info")
                time.sleep(0.05)
            _wait(lambda: _status(bus, base)["recording"])
            text = "x" * 900_000  # 900 kB per message, far faster than the recorder writes
            t_end = time.monotonic() + 15.0  # a count, not a duration: a loaded machine sends slower
            sent = 0
            while sent < 2500 and time.monotonic() < t_end:
                pub.publish(SessionEvent(event="note", values={"text": text}), "session/event")
                sent += 1
            st = _status(bus, base)
            assert not st["recording"], (st, sent)
            peak = _peak_rss_mb(rec.pid)
    finally:
        stop_process(rec)
    assert sent * 0.9 > 2000, f"only {sent} messages sent: the flood was too small to prove anything"
    # before: a million-message queue held gigabytes; now the 16 MB intake queue plus the process itself
    assert peak < 450, f"the recorder's memory peaked at {peak:.0f} MB under the flood"
    (episode,) = list_episodes(tmp_path / "data")
    meta = read_meta(Path(episode.path))
    assert any("over the limit of 50 MB" in e for e in meta["errors"]), meta["errors"]
    size = (Path(episode.path) / "log.tlog").stat().st_size
    assert size < 50e6 + 40e6, f"the episode log is {size / 1e6:.0f} MB"  # closed within one check interval


def test_an_episode_never_takes_messages_from_another_session(tmp_path):
    base = free_port_base(3)
    rec = _record(tmp_path, base)
    try:
        with Bus("session-aaaa") as bus_a:
            pub = bus_a.publisher(f"tcp://127.0.0.1:{base}")
            for _ in range(40):
                pub.publish(_info("first"), "session/info")
                time.sleep(0.025)
            _wait(lambda: _status(bus_a, base)["recording"])
            for k in range(100):
                pub.publish(_command(k), "session/command")
                time.sleep(0.002)
            time.sleep(1.5)  # silent longer than the recorder's SILENCE_S
        # the first session dies without a word; another one binds the same tap
        with Bus("session-bbbb") as bus_b:
            pub = bus_b.publisher(f"tcp://127.0.0.1:{base}")
            deadline = time.monotonic() + 10
            while _status(bus_b, base)["recording"] and time.monotonic() < deadline:
                pub.publish(_info("second"), "session/info")
                pub.publish(_command(0), "session/command")
                time.sleep(0.02)
            assert not _status(bus_b, base)["recording"]
    finally:
        stop_process(rec)
    (episode,) = list_episodes(tmp_path / "data")
    meta = read_meta(Path(episode.path))
    assert any("another session (session-bbbb)" in e for e in meta["errors"]), meta["errors"]
    sources = {frame_header(r.frame)[0] for r in read_records(Path(episode.path) / "log.tlog")
               if r.topic.startswith("session/")}
    assert sources == {"session-aaaa"}, sources
    assert meta["session_source"] == "session-aaaa"
    assert meta.get("silences"), "the silent tap was not noted"
    assert meta["silences"][-1]["seconds"] >= 1.0


def test_the_policy_server_survives_malformed_frames():
    from teleop.policy.base import Policy
    from teleop.policy.server import PolicyServer

    class Zero(Policy):
        name = "zero"

        def act(self, obs):  # pragma: no cover - never reached by malformed frames
            return np.zeros((1, len(obs.q)))

    endpoint = f"tcp://127.0.0.1:{free_port_base(1)}"
    srv = PolicyServer(Zero(), endpoint)
    stop = threading.Event()
    t = threading.Thread(target=srv.serve, kwargs={"stop_event": stop}, daemon=True)
    t.start()
    try:
        with Bus("attacker") as bus:
            req = bus.context.socket(zmq.REQ)
            req.linger = 0
            req.connect(endpoint)
            for payload in (b"rpc\0" + encode_raw({"v": 1, b"k": 1, "k": "policy_obs"}),
                            b"rpc\0" + encode_raw({"v": np.array([1, 1]), "k": "policy_obs"}),
                            b"rpc\0" + encode_raw({"v": 1, "k": "policy_obs", "t": "rpc", "s": "x", "q": 0, "tc": 0,
                                                   "ts": 0, "b": {b"q": 1, "q": 2}})):
                req.send(payload)
                assert req.poll(3000), "the policy server stopped answering"
                req.recv()
            req.close(0)
            rpc = bus.rpc_client(endpoint, 3.0)
            assert rpc.request("ping").ok
            assert srv.stats["rejected"] == 3
    finally:
        stop.set()
        t.join(3)
        srv.close()
