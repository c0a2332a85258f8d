"""``teleop objects``: print the markers of an objects config, and track them live from a camera
or a video file (docs/objects.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from teleop.cli_types import finite_float, seconds

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("objects", help="marked objects: print their markers, track their poses from a camera",
                       description="Fiducial markers (AprilTag 36h11) on objects, as an objects config describes "
                       "them; the tracker turns camera frames into each object's pose in the robot's base frame. "
                       "docs/objects.md")
    osub = p.add_subparsers(dest="objects_command", metavar="OBJECTS_COMMAND", required=True)
    m = osub.add_parser("markers", help="write each marker as a PNG to print (with its size to print it at)")
    m.add_argument("objects", help="objects config TOML (e.g. robots/dexhumanoid/objects.toml)")
    m.add_argument("--out", required=True, help="folder for the PNG files")
    m.add_argument("--dpi", type=finite_float(72, 2400), default=600.0, help="printer resolution (default 600)")
    m.set_defaults(func=cmd_markers)

    t = osub.add_parser("track", help="track the objects in a camera or video and print their poses",
                        description="Prints one line per second (or a JSON object per frame with --json): each "
                        "object's position in the base frame [m] and whether it was measured in this frame.")
    t.add_argument("objects", help="objects config TOML")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="a video file, played in real time")
    src.add_argument("--device", help="a UVC camera: /dev/videoN or N")
    src.add_argument("--camera-name", help="a UVC camera by (part of) its name")
    src.add_argument("--bus", metavar="ENDPOINT", help="a camera_frame endpoint, e.g. tcp://127.0.0.1:7612")
    t.add_argument("--camera", help="the camera's name on the bus (default: the config's camera)")
    t.add_argument("--intrinsics", help="camera intrinsics TOML (default: the config's)")
    t.add_argument("--camera-pose", help="the camera's pose in the base frame, TOML (default: the config's)")
    t.add_argument("--seconds", type=seconds, help="stop after this long")
    t.add_argument("--json", action="store_true", help="one JSON object per tracked frame")
    t.set_defaults(func=cmd_track)


def cmd_markers(args: argparse.Namespace) -> int:
    import cv2

    from robots.objects.config import load_objects
    from robots.objects.sim_markers import MARGIN_CELLS, marker_image

    config = load_objects(args.objects)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cells = int(config.cv2_dictionary().markerSize) + 2
    for obj in config.objects:
        for mk in obj.markers:
            side_mm = mk.size_m * 1e3 * (cells + 2 * MARGIN_CELLS) / cells
            px = max(cells + 2, round(side_mm / 25.4 * args.dpi / (cells + 2 * MARGIN_CELLS)))
            img = marker_image(config, mk.id, px)
            path = out / f"{obj.name}_id{mk.id}_{side_mm:.1f}mm.png"
            cv2.imwrite(str(path), img)
            print(f"{path}: print it {side_mm:.1f} mm wide (the black square {mk.size_m * 1e3:.1f} mm)")
    return 0


def _line(name: str, status: int, pose: np.ndarray) -> str:
    from robots.objects.tracker import STATUS_NAMES, UNSEEN

    where = f" ({pose[0]:+.3f}, {pose[1]:+.3f}, {pose[2]:+.3f}) m" if status != UNSEEN else ""
    return f"{name}: {STATUS_NAMES[status]}{where}"


def cmd_track(args: argparse.Namespace) -> int:
    from robots.objects.config import load_objects
    from robots.objects.feed import FrameInput, ObjectPoseFeed, load_camera
    from robots.objects.tracker import STATUS_NAMES

    config = load_objects(args.objects)
    intrinsics, T = load_camera(config, args.intrinsics, args.camera_pose)
    src = FrameInput(video=args.video, device=args.device, name=args.camera_name or "", bus=args.bus,
                     camera=args.camera or config.camera)
    feed = ObjectPoseFeed(config, src, intrinsics, T)
    b = len(config.objects)
    pose, pose_ns, status = np.zeros((b, 7)), np.zeros(b, np.int64), np.zeros(b, np.uint8)
    feed.start()
    t0, last_frame, last_print = time.monotonic(), 0, 0.0
    try:
        while not feed.ended and (args.seconds is None or time.monotonic() - t0 < args.seconds):
            time.sleep(0.005)
            if feed.frames == last_frame:
                continue
            last_frame = feed.frames
            feed.fill(pose, pose_ns, status)
            if args.json:
                print(json.dumps({"frame": feed.frames, "objects": {
                    n: {"pos": [round(float(v), 5) for v in pose[i, :3]],
                        "quat": [round(float(v), 5) for v in pose[i, 3:]], "status": STATUS_NAMES[status[i]]}
                    for i, n in enumerate(config.names)}}), flush=True)
            elif time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                print("  ".join(_line(n, status[i], pose[i]) for i, n in enumerate(config.names)), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        feed.stop()
    counts = feed.tracker.counters.as_dict()
    print(f"teleop: objects: {feed.frames} frames, " + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
          + (f"; {feed.error}" if feed.error else ""), file=sys.stderr)
    return 0
