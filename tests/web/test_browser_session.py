"""A whole session driven from the XR page in a real browser (Chromium + iwer as a Quest 3)
against the MuJoCo robot server: iwer's pinch closes the simulated robot's thumb and index; the
headset going away (the page closes) holds the robot (``stale``)."""

from __future__ import annotations

import socket
import threading
import time
from importlib.metadata import entry_points

import numpy as np
import pytest
from support.ports import free_port_base
from xr_browser import iwer_script, launch_chromium, xr_context

from drivers.registry import GROUP
from retarget.kinematics import compile_tree
from robots.description import bundled_description_path, load_description
from teleop.session.config import parse_session
from teleop.session.session import ENGAGED, STALE, Session

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")

pytestmark = pytest.mark.slow


@pytest.fixture
def webxr_registered(tmp_path, monkeypatch):
    """An install made before the webxr entry point existed (an editable install's metadata is
    written at install time) does not list it; register it the way a plugin does."""
    if any(ep.name == "webxr" for ep in entry_points(group=GROUP)):
        return
    dist = tmp_path / "site" / "teleop_webxr_test-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: teleop-webxr-test\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\nwebxr = drivers.webxr.webxr:WebXRDriver\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def log_open(log, hand) -> np.ndarray:
    """The hand command in the first engaged ticks (before the pinch)."""
    return next(q for _, st, q in log if st == ENGAGED)[hand]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Headset(threading.Thread):
    """The browser in its own thread (the session's loop has the main one): opens the page once
    the server listens, enters XR, pinches when told, closes the page when told."""

    def __init__(self, port: int, token_file, iwer) -> None:
        super().__init__(daemon=True)
        self.port, self.token_file, self.iwer = port, token_file, iwer
        self.pinch, self.leave, self.done = threading.Event(), threading.Event(), threading.Event()
        self.left_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.done.set()

    def _run(self) -> None:
        deadline = time.monotonic() + 30
        while not _listening(self.port) or not self.token_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the webxr server never listened")
            time.sleep(0.05)
        with sync_api.sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = xr_context(browser, self.iwer).new_page()
            page.goto(f"https://localhost:{self.port}/xr.html?token={self.token_file.read_text().strip()}")
            page.wait_for_function("() => window.teleopXR.state.startsWith('connected')", timeout=10000)
            page.click("#enter")
            self.pinch.wait(30)
            page.evaluate("() => window.__iwer.hands.right.updatePinchValue(1)")
            self.leave.wait(30)
            page.close()
            self.left_at = time.monotonic()
            browser.close()


def test_a_pinch_in_the_headset_closes_the_robots_fingers_and_leaving_holds(tmp_path, webxr_registered):
    desc = load_description(bundled_description_path())
    port = free_port_base(1)
    web_dir = tmp_path / "web"
    headset = Headset(port, web_dir / "token", iwer_script())
    raw = {"session": {"rate_hz": 200.0},
           "robot": {"kind": "sim", "port_base": free_port_base(6), "sim_args": ["--fast", "--cameras", "none"]},
           "device": {"xr": {"driver": "webxr", "options": {"host": "127.0.0.1", "port": port,
                                                              "config_dir": str(web_dir)}}},
           "input": {"right": {"hand": "xr"}},
           "controls": {"engage": ["auto"], "estop": ["key:e"], "release": ["key:r"]},
           "haptics": {"enabled": False}}
    session = Session(parse_session(raw), status="quiet", keys=False)
    hand = slice(None)
    log: list[tuple[float, str, np.ndarray]] = []

    retry = [0.0]

    def on_tick(s: Session, tick: int) -> None:
        now = time.monotonic()
        log.append((now, s.state, s.command[hand].copy()))
        engaged = [t for t, st, _ in log if st == ENGAGED]
        if not engaged and s.state == STALE and now > retry[0]:  # a loaded machine starved the first frames
            s.request("engage")  # as the operator would
            retry[0] = now + 0.5
        if engaged and now - engaged[0] > 0.5:
            headset.pinch.set()
        if engaged and now - engaged[0] > 3.0:
            headset.leave.set()
        if headset.left_at is not None and now - headset.left_at > 0.5:
            s.stop()  # seen enough: the hold comes within ~0.1 s

    session.on_tick = on_tick
    headset.start()
    summary = session.run(seconds=30.0)
    headset.done.wait(10)
    assert headset.error is None, f"{headset.error}; {summary.fault_log}"
    states = [st for _, st, _ in log]
    assert ENGAGED in states, summary.fault_log
    hand = session.client.spec.group_slice("right_hand")
    tips = [f"right_{f}_tip" for f in ("thumb", "index", "middle", "ring", "pinky")]
    tree = compile_tree(desc.model_path, "right_wrist", tips, desc.sides["right"].hand_joints)
    left_at = headset.left_at
    assert left_at is not None
    pinched = [q for t, st, q in log if st == ENGAGED and t < left_at][-1][hand]
    tips = tree.fk(pinched).pos
    open_gap = float(np.linalg.norm(np.subtract(*tree.fk(log_open(log, hand)).pos[:2])))
    assert open_gap > 0.03, f"before the pinch the tips were only {open_gap * 1e3:.1f} mm apart"
    gap = float(np.linalg.norm(tips[0] - tips[1]))
    assert gap < 0.02, f"the robot's thumb and index tips are {gap * 1e3:.1f} mm apart after the headset's pinch"
    stale = [t for t, st, _ in log if st == STALE and t > left_at]
    assert stale, f"the session did not hold after the page closed: {states[-5:]}"
    assert stale[0] - left_at < 0.3, f"held {1e3 * (stale[0] - left_at):.0f} ms after the headset left"
