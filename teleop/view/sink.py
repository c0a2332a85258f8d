"""Where the view goes: ``spawn`` (a native rerun viewer window), ``web`` (rerun's web viewer,
served from this machine; open the printed URL in a browser) or a path ending in ``.rrd`` (a
recording file, opened later with ``rerun FILE.rrd``).

The viewer and the web server are the ``rerun`` executable that comes with rerun-sdk, started
here with ``--bind 127.0.0.1``: rerun on its own listens on every interface without
authentication, and nothing in this project listens off loopback unauthenticated
(docs/security.md). A browser on another machine reaches the web viewer through an SSH tunnel
of both ports. A spawned viewer is detached: it stays open after the session, with everything it
received; the web server stops with the view (a browser tab keeps what it has shown).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from teleop.bus.endpoints import ports_free
from teleop.errors import TeleopError

__all__ = ["ViewTarget", "parse_target", "check_target", "require_rerun", "Sink", "open_sink", "rerun_executable"]

#: rerun's own default ports (viewer/gRPC, web page); the next free ones are taken when busy.
GRPC_PORT, WEB_PORT = 9876, 9090
#: The most the web server buffers for browsers that connect late (then it drops the oldest).
WEB_SERVER_MEMORY = "1GB"
#: The most a spawned viewer keeps (then it drops the oldest data).
VIEWER_MEMORY = "25%"
_START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ViewTarget:
    kind: Literal["spawn", "web", "save"]
    path: Path | None = None  # the .rrd file when kind == "save"

    def __str__(self) -> str:
        return str(self.path) if self.kind == "save" else self.kind


def parse_target(text: str) -> ViewTarget:
    """``--rerun`` values (an argparse ``type=``): ``spawn``, ``web`` or ``PATH.rrd``."""
    value = text.strip()
    if value in ("spawn", "web"):
        return ViewTarget(value)  # type: ignore[arg-type]
    if value.lower().endswith(".rrd") and len(value) > 4:
        return ViewTarget("save", Path(value).expanduser())
    raise argparse.ArgumentTypeError(
        f"{text!r}: give spawn (a native viewer window; needs a display), web (a web viewer served on this "
        "machine; the URL is printed) or a file path ending in .rrd (saved; open it later with `rerun FILE.rrd`)")


def rerun_executable() -> Path:
    """The ``rerun`` binary shipped with rerun-sdk (found without the venv on PATH)."""
    try:
        import rerun_cli

        exe = Path(rerun_cli.__file__).parent / "rerun"
        if exe.is_file():
            return exe
    except ImportError:
        pass
    found = shutil.which("rerun")
    if found:
        return Path(found)
    raise TeleopError("the rerun viewer executable is missing: install the package again (`make install`), it "
                      "depends on rerun-sdk, which ships it")


def require_rerun() -> None:
    try:
        import rerun  # noqa: F401
    except ImportError:
        raise TeleopError("the view needs rerun-sdk, which is not installed: pip install 'dexteleop[view]' (`make "
                          "install` does)") from None


def check_target(target: ViewTarget) -> None:
    """Refuse what cannot work before anything starts: no rerun, a viewer window without a
    display, an .rrd file in a folder that cannot be written."""
    require_rerun()
    if target.kind == "spawn":
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise TeleopError(
                "spawn opens a viewer window, but there is no display here (DISPLAY and WAYLAND_DISPLAY are unset, "
                "e.g. over SSH): use the web viewer instead (--rerun web, or teleop view --web: open the printed URL "
                "in a browser, through an SSH tunnel from another machine) or save a file (--rerun FILE.rrd, or "
                "teleop view --save FILE.rrd) and open it later with `rerun FILE.rrd`")
        rerun_executable()
    elif target.kind == "web":
        rerun_executable()
    elif target.kind == "save":
        path = target.path
        assert path is not None
        if path.is_dir():
            raise TeleopError(f"--rerun {path}: that is a folder; give a file name ending in .rrd")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TeleopError(f"--rerun {path}: cannot create its folder: {exc}") from None
        if not os.access(path.parent, os.W_OK):
            raise TeleopError(f"--rerun {path}: the folder {path.parent} is not writable; pick another path")


class Sink:
    """An open view target. ``url`` is what to tell the user (a web address, the file, the viewer)."""

    def __init__(self, target: ViewTarget, rec: Any, url: str, server: subprocess.Popen | None = None) -> None:
        self.target, self.rec, self.url, self.server = target, rec, url, server

    def close(self) -> None:
        """Flush everything logged to the target (the .rrd file is complete after this)."""
        with contextlib.suppress(Exception):  # a viewer closed by the user: nothing left to flush to
            self.rec.flush(timeout_sec=10.0)
        self.rec.disconnect()
        if self.server is not None:  # the web server: it lives as long as the view
            self.server.terminate()
            try:
                self.server.wait(5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)


def open_sink(target: ViewTarget, rec: Any, log_path: Path, *, live: bool = True) -> Sink:
    """Connect the recording stream ``rec`` to ``target`` (starting the viewer or the web server;
    their output goes to ``log_path``). ``live``: it may run for hours."""
    check_target(target)
    if target.kind == "save":
        # live, no footer: its per-chunk index would grow for as long as the session runs (`rerun rrd
        # optimize` adds one afterwards, for fast random access in a big file)
        rec.save(str(target.path), write_footer=not live)
        return Sink(target, rec, str(target.path))
    exe = str(rerun_executable())
    env = {**os.environ, "RERUN_APP_ONLY": "true"}  # what rr.spawn sets: a viewer for data, no SDK prompts
    grpc = _free_port(GRPC_PORT)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        if target.kind == "spawn":
            cmd = [exe, "--bind", "127.0.0.1", "--port", str(grpc), "--memory-limit", VIEWER_MEMORY,
                   "--hide-welcome-screen"]
            # its own session: the window stays open after the view and the session have ended
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            _wait_listening(proc, [grpc], log_path, "the rerun viewer")
            rec.connect_grpc(f"rerun+http://127.0.0.1:{grpc}/proxy")
            return Sink(target, rec, f"a rerun viewer window (pid {proc.pid})")
        web = _free_port(WEB_PORT, avoid={grpc})
        cmd = [exe, "--serve-web", "--bind", "127.0.0.1", "--port", str(grpc), "--web-viewer-port", str(web),
               "--server-memory-limit", WEB_SERVER_MEMORY]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
        _wait_listening(proc, [grpc, web], log_path, "the rerun web server")
        rec.connect_grpc(f"rerun+http://127.0.0.1:{grpc}/proxy")
        url = f"http://127.0.0.1:{web}/?url=" + quote(f"rerun+http://localhost:{grpc}/proxy", safe="")
        return Sink(target, rec, url, server=proc)
    finally:
        log.close()  # the child holds its own copy


def _free_port(preferred: int, avoid: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    for port in range(preferred, preferred + 50):
        if port not in avoid and ports_free(port, 1):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(proc: subprocess.Popen, ports: list[int], log_path: Path, what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    waiting = list(ports)
    while waiting:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:] if log_path.is_file() else []
            raise TeleopError(f"{what} exited at start (code {proc.returncode}); its log {log_path} ends with: "
                              + (" | ".join(tail) or "(nothing)"))
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", waiting[0])) == 0:
                waiting.pop(0)
                continue
        if time.monotonic() > deadline:
            proc.terminate()
            raise TeleopError(f"{what} did not listen on 127.0.0.1:{waiting[0]} within {_START_TIMEOUT_S:.0f} s; "
                              f"see {log_path}")
        time.sleep(0.05)


def _die_with_parent() -> None:
    """In the web server child: SIGTERM when the view process dies, even by SIGKILL (Linux). The
    view starts it from its main thread, which lives as long as the view does."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
