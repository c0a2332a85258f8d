"""Frame sources for the GelSight Mini: the UVC camera (by device path or by name) and video-file
replay, both delivering the processed RGB image (crop ``border_fraction`` per side, resize to
320x240, as the vendor SDK does). Backend: OpenCV (``opencv-python-headless``), imported lazily.

Camera path: ``cv2.VideoCapture(path, cv2.CAP_V4L2)`` with FOURCC MJPG (the Mini's only mode:
3280x2464 at 25 fps). Decoding a full 8-Mpixel JPEG and area-resizing it costs ~55 ms on one
core here, more than the 40 ms frame period; so by default the source asks OpenCV for the raw
MJPG buffer (``CAP_PROP_CONVERT_RGB = 0``) and decodes it at 1/4 scale inside libjpeg
(``IMREAD_REDUCED_COLOR_4``, DCT-domain downscaling, 820x616, ~20 ms) before the crop and the
final area resize. ``decode_reduce=1`` decodes at full size instead.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from teleop.errors import ConfigError, DeviceError
from teleop.vision.devices import (
    BY_ID,
    DEV,
    SYS_VIDEO4LINUX,
    check_access,
    describe_devices,
    find_device_by_name,
    list_video_devices,
    load_cv2,
    resolve_device,
)

__all__ = [
    "FrameSource",
    "CropResize",
    "UvcCamera",
    "VideoFile",
    "crop_box",
    "list_video_devices",
    "find_device_by_name",
    "resolve_device",
    "check_access",
    "load_cv2",
    "SYS_VIDEO4LINUX",
    "DEV",
    "BY_ID",
    "SDK_CONTROLS",
]

logger = logging.getLogger(__name__)

#: v4l2 controls of the vendor's legacy ``mini_set_cam_params.sh`` (gsrobotics), as OpenCV
#: property names -> value (OpenCV's V4L2 backend passes raw control values through).
SDK_CONTROLS: dict[str, int] = {
    "CAP_PROP_AUTO_WB": 0,  # white_balance_temperature_auto=0
    "CAP_PROP_WB_TEMPERATURE": 4500,
    "CAP_PROP_AUTO_EXPOSURE": 1,  # exposure_auto=1 (manual)
    "CAP_PROP_EXPOSURE": 180,  # exposure_absolute
    "CAP_PROP_GAIN": 0,
    "CAP_PROP_GAMMA": 140,
    "CAP_PROP_CONTRAST": 32,
    "CAP_PROP_SATURATION": 64,
    "CAP_PROP_SHARPNESS": 3,
}

_REDUCED_FLAGS = {2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


def _fourcc_str(code: int) -> str:
    code = int(code) & 0xFFFFFFFF
    s = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return s if s.isprintable() and s.strip() else f"0x{code:08x}"


# -- crop and resize ------------------------------------------------------------------------------


def crop_box(height: int, width: int, border_fraction: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the SDK's crop: ``int(h * f)`` rows off the top and bottom,
    ``int(w * f)`` columns off each side, with f clamped to [0, 0.49]."""
    f = min(max(0.0, border_fraction), 0.49)
    by, bx = int(height * f), int(width * f)
    return by, height - by, bx, width - bx


