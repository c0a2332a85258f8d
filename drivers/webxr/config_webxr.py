from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from drivers.config import DriverConfig
from teleop.errors import ConfigError

__all__ = ["WebXRConfig"]


@dataclass(frozen=True, kw_only=True)
class WebXRConfig(DriverConfig):
    """The server this driver runs (as ``teleop web``: docs/web.md) and how frames become samples.
    ``side`` unset: both hands (one headset sees both)."""

    host: str = "0.0.0.0"
    port: int = 8443
    cert: Path | None = None
    key: Path | None = None
    config_dir: Path | None = None  # default ~/.config/teleop/web (certificate, token)
    new_cert: bool = False  # make a new self-signed certificate at connect (headsets accept it again)
    new_token: bool = False  # rotate the token at connect (every browser must open the new URL)
    max_rate_hz: float = 250.0
    stale_timeout_s: float = 0.1  # a frame older than this when the driver gets to it is dropped
    hand_length_m: float = 0.185  # the controller fallback's hand model (trigger/grip -> curls)
    camera: str | None = None  # the robot's camera endpoint, e.g. tcp://127.0.0.1:7612: shown in the page
    camera_names: tuple[str, ...] = ("head_cam",)  # two: a stereo pair, left eye first
    camera_hz: float = 30.0
    reconnect: bool = False  # a headset going away is not a device error: the server stays up

    HELP: ClassVar[dict[str, str]] = {"port": "HTTPS port the headset opens (0: any free port)",
                                      "cert": "the lab's own PEM certificate (with key)",
                                      "camera": "robot camera endpoint to show in the headset"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.stale_timeout_s <= 5.0:
            raise ConfigError(f"stale_timeout_s={self.stale_timeout_s}: must be within (0, 5] s")
        if not 0.1 <= self.hand_length_m <= 0.3:
            raise ConfigError(f"hand_length_m={self.hand_length_m}: must be within 0.1..0.3 m")
        self.web_config()  # the server's own checks (port, rate, cert with key), now, not at connect

    def web_config(self):
        from teleop.web.server import WebConfig

        extra = {"config_dir": self.config_dir} if self.config_dir is not None else {}
        return WebConfig(host=self.host, port=self.port, cert=self.cert, key=self.key,
                         max_rate_hz=self.max_rate_hz, new_cert=self.new_cert,
                         new_token=self.new_token, camera=self.camera, camera_names=self.camera_names,
                         camera_hz=self.camera_hz, **extra)
