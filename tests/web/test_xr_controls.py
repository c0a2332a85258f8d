"""The headset's gestures and controller buttons as session controls: a session ([web] serving the
XR page, a ``webxr`` device for both hands, the MuJoCo robot server) engages on a left pinch, held
and let go, from the page's frames and e-stops on the right controller's B button (real TLS sockets)."""

from __future__ import annotations

import json
import time

import pytest
from session_peer import SessionPeer, run_session
from support.ports import free_port_base
from xr_frames import hand_joints, open_socket

from teleop.session.config import parse_session
from teleop.session.session import ENGAGED, ESTOP, IDLE, Session

pytestmark = pytest.mark.slow

PHASES = ((1.0, "open"), (1.9, "left_pinch"), (2.8, "open"), (3.6, "right_b"))  # (until [s], what the page sends)


def hand(side: str, pinch: bool = False) -> dict:
    j = hand_joints(side, pinch=pinch)
    return {"joints": j.ravel().round(5).tolist(), "wrist": [*j[0].round(5).tolist(), 0, 0, 0, 1]}


def page_frame(seq: int, what: str) -> str:
    hands = {"left": hand("left", pinch=what == "left_pinch")}
    controllers = {}
    if what == "right_b":  # the operator picked up the right controller and presses B
        grip = [*hand_joints("right")[0].round(5).tolist(), 0, 0, 0, 1]
        controllers["right"] = {"grip": grip, "trigger": 0.0, "squeeze": 0.0, "buttons": ["b"]}
    else:
        hands["right"] = hand("right")
    return json.dumps({"type": "frame", "seq": seq, "t_ms": seq * 11.1, "hands": hands, "controllers": controllers,
                       "head": [0, 1.6, 0, 0, 0, 0, 1]})


class Page(SessionPeer):
    """The XR page's frames, phase by phase (PHASES), at 90 Hz."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.marks: dict[str, float] = {}

    def act(self, server) -> None:
        with open_socket(server.port, server.token, server.cert.cert_path) as ws:
            t0, seq = time.monotonic(), 0
            for until, what in PHASES:
                self.marks[what] = time.monotonic()
                while time.monotonic() - t0 < until:
                    ws.send(page_frame(seq, what))
                    seq += 1
                    time.sleep(1 / 90)


def test_a_held_pinch_engages_and_the_controllers_b_estops(tmp_path):
    raw = {"session": {"rate_hz": 200.0},
           "robot": {"kind": "sim", "port_base": free_port_base(6), "sim_args": ["--fast", "--cameras", "none"]},
           "device": {"xr": {"driver": "webxr"}},
           "input": {side: {"hand": "xr", "wrist": "xr"} for side in ("left", "right")},
           "controls": {"engage": ["gesture:left_pinch"], "estop": ["xr:right_b"], "release": ["key:r"]},
           "haptics": {"enabled": False},
           "web": {"enabled": True, "host": "127.0.0.1", "port": 0, "config_dir": str(tmp_path / "web")}}
    session = Session(parse_session(raw), status="quiet", keys=False)
    log: list[tuple[float, str]] = []
    session.on_tick = lambda s, tick: log.append((time.monotonic(), s.state))
    page = Page(session)
    summary = run_session(session, page, 60)
    m = page.marks
    before = {st for t, st in log if t < m["left_pinch"]}
    assert ENGAGED not in before and IDLE in before  # open hands: nothing engages by itself
    engaged = next(t for t, st in log if st == ENGAGED)
    assert m["open"] <= engaged < m["open"] + 0.6  # pinched (held >= 0.3 s), then let go: engaged
    estop = next(t for t, st in log if st == ESTOP)
    assert m["right_b"] <= estop < m["right_b"] + 0.3, (estop - m["right_b"])
    assert summary.final_state == ESTOP and summary.faults["estop"] == 1
