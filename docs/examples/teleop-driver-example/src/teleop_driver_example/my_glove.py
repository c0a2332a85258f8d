"""My glove over USB serial. The device sends one ASCII line per reading: five finger curls,
thumb to pinky, 0 (open) .. 1 (fist), comma-separated, e.g. ``0.10,0.52,0.50,0.48,0.45``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import serial  # or hid, cv2, zmq ... whatever reaches the device
from drivers.base import ThreadedDriver
from drivers.config import DriverConfig
from drivers.hands import GloveHand
from drivers.samples import HandSample, SampleSpec
from teleop.errors import ConfigError, DeviceError

CHANNEL_NAMES = ("thumb_curl", "index_curl", "middle_curl", "ring_curl", "pinky_curl")


@dataclass(frozen=True, kw_only=True)
class MyGloveConfig(DriverConfig):
    port: str  # required: `teleop drivers echo my_glove --port /dev/ttyUSB0`
    baud: int = 115200
    side: Literal["left", "right"] = "right"
    hand_length_m: float = 0.185  # wrist to middle fingertip of the operator's flat hand

    HELP: ClassVar[dict[str, str]] = {"port": "serial device, e.g. /dev/ttyUSB0"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.baud > 0:
            raise ConfigError(f"baud={self.baud}: must be > 0 (the glove uses 115200)")
        if not 0.1 <= self.hand_length_m <= 0.3:
            raise ConfigError(f"hand_length_m={self.hand_length_m}: must be within 0.1..0.3 m")


class MyGloveDriver(ThreadedDriver):
    name: ClassVar[str] = "my_glove"  # == the entry-point name
    config_class: ClassVar[type] = MyGloveConfig
    description: ClassVar[str] = "My glove over USB serial: five finger curls"
    config: MyGloveConfig

    @property
    def sample_spec(self) -> SampleSpec:  # works while disconnected
        return SampleSpec(kinds=("hand",), side=self.config.side, channel_names=CHANNEL_NAMES, rate_hz=200,
                          frame="wrist")

    def _open(self) -> None:  # connect() calls this; __init__ does no I/O
        self._hand = GloveHand(self.config.side, self.config.hand_length_m)  # curls -> the 21 keypoints
        try:
            self._port = serial.Serial(self.config.port, self.config.baud, timeout=0.05)
        except serial.SerialException as exc:
            raise DeviceError(f"cannot open {self.config.port}: {exc}; is it plugged in, are you in the "
                              "dialout group?") from None

    def _read(self) -> HandSample | None:  # one blocking read, <= ~0.1 s; None if nothing came
        line = self._port.readline()
        if not line:
            return None
        try:
            curls = np.array([float(v) for v in line.split(b",")])
            keypoints, angles = self._hand.from_curls(curls)  # DeviceError unless 5 finite numbers
        except (ValueError, DeviceError):
            self.count("bad_line", repr(line[:40]))  # counted, shown by health(), never fatal
            return None
        return HandSample(side=self.config.side, capture_ns=time.monotonic_ns(), seq=self.next_seq(),
                          keypoints=keypoints, angles=angles, channels=curls, source=self.name)

    def _close(self) -> None:  # also runs after a failed _open
        port = getattr(self, "_port", None)
        if port is not None:
            port.close()
