"""One small real session (the sim, one synthetic hand): its latency with fewer than four inputs,
and the JSON status it prints from the first moment to the last."""

from __future__ import annotations

import json
import math
import os

from support.ports import free_port_base

from teleop.session.config import parse_session
from teleop.session.session import Session


def test_a_one_input_session_has_a_latency_and_a_status_from_start_to_end(capsys):
    raw = {
        "session": {"rate_hz": 200.0},
        "robot": {"kind": "sim", "port_base": free_port_base(), "sim_args": ["--fast", "--cameras", "none"]},
        "device": {"glove": {"driver": "synthetic", "options": {"side": "right"}}},
        "input": {"right": {"hand": "glove"}},  # one input: three capture slots stay 0
        "controls": {"engage": ["auto"], "estop": ["key:e"], "release": ["key:r"]},
        "haptics": {"enabled": False},
        "realtime": {"priority": 10},  # applied to the loop thread (as root) and restored after the run
    }
    session = Session(parse_session(raw), status="json", keys=False)
    sched = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
    summary = session.run(seconds=1.0)
    rt = summary.extra["realtime"]
    assert set(rt) == {"priority", "cpu", "lock_memory"} and rt["cpu"]["why"].startswith("off"), rt
    assert rt["priority"]["in_effect"] or "not permitted" in rt["priority"]["why"], rt
    assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == sched  # restored
    lat = summary.latency_ms
    assert all(math.isfinite(lat[k]) for k in ("p50", "p99", "max")), lat  # was nan: the min over the slots was 0
    assert 0 < lat["p50"] < 1000, lat

    lines = [json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)))
             for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines[0]["state"] == "starting" and lines[0]["reason"] == "starting the robot server"  # never blank
    phases = [v["reason"] for v in lines if v["state"] == "starting"]
    assert any("compiling retargeting" in p for p in phases), phases
    driving = [v for v in lines if v["state"] in ("ramping", "engaged")]
    assert driving, [v["state"] for v in lines]
    v = driving[-1]
    assert set(v["inputs"]) == {"right_hand"} and v["inputs"]["right_hand"]["device"] == "glove"
    assert v["keys"] == [] and v["keys_live"] is False  # no terminal: nothing to press (auto engages)
    assert v["recorder"] is None and v["policy"] is None
    for key in ("reason", "stale_inputs", "loop_low", "latency_ms", "fresh_fault", "episode_keys", "rate_hz"):
        assert key in v, key
