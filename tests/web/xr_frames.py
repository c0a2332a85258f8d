"""Synthetic WebXR frames (what the XR page sends) and a real WebSocket client that sends them."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path

import numpy as np
from websockets.sync.client import connect

from drivers.hands import GloveHand
from drivers.network.conventions import AXES

_HANDS: dict[str, GloveHand] = {}
_ORIGIN_ZUP = {"left": np.array([0.4, 0.2, 1.0]), "right": np.array([0.4, -0.2, 1.0])}  # ours: Z up, metres


def mediapipe_to_webxr25(kp: np.ndarray) -> np.ndarray:
    """MediaPipe 21 -> WebXR 25: the four metacarpal joints WebXR adds (index..pinky) halfway
    between the wrist and each knuckle."""
    out = [kp[0], *kp[1:5]]
    for finger in range(4):  # index, middle, ring, pinky: MCP at 5, 9, 13, 17
        base = 5 + 4 * finger
        out += [(kp[0] + kp[base]) / 2, *kp[base:base + 4]]
    return np.array(out)


def hand_joints(side: str, curl: float = 0.1, pinch: bool = False) -> np.ndarray:
    """25 joint positions in WebXR's axes (y up), Shape (25, 3), of a model hand at a fixed place."""
    hand = _HANDS.setdefault(side, GloveHand(side))
    kp, _ = hand.from_curls(np.full(5, curl))
    kp = kp.copy()
    if pinch:  # index tip onto the thumb tip
        kp[8] = kp[4] + np.array([0.004, 0.0, 0.0])
    world = kp + _ORIGIN_ZUP[side]
    return mediapipe_to_webxr25(world) @ AXES["yup"]  # p_theirs = M^T p_ours, row-wise


def frame(seq: int, sides=("left", "right"), pinch: bool = False, controllers: dict | None = None) -> str:
    hands = {}
    for side in sides:
        j = hand_joints(side, pinch=pinch)
        hands[side] = {"joints": j.ravel().round(5).tolist(), "wrist": [*j[0].round(5).tolist(), 0, 0, 0, 1]}
    return json.dumps({"type": "frame", "seq": seq, "t_ms": seq * 11.1, "hands": hands,
                       "controllers": controllers or {}, "head": [0, 1.6, 0, 0, 0, 0, 1]})


def client_ssl(cert: Path) -> ssl.SSLContext:
    """Verify the server against its own certificate (as a headset does once it accepted it)."""
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = True
    return ctx


def open_socket(port: int, token: str | None, cert: Path, path: str = "/ws", **kw):
    query = f"?token={token}" if token is not None else ""
    return connect(f"wss://localhost:{port}{path}{query}", ssl=client_ssl(cert), open_timeout=10, **kw)  # a loaded CI machine


class Streamer:
    """Sends frames at ``rate_hz`` from a thread, reconnecting while the server restarts."""

    def __init__(self, port: int, token_fn, cert_fn, rate_hz: float = 90.0, **frame_kw) -> None:
        self.port, self.token_fn, self.cert_fn, self.rate_hz, self.frame_kw = port, token_fn, cert_fn, rate_hz, frame_kw
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Streamer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                token, cert = self.token_fn(), self.cert_fn()
                if not token or cert is None:
                    raise OSError("server not up")
                with open_socket(self.port, token, cert) as ws:
                    while not self._stop.is_set():
                        ws.send(frame(self.sent, **self.frame_kw))
                        self.sent += 1
                        time.sleep(1 / self.rate_hz)
            except Exception:  # the server restarts between the conformance checks
                self._stop.wait(0.05)
