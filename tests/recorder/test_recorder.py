"""The recorder with real sockets and real files: the framed log and its torn tail, episode
controls and gapless numbering, kill -9 of the recorder process, a disk that fills up."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recorder.episode import list_episodes, read_meta
from recorder.log import MAGIC, LogWriter, read_records, verify
from recorder.reader import load_episode
from recorder.recorder import Recorder, RecorderConfig
from teleop.bus.messages import RobotState, SessionInfo
from teleop.bus.sockets import Bus
from teleop.errors import TeleopError
from teleop.session.tap import SessionTap

N = 6


def _ports(base: int) -> tuple[str, str]:
    return f"tcp://127.0.0.1:{base}", f"tcp://127.0.0.1:{base + 1}"


def _info() -> SessionInfo:
    return SessionInfo(session="test", operator="ada", robot="toy", rate_hz=500.0, joint_names=tuple("abcdef"),
                       session_toml="[session]\n", description_toml="", devices={"g": "synthetic"},
                       channel_names={"g": "a,b"}, software="0")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Rig:
    """A recorder (in a thread) listening to a tap the test drives."""

    def __init__(self, tmp_path: Path, base: int, **kw) -> None:
        tap_ep, ctl_ep = _ports(base)
        self.dataset = tmp_path / "ds"
        self.rec = Recorder(RecorderConfig(dataset=self.dataset, tap=tap_ep, control=ctl_ep, **kw))
        ready = threading.Event()
        self.thread = threading.Thread(target=self.rec.run, kwargs={"ready": ready}, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        self.tap = SessionTap(tap_ep, N)
        self.tap.start()
        self.bus = Bus("test")
        self.rpc = self.bus.rpc_client(ctl_ep, 3.0)
        time.sleep(0.3)  # subscription handshake
        self.tap.set_info(_info(), _fake_spec())
        self.tick = 0

    def commands(self, n: int, rate_hz: float = 500.0) -> None:
        for _ in range(n):
            self.tap.command(self.tick, time.monotonic_ns(), 2, np.full(N, float(self.tick)), np.zeros(N), 0,
                             np.array([1, 2, 3, 4], np.int64))
            self.tick += 1
            time.sleep(1.0 / rate_hz)
        time.sleep(0.1)

    def call(self, op: str, **args):
        return self.rpc.request(op, **args).values

    def close(self) -> None:
        self.rec.stop()
        self.thread.join(30)
        self.tap.stop()
        self.bus.close()


def _fake_spec():
    from teleop.bus.messages import RobotSpec

    return RobotSpec(name="toy", joint_names=tuple("abcdef"), group_names=("all",), group_sizes=np.array([N], np.int64),
                     lower=-np.ones(N), upper=np.ones(N), velocity=np.ones(N), body_names=(), fingertip_names=(),
                     camera_names=(), camera_shapes=np.zeros((0, 2), np.int64), camera_hz=0.0, state_hz=500.0,
                     watchdog_s=0.2, endpoints={})


# -- the log ------------------------------------------------------------------------------------


def test_log_round_trip_and_torn_tail_is_cut(tmp_path):
    path = tmp_path / "log.tlog"
    w = LogWriter(path)
    frames = [f"t/{i}\0".encode() + os.urandom(i % 50) for i in range(300)]
    for i, f in enumerate(frames):
        w.append(f, 1000 + i)
    w.close()
    got = list(read_records(path))
    assert [r.frame for r in got] == frames and [r.recv_ns for r in got] == list(range(1000, 1300))
    good = path.read_bytes()
    # a crash mid-record: half a header, then a record cut short, then garbage
    for tail in (b"\x10\x00", good[-30:-3], os.urandom(1000), b"\xff\xff\xff\x7f" + b"\0" * 12):
        path.write_bytes(good + tail)
        assert len(list(read_records(path))) == 300
        rep = verify(path, truncate=True)
        assert rep.records == 300 and rep.torn_bytes == len(tail) and rep.truncated
        assert path.read_bytes() == good  # nothing before the tail touched
    assert verify(path).torn_bytes == 0


def test_log_refuses_a_file_that_is_not_a_log(tmp_path):
    p = tmp_path / "x.tlog"
    p.write_bytes(b"hello world, not a log")
    with pytest.raises(TeleopError, match="not an episode log"):
        list(read_records(p))
    assert MAGIC == b"TLOG0001"


# -- episode controls ---------------------------------------------------------------------------


def test_episode_controls_numbering_and_metadata(tmp_path):
    rig = _Rig(tmp_path, 7940, task="pour")
    try:
        assert rig.call("start")["episode"] == 0
        rig.commands(200)
        rig.call("success")
        rig.call("note", text="slipped once")
        rig.call("task", text="pour water")
        kept = rig.call("stop")
        assert kept["kept"] and kept["records"] >= 200
        assert rig.call("start")["episode"] == 1
        rig.commands(50)
        assert rig.call("discard") == {"episode": 1, "kept": False}
        # the discarded number is reused: no gap
        assert rig.call("start")["episode"] == 1
        rig.commands(50)
        rig.tap.event("episode", "failure")  # from a key/pedal/button through the session
        rig.tap.event("episode", "stop")
        time.sleep(0.3)
        assert not rig.call("status")["recording"]
        with pytest.raises(TeleopError, match="no episode is being recorded"):
            rig.call("stop")
        with pytest.raises(TeleopError, match="unknown episode control"):
            rig.call("explode")
    finally:
        rig.close()
    eps = list_episodes(rig.dataset)
    assert [e.index for e in eps] == [0, 1]
    m0, m1 = read_meta(eps[0].path), read_meta(eps[1].path)
    assert (m0["status"], m0["outcome"], m0["task"], m0["operator"]) == ("complete", "success", "pour water", "ada")
    assert m0["notes"][0]["text"] == "slipped once" and m0["session"] == "test" and m0["joint_names"] == list("abcdef")
    assert m1["outcome"] == "failure" and m1["dropped"]["bus_gaps"] == {}
    assert json.loads((rig.dataset / "index.json").read_text())["episodes"][1]["outcome"] == "failure"
    ep = load_episode(eps[0].path)
    q = ep.stream("session/command").array("q")
    assert len(q) >= 200 and np.all(np.diff(q[:, 0]) == 1)  # every tick, in order, none lost
    assert "session/info" in ep.streams and "session/robot_spec" in ep.streams  # self-contained


def test_stopping_never_blocks_the_next_episode(tmp_path):
    rig = _Rig(tmp_path, 7950)
    try:
        rig.call("start")
        rig.commands(100)
        t0 = time.monotonic()
        rig.call("stop")
        rig.call("start")
        assert time.monotonic() - t0 < 1.0
        rig.call("stop")
    finally:
        rig.close()


# -- crashes --------------------------------------------------------------------------------------

_RECORDER = [sys.executable, "-m", "teleop.cli", "record"]


def _spawn_recorder(dataset: Path, base: int, extra=(), preexec=None) -> subprocess.Popen:
    tap_ep, ctl_ep = _ports(base)
    return subprocess.Popen([*_RECORDER, "--dataset", str(dataset), "--tap", tap_ep, "--control", ctl_ep,
                             "--state", f"tcp://127.0.0.1:{base + 2}", "--camera", "none", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=preexec)


def _wait_ready(bus: Bus, ctl_ep: str, proc: subprocess.Popen) -> None:
    rpc = bus.rpc_client(ctl_ep, 1.0)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
        try:
            rpc.request("status")
            return
        except TeleopError:
            assert time.monotonic() < deadline


def test_kill_9_loses_at_most_the_last_second_and_never_an_earlier_episode(tmp_path):
    dataset = tmp_path / "ds"
    base = 7960
    tap_ep, ctl_ep = _ports(base)
    tap = SessionTap(tap_ep, N)
    tap.start()
    bus = Bus("test")
    state_pub = bus.publisher(f"tcp://127.0.0.1:{base + 2}")
    try:
        proc = _spawn_recorder(dataset, base)
        _wait_ready(bus, ctl_ep, proc)
        rpc = bus.rpc_client(ctl_ep, 3.0)
        time.sleep(0.3)
        tap.set_info(_info(), _fake_spec())

        def drive(seconds: float) -> int:
            n = int(seconds * 500)
            t = time.monotonic()
            for k in range(n):
                tap.command(k, time.monotonic_ns(), 2, np.full(N, float(k)), np.zeros(N), 0, None)
                state_pub.publish(RobotState(time_s=k * 0.002, mode="active", q=np.full(N, float(k)), dq=np.zeros(N),
                                             target=np.zeros(N), effort=np.zeros(N), body_pose=np.zeros((1, 7)),
                                             fingertip_force=np.zeros((2, 3))), "robot/state")
                t += 0.002
                time.sleep(max(0.0, t - time.monotonic()))
            return n

        rpc.request("start")
        drive(0.5)
        rpc.request("stop")
        ep0 = dataset / "episode_000000"
        time.sleep(0.2)
        before = {p.name: _sha(p) for p in ep0.iterdir() if p.is_file()}
        rpc.request("start")
        sent = drive(2.5)
        proc.send_signal(signal.SIGKILL)  # mid-episode, no goodbye
        proc.wait(10)
        ep1 = dataset / "episode_000001"
        assert read_meta(ep1)["status"] == "recording"
        out = subprocess.run([sys.executable, "-m", "teleop.cli", "episodes", "verify", str(dataset), "--json"],
                             capture_output=True, text=True, timeout=60)
        report = {Path(r["episode"]).name: r for r in json.loads(out.stdout)}
        # exit 1 says a torn tail was cut (the kill may leave one: data was lost), 0 that every log was whole
        assert out.returncode == (0 if all(r["intact"] for r in report.values()) else 1), out.stderr
        assert report["episode_000000"]["intact"] and not report["episode_000001"]["damaged"]
        assert report["episode_000001"]["status"] == "recovered"
        got = load_episode(ep1).stream("session/command")
        assert len(got) >= sent - 500, (len(got), sent)  # at most ~1 s (500 ticks) lost
        assert np.all(np.diff(got.array("q")[:, 0]) == 1)  # what is there is whole and in order
        assert {p.name: _sha(p) for p in ep0.iterdir() if p.is_file()} == before  # episode 0 untouched
        # a new recorder goes on numbering without a gap
        proc2 = _spawn_recorder(dataset, base)
        _wait_ready(bus, ctl_ep, proc2)
        assert bus.rpc_client(ctl_ep, 3.0).request("start").values["episode"] == 2
        bus.rpc_client(ctl_ep, 3.0).request("quit")
        proc2.wait(30)
        assert [e.index for e in list_episodes(dataset)] == [0, 1, 2]
        # the recovered episode exports like any other
        out = subprocess.run([sys.executable, "-m", "teleop.cli", "export", str(dataset), "--format", "hdf5",
                              "--out", str(tmp_path / "ds.hdf5"), "--fps", "50", "--json"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        import h5py

        with h5py.File(tmp_path / "ds.hdf5") as f:
            lengths = sorted(int(f["data"][k].attrs["num_samples"]) for k in f["data"])
        assert lengths[-1] >= 50 * 1.4  # episode 1: >= ~1.5 s of its 2.5 s at 50 fps
    finally:
        tap.stop()
        bus.close()


def test_disk_full_closes_the_episode_cleanly_and_the_recorder_keeps_answering(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), as a full disk would (ENOSPC):
    the write fails at the OS boundary, nothing of ours is faked."""
    dataset = tmp_path / "ds"
    dataset.mkdir()
    base = 7970
    tap_ep, ctl_ep = _ports(base)
    limit = 300_000

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    tap = SessionTap(tap_ep, N)
    tap.start()
    bus = Bus("test")
    try:
        proc = _spawn_recorder(dataset, base, preexec=small_disk)
        _wait_ready(bus, ctl_ep, proc)
        rpc = bus.rpc_client(ctl_ep, 3.0)
        time.sleep(0.3)
        tap.set_info(_info(), _fake_spec())
        rpc.request("start")
        for k in range(3000):  # ~270 bytes each: well past the limit
            tap.command(k, time.monotonic_ns(), 2, np.full(N, float(k)), np.zeros(N), 0, None)
            time.sleep(0.0005)
        time.sleep(1.5)
        st = rpc.request("status").values
        assert not st["recording"] and "failed" in st["last_error"]
        assert proc.poll() is None  # still alive and answering
        meta = read_meta(dataset / "episode_000000")
        assert meta["status"] == "complete" and any("File too large" in e or "No space" in e for e in meta["errors"])
        rep = verify(dataset / "episode_000000" / "log.tlog", truncate=True)
        assert rep.records > 500
        assert np.all(np.diff(load_episode(dataset / "episode_000000").stream("session/command").array("q")[:, 0]) == 1)
        rpc.request("quit")
        proc.wait(30)
    finally:
        tap.stop()
        bus.close()


