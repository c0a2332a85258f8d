"""The browser as the operator's station: ``teleop web`` (HTTPS + secure WebSocket, a kept
certificate, a token) and the XR page (docs/web.md)."""

from teleop.web.certs import CertInfo, ensure_certificate, load_certificate
from teleop.web.protocol import VisibilityMsg, WireError, XRFrameMsg, decode_message
from teleop.web.server import WebConfig, WebServer

__all__ = ["CertInfo", "ensure_certificate", "load_certificate", "VisibilityMsg", "WireError", "XRFrameMsg",
           "decode_message", "WebConfig", "WebServer"]
