"""Exporters from recorded episodes to training formats: LeRobot v3.0 and robomimic-style HDF5.

Both resample every episode to a fixed rate by zero-order hold (``common.resample``); see
docs/data-format.md for the rules and the layouts.
"""

from recorder.export.common import EpisodeSkipped, ExportError, ExportSummary, resample, resample_path
from recorder.export.hdf5 import export_hdf5
from recorder.export.lerobot import export_lerobot

__all__ = ["export_lerobot", "export_hdf5", "resample", "resample_path", "ExportError", "EpisodeSkipped",
           "ExportSummary", "FORMATS"]

FORMATS = ("lerobot", "hdf5")
