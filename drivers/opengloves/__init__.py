"""LucidGloves / OpenGloves serial gloves: Alpha and legacy encodings, lock-step replies, force feedback."""

from drivers.opengloves.calibration import ChannelCalibration, load_calibration, save_calibration
from drivers.opengloves.config_opengloves import OpenGlovesConfig
from drivers.opengloves.opengloves import CHANNEL_NAMES, OpenGlovesDriver, channels_to_angles
from drivers.opengloves.protocol_opengloves import BUTTON_NAMES

__all__ = [
    "OpenGlovesConfig",
    "OpenGlovesDriver",
    "CHANNEL_NAMES",
    "BUTTON_NAMES",
    "channels_to_angles",
    "ChannelCalibration",
    "load_calibration",
    "save_calibration",
]
