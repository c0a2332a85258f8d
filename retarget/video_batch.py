"""Many human videos -> episodes: the batch around ``process_video``.

``run_batch(videos, robot, dataset, options=..., workers=..., address=...)``:

1. plans: a video the dataset has already is skipped (an episode whose ``meta.json`` source has
   the same content digest and requested frame range, or a ledger line saying it had no hands);
   ``redo=True`` processes everything again;
2. runs each remaining video as one job: in this process (one worker, no address), on a local
   Dask cluster of ``workers`` processes, or on a running Dask scheduler at ``address``
   (``retarget.video_cluster``). A job is ``run_job``: a plain function, the same on every path;
3. shows progress over videos and frames (``retarget.video_progress``) and every video's outcome
   as it finishes. A video that fails (a corrupt file, a worker process that died) is reported
   with its error; the others finish;
4. appends one line per finished video to the dataset's ledger (``video_jobs.jsonl``: the file,
   its size, mtime and digest, the outcome, the episode, the error), so a rerun skips what is done
   without hashing it again and a person can see what failed and why.

Episodes are published by ``process_video`` itself (a hidden folder renamed into place), so a
batch killed at any point leaves finished episodes finished and no half episode listed; rerun the
same command to go on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retarget.video_episode import VideoOptions
from retarget.video_job import LEDGER, Video, episode_keys, run_job
from teleop.errors import ConfigError, TeleopError

__all__ = ["run_batch", "run_job", "expand_inputs", "LEDGER", "default_workers"]

DONE = ("complete", "no_hands")  # outcomes a rerun skips; "failed" is tried again


def default_workers(n_videos: int) -> int:
    """One worker per core, no more than there are videos."""
    return max(1, min(os.cpu_count() or 1, n_videos))


def run_batch(videos: list[str | Path], robot: str | Path | None, dataset: str | Path, *,
              options: VideoOptions | None = None, workers: int | None = None, address: str | None = None,
              redo: bool = False, progress: bool | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None,
              on_frames: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Process ``videos`` into ``dataset`` (module docstring). ``progress``: bars on (True), off
    (False) or on a terminal only (None). ``on_result`` sees each video's result as it finishes,
    ``on_frames(video, frames_done)`` its progress (about every half second). Returns the batch
    summary: per video results in input order and the counts per outcome."""
    from retarget.video_episode import sweep_incoming
    from retarget.video_progress import BatchProgress

    opts = options or VideoOptions()
    dataset = Path(dataset).expanduser().resolve()
    dataset.mkdir(parents=True, exist_ok=True)
    sweep_incoming(dataset)  # what a killed run of this host left half built
    items = _inputs(videos, opts)
    if opts.preview and len(items) > 1:
        raise TeleopError(f"a preview is one file: give one video with --preview (got {len(items)})")
    ledger = _read_ledger(dataset)
    done_keys = set() if redo else _done_keys(dataset, ledger)
    results: dict[int, dict[str, Any]] = {}
    todo = []
    for v in items:
        skip = None if redo else _skip_from_ledger(v, opts, ledger, dataset)
        if skip is not None:
            results[v.index] = skip
        else:
            todo.append(v)
    n_workers = max(1, min(workers or default_workers(len(todo)), len(todo)))  # never more workers than videos
    t0 = time.perf_counter()
    bars = BatchProgress(len(items), sum(v.frames for v in todo), enabled=progress)
    for i, r in results.items():
        bars.finished(i, r, None)
    paths = {v.index: v.path for v in items}

    def frames(index: int, done: int) -> None:
        bars.frames(index, done)
        if on_frames is not None:
            on_frames(paths[index], done)

    def finished(v: Video, r: dict[str, Any]) -> None:
        results[v.index] = r
        if r["status"] != "skipped":
            _append_ledger(dataset, v, opts, r)
        bars.finished(v.index, r, v.frames)
        if on_result is not None:
            on_result(r)

    cluster, startup_s = "none", 0.0
    try:
        if todo and (address or n_workers > 1):
            from retarget.video_cluster import run_on_dask

            cluster, startup_s = run_on_dask(todo, robot, dataset, opts, done_keys, workers=n_workers, address=address,
                                  on_frames=frames, on_result=finished)
        else:
            n_workers = 1 if todo else 0
            cluster = "in-process"
            for v in todo:
                finished(v, run_job(v, robot, dataset, opts, done_keys, lambda n, i=v.index: frames(i, n)))
    finally:
        bars.close()
        sweep_incoming(dataset)
    ordered = [results[v.index] for v in items if v.index in results]
    return _summary(ordered, dataset, n_workers, cluster, time.perf_counter() - t0, startup_s)


