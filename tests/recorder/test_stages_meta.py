"""The command path's per-stage latency in each episode's meta.json: a real SessionTap sends the
session's once-a-second ``stages`` events to a real recorder over loopback ZeroMQ; meta.json sums
the seconds the episode was open for, `teleop episodes inspect` and `list` show them, and a
crashed episode gets them back from its log on recovery."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
from support.ports import free_port_base

from recorder.episode import read_meta, recover, write_meta
from recorder.log import LogWriter
from recorder.recorder import Recorder, RecorderConfig
from teleop.bus.codec import Encoder
from teleop.bus.messages import RobotSpec, SessionEvent, SessionInfo
from teleop.bus.sockets import Bus
from teleop.cli import main
from teleop.session.tap import SessionTap

N = 6
STAGES = ("device", "pickup", "retarget", "safety", "send", "wire", "server", "total")


def _second(scale: float, n: int = 40, **extra: float) -> dict[str, float]:
    """One second's event values as the session's trace sends them: stage k at scale * (k + 1) ms."""
    out: dict[str, float] = {"n": n}
    for k, stage in enumerate(STAGES):
        base = scale * (k + 1)
        out |= {f"{stage}_p50": base, f"{stage}_p99": 2 * base, f"{stage}_max": 3 * base}
    return out | extra


def _spec() -> RobotSpec:
    return RobotSpec(name="toy", joint_names=tuple("abcdef"), group_names=("all",), group_sizes=np.array([N], np.int64),
                     lower=-np.ones(N), upper=np.ones(N), velocity=np.ones(N), body_names=(), fingertip_names=(),
                     camera_names=(), camera_shapes=np.zeros((0, 2), np.int64), camera_hz=0.0, state_hz=500.0,
                     watchdog_s=0.2, endpoints={})


def _info() -> SessionInfo:
    return SessionInfo(session="test", operator="ada", robot="toy", rate_hz=500.0, joint_names=tuple("abcdef"),
                       session_toml="[session]\n", description_toml="", devices={"g": "synthetic"},
                       channel_names={"g": "a,b"}, software="0")


def test_an_episode_keeps_the_stages_of_its_seconds_and_inspect_and_list_show_them(tmp_path, capsys):
    base = free_port_base(2)
    tap_ep, ctl_ep = f"tcp://127.0.0.1:{base}", f"tcp://127.0.0.1:{base + 1}"
    ds = tmp_path / "ds"
    rec = Recorder(RecorderConfig(dataset=ds, tap=tap_ep, control=ctl_ep))
    ready = threading.Event()
    thread = threading.Thread(target=rec.run, kwargs={"ready": ready}, daemon=True)
    thread.start()
    assert ready.wait(10)
    tap, bus = SessionTap(tap_ep, N), Bus("test")
    tap.start()
    try:
        rpc = bus.rpc_client(ctl_ep, 3.0)
        time.sleep(0.3)  # subscription handshake
        tap.set_info(_info(), _spec())
        tap.event("stages", "", **_second(100.0))  # before the episode: not its
        time.sleep(0.15)
        folder = Path(rpc.request("start").values["path"])
        tap.event("stages", "", **_second(1.0))
        slow = _second(2.0)
        slow["total_p99"], slow["total_max"] = 45.0, 80.0  # one bad second
        tap.event("stages", "", **slow)
        # a second with no wire/server data (the robot echoed no command) and a non-finite value
        third = {k: v for k, v in _second(3.0).items() if not k.startswith(("wire_", "server_"))}
        tap.event("stages", "", **third | {"device_p99": math.inf})
        tap.event("stages", "", n=0, total_p50=999.0)  # never sent by a session: left out
        time.sleep(0.2)
        assert rpc.request("stop").values["kept"]
    finally:
        rec.stop()
        thread.join(30)
        tap.stop()
        bus.close()

    meta = read_meta(folder)
    assert meta["stages_seconds"] == 3 and meta["stages_commands"] == 120
    st = meta["stages_ms"]
    assert list(st) == list(STAGES)
    # p50: the median of the seconds' p50s; p99, max: the worst second's
    assert st["retarget"] == {"p50": 6.0, "p99": 18.0, "max": 27.0}
    assert st["total"] == {"p50": 16.0, "p99": 48.0, "max": 80.0}
    assert st["device"] == {"p50": 2.0, "p99": 4.0, "max": 9.0}  # the inf left out
    assert st["wire"] == {"p50": 9.0, "p99": 24.0, "max": 36.0}  # two seconds had it: median of 6 and 12
    assert all(v == round(v, 3) for row in st.values() for v in row.values())

    assert main(["episodes", "inspect", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "command path latency [ms] over 3 s" in out
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("total "))
    assert row == ["total", "16.000", "48.000", "80.000"]
    assert main(["episodes", "list", str(ds)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("/ latency p99 ms") and lines[1].endswith("/ 48.0")


def test_a_recovered_episode_gets_its_stages_from_the_log_and_old_ones_have_none(tmp_path, capsys):
    ds = tmp_path / "ds"
    folder = ds / "episode_000000"
    folder.mkdir(parents=True)
    write_meta(folder, {"format": "teleop-episode/1", "index": 0, "status": "recording", "outcome": "unknown",
                        "errors": [], "start_ns": 1, "videos": {}, "log": "log.tlog"})
    enc, log = Encoder("session"), LogWriter(folder / "log.tlog")
    for k, scale in enumerate((1.0, 4.0, 2.0)):
        log.append(enc.encode(SessionEvent(event="stages", values=_second(scale)), "session/event", k), k)
        log.append(enc.encode(SessionEvent(event="state", detail="engaged"), "session/event", k), k)
    log.close()  # as a killed recorder leaves it: meta.json still "recording", nothing summed
    meta = recover(folder)
    assert meta["status"] == "recovered" and meta["stages_seconds"] == 3
    assert meta["stages_ms"]["total"] == {"p50": 16.0, "p99": 64.0, "max": 96.0}

    old = ds / "episode_000001"  # crashed while an older session, which sends no stages, was recorded
    old.mkdir()
    write_meta(old, {"format": "teleop-episode/1", "index": 1, "status": "recording", "outcome": "unknown",
                     "errors": [], "start_ns": 1, "videos": {}, "log": "log.tlog"})
    log = LogWriter(old / "log.tlog")
    log.append(enc.encode(SessionEvent(event="state", detail="engaged"), "session/event", 5), 5)
    log.close()
    meta = recover(old)
    assert meta["status"] == "recovered" and "stages_ms" not in meta and "stages_seconds" not in meta
    assert main(["episodes", "list", str(ds)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.lstrip()[:1].isdigit()]
    assert rows[0].endswith("/ 64.0") and rows[1].endswith("/ -")