class CropResize:
    """BGR camera/video frame of any size -> processed RGB image (H, W, 3) uint8: crop, then
    ``cv2.INTER_AREA`` resize (the SDK uses OpenCV's default bilinear; area averaging avoids
    aliasing the 7x downscale), then BGR -> RGB. Intermediate buffers are kept between calls."""

    def __init__(self, width: int = 320, height: int = 240, border_fraction: float = 0.15) -> None:
        self.width, self.height, self.border_fraction = width, height, border_fraction
        self._cv2 = load_cv2()
        self._tmp = np.zeros((height, width, 3), np.uint8)

    def __call__(self, bgr: np.ndarray, out: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        cv2 = self._cv2
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        top, bottom, left, right = crop_box(bgr.shape[0], bgr.shape[1], self.border_fraction)
        roi = bgr[top:bottom, left:right]
        if roi.shape[0] == self.height and roi.shape[1] == self.width:
            self._tmp[:] = roi
        else:
            interp = cv2.INTER_AREA if roi.shape[1] >= self.width else cv2.INTER_LINEAR
            cv2.resize(roi, (self.width, self.height), dst=self._tmp, interpolation=interp)
        cv2.cvtColor(self._tmp, cv2.COLOR_BGR2RGB, dst=out)
        return out


# -- sources --------------------------------------------------------------------------------------------


class FrameSource(ABC):
    """Delivers processed RGB frames. ``read`` fills ``out`` (H, W, 3) uint8 and returns the
    capture time (``time.monotonic_ns()`` clock), or None when no frame is ready yet (a paced
    replay waiting, end of a non-looping file); it raises ``DeviceError`` when the source is gone."""

    description: str = ""
    nominal_fps: float = 25.0
    eof: bool = False
    dropped: int = 0  # frames that arrived but could not be decoded

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self, out: npt.NDArray[np.uint8]) -> int | None: ...

    @abstractmethod
    def close(self) -> None: ...


