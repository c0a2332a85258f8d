"""A real browser for the web tests: Debian's Chromium driven by Playwright (never `playwright
install`), with Meta's iwer (npm, MIT) injected as the XR device: a Quest 3 with hand tracking
whose pinch the test scripts. Everything missing skips with what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

IWER_VERSION = "2.5.0"
NPM_CACHE = Path(os.environ.get("TELEOP_NPM_CACHE", Path.home() / ".cache" / "teleop" / "npm"))
CHROMIUM = os.environ.get("TELEOP_CHROMIUM", "/usr/bin/chromium")
# headless Chromium has no GPU: WebGL (which an XR session's layer needs) comes from SwiftShader
CHROMIUM_ARGS = ["--enable-unsafe-swiftshader", "--use-angle=swiftshader"]

#: Runs before the page's own scripts: the emulated headset replaces navigator.xr.
INSTALL_IWER = ("window.__iwer = new IWER.XRDevice(IWER.metaQuest3);"
                "window.__iwer.installRuntime({forceInstall: true});"
                "window.__iwer.primaryInputMode = 'hand';")


def iwer_script() -> Path:
    """iwer's build/iwer.min.js, installed with npm into the cache folder once."""
    script = NPM_CACHE / "node_modules" / "iwer" / "build" / "iwer.min.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no npm: the browser tests need iwer from npm (apt-get install -y npm)")
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    if not (NPM_CACHE / "package.json").exists():
        (NPM_CACHE / "package.json").write_text('{"private": true}\n')
    try:
        subprocess.run([npm, "install", "--no-audit", "--no-fund", f"iwer@{IWER_VERSION}"], cwd=NPM_CACHE,
                       check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"could not npm install iwer@{IWER_VERSION} into {NPM_CACHE} (offline?): {exc}")
    if not script.exists():
        pytest.skip(f"npm installed iwer but {script} is missing")
    return script


def launch_chromium(playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set TELEOP_CHROMIUM)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def xr_context(browser, iwer: Path):
    """A browser context whose pages get the emulated headset (ignore_https_errors: the operator
    accepting our self-signed certificate once)."""
    ctx = browser.new_context(ignore_https_errors=True)
    ctx.add_init_script(path=str(iwer))
    ctx.add_init_script(script=INSTALL_IWER)
    return ctx
