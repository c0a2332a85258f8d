"""The console page in a real browser (Debian's Chromium via Playwright): it shows the status and
the robot's camera, every button asks for its action, and in a whole session its e-stop (the
Escape key) holds the MuJoCo robot within 100 ms."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from session_peer import SessionPeer, run_session
from support.ports import free_port_base
from test_console import session_config
from xr_browser import launch_chromium

from teleop.session.session import ENGAGED, ESTOP, Session
from teleop.web.protocol import CONSOLE_ACTIONS
from teleop.web.server import WebConfig, WebServer

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")


class CameraStream(threading.Thread):
    """A robot's ``head_cam`` on the bus at 30 frames/s (what the sim publishes), a moving gradient."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.stop = endpoint, threading.Event()

    def run(self) -> None:
        from teleop.bus import Bus, CameraFrame
        from teleop.bus.endpoints import TOPIC_CAMERA

        image = np.zeros((240, 320, 3), np.uint8)
        with Bus("test-camera") as bus:
            pub = bus.publisher(self.endpoint)
            k = 0
            while not self.stop.wait(1 / 30):
                image[:] = ((np.arange(320)[None, :, None] + 4 * k) % 256).astype(np.uint8)
                pub.publish(CameraFrame(camera="head_cam", frame_index=k, time_s=k / 30, image=image),
                            TOPIC_CAMERA + "head_cam")
                k += 1


def open_console(browser, port: int, token: str):
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.goto(f"https://localhost:{port}/console.html?token={token}")
    page.wait_for_function("() => window.teleopConsole && window.teleopConsole.statusCount > 0", timeout=10000)
    return page


def test_every_button_asks_for_its_action_and_the_camera_is_drawn(tmp_path, port_base):
    got = []
    status = {"state": "engaged", "reason": "", "loop_hz": 199.8, "rate_hz": 200.0, "has_recorder": True,
              "has_policy": True, "stages_ms": {"total": {"p50": 2.5}, "retarget": {"p50": 0.2}},
              "inputs": {"right_hand": {"device": "glove", "hz": 120.0, "age_ms": 3.0, "fresh": True}},
              "faults": {"stale_input": 2}, "fault_log": ["10:00:00 stale_input: right hand: no sample for 0.1 s"]}
    endpoint = f"tcp://127.0.0.1:{port_base + 2}"
    camera = CameraStream(endpoint)
    camera.start()
    with WebServer(WebConfig(host="127.0.0.1", port=0, config_dir=tmp_path, camera=endpoint)) as server, \
            sync_api.sync_playwright() as pw:
        server.attach_console(got.append, lambda: status)
        browser = launch_chromium(pw)
        refused = browser.new_context(ignore_https_errors=True).new_page()
        assert refused.goto(f"https://localhost:{server.port}/console.html").status == 403  # no token
        page = open_console(browser, server.port, server.token)
        assert page.inner_text("#state") == "engaged" and "stale_input" in page.inner_text("#faultlog")
        for action in CONSOLE_ACTIONS:
            if action in ("episode_task", "episode_note"):
                page.fill(f"form[data-action={action}] input", f"the {action} text")
                page.click(f"form[data-action={action}] button")
            else:
                page.click(f"button[data-action={action}]")
        page.keyboard.press("Escape")
        page.evaluate("() => { window.teleopConsole.ackCamera = true; "
                      "window.acked = window.teleopConsole.cameraFrames; }")
        page.wait_for_function("() => window.teleopConsole.cameraFrames >= window.acked + 5", timeout=15000)
        deadline = time.monotonic() + 5
        while (len(got) < len(CONSOLE_ACTIONS) + 1 or not server.camera_drawn_ms()) and time.monotonic() < deadline:
            time.sleep(0.02)
        drawn = server.camera_drawn_ms()
        names = page.evaluate("() => window.teleopConsole.cameraNames")
        browser.close()
    camera.stop.set()
    assert [a.action for a in got] == [*CONSOLE_ACTIONS, "estop"]
    assert {a.action: a.text for a in got}["episode_task"] == "the episode_task text"
    assert names == ["head_cam"] and drawn and all(0 < ms < 5000 for ms in drawn)


def engaged_for(page, seconds: float, timeout_s: float = 30.0) -> None:
    """Until the session has been engaged for ``seconds``: a loaded machine may drop the synthetic
    hands for a moment at the start (stale: the robot holds), and the console's Engage drives again."""
    deadline, since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        state = page.evaluate("() => window.teleopConsole.state")
        if state == "engaged":
            since = since or time.monotonic()
            if time.monotonic() - since >= seconds:
                return
        else:
            since = None
            if state in ("idle", "stale"):
                page.click("button[data-action=engage]")
        time.sleep(0.1)
    raise TimeoutError(f"the session never stayed engaged for {seconds} s")


class ConsoleOperator(SessionPeer):
    """The console in Chromium: waits for engaged, presses Escape, then Release and Engage."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.pressed_at: float | None = None

    def act(self, server) -> None:
        with sync_api.sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = open_console(browser, server.port, server.token)
            engaged_for(page, 0.3)
            page.keyboard.press("Escape")
            page.wait_for_function("() => window.teleopConsole.state === 'estop'", timeout=5000)
            # when the page had the key (epoch ms): Playwright's own way to the browser is not ours to time
            self.pressed_at = page.evaluate("() => window.teleopConsole.lastActionAt") / 1e3
            page.click("button[data-action=release]")
            page.wait_for_function("() => window.teleopConsole.state === 'idle'", timeout=5000)
            page.click("button[data-action=engage]")
            engaged_for(page, 0.2)
            browser.close()


@pytest.mark.slow
def test_the_consoles_estop_holds_the_robot_within_100_ms(tmp_path):
    config = session_config(tmp_path, port=free_port_base(1))
    session = Session(config, status="quiet", keys=False)
    log: list[tuple[float, str, str]] = []  # (epoch s, as the page's clock; session state; the robot's reported mode)
    session.on_tick = lambda s, tick: log.append((time.time(), s.state, getattr(s.robot_state, "mode", "?")))
    operator = ConsoleOperator(session)
    run_session(session, operator)
    pressed = operator.pressed_at
    assert pressed is not None
    held = next(t for t, st, _ in log if st == ESTOP and t >= pressed)
    robot_held = next(t for t, _, mode in log if mode == "estop" and t >= pressed)
    assert held - pressed < 0.1, f"the session e-stopped {1e3 * (held - pressed):.0f} ms after the page had Escape"
    assert robot_held - pressed < 0.1, \
        f"the robot reported its hold {1e3 * (robot_held - pressed):.0f} ms after the page had Escape"
    assert log[-1][1] == ENGAGED  # release and engage from the console drive again