def test_tactile_images_become_a_video_and_the_log_keeps_the_fields(tmp_path):
    from drivers.samples import TactileSample
    from recorder.video import read_video

    rig = _Rig(tmp_path, 7990)
    try:
        rig.call("start")
        for k in range(20):
            img = np.full((48, 64, 3), 10 * k, np.uint8)
            rig.tap.sample("gel", TactileSample(side="right", capture_ns=time.monotonic_ns(), seq=k,
                                                markers_px=np.zeros((4, 2)), displacement_px=np.full((4, 2), float(k)),
                                                contact_mask=np.zeros((48, 64), bool), force_n=np.array([0.0, 0.0, k]),
                                                image=img, finger="right_index"))
            time.sleep(0.01)
        time.sleep(0.3)
        rig.call("stop")
    finally:
        rig.close()
    [e] = list_episodes(rig.dataset)
    ep = load_episode(e.path)
    tac = ep.stream("session/tactile/gel")
    assert len(tac) == 20 and tac.array("image").shape == (20, 0, 0, 3)  # pixels left the log...
    assert np.array_equal(tac.array("force_n")[:, 2], np.arange(20))  # ... the fields stayed
    refs = ep.video_refs("tactile_gel").array("video_index")
    frames = list(read_video(Path(e.path) / "video/tactile_gel.mp4"))
    assert list(refs) == list(range(20)) and len(frames) == 20
    assert abs(float(frames[7][1].mean()) - 70) < 4  # ... and went to the video, in order


def test_malformed_messages_are_counted_in_the_episode_not_logged(tmp_path):
    from teleop.bus.codec import encode_raw

    bus = Bus("junk")
    junk = bus.publisher("tcp://127.0.0.1:8003")  # where the recorder expects robot states
    rig = _Rig(tmp_path, 8000, state="tcp://127.0.0.1:8003")
    try:
        time.sleep(0.3)
        rig.call("start")
        rig.commands(50)
        for payload in (b"robot/state\0garbage", b"robot/state" + b"\xff" * 40,
                        b"robot/state\0" + encode_raw({"v": 99})):
            junk.send_raw([payload])
        rig.commands(50)
        rig.call("stop")
    finally:
        rig.close()
        bus.close()
    meta = read_meta(list_episodes(rig.dataset)[0].path)
    assert sum(meta["dropped"]["rejected"].values()) == 3 and "malformed" in meta["errors"][0]
    assert len(load_episode(list_episodes(rig.dataset)[0].path).stream("session/command")) == 100
