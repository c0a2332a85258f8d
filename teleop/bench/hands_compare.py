"""Our hand tracker against MediaPipe's: the mean 3D keypoint difference in the wrist frame.

The reference is the .npz ``teleop/bench/mediapipe_reference.py`` writes (run in the separate
``.venv-mediapipe``, made by ``make mediapipe-setup``; ``run_reference`` starts it). Both sides
give MediaPipe world landmarks (metres, hand-centred, camera axes); each frame's 21 keypoints are
translated so the wrist is the origin, then compared keypoint by keypoint (Euclidean distance),
over the frames where both found the hand.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from teleop.errors import ConfigError, TeleopError

__all__ = ["compare", "run_reference", "REFERENCE_SCRIPT", "REFERENCE_PYTHON"]

REFERENCE_SCRIPT = Path(__file__).with_name("mediapipe_reference.py")
REFERENCE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-mediapipe" / "bin" / "python"


def run_reference(video: str | Path, out: str | Path, python: str | Path = REFERENCE_PYTHON,
                  extra: tuple[str, ...] = (), timeout_s: float = 3600.0) -> dict:
    """Run MediaPipe on ``video`` in its own venv -> ``out`` (.npz); returns the script's summary."""
    if not Path(python).exists():
        raise TeleopError(f"{python}: no MediaPipe venv: run `make mediapipe-setup`")
    res = subprocess.run([str(python), str(REFERENCE_SCRIPT), str(video), "--out", str(out), *extra],
                         capture_output=True, text=True, timeout=timeout_s)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise TeleopError(f"the MediaPipe reference failed on {video} (exit {res.returncode}): {last}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _reference(ref: str | Path | Mapping) -> tuple[np.ndarray, np.ndarray]:
    """(world (T, H, 21, 3), found (T, H)) from the .npz or a mapping of its arrays; a single hand
    per frame ((T, 21, 3) and (T,)) is taken as H = 1."""
    if isinstance(ref, (str, Path)):
        with np.load(ref) as data:
            world, found = np.asarray(data["world"], float), np.asarray(data["found"], bool)
    else:
        world, found = np.asarray(ref["world"], float), np.asarray(ref["found"], bool)
    if world.ndim == 3:
        world, found = world[:, None], found[:, None]
    if world.ndim != 4 or world.shape[2:] != (21, 3) or found.shape != world.shape[:2]:
        raise ConfigError(f"reference: world {world.shape} / found {found.shape}; expected (T, H, 21, 3) / (T, H)")
    return world, found & np.isfinite(world).all(axis=(2, 3))


def compare(ours_world: np.ndarray, ref_npz: str | Path | Mapping, ours_found: np.ndarray | None = None) -> dict:
    """Mean keypoint distance [mm] between ``ours_world`` (T, 21, 3) [m] (NaN rows, or
    ``ours_found`` False, where we found no hand) and the reference, frame by frame, in the wrist
    frame. Where the reference has several hands in a frame the one nearest ours is taken (MediaPipe
    sometimes reports one hand twice). Frames found by one side only count in the detection rates."""
    ours = np.asarray(ours_world, float)
    if ours.ndim != 3 or ours.shape[1:] != (21, 3):
        raise ConfigError(f"ours_world has shape {ours.shape}; expected (T, 21, 3)")
    ref, ref_found = _reference(ref_npz)
    if len(ref) != len(ours):
        raise ConfigError(f"ours has {len(ours)} frames, the reference {len(ref)}: they must be the same video's")
    found = np.isfinite(ours).all(axis=(1, 2))
    if ours_found is not None:
        found &= np.asarray(ours_found, bool).reshape(len(ours))
    ours_w = ours - ours[:, :1]
    ref_w = ref - ref[:, :, :1]
    dist = np.linalg.norm(ours_w[:, None] - ref_w, axis=-1)  # (T, H, 21)
    frame_mean = np.where(ref_found, dist.mean(axis=-1), np.inf)  # NaN-free: a missing hand is never nearest
    best = np.argmin(frame_mean, axis=1)
    both = found & ref_found.any(axis=1)
    per_kp = dist[np.arange(len(ours)), best][both] * 1e3  # (N, 21) mm
    frames = per_kp.mean(axis=1) if len(per_kp) else np.zeros(0)
    out = {
        "frames": len(ours), "found_ours": int(found.sum()), "found_ref": int(ref_found.any(axis=1).sum()),
        "found_both": int(both.sum()),
        "detection_rate_ours": round(float(found.mean()), 4) if len(ours) else 0.0,
        "detection_rate_ref": round(float(ref_found.any(axis=1).mean()), 4) if len(ours) else 0.0,
        "mean_mm": None, "median_frame_mm": None, "p95_frame_mm": None, "max_frame_mm": None, "per_keypoint_mm": None,
    }
    if len(per_kp):
        out.update(mean_mm=round(float(per_kp.mean()), 2), median_frame_mm=round(float(np.median(frames)), 2),
                   p95_frame_mm=round(float(np.percentile(frames, 95)), 2), max_frame_mm=round(float(frames.max()), 2),
                   per_keypoint_mm=[round(float(v), 2) for v in per_kp.mean(axis=0)])
    return out
