"""The XR page in a real browser (Chromium + Playwright, iwer as the headset): entering XR
streams both hands; iwer's scripted pinch reaches the webxr driver as a HandSample pinch; a page
without the token gets nothing; the headset going away leaves the driver without samples."""

from __future__ import annotations

import time

import pytest
from xr_browser import iwer_script, launch_chromium, xr_context

from drivers.samples import HandSample
from teleop.errors import DeviceTimeoutError

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")


@pytest.fixture(scope="module")
def browser():
    iwer = iwer_script()
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b, iwer
        b.close()


def page_url(drv, token: str | None = None) -> str:
    return f"https://localhost:{drv.server.port}/xr.html?token={token or drv.server.token}"


def latest_hand(drv, side: str = "right") -> HandSample:
    sample = drv.read_latest(max_age_s=0.5, kind="hand", side=side)
    assert isinstance(sample, HandSample)
    return sample


def wait_until(cond, timeout_s: float = 5.0, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = cond()
            if got:
                return got
        except DeviceTimeoutError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def enter_xr(browser, drv):
    b, iwer = browser
    ctx = xr_context(b, iwer)
    page = ctx.new_page()
    page.goto(page_url(drv))
    page.wait_for_function("() => window.teleopXR && window.teleopXR.state.startsWith('connected')", timeout=5000)
    page.click("#enter")
    page.wait_for_function("() => window.teleopXR.framesSent > 5", timeout=10000)
    return ctx, page


def test_a_pinch_in_the_headset_is_a_pinch_in_the_driver(browser, driver):
    ctx, page = enter_xr(browser, driver)
    try:
        open_hand = wait_until(lambda: latest_hand(driver), what="a right hand sample")
        assert open_hand.keypoints.shape == (21, 3) and open_hand.channels[0] > 0.05  # thumb-index [m]
        wait_until(lambda: latest_hand(driver, "left"), what="a left hand sample")
        page.evaluate("() => window.__iwer.hands.right.updatePinchValue(1)")
        pinched = wait_until(lambda: (s := latest_hand(driver)).channels[0] < 0.02 and s, what="the pinch")
        # the session's pinch gesture is thumb tip - index tip < 2 cm (docs/sessions.md)
        assert pinched.keypoints[4] - pinched.keypoints[8] == pytest.approx(0, abs=0.02)
        assert latest_hand(driver, "left").channels[0] > 0.05  # the other hand stays open
        assert driver.health().rate_hz > 20  # frames at the page's XR frame rate
    finally:
        ctx.close()


def test_a_page_without_the_token_gets_nothing(browser, driver):
    b, iwer = browser
    ctx = xr_context(b, iwer)
    try:
        page = ctx.new_page()
        for url in (page_url(driver, "wrong-token"), f"https://localhost:{driver.server.port}/xr.html",
                    f"https://localhost:{driver.server.port}/xr.js"):
            resp = page.goto(url)
            assert resp.status == 403 and "teleopXR" not in page.content()
        assert page.evaluate("() => typeof window.teleopXR") == "undefined"
    finally:
        ctx.close()
    assert driver.server.stats().get("frames", 0) == 0


@pytest.mark.parametrize("how", ["end_xr", "close_page"])
def test_the_headset_going_away_leaves_no_samples(browser, driver, how):
    ctx, page = enter_xr(browser, driver)
    try:
        wait_until(lambda: latest_hand(driver), what="a right hand sample")
        if how == "end_xr":
            page.evaluate("() => window.teleopXR.session.end()")
        else:
            page.close()
        time.sleep(0.3)
        with pytest.raises(DeviceTimeoutError):
            driver.read_latest(max_age_s=0.2, kind="hand", side="right")
        assert driver.health().errors.get("page_hidden" if how == "end_xr" else "page_gone", 0) >= 1
    finally:
        ctx.close()


def test_the_head_camera_is_shown_in_the_page(browser, tmp_path, port_base):
    from support.sim import running_server

    from drivers.webxr import WebXRConfig, WebXRDriver

    with running_server(port_base, cameras=("head_cam",), camera_hz=30.0, camera_width=320, camera_height=240) as sim:
        drv = WebXRDriver(WebXRConfig(host="127.0.0.1", port=0, config_dir=tmp_path,
                                      camera=sim.config.endpoints.camera))
        drv.connect()
        try:
            ctx, page = enter_xr(browser, drv)
            try:
                page.wait_for_function("() => window.teleopXR.cameraFrames >= 5", timeout=15000)
                page.wait_for_function("() => window.teleopXR.xrCameraDraws >= 5", timeout=5000)  # in the XR view
                info = page.evaluate("() => [window.teleopXR.cameraSize, window.teleopXR.cameraNames, "
                                     "document.getElementById('cam').width]")
            finally:
                ctx.close()
        finally:
            drv.disconnect()
    assert info == [[320, 240], ["head_cam"], 320]  # decoded in the page at the sim's size
