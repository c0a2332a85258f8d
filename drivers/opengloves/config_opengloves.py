from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from drivers.config import DriverConfig
from teleop.errors import ConfigError

__all__ = ["OpenGlovesConfig", "ENCODINGS"]

ENCODINGS = ("alpha", "legacy")


@dataclass(frozen=True, kw_only=True)
class OpenGlovesConfig(DriverConfig):
    """A LucidGloves / OpenGloves glove on a serial port.

    ``port``: the serial device (``/dev/ttyUSB0``, ``/dev/rfcomm0``, a stable ``/dev/serial/by-id``
    path); ``encoding``: the firmware's ENCODE_ALPHA or ENCODE_LEGACY; ``analog_max``: the
    firmware's ANALOG_MAX (4095 on ESP32, 1023 on Arduino Nano); ``ffb_max``: force-feedback full
    scale (1000 for LucidVR firmware, 4095 for senseshift); ``invert_ffb``: send ``ffb_max - v``;
    ``calibration``: JSON file of per-channel ranges (``calibration.py``), loaded at connect and
    written by ``calibrate()``; ``timeout_s``: serial read timeout (one ``_read`` blocks at most
    this long); ``max_line_bytes``: longer lines are dropped and counted.
    """

    port: str
    baud: int = 115200
    side: Literal["left", "right"] = "right"
    encoding: Literal["alpha", "legacy"] = "alpha"
    analog_max: int = 4095
    ffb_max: int = 1000
    invert_ffb: bool = False
    hand_length_m: float = 0.185
    calibration: str | None = None
    timeout_s: float = 0.05
    max_line_bytes: int = 256

    HELP: ClassVar[dict[str, str]] = {
        "port": "serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...",
        "encoding": "alpha (default firmware) or legacy ('&'-separated)",
        "analog_max": "firmware ANALOG_MAX: 4095 (ESP32) or 1023 (Arduino Nano)",
        "ffb_max": "force-feedback full scale: 1000 (LucidVR firmware) or 4095 (senseshift)",
        "calibration": "path of a JSON calibration file (written by calibrate())",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.port, str) or not self.port:
            raise ConfigError(f"port={self.port!r}: give the serial device, e.g. /dev/ttyUSB0")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"encoding={self.encoding!r}: allowed values: {list(ENCODINGS)}")
        if not self.baud > 0:
            raise ConfigError(f"baud={self.baud}: must be > 0 (the firmware uses 115200)")
        if not 1 <= self.analog_max <= 65535:
            raise ConfigError(f"analog_max={self.analog_max}: must be within 1..65535 (4095 on ESP32, 1023 on AVR)")
        if not 1 <= self.ffb_max <= 65535:
            raise ConfigError(f"ffb_max={self.ffb_max}: must be within 1..65535 (1000 LucidVR, 4095 senseshift)")
        if not 0.1 <= self.hand_length_m <= 0.3:
            raise ConfigError(f"hand_length_m={self.hand_length_m}: must be within 0.1..0.3 m (adults ~0.16..0.21)")
        if not 0 < self.timeout_s <= 0.2:
            raise ConfigError(f"timeout_s={self.timeout_s}: must be within (0, 0.2] s (one read must stay short)")
        if not 16 <= self.max_line_bytes <= 65536:
            raise ConfigError(f"max_line_bytes={self.max_line_bytes}: must be within 16..65536")
