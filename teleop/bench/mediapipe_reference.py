"""MediaPipe's own hand tracker on every frame of a video -> a .npz: the reference our tracker
(drivers/camera_hands) is compared with (teleop/bench/hands_compare.py).

Runs INSIDE the separate venv ``make mediapipe-setup`` makes (mediapipe 0.10.21 needs numpy<2),
so it imports nothing of this project: only the stdlib, mediapipe, numpy and the cv2 mediapipe
brings::

    .venv-mediapipe/bin/python teleop/bench/mediapipe_reference.py VIDEO --out REF.npz

The .npz holds, for T frames and up to ``max_hands`` slots per frame (MediaPipe's order):

* ``found`` (T, H) bool, ``count`` (T,) hands found;
* ``world`` (T, H, 21, 3) float32 world landmarks [m] (hand-centred, camera axes), NaN where none;
* ``image`` (T, H, 21, 3) float32 image landmarks: x, y in pixels of the frame, z MediaPipe's
  relative depth (same scale as x, in pixels);
* ``label`` (T, H) str ("Left"/"Right"/""), ``score`` (T, H) float32: MediaPipe's handedness as it
  gives it. Its label assumes a mirrored (selfie) image: on an unmirrored camera or video the
  person's right hand is labelled "Left" (``person_side`` holds the person's side, unmirrored);
* ``person_side`` (T, H) str ("left"/"right"/""), ``t_s`` (T,) frame time [s], ``process_ms`` (T,);
* ``width``, ``height``, ``fps``, ``video``, ``mediapipe_version``, ``model_complexity``, ``mirror``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

_WHOLE = "a whole number"


def _count(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give {_WHOLE} in {low}..{high}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: give {_WHOLE} in {low}..{high}")
        return value

    return parse


def run(video: str, out: str, max_hands: int = 2, complexity: int = 1, max_frames: int = 0, mirror: bool = False,
        static: bool = False) -> dict:
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise SystemExit(f"mediapipe_reference: cannot open the video {video!r}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and fps > 0 else 30.0
    found, world, image, label, score, side, t_s, ms = [], [], [], [], [], [], [], []
    width = height = 0
    hands = mp.solutions.hands.Hands(static_image_mode=static, max_num_hands=max_hands,
                                     model_complexity=complexity, min_detection_confidence=0.5,
                                     min_tracking_confidence=0.5)
    with hands:
        while not max_frames or len(found) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            height, width = bgr.shape[:2]
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            rgb.flags.writeable = False
            t0 = time.perf_counter()
            res = hands.process(rgb)
            ms.append((time.perf_counter() - t0) * 1e3)
            t_s.append(len(t_s) / fps)
            f = np.zeros(max_hands, bool)
            w = np.full((max_hands, 21, 3), np.nan, np.float32)
            im = np.full((max_hands, 21, 3), np.nan, np.float32)
            lab, sd = [""] * max_hands, [""] * max_hands
            sc = np.full(max_hands, np.nan, np.float32)
            detected = zip(res.multi_hand_landmarks or [], res.multi_hand_world_landmarks or [],
                           res.multi_handedness or [], strict=False)
            for k, (img_lm, world_lm, handed) in enumerate(list(detected)[:max_hands]):
                f[k] = True
                w[k] = [(p.x, p.y, p.z) for p in world_lm.landmark]
                im[k] = [(p.x * width, p.y * height, p.z * width) for p in img_lm.landmark]
                cls = handed.classification[0]
                lab[k], sc[k] = cls.label, cls.score
                # MediaPipe's label is for a mirrored image: unmirrored, its "Left" is the person's right hand
                sd[k] = {"Left": "left", "Right": "right"}[cls.label] if mirror else \
                    {"Left": "right", "Right": "left"}[cls.label]
            found.append(f)
            world.append(w)
            image.append(im)
            label.append(lab)
            score.append(sc)
            side.append(sd)
    cap.release()
    if not found:
        raise SystemExit(f"mediapipe_reference: no frame could be read from {video!r}")
    found_a = np.array(found)
    arrays = {
        "found": found_a, "count": found_a.sum(axis=1).astype(np.int32), "world": np.array(world),
        "image": np.array(image), "label": np.array(label, dtype="U5"), "score": np.array(score),
        "person_side": np.array(side, dtype="U5"), "t_s": np.array(t_s), "process_ms": np.array(ms, np.float32),
        "width": np.int32(width), "height": np.int32(height), "fps": np.float64(fps), "video": np.str_(video),
        "mediapipe_version": np.str_(mp.__version__), "model_complexity": np.int32(complexity),
        "mirror": np.bool_(mirror),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    ms_a = np.array(ms[1:] or ms)  # the first frame includes MediaPipe's graph start
    return {
        "video": video, "out": out, "frames": len(found), "mediapipe": mp.__version__,
        "detection_rate": round(float(found_a.any(axis=1).mean()), 4),
        "frames_with_2_hands": int((found_a.sum(axis=1) >= 2).sum()),
        "sides": {s: int((np.array(side) == s).sum()) for s in ("left", "right")},
        "first_frame_ms": round(ms[0], 1), "ms_mean": round(float(ms_a.mean()), 2),
        "ms_p50": round(float(np.percentile(ms_a, 50)), 2), "ms_p95": round(float(np.percentile(ms_a, 95)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mediapipe_reference", description=__doc__.split("\n\n")[0])
    p.add_argument("video")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--max-hands", type=_count(1, 4), default=2)
    p.add_argument("--complexity", type=_count(0, 1), default=1, help="0 = lite models, 1 = full (default)")
    p.add_argument("--max-frames", type=_count(0, 10_000_000), default=0, help="0 = the whole video")
    p.add_argument("--mirror", action="store_true", help="the video is a mirror image (a selfie camera)")
    p.add_argument("--static", action="store_true", help="detect on every frame (no tracking between frames)")
    args = p.parse_args(argv)
    print(json.dumps(run(args.video, args.out, args.max_hands, args.complexity, args.max_frames, args.mirror,
                         args.static)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
