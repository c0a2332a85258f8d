"""``teleop view``: a running session (live) or a recorded episode, in rerun (registered into
``teleop.cli``; ``teleop run --rerun`` starts the live one as its child, ``child.py``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from teleop.bus.endpoints import DEFAULT_PORT_BASE, session_endpoints
from teleop.cli_types import port_base, seconds
from teleop.errors import TeleopError
from teleop.view.sink import ViewTarget, open_sink, parse_target, require_rerun

__all__ = ["add_parsers", "cmd_view"]

logger = logging.getLogger(__name__)

_NICE = 10


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "view", help="see a running session or a recorded episode in rerun (3D robot, cameras, joints, forces)",
        description="teleop view (--spawn | --web | --save OUT.rrd) [EPISODE]: without EPISODE, attaches to the "
        "session on --port-base (its tap) and draws it live until Ctrl-C; with EPISODE (an episode folder), draws "
        "the recording. `teleop run SESSION --rerun spawn|web|OUT.rrd` does the live one alongside the session. "
        "docs/viewing.md says what each panel shows.")
    p.add_argument("episode", nargs="?", help="a recorded episode folder (default: the running session, live)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--spawn", action="store_true", help="open a native rerun viewer window (needs a display)")
    out.add_argument("--web", action="store_true", help="serve rerun's web viewer on 127.0.0.1 and print its URL")
    out.add_argument("--save", metavar="OUT.rrd", type=parse_target, help="write a rerun recording file")
    p.add_argument("--port-base", type=port_base(5), default=DEFAULT_PORT_BASE,
                   help="live: the session's port base (its tap is port base + 4; default %(default)s)")
    p.add_argument("--tap", help="live: the session tap endpoint (default: port base + 4)")
    p.add_argument("--robot", help="the robot description TOML, for the 3D robot (default: the bundled robot of "
                   "that name)")
    p.add_argument("--robot-host", help="live: the robot server's host, when its spec reports 0.0.0.0 endpoints")
    p.add_argument("--state", help="live: robot state endpoint (default: the one the robot reports)")
    p.add_argument("--camera", help="live: robot camera endpoint (default: the one the robot reports); 'none' "
                   "for no cameras")
    p.add_argument("--keys", help="CURVE keys folder, when the session uses them (docs/security.md)")
    p.add_argument("--seconds", type=seconds, help="live: stop after this long; web: serve this long")
    p.add_argument("--ready-file", help=argparse.SUPPRESS)  # teleop run: where the child says it is ready
    p.set_defaults(func=cmd_view)


def _target(args: argparse.Namespace) -> ViewTarget:
    if args.save is not None:
        if args.save.kind != "save":
            raise TeleopError(f"--save {args.save}: give a file name ending in .rrd")
        return args.save
    return ViewTarget("spawn" if args.spawn else "web")


def cmd_view(args: argparse.Namespace) -> int:
    require_rerun()
    import rerun as rr

    from teleop.view.rerun_log import ViewLogger

    target = _target(args)
    # below the session, the robot server and the recorder for the CPU, whoever started us: a view
    # that falls behind draws less often, a control loop that falls behind is a fault
    os.nice(_NICE)
    ready = Path(args.ready_file) if args.ready_file else None
    description = Path(args.robot).expanduser() if args.robot else None
    if description is not None and not description.is_file():
        raise TeleopError(f"--robot {description}: no such file; give a robot description TOML")
    rec = rr.RecordingStream("teleop", recording_id=uuid.uuid4())
    # the viewer's or web server's own output
    log_path = Path(args.ready_file + ".rerun.log") if ready else Path(tempfile.gettempdir()) / "teleop-view-rerun.log"
    try:
        sink = open_sink(target, rec, log_path, live=not args.episode)
    except TeleopError as exc:
        if ready is not None:
            _write(ready, {"error": str(exc)})
        raise
    try:
        view = ViewLogger(rec, description=description)
        if args.episode:
            return _episode(args, view, sink)
        return _live(args, view, sink, ready)
    finally:
        sink.close()


def _episode(args: argparse.Namespace, view: Any, sink: Any) -> int:
    from teleop.view.episode import log_episode

    stats = log_episode(args.episode, view)
    _say(f"episode {stats['episode']}: {stats['messages']} messages, logged {sum(stats['logged'].values())} "
         f"samples (thinned {sum(stats['thinned'].values())}) to {sink.url}")
    for note in stats["notes"]:
        _say(f"note: {note}")
    if sink.target.kind == "web":
        _say(f"open {sink.url} in a browser; Ctrl-C stops serving")
        stop = _stop_on_signals()
        end = None if args.seconds is None else time.monotonic() + args.seconds
        while not stop and (end is None or time.monotonic() < end):
            time.sleep(0.2)
    return 0


def _live(args: argparse.Namespace, view: Any, sink: Any, ready: Path | None) -> int:
    from teleop.bus.security import CurveKeys
    from teleop.lifeline import follow_parent
    from teleop.view.live import LiveView

    tap = args.tap or session_endpoints(port_base=args.port_base)[0]
    keys = CurveKeys.load(args.keys) if args.keys else None
    live = LiveView(tap, view, keys=keys, robot_host=args.robot_host, state=args.state, camera=args.camera)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: live.stop())
    follow_parent(live.stop)  # started by `teleop run`: stop (and flush) when it dies
    if ready is not None:
        _write(ready, {"url": sink.url, "target": str(sink.target)})
    else:
        _say(f"attached to {tap}: view in {sink.url}; Ctrl-C stops")
    wall, cpu = time.monotonic(), time.process_time()
    stats = live.run(seconds=args.seconds)
    wall = time.monotonic() - wall
    stats["cpu_percent"] = round(100 * (time.process_time() - cpu) / max(wall, 1e-3), 1)  # of one core, all threads
    if ready is not None:
        _write(ready, {"url": sink.url, "target": str(sink.target), "stats": stats})
    else:
        _say(f"stopped: logged {sum(stats['logged'].values())} samples, thinned {sum(stats['thinned'].values())}, "
             f"skipped {sum(stats['skipped'].values())} (never taken), {stats['late_cycles']} late cycles, "
             f"{stats['cpu_percent']}% of a core")
    return 0


def _stop_on_signals() -> list[int]:
    stop: list[int] = []
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda signum, _frame: stop.append(signum))
    return stop


def _write(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, default=str))
    tmp.replace(path)  # the parent never reads half a file


def _say(text: str) -> None:
    print(f"teleop view: {text}", file=sys.stderr, flush=True)