class UvcCamera(FrameSource):
    """The Mini as a UVC camera through OpenCV's V4L2 backend (see the module docstring)."""

    MJPG = "MJPG"

    def __init__(self, device: str | None = None, name: str = "GelSight Mini", *, width: int = 320, height: int = 240,
                 border_fraction: float = 0.15, decode_reduce: int = 4, flush_frames: int = 10,
                 set_controls: bool = True, buffer_size: int = 2, sys_root: Path = SYS_VIDEO4LINUX,
                 dev_root: Path = DEV, by_id_root: Path = BY_ID) -> None:
        if decode_reduce not in (1, 2, 4, 8):
            raise ConfigError(f"decode_reduce={decode_reduce}; allowed values: [1, 2, 4, 8]")
        self.device, self.name = device, name
        self.width, self.height = width, height
        self.decode_reduce = decode_reduce
        self.flush_frames = flush_frames
        self.set_controls = set_controls
        self.buffer_size = buffer_size
        self._roots = (sys_root, dev_root, by_id_root)
        self._crop = CropResize(width, height, border_fraction)
        self._cap: Any = None
        self._raw = False
        self.path = ""
        self.description = f"camera {device or name!r}"
        self.frame_size: tuple[int, int] = (0, 0)

    def open(self) -> None:
        cv2 = load_cv2()
        path = resolve_device(self.device, self.name, *self._roots)
        check_access(path)
        self.path = path
        self.description = f"camera {path}"
        cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise DeviceError(
                f"{path}: OpenCV could not open it as a V4L2 capture device. Is it busy (`fuser {path}`), or the "
                f"sensor's metadata node? Devices: {describe_devices(list_video_devices(*self._roots[:2]))}"
            )
        self._cap = cap
        try:
            self._configure(cv2, path)
        except BaseException:
            self.close()
            raise

    def _configure(self, cv2: Any, path: str) -> None:
        cap = self._cap
        mjpg = cv2.VideoWriter_fourcc(*self.MJPG)
        cap.set(cv2.CAP_PROP_FOURCC, mjpg)
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, 3280)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, 2464)
        got = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
        if got != mjpg:
            raise DeviceError(
                f"{path}: streams {_fourcc_str(got)}, expected MJPG (the GelSight Mini's only format); is this the "
                f"Mini? `v4l2-ctl -d {path} --list-formats-ext` lists what it offers"
            )
        self.frame_size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if self.frame_size != (3280, 2464):
            logger.warning("%s: frame size %dx%d, the Mini streams 3280x2464; cropping and resizing anyway",
                           path, *self.frame_size)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, self.buffer_size)
        if self.set_controls:
            failed = [k for k, v in SDK_CONTROLS.items() if not cap.set(getattr(cv2, k), v)]
            if failed:
                logger.info("%s: camera controls not accepted: %s", path, failed)
        self._raw = self.decode_reduce > 1 and bool(cap.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        for _ in range(self.flush_frames):  # the first frames may be black
            cap.grab()
        probe = np.zeros((self.height, self.width, 3), np.uint8)
        for _ in range(5):
            if self.read(probe) is not None:
                return
        raise DeviceError(
            f"{path}: {self.dropped} frames could not be decoded as MJPG (wrong format?); "
            f"check `v4l2-ctl -d {path} --list-formats-ext`, or try decode_reduce=1"
        )

    def _decode(self, frame: np.ndarray) -> np.ndarray | None:
        if frame.ndim == 3:  # the backend decoded it already
            return frame
        cv2 = load_cv2()
        flag = getattr(cv2, _REDUCED_FLAGS[self.decode_reduce]) if self._raw else cv2.IMREAD_COLOR
        return cv2.imdecode(frame.reshape(-1), flag)

    def read(self, out: npt.NDArray[np.uint8]) -> int | None:
        cv2 = load_cv2()
        cap = self._cap
        if cap is None:
            raise DeviceError(f"{self.description}: not open")
        if not cap.grab():
            raise DeviceError(f"{self.path}: no frame from the camera (unplugged? `dmesg | tail` tells)")
        now = time.monotonic_ns()
        ok, frame = cap.retrieve()
        if not ok or frame is None or frame.size == 0:
            raise DeviceError(f"{self.path}: frame grab returned nothing (unplugged?)")
        # the V4L2 buffer timestamp (CLOCK_MONOTONIC on uvcvideo), when it is plausible
        ts_ns = int(cap.get(cv2.CAP_PROP_POS_MSEC) * 1e6)
        t = ts_ns if 0 <= now - ts_ns < 1_000_000_000 else now
        bgr = self._decode(frame)
        if bgr is None:
            self.dropped += 1
            return None
        self._crop(bgr, out)
        return t

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoFile(FrameSource):
    """Replay of a recorded video (any size and codec FFmpeg reads): each frame is cropped and
    resized like a camera frame. ``realtime`` paces frames at the file's frame rate (or ``fps``);
    otherwise they come as fast as they decode. ``loop`` starts over at the end; without it,
    ``read`` returns None from then on and ``eof`` is set. ``frame_index`` counts frames from the
    start of the file (of the last frame returned)."""

    def __init__(self, path: str | Path, *, width: int = 320, height: int = 240, border_fraction: float = 0.15,
                 loop: bool = False, realtime: bool = True, fps: float | None = None) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.loop, self.realtime = loop, realtime
        self._fps = fps
        self._crop = CropResize(width, height, border_fraction)
        self._cap: Any = None
        self.description = f"video {self.path}"
        self.frame_index = -1
        self._k = 0
        self._t0 = 0.0
        self.frame_size: tuple[int, int] = (0, 0)

    def _open_cap(self) -> Any:
        cv2 = load_cv2()
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise DeviceError(f"{self.path}: OpenCV/FFmpeg cannot open this video (codec or container not supported?)")
        return cap

    def open(self) -> None:
        cv2 = load_cv2()
        if not self.path.is_file():
            raise DeviceError(f"video file {self.path} does not exist")
        self._cap = self._open_cap()
        fps = self._fps or self._cap.get(cv2.CAP_PROP_FPS)
        self.nominal_fps = float(fps) if fps and fps > 0 else 25.0
        self.frame_size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.eof = False
        self.frame_index = -1
        self._k = 0
        self._t0 = time.monotonic()

    def read(self, out: npt.NDArray[np.uint8]) -> int | None:
        if self._cap is None:
            raise DeviceError(f"{self.description}: not open")
        if self.eof:
            time.sleep(0.02)
            return None
        if self.realtime:
            wait = self._t0 + self._k / self.nominal_fps - time.monotonic()
            if wait > 0.1:
                time.sleep(0.1)
                return None
            if wait > 0:
                time.sleep(wait)
        ok, frame = self._cap.read()
        if not ok:
            if not self.loop or self.frame_index < 0:
                self.eof = True
                return None
            self._cap.release()
            self._cap = self._open_cap()
            self.frame_index = -1
            ok, frame = self._cap.read()
            if not ok:
                raise DeviceError(f"{self.path}: no frame after rewinding")
        self._crop(frame, out)
        self.frame_index += 1
        self._k += 1
        return time.monotonic_ns()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
