"""One video of a batch: ``run_job``, the same plain function in this process and on every Dask
worker (``retarget.video_batch`` plans and gathers, ``retarget.video_cluster`` runs it on Dask)."""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retarget.video_episode import VideoOptions
from teleop.errors import TeleopError

__all__ = ["Video", "run_job", "job_key", "episode_keys", "done_keys_episode", "LEDGER"]

LEDGER = "video_jobs.jsonl"  # the dataset's file of finished videos (retarget.video_batch)
_REPORT_EVERY_S = 0.5


@dataclass(frozen=True)
class Video:
    """One input file as the batch sees it."""

    index: int
    path: str
    size: int
    mtime_ns: int
    frames: int  # declared frames in the requested range (0: unknown)


def run_job(video: Video, robot: str | Path | None, dataset: Path, opts: VideoOptions,
            done_keys: set[tuple], report: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One video -> its result dict; never raises for a bad video (the error is the result).
    ``report(frames_done)`` hears of progress, at most every half second."""
    from retarget.video_episode import process_video
    from retarget.video_track import sha256_file

    t0, cpu0 = time.perf_counter(), time.process_time()  # a worker runs one job at a time: its CPU is the job's
    base = {"video": video.path, "host": socket.gethostname(), "pid": os.getpid()}
    try:
        if not os.path.isfile(video.path):
            raise TeleopError(f"video {video.path}: no such file on {socket.gethostname()} (a cluster's workers "
                              "need the videos and the dataset at the same paths as the machine that submits)")
        digest = sha256_file(Path(video.path))
        key = job_key(digest, opts)
        if key in done_keys:
            return {**base, "status": "skipped", "sha256": digest, "episode": done_keys_episode(dataset, key),
                    "reason": "already in the dataset (same content and frame range)", "seconds": 0.0}
        tick = _Throttle(report) if report is not None else None
        r = process_video(video.path, robot, dataset, options=opts, progress=tick, sha256=digest)
        if tick is not None:
            tick(int(r.get("frames") or 0), final=True)
        return {**base, **r, "sha256": digest, "cpu_s": round(time.process_time() - cpu0, 3)}
    except TeleopError as exc:
        return {**base, "status": "failed", "error": str(exc), "seconds": round(time.perf_counter() - t0, 3)}
    except Exception as exc:  # noqa: BLE001 - a bug must cost one video, not the batch
        return {**base, "status": "failed", "seconds": round(time.perf_counter() - t0, 3),
                "error": f"internal error ({type(exc).__name__}: {exc}); please report it with the traceback "
                         f"in {LEDGER}", "traceback": traceback.format_exc(limit=20)}


class _Throttle:
    """``report(frames)`` at most every half second (and always the last call with ``final``):
    a cluster's progress events go through its scheduler."""

    def __init__(self, sink: Callable[[int], None]) -> None:
        self.sink, self.next_t = sink, 0.0

    def __call__(self, frames: int, final: bool = False) -> None:
        now = time.monotonic()
        if final or now >= self.next_t:
            self.next_t = now + _REPORT_EVERY_S
            self.sink(frames)


def job_key(digest: str, opts: VideoOptions) -> tuple:
    return (digest, opts.start_frame, opts.max_frames)


def episode_keys(dataset: Path) -> Iterator[tuple[tuple, str]]:
    """(job key, episode folder) of each video episode in ``dataset``, from its ``meta.json``
    source (the digest and the frame range it was asked for)."""
    from recorder.episode import list_episodes, read_meta

    for ep in list_episodes(dataset, include_discarded=False):
        try:
            src = read_meta(Path(ep.path)).get("source") or {}
        except TeleopError:
            continue
        req = src.get("requested")
        if src.get("kind") == "video" and src.get("sha256") and isinstance(req, dict):
            yield (src["sha256"], req.get("start_frame"), req.get("max_frames")), ep.path


def done_keys_episode(dataset: Path, key: tuple) -> str | None:
    """The episode folder holding ``key`` (None: a no-hands video)."""
    return next((path for k, path in episode_keys(dataset) if k == key), None)
