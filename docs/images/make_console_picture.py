"""Regenerate docs/images/console.png, the picture of the web console in docs/web.md.

The bundled demo session (`sim_demo`: the humanoid in MuJoCo, synthetic hands and wrists picking
up the bottle, the recorder on) runs with [web] enabled and the head camera at 320x240; the
console opens in headless Chromium (Playwright), and after 12 s (the plot has filled, the hands
are at the bottle) the page is captured.

    .venv/bin/python docs/images/make_console_picture.py

Needs Debian's chromium (`apt-get install -y chromium`) and playwright (the test extra). Not part
of the tests.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "console.png"
SECONDS = 12.0


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    from teleop.session.config import WebSettings, load_session
    from teleop.session.session import Session

    with tempfile.TemporaryDirectory() as tmp:
        config = load_session("sim_demo")
        sim_args = ("--cameras", "head_cam", "--camera-hz", "15", "--camera-size", "320x240")
        config = dataclasses.replace(
            config, robot=dataclasses.replace(config.robot, sim_args=sim_args, port_base=17910),
            recorder=dataclasses.replace(config.recorder, dataset=str(Path(tmp) / "data")),
            web=WebSettings(enabled=True, host="127.0.0.1", port=0, config_dir=str(Path(tmp) / "web")))
        session = Session(config, status="quiet", keys=False)
        failure: list[BaseException] = []

        def browse() -> None:
            try:
                while session.web is None or session.web.server is None or not session.web.server.port:
                    time.sleep(0.1)
                server = session.web.server
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
                    page = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 860}) \
                        .new_page()
                    page.goto(f"https://localhost:{server.port}/console.html?token={server.token}")
                    time.sleep(SECONDS)
                    page.screenshot(path=str(OUT))
                    browser.close()
            except BaseException as exc:
                failure.append(exc)
            finally:
                session.stop()

        thread = threading.Thread(target=browse, daemon=True)
        thread.start()
        session.run(seconds=120)
        thread.join(10)
    if failure:
        raise failure[0]
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
