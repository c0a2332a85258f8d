"""The robot's cameras -> the XR page: JPEG over the page's own WebSocket.

A thread subscribes to the robot's camera endpoint on the bus (newest frame wins, one
latest-mode socket per camera), encodes at most ``max_hz`` frames/s per camera with OpenCV and
hands the bytes to the server, which sends them to the driving page only when that socket has
nothing of ours in flight: a slow page drops frames, it never backs the server up.

Wire format of one binary message (little-endian): ``HEADER`` then the camera name (UTF-8) then
the JPEG. ``capture_ns`` is the header capture time of the bus frame (the sim's render), on this
host's monotonic clock.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable

import numpy as np

__all__ = ["CameraRelay", "HEADER", "MAGIC", "pack_frame", "unpack_frame"]

logger = logging.getLogger(__name__)

MAGIC = b"TCAM"
HEADER = struct.Struct("<4sBBHHIq")  # magic, version, name length, width, height, frame index, capture_ns
_VERSION = 1


def pack_frame(name: str, width: int, height: int, index: int, capture_ns: int, jpeg: bytes) -> bytes:
    raw = name.encode()
    return HEADER.pack(MAGIC, _VERSION, len(raw), width, height, index & 0xFFFFFFFF, capture_ns) + raw + jpeg


def unpack_frame(data: bytes) -> tuple[str, int, int, int, int, bytes]:
    """(name, width, height, frame index, capture_ns, jpeg) of one camera message."""
    magic, version, n, w, h, index, capture_ns = HEADER.unpack_from(data)
    if magic != MAGIC or version != _VERSION:
        raise ValueError("not a camera message")
    name = data[HEADER.size:HEADER.size + n].decode()
    return name, w, h, index, capture_ns, data[HEADER.size + n:]


Sink = Callable[[bytes], None]  # must be quick: the server only schedules the send


class CameraRelay:
    """Bus camera frames -> JPEG messages for ``sink``, in its own thread (never the server's loop)."""

    def __init__(self, endpoint: str, names: tuple[str, ...], sink: Sink, max_hz: float = 30.0,
                 quality: int = 80, wanted: Callable[[], bool] = lambda: True) -> None:
        self.endpoint, self.names, self.sink, self.wanted = endpoint, names, sink, wanted
        self.period_s, self.quality = 1.0 / max_hz, quality
        self.encoded = 0
        self.encode_s = 0.0  # total time in cv2.imencode [s]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="teleop-web-camera", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        from teleop.bus import Bus, CameraFrame
        from teleop.bus.endpoints import TOPIC_CAMERA

        with Bus("web-camera") as bus:
            subs = {n: bus.subscriber(self.endpoint, [TOPIC_CAMERA + n], accept=(CameraFrame,)) for n in self.names}
            self._ready.set()
            due = dict.fromkeys(self.names, 0.0)
            while not self._stop.is_set():
                got_any = False
                for name, sub in subs.items():
                    now = time.monotonic()
                    if now < due[name]:
                        continue
                    got = sub.latest()  # drains: only the newest frame is encoded
                    if got is None or not self.wanted():  # no page: no encoding either
                        continue
                    got_any = True
                    due[name] = now + self.period_s
                    self._send(name, got.header.capture_ns, got.msg)
                if not got_any:
                    self._stop.wait(0.002)

    def _send(self, name: str, capture_ns: int, frame) -> None:
        import cv2

        t0 = time.perf_counter()
        image: np.ndarray = frame.image
        ok, jpeg = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.quality])  # RGB -> BGR
        self.encode_s += time.perf_counter() - t0
        if not ok:
            return
        h, w = image.shape[:2]
        self.encoded += 1
        try:
            self.sink(pack_frame(name, w, h, frame.frame_index, capture_ns, jpeg.tobytes()))
        except Exception:  # the server going away must not end this thread with a traceback per frame
            logger.debug("web camera: sink failed", exc_info=True)
