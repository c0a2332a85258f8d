"""The session pipeline's parts alone (the state machine table, the command trace, the cadence,
the stage timing's cost) and one real on_sample session: every command traced per stage, samples
acted on between ticks, never more than one command per robot period."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support.ports import free_port_base

from teleop.bench.e2e import trace_overhead_ns
from teleop.errors import ConfigError
from teleop.session.config import parse_session
from teleop.session.frame import STAMPS, Frame
from teleop.session.machine import ALL, ENGAGED, IDLE, RAMPING, TABLE, StateMachine
from teleop.session.pipeline import Cadence
from teleop.session.session import Session
from teleop.session.trace import PATH, CommandTrace


def _raw(mode: str = "on_sample", rate_hz: float = 500.0) -> dict:
    return {
        "session": {"rate_hz": rate_hz},
        "robot": {"kind": "sim", "port_base": free_port_base(), "sim_args": ["--cameras", "none"]},
        # hands and wrists at 200 Hz, slower than the loop (as gloves and headsets are)
        "device": {side: {"driver": "synthetic", "options": {"side": side, "rate_hz": 200.0}}
                   for side in ("left", "right")},
        "input": {side: {"hand": side, "wrist": side} for side in ("left", "right")},
        "controls": {"engage": ["auto"], "estop": ["key:e"], "release": ["key:r"]},
        "haptics": {"enabled": False},
        "loop": {"mode": mode},
    }


def test_every_table_entry_names_a_handler_and_a_known_state():
    for event, row in TABLE.items():
        assert set(row) <= set(ALL), event
        for handler in row.values():
            assert callable(getattr(StateMachine, f"_on_{handler}", None)), (event, handler)


def test_the_command_trace_splits_a_command_into_its_stages():
    trace = CommandTrace()
    stamps = np.array([1_000_000, 1_050_000, 1_300_000, 1_400_000, 1_410_000, 1_500_000])  # STAMPS order
    assert len(stamps) == len(STAMPS)
    trace.begin(7, stamps, oldest_ns=500_000)
    assert not trace.complete(8, 1_600_000, 1_620_000)  # not ours: ignored
    assert trace.complete(7, 1_600_000, 1_620_000)
    assert not trace.complete(7, 1_600_000, 1_620_000)  # each command counts once
    row = dict(zip(PATH, trace.ms[0], strict=True))
    assert row == pytest.approx({"device": 0.05, "pickup": 0.25, "retarget": 0.1, "safety": 0.01, "send": 0.09,
                                 "wire": 0.1, "server": 0.02, "total": 0.62, "oldest_input": 1.12})
    second = trace.second()
    assert second["n"] == 1 and second["total_p99"] == pytest.approx(0.62) and trace.second() == {}
    assert set(trace.table()) == set(PATH)


def test_stage_timing_costs_about_a_microsecond_per_stage_at_most():
    assert trace_overhead_ns() < 5000  # ~0.2-0.5 us here; the margin is for a loaded machine


def test_the_cadence_keeps_commands_a_period_apart_and_feeds_a_slow_operator():
    session = Session(parse_session(_raw()), status="quiet", keys=False)
    machine = StateMachine(session, None, None)
    cadence = Cadence("on_sample", machine, 0.002, 0.01)
    f = Frame(4)
    f.now_ns, f.last_sent_ns = 10_000_000, 9_000_000  # 1 ms after the previous command
    for state in (IDLE, RAMPING):  # holds and ramps go at every tick
        machine.state = state
        assert cadence.due(f)
    machine.state = ENGAGED
    f.new_sample = True
    assert not cadence.due(f)  # a new sample, but the slot is not open yet
    f.now_ns = 11_000_000
    assert cadence.due(f)
    f.new_sample = False
    assert not cadence.due(f)  # nothing new: the operator's samples send their own commands
    f.now_ns = 19_000_001
    assert cadence.due(f)  # but not after feed_s without one
    assert Cadence("fixed", machine, 0.002, 0.01).due(Frame(4))
    with pytest.raises(ConfigError, match="loop.mode"):
        parse_session({**_raw(), "loop": {"mode": "sometimes"}})
    with pytest.raises(ConfigError, match="loop.feed_s"):
        parse_session({**_raw(), "loop": {"feed_s": math.nan}})


def test_an_on_sample_session_traces_every_stage_and_acts_between_ticks(capsys):
    session = Session(parse_session(_raw()), status="json", keys=False)
    summary = session.run(seconds=2.5)
    x = summary.extra
    assert summary.final_state == ENGAGED, summary.fault_log
    assert x["loop_mode"] == "on_sample" and x["sample_passes"] > 100, x["sample_passes"]
    stages = x["stages_ms"]
    assert set(stages) == set(PATH) and x["traced_commands"] > 100
    assert all(math.isfinite(stages[k]["p50"]) and stages[k]["p50"] >= 0 for k in PATH if k != "device"), stages
    assert summary.latency_ms == stages["total"]
    parts = sum(stages[k]["p50"] for k in PATH if k not in ("total", "oldest_input"))
    assert stages["total"]["p50"] <= parts * 2 + 0.5  # the stages account for the total
    # commands at least one period apart: never more than the loop's rate (plus the last hold)
    assert summary.commands <= summary.seconds * 500 * 1.02 + 5, summary.commands
    assert set(x["stage_compute_us"]) >= {"inputs", "controls", "robot", "machine", "retarget", "safety", "output",
                                          "tap", "haptics", "status"}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    engaged = [v for v in lines if v["state"] == "engaged" and v["stages_ms"]]
    assert engaged and set(engaged[-1]["stages_ms"]) == set(PATH)
