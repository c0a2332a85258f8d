"""``teleop bench video``: a real hand video through the camera-hands tracker and the offline
retargeter, each timed on one core, each beside its reference in the same run.

* ``tracking_fps_per_core``: frames/s of ``HandTracker`` (one LiteRT thread, OpenCV on one
  thread) at the video's size, MediaPipe's default settings: ``max_hands=2``, ROI tracking (palm
  detection only while fewer hands are tracked than that). ``tracking`` also holds ``max_hands=1``
  and ``no_roi`` (``track=False``: palm detection and a fresh region on every frame,
  ``tracking_fps_per_core_no_roi``). Only ``process`` is timed; decoding (read + BGR->RGB) is
  timed apart: ``decode_fps``.
* ``retarget_frames_per_s``: ``retarget_sequence`` (what ``teleop retarget`` runs: the bundled
  humanoid's right hand, its config with pinch priority and filters) on the tracked right hand's
  keypoints in the wrist frame (``pose.wrist_frame``), the frames where the hand was found, at
  their video times. dex-retargeting (``.venv-bench``, ``make bench-setup``) solves the same
  keypoints with the same vectors: frames/s, the speed ratio, ``residual_mm`` (mean |robot vector
  - scale * human vector|, as ``teleop bench retarget`` defines it) and the largest frame-to-frame
  joint jump, for both. ``comparison_config``: ours configured as the reference is (unit weights,
  no pinch priority, no filter), the like-for-like residual.
* ``mediapipe_reference``: MediaPipe's Python ``Hands`` (``.venv-mediapipe``, ``make
  mediapipe-setup``) on the same frames; the mean 3D keypoint difference in the wrist frame
  (``hands_compare.compare``) and both detection rates.
* ``video_hours_per_core_hour``: ``retarget.video_episode.process_video`` on the video (decode,
  track, bimanual retarget, write the episode) in one process: video seconds per CPU second of
  this process, every thread counted. ``..._no_writing``: the headline tracking pass (decode,
  track, the wrist pose by solvePnP as the driver does) plus our retarget pass, no episode
  written (the headline figure too, with a ``note``, where ``process_video`` is not there).
* ``batch``: ``teleop retarget video``'s batch (``retarget.video_batch.run_batch``) on four clips
  (overlapping halves) of the video, one worker and two (a local Dask cluster): video hours per wall-clock hour, per
  CPU core-hour of the jobs (``video_hours_per_core_hour_1_worker``, ``..._2_workers``) and the
  wall-clock speed-up of two workers.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from teleop.errors import ConfigError, TeleopError

__all__ = ["run", "DEFAULT_VIDEO"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VIDEO = REPO / ".." / "shared" / "data" / "video" / "human_hand_video.mp4"
_SIDE = "right"  # the bundled humanoid's hand the video drives (the video shows a right hand)
_MIN_RETARGET_S = 0.3  # repeat our (fast) sequence solve until this long, for a steady figure


def _open(video: Path):
    import cv2

    if not video.is_file():
        raise TeleopError(f"bench video: {video}: no such file; give an existing video (--video PATH)")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise TeleopError(f"bench video: {video}: OpenCV cannot open it as a video")
    fps = cap.get(cv2.CAP_PROP_FPS)
    return cap, (fps if math.isfinite(fps) and 1 <= fps <= 1000 else 30.0)


def _frames(video: Path, max_frames: int):
    """(index, RGB frame, decode seconds) for the first ``max_frames`` frames (0: all)."""
    import cv2

    cap, _fps = _open(video)
    try:
        k = 0
        while not max_frames or k < max_frames:
            t0 = time.perf_counter()
            ok, bgr = cap.read()
            if not ok:
                return
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield k, rgb, time.perf_counter() - t0
            k += 1
    finally:
        cap.release()


def _track(video: Path, max_frames: int, fps: float, pose: bool, **settings) -> dict:
    """One pass of the tracker over the video. With ``pose`` also the wrist pose by solvePnP per
    hand (the driver's work); returns timings and the chosen hand's landmarks per frame."""
    from drivers.camera_hands.pose import hand_in_camera
    from drivers.camera_hands.tracker import HandTracker
    from teleop.vision.intrinsics import Intrinsics

    tracker = HandTracker(threads=1, **settings)
    first = next(_frames(video, 1), None)
    if first is None:
        raise TeleopError(f"bench video: {video}: no frame could be decoded")
    tracker.process(first[1], 0.0)  # the interpreters' first invoke (allocations) is not timed
    tracker.reset()
    h, w = first[1].shape[:2]
    k_mat = Intrinsics.pinhole(w, h, 65.0).matrix()  # the driver's default without an intrinsics file
    dist = np.zeros(5)
    world, found, hands_per_frame = [], [], []
    track_s = decode_s = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for k, rgb, dec in _frames(video, max_frames):
        decode_s += dec
        t0 = time.perf_counter()
        hands = tracker.process(rgb, k / fps)
        track_s += time.perf_counter() - t0
        if pose:
            for hand in hands:
                hand_in_camera(hand.world_m, hand.image_px, hand.side, k_mat, dist)
        pick = next((hd for hd in hands if hd.side == _SIDE), None)
        world.append(pick.world_m if pick is not None else np.full((21, 3), np.nan))
        found.append(pick is not None)
        hands_per_frame.append(len(hands))
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    n = len(found)
    if n == 0:
        raise TeleopError(f"bench video: {video}: no frame could be decoded")
    stats = tracker.stats
    return {
        "frames": n, "track_s": track_s, "decode_s": decode_s, "wall_s": wall_s, "cpu_s": cpu_s,
        "world": np.array(world), "found": np.array(found), "hands": np.array(hands_per_frame),
        "summary": {
            "fps": round(n / track_s, 1), "ms_per_frame": round(track_s / n * 1e3, 2),
            "detection_rate_right": round(float(np.mean(found)), 4),
            "frames_with_2_hands": int((np.array(hands_per_frame) >= 2).sum()),
            "palm_detections_run": stats["detections_run"] - 1, "landmark_runs": stats["landmark_runs"],
        },
    }


def _largest_jump(q: np.ndarray, frame_index: np.ndarray) -> float | None:
    """The largest |q[k+1] - q[k]| [rad] over joints and consecutive video frames (gaps skipped)."""
    step = np.abs(np.diff(q, axis=0))[np.diff(frame_index) == 1]
    return round(float(step.max()), 4) if step.size else None


def _retarget(world: np.ndarray, found: np.ndarray, fps: float, reference: bool) -> tuple[dict, float]:
    """Ours (and dex-retargeting) on the tracked hand -> (the report, our seconds for one pass)."""
    from drivers.camera_hands.pose import wrist_frame
    from retarget.offline import build_hand, retarget_sequence
    from robots.description import bundled_description_path
    from teleop.bench.retarget import _residual_mm

    index = np.flatnonzero(found)
    if len(index) < 2:
        raise TeleopError(f"bench video: the {_SIDE} hand was found in {len(index)} frame(s); nothing to retarget")
    kp = np.stack([(world[k] - world[k, 0]) @ wrist_frame(world[k], _SIDE) for k in index])
    times = index / fps
    hand = build_hand(bundled_description_path(), _SIDE)
    res = retarget_sequence(hand, kp, times_s=times)
    one_pass_s, solved, spent = res.seconds, 0, 0.0
    while spent < _MIN_RETARGET_S:
        again = retarget_sequence(hand, kp, times_s=times)
        solved, spent = solved + len(kp), spent + again.seconds
    ours_fps = solved / spent
    hc = _hand_config()
    vectors, scale = hand.vectors, hc.scale
    report: dict = {
        "frames": len(kp), "robot_hand": f"bundled humanoid, {_SIDE}",
        "frames_per_s": round(ours_fps, 1),
        "residual_mm": round(_residual_mm(hand.tree, vectors, scale, res.q, kp), 3),
        "largest_joint_jump_rad": _largest_jump(res.q, index),
        "rejected_frames": res.rejected_frames,
        "config": "the bundled config as `teleop retarget` runs it (pinch priority, weights, One-Euro filter)",
    }
    # like for like with dex-retargeting (its objective scaled to ours, unit weights, no pinch priority,
    # no filter; unfiltered and with the same low-pass), as `teleop bench retarget --keypoints` compares
    from teleop.bench.retarget_compare import compare_on_keypoints

    every = np.full((len(world), 21, 3), np.nan)
    every[index] = kp
    cmp = compare_on_keypoints(every, bundled_description_path(), side=_SIDE, reference=reference)
    for name in ("unfiltered", "low_pass"):
        run = cmp[name]
        report[f"like_for_like_{name}"] = {
            "low_pass_alpha": run["low_pass_alpha"],
            "ours": {k: run["ours"][k] for k in ("residual_mm", "joint_jump_rad", "limit_violations", "frames_per_s")},
            "reference": {k: v for k, v in run["reference"].items() if k not in ("joints",)},
            "speed_ratio": run.get("speed_ratio"), "ours_not_worse": run.get("ours_not_worse"),
        }
    report["objective"] = cmp["objective"]
    unfiltered = cmp["unfiltered"]
    if "speed_ratio" in unfiltered:
        report["speed_ratio"] = unfiltered["speed_ratio"]
        report["reference"] = {"name": "dex-retargeting", "version": unfiltered["reference"].get("version"),
                               "residual_mm": unfiltered["reference"]["residual_mm"]["mean"],
                               "largest_joint_jump_rad": unfiltered["reference"]["joint_jump_rad"]["max"],
                               "frames_per_s": unfiltered["reference"]["frames_per_s"]}
    else:
        report["reference"] = unfiltered["reference"]
    return report, one_pass_s


def _hand_config():
    from retarget.config import load_retarget_config
    from robots.description import bundled_description_path, load_description

    return load_retarget_config(load_description(bundled_description_path())).hands[_SIDE]


def _mediapipe(video: Path, frames: int, world: np.ndarray, found: np.ndarray) -> dict:
    from teleop.bench.hands_compare import REFERENCE_PYTHON, compare, run_reference

    if not REFERENCE_PYTHON.exists():
        return {"name": "mediapipe", "skipped": f"no {REFERENCE_PYTHON}: run `make mediapipe-setup`"}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
            out = Path(tmp) / "mediapipe.npz"
            summary = run_reference(video, out, extra=("--max-frames", str(frames)))
            cmp = compare(world, out, found)
    except TeleopError as exc:
        return {"name": "mediapipe", "error": str(exc)}
    return {
        "name": "mediapipe", "version": summary.get("mediapipe"),
        "settings": "Hands(max_num_hands=2, model_complexity=1)",
        "mean_mm": cmp["mean_mm"], "median_frame_mm": cmp["median_frame_mm"], "p95_frame_mm": cmp["p95_frame_mm"],
        "detection_rate_ours": cmp["detection_rate_ours"], "detection_rate_ref": cmp["detection_rate_ref"],
        "frames_compared": cmp["found_both"], "ms_per_frame": summary.get("ms_mean"),
    }


def _episode(video: Path, max_frames: int) -> dict | None:
    """``retarget.video_episode.process_video`` (decode, track, retarget, write the episode) on one
    core's settings into a throw-away dataset: its CPU seconds (every thread: the encoder's too);
    None when that module is not there."""
    try:
        from retarget.video_episode import VideoOptions, process_video
    except ImportError:
        return None
    import resource

    with tempfile.TemporaryDirectory(prefix="bench-video-episode-") as tmp:
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = process_video(video, None, tmp, options=VideoOptions(max_frames=max_frames or None, threads=1))
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s += (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
    return {"status": summary["status"], "frames": summary["frames"], "fps": summary["fps"],
            "cpu_s": cpu_s, "wall_s": wall_s}


def _batch(video: Path, frames: int, fps: float, clips: int = 4) -> dict:
    """``retarget.video_batch.run_batch`` on ``clips`` clips (overlapping halves) of the video's
    first ``frames`` frames, into a fresh dataset each time: one worker (in this process), then two (a local Dask
    cluster, its start-up included, and also without it: a long batch pays it once). Per hour:
    video time per wall-clock time (what a lab waits);
    per core-hour: video time per CPU time of the jobs (every thread of the worker, the encoder's
    too), which holds on a loaded machine."""
    import os

    from recorder.video import write_clip
    from retarget.video_batch import run_batch
    from retarget.video_episode import VideoOptions

    out: dict = {"clips": clips, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-video-batch-") as tmp:
        length = max(1, frames // 2)  # overlapping halves: each clip's content is its own, per-video costs count
        step = max(1, (frames - length) // max(1, clips - 1))
        paths = [write_clip(video, Path(tmp) / f"clip{i}.mp4", i * step, length) for i in range(clips)]
        for workers in (1, 2):
            t0 = time.perf_counter()
            summary = run_batch(paths, None, Path(tmp) / f"ds{workers}", options=VideoOptions(threads=1),
                                workers=workers, progress=False)
            wall_s = time.perf_counter() - t0
            video_s = summary["frames"] / fps
            cpu_s = sum(r.get("cpu_s") or 0.0 for r in summary["videos"])
            run_s = wall_s - summary["startup_s"]
            out[f"workers_{workers}"] = {
                "wall_s": round(wall_s, 2), "startup_s": summary["startup_s"], "video_s": round(video_s, 2),
                "cpu_s": round(cpu_s, 2), "complete": summary["complete"], "cluster": summary["cluster"],
                "video_hours_per_hour": round(video_s / wall_s, 3),
                "video_hours_per_hour_after_startup": round(video_s / run_s, 3),
                "video_hours_per_core_hour": round(video_s / cpu_s, 3) if cpu_s > 0 else None}
    one, two = out["workers_1"]["video_hours_per_hour"], out["workers_2"]["video_hours_per_hour"]
    out["speedup_2_workers"] = round(two / one, 3)
    one, two = (out[f"workers_{w}"]["video_hours_per_hour_after_startup"] for w in (1, 2))
    out["speedup_2_workers_after_startup"] = round(two / one, 3)
    return out


def run(video: str | Path | None = None, seconds: float | None = None, reference: bool = True) -> dict:
    """The benchmark on ``video`` (default: the project's real hand video), its first ``seconds``
    (None: all of it); ``reference=False`` skips dex-retargeting and MediaPipe."""
    import cv2

    video = Path(video) if video is not None else DEFAULT_VIDEO.resolve()
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"bench video: seconds={seconds!r}: give a positive number of seconds of the video")
    cap, fps = _open(video)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    max_frames = max(1, round(seconds * fps)) if seconds is not None else 0

    cpu0 = time.process_time()
    decoded = sum(1 for _ in _frames(video, max_frames))  # decode alone, every thread of it counted
    decode_cpu_s = time.process_time() - cpu0
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # per core: OpenCV's warps and colour conversion on this thread only
    try:
        # the headline pass is also the end-to-end one (it solves the wrist pose, as the driver does)
        head = _track(video, max_frames, fps, pose=True, max_hands=2)
        one = _track(video, max_frames, fps, pose=False, max_hands=1)
        no_roi = _track(video, max_frames, fps, pose=False, max_hands=2, track=False)
    finally:
        cv2.setNumThreads(threads)
    n = head["frames"]
    retarget, one_pass_s = _retarget(head["world"], head["found"], fps, reference)
    e2e_cpu_s = head["cpu_s"] + one_pass_s  # the solve runs on this thread: its wall time is its CPU time
    video_s = n / fps
    cv2.setNumThreads(1)
    try:
        episode = _episode(video, max_frames)
    finally:
        cv2.setNumThreads(threads)
    result: dict = {
        "bench": "video",
        "video": {"path": str(video), "width": width, "height": height, "fps": round(fps, 3), "frames": n,
                  "frames_in_file": total},
        "tracking_fps_per_core": head["summary"]["fps"],
        "tracking_fps_per_core_no_roi": no_roi["summary"]["fps"],
        "decode_fps": round(n / head["decode_s"], 1),
        "decode_fps_per_core": round(decoded / decode_cpu_s, 1) if decode_cpu_s > 0 else None,
        "tracking": {"max_hands_2": head["summary"], "max_hands_1": one["summary"], "no_roi": no_roi["summary"],
                     "threads": 1, "target_fps": 30},
        "retarget_frames_per_s": retarget["frames_per_s"],
        "retarget": retarget,
        "mediapipe_reference": (_mediapipe(video, n, head["world"], head["found"]) if reference
                                else {"name": "mediapipe", "skipped": "--no-reference"}),
        "video_hours_per_core_hour_no_writing": round(video_s / e2e_cpu_s, 3),
        "end_to_end_no_writing": {"video_s": round(video_s, 2), "cpu_s": round(e2e_cpu_s, 2),
                                  "wall_s": round(head["wall_s"] + one_pass_s, 2),
                                  "decode_s": round(head["decode_s"], 2), "track_s": round(head["track_s"], 2),
                                  "retarget_s": round(one_pass_s, 4)},
        "python": sys.version.split()[0],
    }
    batch = _batch(video, n, fps) if episode is not None else None
    if batch is not None:
        result["batch"] = batch
        result["video_hours_per_core_hour_1_worker"] = batch["workers_1"]["video_hours_per_core_hour"]
        result["video_hours_per_core_hour_2_workers"] = batch["workers_2"]["video_hours_per_core_hour"]
    if episode is None:
        result["video_hours_per_core_hour"] = result["video_hours_per_core_hour_no_writing"]
        result["note"] = ("end to end = decode + track + wrist pose + retarget in one process, writing excluded "
                          "(no retarget.video_episode.process_video here)")
    else:
        ep_video_s = episode["frames"] / episode["fps"]
        result["video_hours_per_core_hour"] = round(ep_video_s / episode["cpu_s"], 3)
        result["end_to_end"] = {"video_s": round(ep_video_s, 2), "cpu_s": round(episode["cpu_s"], 2),
                                "wall_s": round(episode["wall_s"], 2), "status": episode["status"]}
        result["note"] = ("end to end = retarget.video_episode.process_video (decode, track, bimanual retarget, "
                          "write the episode: log and re-encoded video) in one process, tracker on 1 thread; "
                          "cpu_s counts every thread (the encoder's too)")
    return result
