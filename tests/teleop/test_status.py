"""The session's live status as units: states in, lines out (width, plain vs terminal, JSON),
the keys each state offers, and the recorder's state from a real recorder's control socket."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest

from recorder.recorder import Recorder, RecorderConfig
from teleop.bus.sockets import Bus
from teleop.session.config import ControlsConfig
from teleop.session.status import RecorderWatch, StatusPrinter, available_keys, compose, episode_keys, render_line

CONTROLS = ControlsConfig()
REC_ON = {"reachable": True, "recording": True, "episode": 3, "outcome": None}


class FakeTerminal(io.StringIO):
    """The terminal the status writes to (a hardware boundary): a StringIO that says it is a tty."""

    def isatty(self) -> bool:
        return True


def _snap(state: str, **kw) -> dict:
    now = time.monotonic()
    snap = {
        "state": state, "loop_hz": 500.0, "rate_hz": 500.0, "ticks": 10_000, "deadline_misses": 0,
        "latency_ms": {"p50": 2.61, "p99": 8.2, "max": 11.0}, "keys_live": True, "faults": {},
        "inputs": {"right_hand": {"device": "glove_right", "hz": 120.0, "age_ms": 4.0, "fresh": True},
                   "right_wrist": {"device": "mouse", "hz": 100.0, "age_ms": 6.0, "fresh": True}},
        "faults_at": {},
    }
    if state == "estop":
        snap["faults_at"] = {"estop": (now, "e-stop: the robot holds; release (r), then engage")}
    if state == "lost":
        snap["faults_at"] = {"robot_lost": (now, "no robot state for 61 ms from tcp://127.0.0.1:7610 (limit 60 ms)")}
    if state == "stale":
        snap["inputs"]["right_hand"].update(age_ms=2300.0, fresh=False)
        snap["faults_at"] = {"stale_input": (now, "no fresh sample for 100 ms from right hand: holding")}
    snap.update(kw)
    return snap


STATES = ["idle", "ramping", "engaged", "stale", "estop", "lost", "policy", "returning"]


@pytest.mark.parametrize("width", [10, 24, 40, 79, 200])
@pytest.mark.parametrize("state", STATES)
def test_a_line_never_exceeds_the_width_and_has_no_control_characters(state, width):
    v = compose(_snap(state, recorder=REC_ON, policy={"intervening": False, "late": 2, "errors": 0}), CONTROLS)
    line = render_line(v, width)
    assert len(line) <= width
    assert not any(c in line for c in "\n\r\x1b")
    assert line  # something, even at 10 columns


def test_the_most_important_comes_first_at_80_columns():
    v = compose(_snap("estop", recorder=REC_ON), CONTROLS)
    line = render_line(v, 79)
    assert line.startswith("ESTOP: the robot holds")
    assert "r release" in line  # the way out fits, even with a long reason
    v = compose(_snap("stale"), CONTROLS)
    line = render_line(v, 79)
    assert line.startswith("STALE: no data from right_hand (2.3 s) | keys: e e-stop, space engage")
    wide = render_line(compose(_snap("engaged", recorder=REC_ON), CONTROLS), 300)
    order = [wide.index(s) for s in ("ENGAGED", "keys:", "REC ep 3 (s keep", "latency p50 2.6", "inputs ok")]
    assert order == sorted(order), wide
    assert "LOOP" not in wide  # the loop holds its rate: no word about it
    low = render_line(compose(_snap("engaged", loop_hz=410.0), CONTROLS), 300)
    assert "LOOP 410 of 500 Hz" in low


def test_keys_are_the_ones_that_act_in_each_state():
    def keys(state, **kw):
        return available_keys(state, CONTROLS, True, **kw)

    assert keys("idle") == ["e e-stop", "space engage", "q quit"]
    assert keys("engaged") == ["e e-stop", "space disengage", "q quit"]
    assert keys("estop") == ["r release", "q quit"]  # engage is refused there, e-stop is done
    assert keys("lost") == ["e e-stop", "q quit"]
    assert keys("starting") == []
    assert keys("policy", policy=True) == ["e e-stop", "space disengage", "i take over", "q quit"]
    assert keys("engaged", policy=True, intervening=True) == ["e e-stop", "space disengage", "i hand back", "q quit"]
    assert episode_keys(CONTROLS, True, REC_ON) == ["s keep", "x discard", "y/n success/failure"]
    assert episode_keys(CONTROLS, True, {"reachable": True, "recording": False, "episode": -1}) == ["b record"]
    assert episode_keys(CONTROLS, True, {"reachable": True, "recording": False, "episode": 2}) == [
        "b record", "y/n success/failure"]  # marks the last episode
    assert episode_keys(CONTROLS, True, {"reachable": False}) == []
    assert episode_keys(CONTROLS, True, None) == []  # no recorder in this session
    pedal = ControlsConfig(engage=("pedal:clutch", "key:space", "auto"), engage_mode="hold",
                           estop=("key:e", "pedal:estop"))
    assert available_keys("idle", pedal, False) == ["pedal:estop e-stop", "hold pedal:clutch engage"]  # no terminal
    assert available_keys("engaged", pedal, True)[:2] == ["e e-stop", "let go of space: stop"]
    auto = ControlsConfig(engage=("auto",))
    assert available_keys("idle", auto, True) == ["e e-stop", "q quit"]  # nothing to press: it engages itself


def test_a_pipe_gets_plain_lines_on_change_and_slowly_otherwise():
    out = io.StringIO()
    p = StatusPrinter("tty", stream=out, controls=CONTROLS, plain_every_s=0.2)
    assert p.mode == "plain"  # not a terminal: no live line
    p.refresh()
    assert "starting: starting" in out.getvalue()  # never blank, even before the first snapshot
    p.phase("starting the robot server")
    p.refresh()
    for _ in range(20):  # a 10 Hz feed of the same state: one line, not twenty
        p.publish(_snap("engaged"))
        p.refresh()
    p.publish(_snap("estop"))
    p.refresh()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert "starting: starting the robot server" in lines[1]
    assert "ENGAGED" in lines[2] and "ESTOP: the robot holds" in lines[3]
    time.sleep(0.25)
    p.refresh()  # nothing changed, but it is time for the periodic line
    assert len(out.getvalue().splitlines()) == 5
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_a_terminal_gets_one_line_redrawn_in_place_and_cleared_at_the_end(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    term = FakeTerminal()
    root = logging.getLogger()
    handler = logging.StreamHandler(term)
    root.addHandler(handler)
    try:
        p = StatusPrinter("tty", stream=term, controls=CONTROLS, interval_s=0.05)
        assert p.mode == "tty"
        p.start()
        p.publish(_snap("engaged", recorder=REC_ON))
        time.sleep(0.2)
        logging.getLogger("teleop.test").warning("a log line")
        p.publish(_snap("estop"))
        time.sleep(0.2)
        p.stop()
        assert handler.stream is term  # given back
    finally:
        root.removeHandler(handler)
    text = term.getvalue()
    assert "\n" not in text.replace("a log line\n", "")  # the status itself never starts a new line
    assert "\r\x1b[Ka log line\n" in text  # the line was cleared before the log line, which scrolls above
    draws = [d for d in text.split("\r") if d and d != "\x1b[K" and "a log line" not in d]
    assert draws
    for d in draws:
        visible = d.replace("\x1b[7m", "").replace("\x1b[0m", "").replace("\x1b[K", "")
        assert len(visible) <= 59, visible  # the last column stays free: no wrap
    assert "\x1b[7mESTOP\x1b[0m" in text
    assert text.endswith("\r\x1b[K")  # nothing left behind for the summary to run into


def test_json_status_carries_the_same_fields_and_no_nan():
    out = io.StringIO()
    p = StatusPrinter("json", stream=out, controls=CONTROLS)
    p.publish(_snap("stale", latency_ms={"p50": float("nan"), "p99": float("nan"), "max": float("nan")},
                    recorder=REC_ON))
    p.refresh()
    p.refresh()  # no change within a second: no second line
    (line,) = out.getvalue().splitlines()
    v = json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in the JSON status"))
    assert v["state"] == "stale" and v["reason"].startswith("no fresh sample")
    assert v["stale_inputs"] == ["right_hand"] and v["inputs"]["right_hand"]["fresh"] is False
    assert v["keys"] == ["e e-stop", "space engage", "q quit"]
    assert v["episode_keys"] == ["s keep", "x discard", "y/n success/failure"]
    assert v["recorder"]["episode"] == 3 and v["loop_low"] is False and v["latency_ms"]["p50"] is None


def test_the_recorder_state_comes_from_its_control_socket(tmp_path, port_base):
    tap, ctl = f"tcp://127.0.0.1:{port_base}", f"tcp://127.0.0.1:{port_base + 1}"
    rec = Recorder(RecorderConfig(dataset=tmp_path / "ds", tap=tap, control=ctl))
    ready = threading.Event()
    thread = threading.Thread(target=rec.run, kwargs={"ready": ready}, daemon=True)
    thread.start()
    assert ready.wait(10)
    watch = RecorderWatch(ctl, interval_s=0.05, timeout_s=0.3)
    watch.start()
    bus = Bus("test")
    rpc = bus.rpc_client(ctl, 3.0)

    def until(cond, what):
        end = time.monotonic() + 3.0
        while not cond(watch.snapshot()):
            assert time.monotonic() < end, f"{what}: {watch.snapshot()}"
            time.sleep(0.02)

    try:
        until(lambda s: s["reachable"] and not s["recording"] and s["episode"] == -1, "idle recorder")
        rpc.request("start")
        until(lambda s: s["recording"] and s["episode"] == 0, "recording")
        rpc.request("success")
        until(lambda s: s["outcome"] == "success", "outcome")
        rpc.request("stop")
        until(lambda s: not s["recording"] and s["episode"] == 0 and s["outcome"] == "success", "kept")
    finally:
        rec.stop()
        thread.join(30)
        bus.close()
    until(lambda s: s["reachable"] is False, "recorder gone")
    watch.stop()
    line = render_line(compose({"state": "idle", "recorder": watch.snapshot()}, CONTROLS), 200)
    assert "REC DOWN" in line and "b record" not in line
