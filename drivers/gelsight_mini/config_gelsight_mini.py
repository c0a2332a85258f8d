"""Options of the GelSight Mini driver (docs/gelsight.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from drivers.config import DriverConfig
from teleop.errors import ConfigError

if TYPE_CHECKING:
    from drivers.gelsight_mini.tactile import ForceConstants, TactileParams

__all__ = ["GelSightMiniConfig"]


@dataclass(frozen=True, kw_only=True)
class GelSightMiniConfig(DriverConfig):
    """Where frames come from: ``video`` (a file to replay, or ``"synthetic"`` for a fake sensor)
    if set, else the camera at ``device`` (``/dev/video2`` or ``2``), else the first camera whose
    V4L2 name contains ``name``."""

    device: str | None = None
    name: str = "GelSight Mini"
    video: str | None = None
    loop: bool = False  # replay: start over at the end of the file
    realtime: bool = True  # replay: pace at the file's frame rate (else as fast as it decodes)
    border_fraction: float = 0.15  # cropped from each side before the resize, as in the SDK
    width: int = 320
    height: int = 240
    finger: str = "right_index"
    include_image: bool = False  # attach the processed RGB image to every sample
    reference_frames: int = 5  # frames averaged for the no-contact reference
    flush_frames: int = 10  # camera frames dropped after opening (the first ones may be black)
    decode_reduce: int = 4  # camera: JPEG decoded at 1/N scale by libjpeg (1, 2, 4, 8)
    set_camera_controls: bool = True  # the SDK's v4l2 exposure/white-balance/gain values
    rate_hz: float = 25.0  # nominal camera rate
    # image processing (tactile.TactileParams)
    marker_threshold: float = 0.05
    contact_threshold: float = 0.04
    search_radius_px: float = 10.0
    mm_per_px: float = 0.0634
    # force model (tactile.ForceConstants): run tactile.calibrate_force to get these
    k_shear_n_per_mm: float = 2.0
    k_normal_n_per_mm2: float = 0.05
    k_normal_div_n: float = 0.0
    k_torsion_nm: float = 0.01

    HELP: ClassVar[dict[str, str]] = {
        "device": "V4L2 path (/dev/video2) or number; default: found by name",
        "name": "substring of the V4L2 device name to look for",
        "video": "replay this video file instead of a camera ('synthetic': a fake sensor)",
        "decode_reduce": "libjpeg DCT downscale of the 3280x2464 MJPG frame: 1, 2, 4 or 8",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.device and self.video:
            raise ConfigError(f"device={self.device!r} and video={self.video!r}: set one of them")
        if not 0.0 <= self.border_fraction <= 0.49:
            raise ConfigError(f"border_fraction={self.border_fraction}: must be in [0, 0.49]")
        if self.width < 32 or self.height < 32:
            raise ConfigError(f"width={self.width}, height={self.height}: must be >= 32 (the SDK uses 320x240)")
        if self.decode_reduce not in (1, 2, 4, 8):
            raise ConfigError(f"decode_reduce={self.decode_reduce}; allowed values: [1, 2, 4, 8]")
        if self.reference_frames < 1:
            raise ConfigError(f"reference_frames={self.reference_frames}: must be >= 1")
        if self.flush_frames < 0:
            raise ConfigError(f"flush_frames={self.flush_frames}: must be >= 0")
        if not self.rate_hz > 0:
            raise ConfigError(f"rate_hz={self.rate_hz}: must be > 0")

    def tactile_params(self) -> TactileParams:
        from drivers.gelsight_mini.tactile import TactileParams

        return TactileParams(marker_threshold=self.marker_threshold, contact_threshold=self.contact_threshold,
                             search_radius_px=self.search_radius_px, mm_per_px=self.mm_per_px)

    def force_constants(self) -> ForceConstants:
        from drivers.gelsight_mini.tactile import ForceConstants

        return ForceConstants(k_shear_n_per_mm=self.k_shear_n_per_mm, k_normal_n_per_mm2=self.k_normal_n_per_mm2,
                              k_normal_div_n=self.k_normal_div_n, k_torsion_nm=self.k_torsion_nm)
