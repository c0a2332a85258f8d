"""``teleop web``: serve the XR page on the LAN and show what the headset sends (docs/web.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from teleop.cli_types import int_in, seconds

__all__ = ["add_parsers", "cmd_web", "print_access"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "web", help="serve the XR page (HTTPS + secure WebSocket) for a headset's browser on the LAN",
        description="teleop web: an HTTPS server with a secure WebSocket for an XR headset's browser. Prints the "
        "page's URL (with its token) as text and as a QR code, and the certificate's SHA-256 fingerprint to "
        "compare with what the headset shows; then a status line per second of what arrives. A session "
        "uses the same server through the `webxr` driver. docs/web.md")
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default %(default)s: every interface; the "
                   "token gates access)")
    p.add_argument("--port", type=int_in(0, 65535, "port"), default=8443,
                   help="HTTPS port, 0..65535 (default %(default)s)")
    p.add_argument("--cert", help="the lab's own PEM certificate (with --key)")
    p.add_argument("--key", help="its PEM private key, without a passphrase")
    p.add_argument("--config-dir", help="where the generated certificate and the token are kept "
                   "(default ~/.config/teleop/web)")
    p.add_argument("--new-cert", action="store_true",
                   help="make a new self-signed certificate (headsets accept it again)")
    p.add_argument("--new-token", action="store_true", help="rotate the token (every browser must open the new URL)")
    p.add_argument("--camera", metavar="ENDPOINT", help="show this robot camera endpoint in the page, e.g. "
                   "tcp://127.0.0.1:7612 (a running `teleop sim`)")
    p.add_argument("--camera-names", default="head_cam", help="its camera(s), comma-separated; two: the left and "
                   "right eye (default %(default)s)")
    p.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    p.add_argument("--seconds", type=seconds, help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(func=cmd_web)


_PAGE_TEXT = {"xr.html": "open on the headset", "console.html": "the console (a desktop or tablet browser)"}


def print_access(server, qr: bool = True, out=None, pages: tuple[str, ...] = ("xr.html",)) -> None:
    """Each page's URL(s) with the token, a terminal QR code of the first page's first URL, the
    certificate's fingerprint (to ``out``, default the current ``sys.stdout``)."""
    out = out or sys.stdout
    for page in pages:
        print(f"teleop web: {_PAGE_TEXT.get(page, page)} (the token is in the URL; treat it as a password):", file=out)
        for url in server.urls(page):
            print(f"  {url}", file=out)
    if qr:
        import segno

        segno.make(server.urls(pages[0])[0], error="m").terminal(out=out, compact=True)
    cert = server.cert
    print(f"certificate SHA-256 {cert.sha256}" + (" (new: the headset asks to accept it once)" if cert.generated
                                                   else ""), file=out, flush=True)


def cmd_web(args: argparse.Namespace) -> int:
    from drivers.samples import HandSample
    from drivers.webxr import WebXRConfig, WebXRDriver
    from teleop.errors import DeviceTimeoutError

    def path(value: str | None) -> Path | None:
        return Path(value).expanduser() if value else None

    cameras = tuple(n.strip() for n in args.camera_names.split(",") if n.strip())
    cfg = WebXRConfig(host=args.host, port=args.port, cert=path(args.cert), key=path(args.key),
                      config_dir=path(args.config_dir), new_cert=args.new_cert, new_token=args.new_token,
                      camera=args.camera, camera_names=cameras)
    drv = WebXRDriver(cfg)
    drv.connect()
    try:
        print_access(drv.server, qr=not args.no_qr)
        stop = time.monotonic() + args.seconds if args.seconds else None
        while stop is None or time.monotonic() < stop:
            time.sleep(1.0)
            h = drv.health()
            seen = {}
            try:
                while True:
                    s = drv.get_sample(timeout_s=0.0)
                    if isinstance(s, HandSample):
                        seen[s.side] = f"{s.side} pinch {s.channels[0] * 100:.1f} cm"
            except DeviceTimeoutError:  # drained
                pass
            page = "streaming" if seen else "no frames (page closed, headset asleep, or not in XR)"
            errors = {k: v for k, v in h.errors.items() if not k.startswith("web:refused") or v}
            print(f"teleop web: {h.rate_hz:.0f} frames/s, {page}" + "".join(f"; {v}" for v in seen.values()) +
                  (f"; counted {errors}" if errors else ""), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        drv.disconnect()
    return 0
