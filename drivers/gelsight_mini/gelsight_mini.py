"""GelSight Mini optical tactile sensor: one ``TactileSample`` per camera frame (docs/gelsight.md).

On ``connect()`` the frame source opens (camera, video replay or the synthetic fake), the first
``reference_frames`` frames are averaged into the no-contact reference and the markers are
detected on it: nothing may touch the gel then. Each later frame is tracked against that
reference: marker displacement field, contact mask, force and torsion estimate.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, ClassVar

import numpy as np

from drivers.base import ThreadedDriver, requires_connected
from drivers.gelsight_mini import capture
from drivers.gelsight_mini.config_gelsight_mini import GelSightMiniConfig
from drivers.gelsight_mini.tactile import TactilePipeline
from drivers.samples import SampleSpec, TactileSample
from teleop.errors import DeviceError, DeviceTimeoutError

__all__ = ["GelSightMiniDriver", "make_frame_source"]

logger = logging.getLogger(__name__)


def make_frame_source(config: GelSightMiniConfig) -> capture.FrameSource:
    """The source the config asks for (tests patch this to plug in a fake)."""
    if config.video == "synthetic":
        from drivers.gelsight_mini.synthetic import SyntheticCamera

        return SyntheticCamera(config.width, config.height, realtime=config.realtime, loop=True,
                               fps=config.rate_hz)
    if config.video:
        return capture.VideoFile(config.video, width=config.width, height=config.height,
                                 border_fraction=config.border_fraction, loop=config.loop, realtime=config.realtime)
    return capture.UvcCamera(config.device, config.name, width=config.width, height=config.height,
                             border_fraction=config.border_fraction, decode_reduce=config.decode_reduce,
                             flush_frames=config.flush_frames, set_controls=config.set_camera_controls)


class GelSightMiniDriver(ThreadedDriver):
    name: ClassVar[str] = "gelsight_mini"
    config_class: ClassVar[type[GelSightMiniConfig]] = GelSightMiniConfig
    description: ClassVar[str] = "GelSight Mini optical tactile sensor (UVC camera or video replay)"
    config: GelSightMiniConfig

    #: seconds to collect the reference frames before giving up
    reference_timeout_s: ClassVar[float] = 10.0

    def __init__(self, config: GelSightMiniConfig | None = None) -> None:
        super().__init__(config)
        self._source: capture.FrameSource | None = None
        self._pipeline: TactilePipeline | None = None
        self._frame = np.zeros((self.config.height, self.config.width, 3), np.uint8)
        self._markers_ro = np.zeros((0, 2))
        self._recal: threading.Event | None = None
        self._recal_error: BaseException | None = None
        self._dropped_seen = 0
        self._eof_counted = False
        self._source_name = ""

    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(kinds=("tactile",), side=self.config.side, rate_hz=self.config.rate_hz, frame="sensor")

    @property
    def pipeline(self) -> TactilePipeline | None:
        return self._pipeline

    # -- ThreadedDriver ------------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.config
        if self._pipeline is None:
            self._pipeline = TactilePipeline(cfg.height, cfg.width, cfg.tactile_params(), cfg.force_constants())
            # compile here, in connect(): a cold numba cache takes seconds, which must not look
            # like a silent sensor to the first get_sample()
            self._pipeline.warmup()
        self._source = make_frame_source(cfg)
        self._source.open()
        self._source_name = f"{self.name}:{self._source.description}"
        self._dropped_seen = self._source.dropped
        self._eof_counted = False
        self._take_reference()

    def _take_reference(self) -> None:
        cfg = self.config
        src, pipe = self._source, self._pipeline
        if src is None or pipe is None:
            raise DeviceError(f"{self.name}: source not open")
        acc = np.zeros(self._frame.shape, np.float64)
        got = 0
        deadline = time.monotonic() + self.reference_timeout_s
        while got < cfg.reference_frames:
            if src.read(self._frame) is not None:
                acc += self._frame
                got += 1
            elif src.eof or time.monotonic() > deadline:
                raise DeviceError(
                    f"{self.name}: got {got} of reference_frames={cfg.reference_frames} frames from "
                    f"{src.description} ({'end of file' if src.eof else f'within {self.reference_timeout_s} s'})"
                )
        reference = np.rint(acc / got).astype(np.uint8)
        n = pipe.set_reference(reference)
        if n == 0:
            raise DeviceError(
                f"{self.name}: no markers found on the reference frame of {src.description}. Is this a GelSight "
                f"with a marker gel, in focus and lit? (marker_threshold={cfg.marker_threshold})"
            )
        markers = pipe.tracker.reference.copy()
        markers.flags.writeable = False
        self._markers_ro = markers
        logger.info("%s: reference from %d frames, %d markers (radius %.1f px)", self.name, got, n,
                    pipe.tracker.radius)

    def _read(self) -> TactileSample | None:
        src, pipe = self._source, self._pipeline
        if src is None or pipe is None:
            raise DeviceError(f"{self.name}: source not open")
        recal = self._recal
        if recal is not None:
            try:
                self._take_reference()
            except BaseException as exc:
                self._recal_error = exc
            finally:
                self._recal = None
                recal.set()
        t_ns = src.read(self._frame)
        if src.dropped != self._dropped_seen:
            self.count("bad_frame", f"{src.dropped - self._dropped_seen} frame(s) failed to decode")
            self._dropped_seen = src.dropped
        if t_ns is None:
            if src.eof and not self._eof_counted:
                self._eof_counted = True
                self.count("end_of_file", f"{src.description}: no more frames (loop=false)")
            return None
        out = pipe.process(self._frame)
        cfg = self.config
        return TactileSample(
            side=cfg.side,
            capture_ns=t_ns,
            seq=self.next_seq(),
            markers_px=self._markers_ro,
            displacement_px=out.displacement_px.copy(),
            contact_mask=out.contact_mask.copy(),
            force_n=out.force_n.copy(),
            torsion_nm=float(out.torsion_nm),
            image=self._frame.copy() if cfg.include_image else None,
            finger=cfg.finger,
            source=self._source_name,
        )

    def _close(self) -> None:
        if self._source is not None:
            try:
                self._source.close()
            finally:
                self._source = None

    # -- calibration ---------------------------------------------------------------------------------
    @requires_connected
    def calibrate(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Re-take the no-contact reference: DO NOT TOUCH THE SENSOR while this runs (about
        ``reference_frames`` frame periods). Markers are detected again; displacements restart
        from zero. Returns what was found."""
        logger.warning("%s: re-taking the reference, do not touch the sensor", self.name)
        done = threading.Event()
        self._recal_error = None
        self._recal = done
        if not done.wait(timeout_s):
            self._recal = None
            raise DeviceTimeoutError(f"{self.name}: the reference was not re-taken within {timeout_s} s")
        if self._recal_error is not None:
            err = self._recal_error
            raise DeviceError(f"{self.name}: re-taking the reference failed: {err}") from err
        pipe = self._pipeline
        if pipe is None:
            raise DeviceError(f"{self.name}: no pipeline (not connected?)")
        return {"markers": pipe.n_markers, "marker_radius_px": round(pipe.tracker.radius, 3),
                "reference_frames": self.config.reference_frames}
