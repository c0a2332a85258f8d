"""What every socket of the server shares: how it is opened (size limit, heartbeat, a 1 s close
handshake) and how its messages are read (a per-socket rate limit, errors counted, each message
handed on; nothing a peer sends ends the server)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from teleop.web.protocol import MAX_MESSAGE_BYTES

__all__ = ["Bucket", "accept", "receive"]


class Bucket:
    """Token bucket: ``rate`` messages/s with bursts of ``rate / 5`` (a headset's frames jitter)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.cap = rate, max(5.0, rate / 5)
        self.level, self.t = self.cap, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.level = min(self.cap, self.level + (now - self.t) * self.rate)
        self.t = now
        if self.level < 1.0:
            return False
        self.level -= 1.0
        return True


async def accept(request) -> Any:
    """The socket, upgraded. timeout: the close handshake with a peer that went silent (a sleeping
    headset) waits 1 s, not 10."""
    from aiohttp import web

    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=2.0, timeout=1.0, compress=False)
    await ws.prepare(request)
    return ws


async def receive(ws, rate_hz: float, count: Callable[[str], None],
                  handle: Callable[[str | bytes | None], None]) -> None:
    """Every message of ``ws`` until it closes, within ``rate_hz``, to ``handle`` (None: a message
    that is neither text nor binary, which the decoder refuses)."""
    from aiohttp import WSMsgType

    bucket = Bucket(rate_hz)
    async for msg in ws:
        if msg.type == WSMsgType.ERROR:
            count("too_large" if "size" in str(ws.exception()).lower() else "socket_error")
            break
        if not bucket.take():
            count("rate_limited")
            continue
        handle(msg.data if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) else None)
    if ws.close_code == 1009:
        count("too_large")
