"""The console's sockets (``/console-ws``): status out, actions in, camera frames out.

Any number of consoles may be open (a desktop and a tablet); each gets the owner's status as a
JSON text frame ~10 times a second and the robot's camera frames (newest wins per socket, as for
the XR page), and may send actions (teleop/web/protocol.py ``decode_console``), which go to the
owner's ``on_action`` as they arrive. A console only ever asks: the session decides (an engage
still needs the start-pose check, an e-stop always holds). Garbage is counted, never fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from teleop.web.camera import HEADER, unpack_frame
from teleop.web.protocol import CameraAck, ConsoleAction, WireError, decode_console
from teleop.web.sockets import accept, receive

__all__ = ["ConsoleHub", "ActionSink", "StatusSource", "json_safe"]

logger = logging.getLogger(__name__)

ActionSink = Callable[[ConsoleAction], None]  # from the server's thread; must be quick
StatusSource = Callable[[], dict[str, Any]]
STATUS_PERIOD_S = 0.1
_ACKS_KEPT = 4096
_NO_SESSION = {"state": "no session", "reason": "this server runs no session (`teleop web` alone): a session "
               "with [web] enabled in its config serves the console"}


def json_safe(x: Any) -> Any:
    """Plain JSON: NaN and inf become null, tuples lists, anything else its text."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple | deque):
        return [json_safe(v) for v in x]
    if x is None or isinstance(x, bool | int | str):
        return x
    return str(x)


class ConsoleHub:
    """Owned by ``WebServer``; every method runs on the server's event loop."""

    def __init__(self, count: Callable[[str], None], rate_hz: Callable[[], float]) -> None:
        self.count, self._rate_hz = count, rate_hz
        self.sockets: set[Any] = set()
        self.on_action: ActionSink = lambda action: None
        self.status_source: StatusSource | None = None
        self._busy: set[Any] = set()  # sockets with a camera frame in flight
        self._sent: dict[tuple[str, int], int] = {}  # (camera, frame index) -> capture_ns, for acks
        self.camera_drawn_ms: deque[float] = deque(maxlen=_ACKS_KEPT)  # capture -> drawn on a console
        self._task: asyncio.Task | None = None

    # -- status -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.ensure_future(self._push_status())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _push_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_PERIOD_S)
            if not self.sockets:
                continue
            try:
                status = self.status_source() if self.status_source is not None else _NO_SESSION
                text = json.dumps({"type": "status", **json_safe(status)})
            except Exception:  # the owner's bug must not end the push for every console
                self.count("status_error")
                logger.exception("web console: the status source failed")
                continue
            for ws in list(self.sockets):
                if not ws.closed:
                    asyncio.ensure_future(self._send_text(ws, text))

    async def _send_text(self, ws, text: str) -> None:
        try:
            await ws.send_str(text)
        except Exception:  # it went away between the check and the send
            self.count("console_send_error")

    # -- camera -----------------------------------------------------------------------------------
    def send_camera(self, data: bytes) -> None:
        if not self.sockets:
            return
        if len(data) >= HEADER.size:
            name, _, _, index, capture_ns, _ = unpack_frame(data[:HEADER.size + 64])
            if len(self._sent) > _ACKS_KEPT:
                self._sent.clear()
            self._sent[(name, index)] = capture_ns
        for ws in list(self.sockets):
            if ws.closed:
                continue
            if ws in self._busy:
                self.count("console_camera_dropped")
                continue
            self._busy.add(ws)
            asyncio.ensure_future(self._write_camera(ws, data))

    async def _write_camera(self, ws, data: bytes) -> None:
        try:
            await ws.send_bytes(data)
            self.count("console_camera_sent")
        except Exception:
            self.count("console_camera_send_error")
        finally:
            self._busy.discard(ws)

    # -- a console's socket -------------------------------------------------------------------------
    async def serve(self, request) -> Any:
        ws = await accept(request)
        self.sockets.add(ws)
        try:
            await receive(ws, self._rate_hz(), self.count, self._handle)
        finally:
            self.sockets.discard(ws)
            self._busy.discard(ws)
        return ws

    def _handle(self, data: str | bytes | None) -> None:
        try:
            msg = decode_console(data)  # type: ignore[arg-type]
        except WireError as exc:
            self.count("rejected")
            self.count(f"rejected:{exc.reason}")
            return
        if isinstance(msg, CameraAck):
            capture_ns = self._sent.pop((msg.name, msg.index), None)
            if capture_ns is not None:
                self.camera_drawn_ms.append((time.monotonic_ns() - capture_ns) / 1e6)
            return
        self.count(f"action:{msg.action}")
        try:
            self.on_action(msg)
        except Exception:  # the owner's bug must not end the socket (or the server)
            self.count("sink_error")
            logger.exception("web console: the action sink failed")
