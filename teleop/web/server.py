"""``teleop web``'s server: HTTPS pages and a secure WebSocket, in its own thread.

aiohttp runs on an asyncio loop in a background thread, so whoever starts it (the ``webxr``
driver, ``teleop web``) never blocks on the network. Every request needs the token (``?token=``
once, then an HttpOnly SameSite=Strict cookie); only files in ``teleop/web/static/`` are served.
Every message from a socket passes a per-connection rate limit and the strict decoder
(teleop/web/protocol.py); what is refused is counted in ``stats()`` and never ends the server.
Only one XR page drives at a time: the newest socket (a reload, a reconnect after the headset
slept) takes over and the older one is closed. Consoles (``/console-ws``, teleop/web/console.py)
may be many; they get the owner's status and the cameras and send actions.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from teleop.errors import ConfigError
from teleop.web.certs import CertInfo, default_config_dir, ensure_certificate, lan_addresses, load_certificate
from teleop.web.console import ActionSink, ConsoleHub, StatusSource
from teleop.web.protocol import VisibilityMsg, WireError, XRFrameMsg, decode_message
from teleop.web.sockets import accept, receive
from teleop.web.token import load_or_create_token, token_matches

__all__ = ["WebConfig", "WebServer", "STATIC_DIR", "COOKIE"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "teleop_token"  # + "_<port>": browsers keep cookies per host, not per port, and two servers
# on one host (a session's and a `teleop web`) have different tokens
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_SOCKETS = ("/ws", "/console-ws")  # a socket may carry the token in its query (no redirect to a cookie)
_COOKIE_MAX_AGE_S = 12 * 3600  # one lab day: the page must be opened with the URL again after


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """Options of ``teleop web`` (and of the ``webxr`` driver, which runs this server)."""

    host: str = "0.0.0.0"  # every interface: the token, not the address, is what gates access
    port: int = 8443  # 0: any free port (tests)
    cert: Path | None = None  # the lab's own PEM certificate (with ``key``); default: generated once
    key: Path | None = None
    config_dir: Path = field(default_factory=default_config_dir)
    new_cert: bool = False
    new_token: bool = False
    max_rate_hz: float = 250.0  # messages per second per socket (a headset sends 60..120)
    max_sockets: int = 8
    camera: str | None = None  # the robot's camera endpoint (RobotEndpoints.camera); None: no camera view
    camera_names: tuple[str, ...] = ("head_cam",)  # two names: a stereo pair, left eye first
    camera_hz: float = 30.0  # JPEG frames/s per camera at most (the encoder's CPU, the Wi-Fi)
    jpeg_quality: int = 80

    def __post_init__(self) -> None:
        if self.camera is not None:
            if not isinstance(self.camera, str) or "://" not in self.camera:
                raise ConfigError(f"camera={self.camera!r}: a bus endpoint, e.g. tcp://127.0.0.1:7612")
            names = self.camera_names
            if not isinstance(names, tuple) or not 1 <= len(names) <= 2 or \
                    not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"camera_names={names!r}: one or two camera names (two: left eye, right eye)")
        if not 1.0 <= self.camera_hz <= 60.0:
            raise ConfigError(f"camera_hz={self.camera_hz}: must be within 1..60 frames/s")
        q = self.jpeg_quality
        if isinstance(q, bool) or not isinstance(q, int) or not 10 <= q <= 100:
            raise ConfigError(f"jpeg_quality={q!r}: a whole number 10..100")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port={self.port!r}: a whole number 0..65535 (0: any free port)")
        if (self.cert is None) != (self.key is None):
            raise ConfigError("cert and key go together: give both (the lab's own PEM files) or neither")
        if not 1.0 <= self.max_rate_hz <= 2000.0:
            raise ConfigError(f"max_rate_hz={self.max_rate_hz}: must be within 1..2000 messages/s")
        sockets = self.max_sockets
        if isinstance(sockets, bool) or not isinstance(sockets, int) or not 1 <= sockets <= 64:
            raise ConfigError(f"max_sockets={self.max_sockets!r}: a whole number 1..64")
        if not self.host:
            raise ConfigError("host: an address to bind, e.g. 0.0.0.0 or this machine's LAN address")


FrameSink = Callable[[XRFrameMsg, int], None]  # (frame, arrival time.monotonic_ns); must be quick
StateSink = Callable[[str], None]  # "connected", "visible", "hidden", "gone"


class WebServer:
    """Start with ``start()`` (returns once listening, or raises), stop with ``stop()``."""

    def __init__(self, config: WebConfig, on_frame: FrameSink | None = None, on_state: StateSink | None = None) -> None:
        self.config = config
        self._on_frame = on_frame or (lambda msg, t: None)
        self._on_state = on_state or (lambda state: None)
        self._counts: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._active: Any = None  # the XR socket that drives
        self._sockets: set[Any] = set()
        self._closing: set[asyncio.Future] = set()  # close handshakes of replaced sockets
        self.port = 0
        self.token = ""
        self.cert: CertInfo | None = None
        self._relay: Any = None
        self._camera_busy = False  # a camera message is being written to the driving page
        self.console = ConsoleHub(self.count, lambda: self.config.max_rate_hz)

    def attach_xr(self, on_frame: FrameSink, on_state: StateSink) -> None:
        """Where the XR page's frames go (the ``webxr`` driver on a session's server)."""
        self._on_frame, self._on_state = on_frame, on_state

    def attach_console(self, on_action: ActionSink, status: StatusSource) -> None:
        """Where console actions go, and what the consoles are shown (the session)."""
        self.console.on_action, self.console.status_source = on_action, status

    def camera_drawn_ms(self) -> list[float]:
        """Camera capture -> drawn on a console, per frame a console acknowledged (``teleop bench web``)."""
        return list(self.console.camera_drawn_ms)

    # -- what the owner reads ---------------------------------------------------------------------
    @property
    def cookie(self) -> str:
        """The token cookie's name on this server."""
        return f"{COOKIE}_{self.port}"

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    def count(self, reason: str) -> None:
        self._counts[reason] = self._counts.get(reason, 0) + 1

    def urls(self, page: str = "xr.html") -> list[str]:
        """A page's URL with the token, per address a headset (or a console) could use."""
        wildcard = self.config.host in ("0.0.0.0", "::")
        hosts = (lan_addresses() or ["127.0.0.1"]) if wildcard else [self.config.host]
        return [f"https://{h}:{self.port}/{page}?token={quote(self.token)}" for h in hosts]

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        c = self.config
        self.token = load_or_create_token(c.config_dir, rotate=c.new_token)
        if c.cert and c.key:
            self.cert = load_certificate(c.cert, c.key)
        else:
            self.cert = ensure_certificate(c.config_dir, c.new_cert)
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_ctx.load_cert_chain(self.cert.cert_path, self.cert.key_path)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ssl_ctx, ready, failure), name="teleop-web",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s):
            raise ConfigError(f"the web server did not start within {timeout_s} s")
        if failure:
            self._thread.join(timeout=2)
            exc = failure[0]
            raise ConfigError(f"cannot serve on {c.host}:{c.port}: {exc} (another `teleop web` running? "
                              "pick another --port)") from exc
        if c.camera is not None:
            from teleop.web.camera import CameraRelay

            self._relay = CameraRelay(c.camera, c.camera_names, self.send_camera, c.camera_hz, c.jpeg_quality,
                                      wanted=lambda: self._active is not None or bool(self.console.sockets))
            self._relay.start()

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            fut.result(timeout=5)
        except Exception:  # the loop is going away anyway
            logger.debug("web server shutdown", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._loop = self._thread = None

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ssl_ctx: ssl.SSLContext, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen(ssl_ctx))
        except BaseException as exc:  # port in use, bad address: reported by start()
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _listen(self, ssl_ctx: ssl.SSLContext) -> None:
        from aiohttp import web

        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/console-ws", self._console_ws)
        app.router.add_get("/favicon.ico", self._no_icon)
        app.router.add_get("/{name}", self._static)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=ssl_ctx,
                           reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked
        self.console.start()

    async def _shutdown(self) -> None:
        await self.console.stop()
        closes = [ws.close(code=1001, message=b"server stopping") for ws in [*self._sockets, *self.console.sockets]]
        await asyncio.gather(*closes, *self._closing, return_exceptions=True)  # at once: each waits <= 1 s
        if self._runner is not None:
            await self._runner.cleanup()

    # -- camera frames to the page ----------------------------------------------------------------
    def send_camera(self, data: bytes) -> None:
        """From any thread: send one camera message to the driving page, or drop it if the page
        is still receiving the previous one (newest wins; nothing queues behind a slow page)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._send_camera, data)

    def _send_camera(self, data: bytes) -> None:
        self.console.send_camera(data)
        ws = self._active
        if ws is None or ws.closed:
            return
        if self._camera_busy:
            self.count("camera_dropped")
            return
        self._camera_busy = True
        asyncio.ensure_future(self._write_camera(ws, data))

    async def _write_camera(self, ws, data: bytes) -> None:
        try:
            await ws.send_bytes(data)
            self.count("camera_sent")
        except Exception:  # the page went away mid-frame
            self.count("camera_send_error")
        finally:
            self._camera_busy = False

    # -- HTTP -----------------------------------------------------------------------------------
    def _authorised(self, request) -> bool:
        return token_matches(request.query.get("token"), self.token) or \
            token_matches(request.cookies.get(self.cookie), self.token)

    @property
    def _guard(self):
        from aiohttp import web

        @web.middleware
        async def guard(request, handler):
            if not self._authorised(request):
                self.count("refused_token")
                return web.Response(status=403, text="forbidden: open the URL `teleop web` printed (with its token)\n")
            if "token" in request.query and request.path not in _SOCKETS:
                # the token goes into an HttpOnly cookie and out of the address bar and history
                resp = web.Response(status=303, headers={"Location": request.path})
                resp.set_cookie(self.cookie, self.token, max_age=_COOKIE_MAX_AGE_S, httponly=True, secure=True,
                                samesite="Strict", path="/")
                return resp
            resp = await handler(request)
            resp.headers.update({"Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer",
                                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
            return resp

        return guard

    async def _index(self, request):
        from aiohttp import web

        # a session's server opens on its console; `teleop web` alone on the XR page
        raise web.HTTPSeeOther(location="/console.html" if self.console.status_source else "/xr.html")

    async def _no_icon(self, request):
        from aiohttp import web

        return web.Response(status=204)  # browsers ask for one; an empty answer keeps their console clean

    async def _static(self, request):
        from aiohttp import web

        name = request.match_info["name"]
        path = STATIC_DIR / name
        # one flat folder, no "..", no hidden files: nothing outside static/ can be named
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    # -- the WebSocket --------------------------------------------------------------------------
    def _refuse_socket(self, request):
        """A response refusing the socket, or None to accept it."""
        from aiohttp import web

        origin = request.headers.get("Origin")
        if origin is not None and origin != f"https://{request.host}":
            self.count("refused_origin")  # another site's page in the operator's browser
            return web.Response(status=403, text="forbidden: cross-origin socket\n")
        if len(self._sockets) + len(self.console.sockets) >= self.config.max_sockets:
            self.count("refused_busy")
            return web.Response(status=503, text="too many sockets\n")
        return None

    async def _console_ws(self, request):
        refused = self._refuse_socket(request)
        return refused if refused is not None else await self.console.serve(request)

    async def _ws(self, request):
        if (refused := self._refuse_socket(request)) is not None:
            return refused
        ws = await accept(request)
        self._sockets.add(ws)
        previous, self._active = self._active, ws
        if previous is not None:
            self.count("replaced")
            # not awaited: the new page is served now, while the old one's close handshake runs
            self._closing.add(asyncio.ensure_future(previous.close(code=4001, message=b"another page took over")))
            for done in [t for t in self._closing if t.done()]:
                self._closing.discard(done)
        self._on_state("connected")
        try:
            await receive(ws, self.config.max_rate_hz, self.count, lambda data: self._handle(ws, data))
        finally:
            self._sockets.discard(ws)
            if self._active is ws:
                self._active = None
                self._on_state("gone")
        return ws

    def _handle(self, ws, data: str | bytes | None) -> None:
        recv_ns = time.monotonic_ns()
        try:
            msg = decode_message(data)  # type: ignore[arg-type]
        except WireError as exc:
            self.count("rejected")
            self.count(f"rejected:{exc.reason}")
            return
        if ws is not self._active:
            return
        if isinstance(msg, VisibilityMsg):
            self._on_state("visible" if msg.state == "visible" else "hidden")
            return
        self.count("frames")
        try:
            self._on_frame(msg, recv_ns)
        except Exception:  # the owner's bug must not end the socket (or the server)
            self.count("sink_error")
            logger.exception("web: the frame sink failed")