# -- planning ------------------------------------------------------------------------------------------


VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")


def expand_inputs(videos: list[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the video files under it (by suffix, recursively, in
    name order), so a batch of thousands needs no shell glob."""
    out: list[Path] = []
    for raw in videos:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
            if not found:
                raise ConfigError(f"{path}: a folder with no video files in it ({', '.join(VIDEO_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(path)
    return out


def _inputs(videos: list[str | Path], opts: VideoOptions) -> list[Video]:
    """The input files, each once (by resolved path), with what a rerun compares."""
    out, seen = [], set()
    for raw in expand_inputs(videos):
        path = str(Path(raw).resolve())
        if path in seen:
            continue
        seen.add(path)
        try:
            st = os.stat(path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, 0  # the job reports it; the others go on
        out.append(Video(len(out), path, size, mtime, _declared_frames(path, opts)))
    if not out:
        raise ConfigError("no videos given")
    return out


def _declared_frames(path: str, opts: VideoOptions) -> int:
    """Frames the job will track as far as the container says (for the frames bar; 0: unknown)."""
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    n = max(0, n - opts.start_frame)
    return min(n, opts.max_frames) if opts.max_frames else n


def _done_keys(dataset: Path, ledger: list[dict[str, Any]]) -> set[tuple]:
    """What the dataset holds: each video episode's (digest, start frame, max frames), and the
    videos the ledger says had no hand in them."""
    keys = {key for key, _ in episode_keys(dataset)}
    for line in ledger:
        if line.get("status") == "no_hands" and line.get("sha256"):
            keys.add((line["sha256"], line.get("start_frame"), line.get("max_frames")))
    return keys


def _skip_from_ledger(v: Video, opts: VideoOptions, ledger: list[dict[str, Any]], dataset: Path) -> dict | None:
    """A skip result when the ledger has this very file (path, size, mtime) done with the same
    frame range, and its episode is still there; else None (the job hashes and checks)."""
    for line in reversed(ledger):
        if (line.get("path"), line.get("size"), line.get("mtime_ns")) != (v.path, v.size, v.mtime_ns):
            continue
        if (line.get("start_frame"), line.get("max_frames")) != (opts.start_frame, opts.max_frames):
            continue
        if line.get("status") not in DONE:
            return None
        episode = line.get("episode")
        if line["status"] == "complete" and not (episode and (Path(episode) / "meta.json").is_file()):
            return None  # the episode went away: make it again
        return {"video": v.path, "status": "skipped", "episode": episode, "sha256": line.get("sha256"),
                "reason": f"done in an earlier run ({line['status']})", "seconds": 0.0}
    return None


# -- the ledger -----------------------------------------------------------------------------------------


def _read_ledger(dataset: Path) -> list[dict[str, Any]]:
    """The ledger's lines; a torn or garbled line (a killed run) is passed over."""
    path = dataset / LEDGER
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            out.append(line)
    return out


def _append_ledger(dataset: Path, v: Video, opts: VideoOptions, r: dict[str, Any]) -> None:
    line = {"path": v.path, "size": v.size, "mtime_ns": v.mtime_ns, "start_frame": opts.start_frame,
            "max_frames": opts.max_frames, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for k in ("sha256", "status", "episode", "frames", "seconds", "error", "reason", "host", "traceback"):
        if r.get(k) is not None:
            line[k] = r[k]
    fd = os.open(dataset / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())  # one write: concurrent batches interleave whole lines
        os.fsync(fd)
    finally:
        os.close(fd)


def _summary(results: list[dict[str, Any]], dataset: Path, workers: int, cluster: str, wall_s: float,
             startup_s: float) -> dict:
    counts = {s: sum(r["status"] == s for r in results) for s in ("complete", "skipped", "no_hands", "failed")}
    return {"dataset": str(dataset), "videos": results, **counts, "workers": workers, "cluster": cluster,
            "frames": sum(int(r.get("frames") or 0) for r in results if r["status"] != "skipped"),
            "wall_s": round(wall_s, 3), "startup_s": round(startup_s, 3), "ledger": str(dataset / LEDGER)}
