"""Crash-tolerant episode video: one camera, one episode, one fragmented MP4, encoded off the receive loop.

The recorder's receive loop calls ``VideoWriter.write`` and must never wait on the encoder, so frames go
through a bounded queue to a background thread that converts RGB -> YUV and encodes with PyAV. The file is
a fragmented MP4 with one fragment per frame, flushed as each packet is muxed, so a ``kill -9`` loses only
the frames still in the queue or inside the encoder (a few frames at the defaults), never the file.

Frames are stored at a constant rate (time base 1/fps, pts = frame index); capture times live in the
recorder's log, which maps capture time -> the index ``write`` returned.

Measured on the 2-core dev box, 640x480 RGB, CPU per frame including the RGB -> YUV conversion: libx264
ultrafast 3.5 ms, superfast 6.2 ms, veryfast 12.4 ms alone; two real-time 30 fps writers (busy box) took
0.39 / 0.62 / 1.00 core. veryfast would eat a whole core, so the default is superfast (files ~35 % larger
than veryfast, ~40 % smaller than ultrafast). libsvtav1 costs ~19 ms a frame and holds ~40 frames
in flight (lost on a crash), so av1 suits offline export better than live recording.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import math
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, cast

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from teleop.errors import ConfigError, TeleopError

__all__ = ["VideoError", "VideoInfo", "VideoWriter", "probe_video", "read_video", "write_clip"]

logger = logging.getLogger(__name__)

Codec = Literal["h264", "av1"]

# codec name -> libav encoder; the decoder is chosen by libav from the file
_ENCODERS: dict[str, str] = {"h264": "libx264", "av1": "libsvtav1"}
# SVT-AV1 takes numeric presets (higher = faster); accept the x264 names too so one config key serves both
_SVT_PRESETS: dict[str, str] = {
    "ultrafast": "12",
    "superfast": "11",
    "veryfast": "10",
    "faster": "9",
    "fast": "8",
    "medium": "6",
    "slow": "4",
    "slower": "2",
    "veryslow": "1",
}
# One fragment per frame: a killed writer leaves a file readable up to its last muxed packet (~120 B of
# moof per frame, 1-3 % at 640x480). empty_moov puts the header first; default_base_moof keeps it ISO-BMFF
# plain. flush_packets pushes each fragment out of libav's 32 KB buffer at once, else a crash loses it.
_MUX_OPTIONS: dict[str, str] = {
    "movflags": "frag_every_frame+empty_moov+default_base_moof",
    "flush_packets": "1",
}
_QUEUE_END = None  # sentinel that tells the encoder thread to finish the file


@functools.cache
def _reformat_options() -> dict[str, int]:
    """threads=1: swscale's auto threading costs more than it saves at camera sizes on 2 cores. PyAV
    before 16 (which LeRobot pins) has no such knob and refuses the keyword."""
    try:
        VideoReformatter().reformat(av.VideoFrame(16, 16, "rgb24"), format="yuv420p", threads=1)
    except TypeError:
        return {}
    return {"threads": 1}


def _thread_policies() -> dict[int, tuple[int, int]]:
    """(policy, priority) of every thread of this process (Linux; empty elsewhere)."""
    out: dict[int, tuple[int, int]] = {}
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except (OSError, ValueError):
        return out
    for tid in tids:
        try:
            out[tid] = (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
        except (OSError, AttributeError):
            pass
    return out


@contextlib.contextmanager
def encoder_without_realtime() -> Iterator[None]:
    """SVT-AV1 started as root moves the thread that opens it and every worker it starts to
    SCHED_FIFO priority 99 (measured): an encoder that outranks the control loop and the physics.
    Around an encoder's start, every thread whose scheduling changed goes back to what it was (a new
    thread to the normal policy)."""
    before = _thread_policies()
    try:
        yield
    finally:
        normal = (os.SCHED_OTHER, 0) if hasattr(os, "SCHED_OTHER") else (0, 0)
        for tid, now in _thread_policies().items():
            want = before.get(tid, normal)
            if now != want:
                try:
                    os.sched_setscheduler(tid, want[0], os.sched_param(want[1]))
                except OSError:
                    logger.warning("video encoder thread %d runs at real-time priority %d and could not be "
                                   "lowered", tid, now[1])


class VideoError(TeleopError):
    """Encoding or reading an episode video failed; the message names the file and the cause."""


@dataclass(frozen=True)
class VideoInfo:
    """What a finished (or crashed) video holds.

    ``frames`` counts frames in the file; ``dropped`` counts frames ``write`` refused because the queue was
    full (0 when probed from a file); ``bytes`` is the file size; ``duration_s`` is frames / fps.
    """

    path: Path
    frames: int
    width: int
    height: int
    fps: float
    codec: str
    dropped: int
    bytes: int
    duration_s: float


class VideoWriter:
    """One camera's video of one episode, encoded in a background thread."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float = 30.0,
        *,
        codec: Codec = "h264",
        crf: int = 23,
        preset: str = "superfast",
        gop: int | None = None,
        queue_frames: int = 120,
        pix_fmt: str = "yuv420p",
    ) -> None:
        """Open ``path`` for writing (fails here, not later, if it cannot be created).

        ``fps`` [Hz] sets the constant frame rate; ``gop`` is the keyframe interval in frames (default
        round(fps), i.e. one keyframe a second, bounding seek cost); ``queue_frames`` bounds the frames
        waiting for the encoder (each holds a copy of the image). Odd sizes are refused for 4:2:0 formats
        rather than padded, so decoded frames always have the size that was written.
        """
        self._path = Path(path)
        if codec not in _ENCODERS:
            raise ConfigError(f"codec {codec!r} is not supported; choose one of {sorted(_ENCODERS)}")
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ConfigError(f"width and height must be positive ints, got {width!r} x {height!r}")
        if pix_fmt.endswith("420p") and (width % 2 or height % 2):
            raise ConfigError(
                f"{pix_fmt} needs even width and height, got {width}x{height}: crop or pad the camera image "
                f"to {width + width % 2}x{height + height % 2} or {width - width % 2}x{height - height % 2}"
            )
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"fps must be a positive number, got {fps!r}")
        gop = round(fps) if gop is None else gop
        if gop < 1:
            raise ConfigError(f"gop must be >= 1 frame, got {gop}")
        if queue_frames < 1:
            raise ConfigError(f"queue_frames must be >= 1, got {queue_frames}")
        self._width = width
        self._height = height
        self._fps = float(fps)
        self._codec = codec
        self._pix_fmt = pix_fmt
        self._queue_frames = queue_frames
        # 29.97 -> 30000/1001 so pts stay exact integers
        self._rate = Fraction(fps).limit_denominator(1001)

        self._container, self._stream = self._open(crf, preset, gop)

        # Unbounded queue, bounded by hand in write(): then close_async() can always enqueue its sentinel
        # without blocking, even when the queue is full.
        self._queue: queue.Queue[tuple[int, npt.NDArray[np.uint8]] | None] = queue.Queue()
        self._lock = threading.Lock()  # write() may be called from more than one thread
        self._next_index = 0
        self._last_t_s = -math.inf
        self._dropped = 0
        self._frames_written = 0
        self._error: BaseException | None = None
        self._closing = False
        self._done: concurrent.futures.Future[VideoInfo] = concurrent.futures.Future()
        self._done.set_running_or_notify_cancel()
        # daemon: a recorder that exits without close() must not hang; the fragments already on disk stay
        # readable, only the queued frames are lost, as on a crash
        self._thread = threading.Thread(target=self._run, name=f"video:{self._path.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller side

    @property
    def path(self) -> Path:
        return self._path

    @property
    def frames_written(self) -> int:
        """Frames muxed into the file so far (lags ``write`` by the queue and the encoder's delay)."""
        return self._frames_written

    @property
    def dropped(self) -> int:
        """Frames refused by ``write`` because the queue was full."""
        return self._dropped

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the encoder thread, or None."""
        return self._error

    def write(self, image: npt.NDArray[np.uint8], t_s: float) -> int:
        """Queue a frame and return its index in this video, or -1 if the queue was full (never blocks).

        ``image``: RGB uint8, shape (height, width, 3); it is copied, so the caller may reuse its buffer.
        ``t_s`` [s]: capture time since the episode start, strictly increasing; it is only checked here,
        the recorder's log keeps it.
        Raises ValueError for a wrong image or time, VideoError if the encoder has failed or the writer
        is closed.
        """
        if self._error is not None:
            raise self._failure()
        expected = (self._height, self._width, 3)
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != expected:
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{self._path}: expected an RGB uint8 image of shape {expected}, got {got}")
        if not math.isfinite(t_s):
            raise ValueError(f"{self._path}: frame time must be finite, got {t_s!r}")
        with self._lock:
            if self._closing:
                raise VideoError(f"{self._path}: write() after close(); start a new VideoWriter per episode")
            if t_s <= self._last_t_s:
                raise ValueError(f"{self._path}: frame times must increase, got {t_s!r} s after {self._last_t_s!r} s")
            self._last_t_s = t_s
            if self._queue.qsize() >= self._queue_frames:
                self._dropped += 1
                return -1
            index = self._next_index
            self._next_index += 1
            self._queue.put_nowait((index, image.copy()))
        return index

    def close_async(self) -> concurrent.futures.Future[VideoInfo]:
        """Finish the file in the background and return at once (the next episode can start).

        The Future gives the VideoInfo, or raises VideoError if encoding or finalising failed.
        Calling it again returns the same Future.
        """
        with self._lock:
            if not self._closing:
                self._closing = True
                self._queue.put_nowait(_QUEUE_END)
        return self._done

    def close(self, timeout_s: float = 30.0) -> VideoInfo:
        """Encode the queued frames, finish the file and return its VideoInfo; idempotent.

        Raises VideoError if encoding failed or did not finish within ``timeout_s`` [s].
        """
        future = self.close_async()
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError as e:
            raise VideoError(
                f"{self._path}: encoder did not finish within {timeout_s} s "
                f"({self._queue.qsize()} frames still queued); call close() again to keep waiting"
            ) from e

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoWriter({str(self._path)!r}, {self._width}x{self._height} @ {self._fps:g} fps, {self._codec}, "
            f"written={self._frames_written}, dropped={self._dropped}, error={self._error!r})"
        )

    # ------------------------------------------------------------------ encoder side

    def _failure(self) -> VideoError:
        err = self._error
        e = VideoError(f"{self._path}: video encoder failed: {type(err).__name__}: {err}")
        e.__cause__ = err
        return e

    def _open(self, crf: int, preset: str, gop: int) -> tuple[av.container.OutputContainer, av.VideoStream]:
        encoder = _ENCODERS[self._codec]
        if encoder not in av.codecs_available:
            other = [c for c, enc in _ENCODERS.items() if enc in av.codecs_available]
            hint = f"use codec={other[0]!r}" if other else "install a PyAV wheel built with libx264"
            raise VideoError(
                f"{self._path}: codec {self._codec!r} needs the {encoder} encoder, which this PyAV build lacks; {hint}"
            )
        if self._codec == "av1":
            preset = _SVT_PRESETS.get(preset, preset)
            if not preset.isdigit():
                raise ConfigError(f"av1 preset must be 0..13 or an x264 name {sorted(_SVT_PRESETS)}, got {preset!r}")
            # SVT-AV1 prints a banner per encoder to stderr unless told otherwise; respect a user's choice
            os.environ.setdefault("SVT_LOG", "1")
        container = av.open(str(self._path), mode="w", format="mp4", options=_MUX_OPTIONS)
        try:
            stream = cast(av.VideoStream, container.add_stream(encoder, rate=self._rate))
            stream.width = self._width
            stream.height = self._height
            stream.pix_fmt = self._pix_fmt
            stream.time_base = 1 / self._rate
            stream.codec_context.gop_size = gop
            # one thread per camera: cameras run in parallel, and x264's own threads cost ~25 % more CPU here
            stream.codec_context.thread_count = 1
            stream.codec_context.options = {"crf": str(crf), "preset": preset}
            # opens the encoder and the file and writes the header now, so a bad path or option fails in
            # the constructor instead of in the thread (PyAV defers all of it to the first mux otherwise)
            with encoder_without_realtime():
                container.start_encoding()
        except (av.FFmpegError, OSError, ValueError) as e:
            try:
                container.close()
            except Exception:  # noqa: BLE001  -- the open error is the one to report
                pass
            raise VideoError(f"{self._path}: cannot start the {encoder} video: {e}") from e
        return container, stream

    def _run(self) -> None:
        try:
            self._encode_until_closed()
            self._container.close()
            info = self._info()
        except BaseException as e:  # noqa: BLE001  -- reported through write()/close(), never lost
            self._error = e  # from here on write() raises
            logger.error("%s: video encoder failed: %r", self._path, e)
            self._discard_queue()
            try:
                self._container.close()
            except Exception as close_error:  # noqa: BLE001  -- the first error is the one to report
                logger.debug("%s: closing after failure also failed: %r", self._path, close_error)
            self._done.set_exception(self._failure())
            return
        self._done.set_result(info)

    def _encode_until_closed(self) -> None:
        stream = self._stream
        mux = self._container.mux
        # one reformatter for the whole file keeps its swscale context; frame.reformat() builds one per frame
        reformatter, options = VideoReformatter(), _reformat_options()
        # not stream.time_base: the muxer rewrites that to its own timescale (1/15360 at 30 fps) in the header
        time_base = 1 / self._rate
        while (item := self._queue.get()) is not _QUEUE_END:
            index, image = item
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame = reformatter.reformat(frame, format=self._pix_fmt, **options)
            frame.pts = index
            frame.time_base = time_base
            packets = stream.encode(frame)
            mux(packets)
            self._frames_written += len(packets)
        packets = stream.encode(None)
        mux(packets)
        self._frames_written += len(packets)

    def _discard_queue(self) -> None:
        # free the queued images; nothing else reads the queue once the thread has failed, and the
        # Future (not the thread) answers close()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _info(self) -> VideoInfo:
        frames = self._frames_written
        return VideoInfo(
            path=self._path,
            frames=frames,
            width=self._width,
            height=self._height,
            fps=self._fps,
            codec=self._codec,
            dropped=self._dropped,
            bytes=self._path.stat().st_size if self._path.is_file() else 0,
            duration_s=frames / self._fps,
        )


# ---------------------------------------------------------------------- reading


def read_video(
    path: str | Path, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
    """Decode frames ``start <= index < stop`` in order as (index, RGB uint8 image of shape (H, W, 3)).

    The index is the one ``VideoWriter.write`` returned, taken from each frame's pts. On a file whose
    writer was killed it yields every frame that reached the disk and stops without raising; the last
    frames may then skip an index (a P-frame whose B-frames were not written yet).
    Raises VideoError if the file is not a video at all.
    """
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
    # a plain function around the generator so bad arguments raise here, not at the first next()
    return _iter_video(Path(path), start, stop)


def _iter_video(path: Path, start: int, stop: int | None) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
    container = _open_for_reading(path)
    if container is None:
        return
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if fps is None or stream.time_base is None:
            raise VideoError(f"{path}: the video stream has no frame rate; not written by VideoWriter?")
        to_index = stream.time_base * fps  # pts units -> frames
        # The first frame is index 0. Its pts is 0 in a finished file but 2 frames later in a crashed one
        # (the B-frame delay the edit list would remove), so indices count from the first pts.
        origin: int | None = stream.start_time
        if start > 0 and origin is not None:
            # keyframes carry pts too, so seek to the one at or before start, then decode forward
            container.seek(origin + int(start / to_index), stream=stream, backward=True, any_frame=False)
        for frame in _decode_tolerantly(container, stream, path):
            if frame.pts is None:
                raise VideoError(f"{path}: decoded a frame without a timestamp; not written by VideoWriter?")
            if origin is None:
                origin = frame.pts
            index = round((frame.pts - origin) * to_index)
            if index < start:
                continue
            if stop is not None and index >= stop:
                return
            yield index, cast(npt.NDArray[np.uint8], frame.to_ndarray(format="rgb24"))


def write_clip(source: str | Path, out: str | Path, start: int, frames: int) -> Path:
    """Frames ``start .. start + frames`` (in decoding order) of any video file, re-encoded as a
    file of their own (H.264, ultrafast, the source's frame rate): test and benchmark inputs cut
    from one real video, each with content of its own."""
    src = av.open(str(source))
    with src:
        stream = src.streams.video[0]
        rate = stream.average_rate or 30
        images = []
        for i, frame in enumerate(src.decode(stream)):
            if i >= start + frames:
                break
            if i >= start:
                images.append(frame.to_ndarray(format="rgb24"))
    if not images:
        raise VideoError(f"{source}: no frames from {start} on (it has fewer)")
    with av.open(str(out), "w") as container:
        enc = container.add_stream("libx264", rate=rate)
        enc.height, enc.width = images[0].shape[:2]
        enc.pix_fmt, enc.options = "yuv420p", {"preset": "ultrafast"}
        for image in images:
            container.mux(enc.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(enc.encode())
    return Path(out)


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a video file; frames are counted from the packets of a finished file, and by decoding a
    crashed one (its header was written before any frame, so it cannot say)."""
    path = Path(path)
    container = _open_for_reading(path)
    if container is None:
        return VideoInfo(path, 0, 0, 0, 0.0, "", 0, path.stat().st_size, 0.0)
    with container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0)
        ctx = stream.codec_context
        codec = {"h264": "h264", "av1": "av1", "libdav1d": "av1", "libaom-av1": "av1"}.get(ctx.name, ctx.name)
        width, height = ctx.width, ctx.height
        if stream.frames > 0:
            frames = stream.frames
        elif _is_finished(path):
            frames = sum(1 for packet in container.demux(stream) if packet.size)
        else:
            frames = sum(1 for _ in _decode_tolerantly(container, stream, path))
    return VideoInfo(
        path=path,
        frames=frames,
        width=width,
        height=height,
        fps=fps,
        codec=codec,
        dropped=0,
        bytes=path.stat().st_size,
        duration_s=frames / fps if fps else 0.0,
    )


def _open_for_reading(path: Path) -> av.container.InputContainer | None:
    """Open ``path``; None if it is a writer killed before its first frame (empty, or a bare ftyp box)."""
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as e:
        if _is_empty_mp4(path):
            return None
        raise VideoError(f"{path}: not a readable video: {e}") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream")
    return container


def _decode_tolerantly(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> Iterator[av.VideoFrame]:
    # A killed writer leaves a truncated last fragment; libav reports it as an error somewhere in the tail.
    try:
        for packet in container.demux(stream):
            yield from packet.decode()  # the final empty packet flushes the decoder
    except (av.FFmpegError, EOFError) as e:
        logger.warning("%s: stopped at a damaged or truncated tail: %s", path, e)


def _is_empty_mp4(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return True
    with path.open("rb") as f:
        head = f.read(8)
    box_size = int.from_bytes(head[:4], "big")
    return head[4:8] == b"ftyp" and box_size >= size


def _is_finished(path: Path) -> bool:
    # a closed fragmented MP4 ends with the 16-byte mfro box (the index's footer); a killed one does not
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 16:
            return False
        f.seek(-16, os.SEEK_END)
        return f.read(16)[4:8] == b"mfro"
