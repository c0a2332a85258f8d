"""The tracker's own process: frames -> hand tracking -> the hand contract, sent to the driver.

It runs off the session's thread and GIL. The newest frame wins (a camera keeps a one-frame
buffer; a real-time video skips frames the tracker had no time for). Messages to the driver
(a ``multiprocessing`` pipe):

* ``("ready", info)`` once the source and the models are open;
* ``("frame", index, capture_ns, hands)`` per tracked frame; ``hands``: per hand (side, presence,
  handedness, keypoints in the wrist frame (21, 3), wrist position (3,) or None, quaternion (4,)
  or None, per-keypoint confidence (21,)); a frame without hands has an empty list;
* ``("eof", frames)`` when a video ends (without ``loop``);
* ``("error", message)`` when the source or the models fail; then it exits.
"""

from __future__ import annotations

import traceback

__all__ = ["run"]


def run(config, conn, stop) -> None:
    """Entry point of the child process (``multiprocessing`` spawn)."""
    import numpy as np

    from drivers.camera_hands.pose import hand_in_camera, wrist_frame
    from drivers.camera_hands.tracker import HandTracker
    from teleop.errors import TeleopError
    from teleop.vision.intrinsics import Intrinsics
    from teleop.vision.sources import open_source

    source = None
    try:
        source = open_source(config)
        tracker = HandTracker(max_hands=config.max_hands, min_detection=config.min_detection,
                              min_presence=config.min_presence, threads=config.threads)
        fixed = Intrinsics.load(config.intrinsics) if config.intrinsics else None
        intr = None
        frames = 0
        conn.send(("ready", {"source": source.what, "fps": float(source.fps)}))
        while not stop.is_set():
            got = source.read()
            if got is None:
                conn.send(("eof", frames))
                return
            rgb, capture_ns = got
            if config.mirror:
                rgb = np.ascontiguousarray(rgb[:, ::-1])  # un-mirrored: the person's right hand is on the image's left
            h, w = rgb.shape[:2]
            if intr is None or (intr.width, intr.height) != (w, h):
                intr = fixed.for_size(w, h) if fixed else Intrinsics.pinhole(w, h, config.hfov_deg)
                k, dist = intr.matrix(), np.array(intr.dist)
            hands = []
            for hand in tracker.process(rgb, capture_ns / 1e9):
                solved = hand_in_camera(hand.world_m, hand.image_px, hand.side, k, dist)
                if solved is None:  # the keypoints still drive the fingers; the wrist pose is left out
                    kp = (hand.world_m - hand.world_m[0]) @ wrist_frame(hand.world_m, hand.side)
                    pos = quat = None
                else:
                    kp, pos, quat = solved
                hands.append((hand.side, float(hand.presence), float(hand.handedness), kp, pos, quat,
                              np.asarray(hand.confidence, dtype=np.float64)))
            frames += 1
            conn.send(("frame", frames - 1, capture_ns, hands))
    except TeleopError as exc:
        _send(conn, ("error", str(exc)))
    except Exception as exc:  # a bug or a library failure: said, with where
        _send(conn, ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
    finally:
        if source is not None:
            source.close()


def _send(conn, msg) -> None:
    try:
        conn.send(msg)
    except (BrokenPipeError, OSError):  # the driver is gone already
        pass
