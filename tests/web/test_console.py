"""The console through a whole session ([web] enabled, the MuJoCo robot server, the recorder):
its socket gets the session's status; a socket without the token gets nothing; its actions take
the same way as the keys (e-stop holds the robot, release and engage drive again, episode marks
reach the episode's meta.json); garbage is counted and the session goes on."""

from __future__ import annotations

import json
import time

import pytest
from session_peer import SessionPeer, run_session
from support.ports import free_port_base
from websockets.exceptions import InvalidStatus
from xr_frames import open_socket

from recorder.episode import read_meta
from teleop.session.config import parse_session
from teleop.session.session import ENGAGED, ESTOP, IDLE, Session

pytestmark = pytest.mark.slow


def session_config(tmp_path, *, recorder: bool = False, **web):
    raw = {"session": {"rate_hz": 200.0},
           "robot": {"kind": "sim", "port_base": free_port_base(6), "sim_args": ["--fast", "--cameras", "none"]},
           "device": {side: {"driver": "synthetic", "options": {"side": side, "rate_hz": 200}}
                      for side in ("left", "right")},
           "input": {side: {"hand": side, "wrist": side} for side in ("left", "right")},
           "controls": {"engage": ["auto"], "estop": ["key:e"], "release": ["key:r"]},
           "haptics": {"enabled": False},
           "web": {"enabled": True, "host": "127.0.0.1", "port": 0, "config_dir": str(tmp_path / "web"), **web}}
    if recorder:
        raw["recorder"] = {"enabled": True, "dataset": str(tmp_path / "data"), "task": "pour"}
    return parse_session(raw)


class Console(SessionPeer):
    """A console client: runs ``script`` with an open console socket."""

    def __init__(self, session: Session, script) -> None:
        super().__init__(session)
        self.script = script
        self.statuses: list[dict] = []

    def act(self, server) -> None:
        with open_socket(server.port, server.token, server.cert.cert_path, path="/console-ws") as ws:
            self.script(self, server, ws)

    def status_until(self, ws, cond, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                data = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(data, str):
                status = json.loads(data)
                self.statuses.append(status)
                if cond(status):
                    return status
        raise AssertionError(f"no status matched; the last: {self.statuses[-1:]!r}")


def act(ws, action: str, **kw) -> None:
    ws.send(json.dumps({"type": "action", "action": action, **kw}))


def test_console_actions_take_the_keys_way_and_episode_marks_reach_the_recorder(tmp_path):
    session = Session(session_config(tmp_path, recorder=True), status="quiet", keys=False)
    states: list[str] = []
    session.on_tick = lambda s, tick: states.append(s.state) if not states or states[-1] != s.state else None

    def script(console: Console, server, ws) -> None:
        console.status_until(ws, lambda s: s["state"] == ENGAGED and (s.get("recorder") or {}).get("recording"), 30)
        for token in (None, "wrong"):  # no token, no socket: nothing reaches the session
            with pytest.raises(InvalidStatus) as err:
                open_socket(server.port, token, server.cert.cert_path, path="/console-ws")
            assert err.value.response.status_code == 403
        assert session.state == ENGAGED and server.stats()["refused_token"] == 2
        for garbage in ("{", "[]", json.dumps({"type": "action", "action": "quit"}), "x" * 20_000):
            try:
                ws.send(garbage)
            except Exception:  # the oversized one closes the socket
                break
        with open_socket(server.port, server.token, server.cert.cert_path, path="/console-ws") as ws:
            act(ws, "estop")
            console.status_until(ws, lambda s: s["state"] == ESTOP)
            act(ws, "engage")  # refused while e-stopped, as the key is
            act(ws, "release")
            console.status_until(ws, lambda s: s["state"] in (IDLE, ENGAGED) and s["faults"].get("engage_refused"))
            act(ws, "engage")
            console.status_until(ws, lambda s: s["state"] == ENGAGED)
            act(ws, "episode_task", text="pour the water")
            act(ws, "episode_note", text="a bit shaky at the start")
            act(ws, "episode_success")
            time.sleep(0.5)  # the marks reach the recorder over the tap
            act(ws, "disengage")
            status = console.status_until(ws, lambda s: s["state"] == IDLE)
        assert status["session"] == "session" and status["has_recorder"] and not status["has_policy"]
        assert any("e-stop" in line for line in status["fault_log"])
        stats = server.stats()
        assert stats["rejected"] >= 3 and stats["action:estop"] == 1 and stats["action:engage"] == 2

    summary = run_session(session, Console(session, script))
    driven = [st for st in states if st != "ramping"]  # a ramp shows only when the start pose is far
    driven = driven[driven.index(ENGAGED):]  # the first ticks may still be idle (auto engage)
    assert driven[:5] == [ENGAGED, ESTOP, IDLE, ENGAGED, IDLE], states
    assert summary.faults["estop"] >= 1 and summary.faults["engage_refused"] == 1
    meta = read_meta(session.episodes[0])
    assert meta["task"] == "pour the water" and meta["outcome"] == "success", meta
    assert "a bit shaky at the start" in json.dumps(meta.get("notes", meta))
