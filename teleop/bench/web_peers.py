"""The two peers of ``teleop bench web`` (each run in its own process): the headset's client,
which sends both hands in the page's JSON format at 90 Hz and reads the camera, and a bare
aiohttp TLS WebSocket that echoes, the reference measured in the same run."""

from __future__ import annotations

import threading
import time

import numpy as np

__all__ = ["client", "echo_server", "frame_text", "RATE_HZ"]

RATE_HZ = 90.0


def echo_server(cert: str, key: str, conn) -> None:
    """A bare aiohttp WebSocket over TLS: answers each message with its arrival time, padded to the
    same size (the reference for our server's path)."""
    import asyncio
    import ssl

    from aiohttp import WSMsgType, web

    async def ws_handler(request):
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                now = str(time.monotonic_ns())
                await ws.send_str(now + " " * max(0, len(msg.data) - len(now)))
        return ws

    async def main():
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        app = web.Application()
        app.router.add_get("/ws", ws_handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        conn.send(site._server.sockets[0].getsockname()[1])
        while not conn.poll():
            await asyncio.sleep(0.05)

    asyncio.run(main())


def client(port: int, token: str, echo_port: int | None, cert: str, seconds: float, conn, until=None) -> None:
    """The headset's side: hand frames at 90 Hz (``t_ms``: the send time on this host's monotonic
    clock) and camera frames on one socket, the raw reference (when ``echo_port``) on another, all
    sent at the same ticks; for ``seconds``, or until the event ``until`` is set (``seconds`` then
    caps it)."""
    import contextlib
    import json
    import ssl

    import cv2
    from websockets.sync.client import connect

    from teleop.web.camera import unpack_frame

    ctx = ssl.create_default_context(cafile=cert)
    frame = json.loads(frame_text())
    cam: list[tuple[int, int, int]] = []  # (capture_ns, decoded_ns, the sim's frame index)
    raw_one, raw_rtt, sent = [], [], []
    stop = threading.Event()
    with connect(f"wss://localhost:{port}/ws?token={token}", ssl=ctx, max_size=2**24) as ws, \
            (connect(f"wss://localhost:{echo_port}/ws", ssl=ctx) if echo_port else contextlib.nullcontext()) as raw:

        def camera_reader():
            while not stop.is_set():
                try:
                    data = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                except Exception:
                    return
                if isinstance(data, bytes):
                    _, w, h, index, capture_ns, jpeg = unpack_frame(data)
                    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                    if img is not None and img.shape[:2] == (h, w):
                        cam.append((capture_ns, time.monotonic_ns(), index))

        reader = threading.Thread(target=camera_reader, daemon=True)
        reader.start()
        t_next = time.monotonic()
        t_end = t_next + seconds
        seq = 0
        while t_next < t_end and not (until is not None and until.is_set()):
            t0 = time.monotonic_ns()
            frame["seq"], frame["t_ms"] = seq, t0 / 1e6
            text = json.dumps(frame)
            ws.send(text)
            sent.append(t0)
            if raw is not None:
                t1 = time.monotonic_ns()
                raw.send("x" * len(text))
                back = raw.recv(timeout=2)
                raw_rtt.append(time.monotonic_ns() - t1)
                raw_one.append(int(back.split()[0]) - t1)
            seq += 1
            t_next += 1 / RATE_HZ
            time.sleep(max(0.0, t_next - time.monotonic()))
        stop.set()
        reader.join(2)
    conn.send({"sent": sent, "raw_one": raw_one, "raw_rtt": raw_rtt, "camera": cam, "bytes": len(text)})


def frame_text() -> str:
    """One page frame of both hands (an open model hand, the page's rounding)."""
    import json

    from drivers.hands import GloveHand
    from drivers.network.conventions import AXES

    hands = {}
    for side, y in (("left", 0.2), ("right", -0.2)):
        kp, _ = GloveHand(side).from_curls(np.full(5, 0.1))
        world = kp + np.array([0.4, y, 1.0])
        out = [world[0], *world[1:5]]
        for finger in range(4):  # WebXR's metacarpals: halfway wrist -> knuckle
            base = 5 + 4 * finger
            out += [(world[0] + world[base]) / 2, *world[base:base + 4]]
        j = np.array(out) @ AXES["yup"]
        hands[side] = {"joints": j.ravel().round(5).tolist(), "wrist": [*j[0].round(5).tolist(), 0, 0, 0, 1]}
    return json.dumps({"type": "frame", "seq": 0, "t_ms": 0.0, "hands": hands, "controllers": {},
                       "head": [0, 1.6, 0, 0, 0, 0, 1]})
