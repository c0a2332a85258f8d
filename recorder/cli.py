"""CLI of the recorder: ``teleop record``, ``teleop episodes ...``, ``teleop replay``, ``teleop export``
(registered into ``teleop.cli``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from teleop.bus.endpoints import DEFAULT_PORT_BASE, RobotEndpoints, session_endpoints
from teleop.cli_types import export_fps, finite_float, int_in, port_base, seconds
from teleop.errors import TeleopError

__all__ = ["add_parsers"]

_CONTROL_OPS = ("start", "stop", "discard", "success", "failure", "task", "note", "status")
_OFFLINE = {"success": "label DATASET:INDEX --success", "failure": "label DATASET:INDEX --failure",
            "task": "label DATASET:INDEX --task TEXT", "note": "label DATASET:INDEX --note TEXT",
            "discard": "discard DATASET:INDEX"}


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "record", help="record episodes from a running session (its own process; `teleop run` starts it "
        "when [recorder] enabled = true)",
        description="teleop record --dataset DIR: subscribes to the session tap, the robot state and cameras "
        "without loss and writes one folder per episode (docs/data-format.md). Episodes start/stop from "
        "`teleop episodes start|stop|...`, from the session's keys/pedal/buttons, or with --start.")
    p.add_argument("--dataset", required=True, help="dataset folder (created if missing)")
    p.add_argument("--port-base", type=port_base(5), default=DEFAULT_PORT_BASE, help="the session's port base")
    p.add_argument("--tap", help="session tap endpoint (default: port base + 4)")
    p.add_argument("--control", help="our episode-control endpoint (default: port base + 5)")
    p.add_argument("--state", help="robot state endpoint (default: port base)")
    p.add_argument("--camera", help="robot camera endpoint (default: port base + 2); 'none' to skip video")
    p.add_argument("--task", default="", help="task label of new episodes")
    p.add_argument("--operator", default="", help="operator name (the session's, when it says)")
    p.add_argument("--start", action="store_true", help="start an episode as soon as the session is heard")
    p.add_argument("--codec", default="h264", choices=("h264", "av1"))
    p.add_argument("--crf", type=int_in(0, 63), default=23)
    p.add_argument("--preset", default="ultrafast", help="x264 preset (ultrafast..veryslow); ultrafast keeps two 640x480 30 fps cameras well under a core (the export re-encodes anyway)")
    p.add_argument("--seconds", type=seconds, help="stop after this long")
    p.add_argument("--keys", help="CURVE keys folder (`teleop keys generate`): authenticate and encrypt every "
                   "socket, also on loopback (docs/security.md)")
    p.add_argument("--max-episode-gb", type=finite_float(0.001, 10_000, unit="GB"), default=20.0,
                   help="close an episode when its log and videos reach this size (default %(default)s)")
    p.add_argument("--max-queue-mb", type=finite_float(16, 65_536, unit="MB"), default=512.0,
                   help="messages received but not yet written, at most; beyond, they are dropped and counted in "
                   "the episode (default %(default)s)")
    p.set_defaults(func=cmd_record)

    _add_replay(sub)

    p = sub.add_parser("episodes", help="list, verify, inspect and control episodes")
    esub = p.add_subparsers(dest="episodes_command", metavar="EPISODES_COMMAND", required=True)
    e = esub.add_parser("list", help="the episodes of a dataset folder",
                        description="teleop episodes list DATASET: one line per episode (status, outcome, seconds, "
                        "task, operator, videos, notes, errors, and what degraded the recording). Episodes marked "
                        "with `teleop episodes discard` are left out unless --include-discarded. Exit status 2 when "
                        "DATASET is not a folder.")
    e.add_argument("dataset")
    e.add_argument("--include-discarded", action="store_true", help="list discarded episodes too")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_episodes_list)
    e = esub.add_parser("label", help="label a finished episode offline: outcome, task, note",
                        description="teleop episodes label EPISODE [--success|--failure|--unknown] [--task TEXT] "
                        "[--note TEXT]: EPISODE is a folder or DATASET:INDEX. Changes meta.json atomically (the "
                        "values replaced are kept in its \"curation\" list); no recorder needed. For the episode "
                        "being recorded use the live controls (`teleop episodes success`, ...).")
    e.add_argument("episode")
    outcome = e.add_mutually_exclusive_group()
    for flag in ("success", "failure", "unknown"):
        outcome.add_argument(f"--{flag}", dest="outcome", action="store_const", const=flag,
                             help=f"outcome = {flag}")
    e.add_argument("--task", help="task label")
    e.add_argument("--note", help="a note (appended with a time stamp)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_episodes_label)
    e = esub.add_parser("restore", help="take back `teleop episodes discard EPISODE`",
                        description="teleop episodes restore EPISODE: removes the discard mark; the episode is "
                        "listed, exported and trained on again.")
    e.add_argument("episode")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_episodes_restore)
    e = esub.add_parser("verify", help="check every log: report damage, cut a torn tail (after a crash, bytes kept) "
                        "and recover the episode",
                        description="teleop episodes verify DATASET|EPISODE: walks each episode log record by "
                        "record (length + CRC), past any damaged region to the next valid record. Damage inside "
                        "a log is reported (bytes, records and messages lost per stream, when) and marked in "
                        "meta.json, never cut: readers skip it. A torn tail (a crash mid-write) is cut off after "
                        "its bytes are saved to log.tlog.torn-N; an episode left 'recording' by a dead recorder is "
                        "marked 'recovered'. Exit status: 0 every log intact, 1 damage or a torn tail found (also "
                        "when it was cut: data was lost), 2 not a dataset or episode.")
    e.add_argument("path", help="a dataset folder or one episode folder")
    e.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_episodes_verify)
    e = esub.add_parser("inspect", help="per-stream rate, gaps, drops and alignment of one episode",
                        description="teleop episodes inspect EPISODE [--plot FILE.png]: EPISODE is a folder or "
                        "DATASET:INDEX.")
    e.add_argument("episode")
    e.add_argument("--plot", metavar="FILE.png", help="write a PNG of the episode on one time axis: who drove, the "
                   "arms' joints (measured and commanded), how closed each hand is, each object's height, every "
                   "stream with its stalls and gaps")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_episodes_inspect)
    for op in _CONTROL_OPS:
        if op == "discard":
            e = esub.add_parser(op, help="mark a finished EPISODE discarded (kept on disk, restorable); without "
                                "EPISODE: stop and discard the episode being recorded",
                                description="teleop episodes discard EPISODE: marks the finished episode discarded "
                                "in its meta.json; nothing is moved or deleted, listing, export and training leave "
                                "it out unless asked, `teleop episodes restore EPISODE` takes it back. teleop "
                                "episodes discard (no EPISODE): the live control, sent to the running recorder: "
                                "stop the open episode and delete it.")
            e.add_argument("episode", nargs="?", help="episode folder or DATASET:INDEX (offline)")
            e.add_argument("--reason", default="", help="why (kept in meta.json)")
            e.add_argument("--json", action="store_true")
        else:
            e = esub.add_parser(op, help=f"episode control: {op} (sent to the running recorder)")
        if op in ("task", "note"):
            e.add_argument("text")
        if op == "start":
            e.add_argument("--task", help="task label of the new episode")
        e.add_argument("--port-base", type=port_base(5), default=DEFAULT_PORT_BASE)
        e.add_argument("--control", help="the recorder's control endpoint (default: port base + 5)")
        e.add_argument("--keys", help="CURVE keys folder, when the recorder runs with --keys")
        e.add_argument("--timeout", type=finite_float(0, 600, low_open=True, unit="s"), default=3.0,
                       help="seconds to wait for the recorder's answer (default %(default)s)")
        e.set_defaults(func=cmd_episodes_control, op=op)

    p = sub.add_parser(
        "export", help="export episodes to a LeRobot v3.0 dataset or a robomimic-style HDF5 file",
        description="teleop export DATASET --format lerobot|hdf5 --out OUT: resamples every complete or recovered "
        "episode to --fps by zero-order hold (timestamp = frame_index / fps; real capture times in "
        "complementary_info.t_capture) and writes the format (docs/data-format.md). Progress goes to stderr, a JSON "
        "summary line to stdout.")
    p.add_argument("dataset", help="dataset folder (episode_NNNNNN subfolders)")
    p.add_argument("--format", required=True, choices=("lerobot", "hdf5"), help="output format")
    p.add_argument("--out", required=True, help="output folder (lerobot) or .hdf5 file (hdf5)")
    p.add_argument("--fps", type=export_fps, default=30, help="frames per second, a whole number (default %(default)s)")
    p.add_argument("--codec", default="h264", choices=("h264", "av1"), help="video codec of the LeRobot mp4s "
                   "(default %(default)s)")
    p.add_argument("--episodes", metavar="SELECTION", help="only these episode numbers: indices and ranges, "
                   "comma-separated; A:B is A..B-1 (as a Python slice), A: to the last, e.g. 0:10,15")
    p.add_argument("--only-success", action="store_true", help="export only episodes marked success")
    p.add_argument("--include-discarded", action="store_true", help="export episodes marked discarded too")
    p.add_argument("--skip-damaged", action="store_true", help="leave out episodes whose log is damaged (by default "
                   "they are exported from every intact record, with a warning)")
    p.add_argument("--skip-degraded", action="store_true", help="leave out episodes whose recording is degraded "
                   "(the loop missed its rate, the tap went silent, messages or frames were lost, the recorder or "
                   "the session died); by default they are exported with a warning")
    p.add_argument("--append", action="store_true", help="add the selected episodes that --out does not hold yet "
                   "to the existing export (same features and fps, else refused)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true", help="no progress lines; the stdout summary lists every episode")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "lerobot-check", help="load our LeRobot export with the LeRobot installed here, every frame "
        "(make lerobot-check)",
        description="teleop lerobot-check: records the demo, exports it to LeRobot v3 and reads every frame back with "
        "LeRobotDataset (pyav backend, offline), comparing indices, timestamps, vectors and camera frames with the "
        "exported files; fails on any difference or on a warning LeRobot logs about the dataset. Needs LeRobot "
        "installed beside the runtime (the lerobot extra, Python 3.12+). Prints a JSON summary.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", help="export and check this recorded dataset instead of recording the demo")
    g.add_argument("--export", help="check this LeRobot export as it is (nothing recorded or exported)")
    p.add_argument("--out", help="keep the recorded episode and the export in this folder (default: a temporary one)")
    p.add_argument("--codec", default="h264", choices=("h264", "av1"), help="video codec of the export")
    p.set_defaults(func=cmd_lerobot_check)


def _add_replay(sub: Any) -> None:
    p = sub.add_parser(
        "replay", help="publish an episode back on the bus; optionally drive a robot with its commands",
        description="teleop replay EPISODE [--speed X] [--sim]: re-sends every logged message on the session tap "
        "endpoint (as if the session were live: a recorder or a policy under evaluation can listen) and, with "
        "--sim or --robot-rpc, drives the robot with the logged commands after a bounded ramp to the first one.")
    p.add_argument("episode", help="episode folder or DATASET:INDEX")
    p.add_argument("--speed", type=finite_float(0, 100, low_open=True), default=1.0,
                   help="time scale (2 = twice as fast)")
    p.add_argument("--port-base", type=port_base(5), default=DEFAULT_PORT_BASE)
    p.add_argument("--sim", action="store_true", help="start the bundled sim robot server for the replay")
    p.add_argument("--sim-arg", action="append", default=[], help="extra `teleop sim` argument (repeatable)")
    p.add_argument("--robot-rpc", help="drive a running robot server (its rpc endpoint)")
    p.add_argument("--no-publish", action="store_true", help="do not re-publish the messages")
    p.add_argument("--policy", metavar="ENDPOINT", help="offline evaluation instead: send the episode's states to "
                   "the policy server at ENDPOINT (`teleop policy serve`) and compare its actions with the executed "
                   "commands")
    p.add_argument("--policy-hz", type=finite_float(0, 1000, low_open=True, unit="Hz"), default=10.0,
                   help="with --policy: observations per second of episode")
    p.add_argument("--seconds", type=seconds, help="stop after this long")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    import tempfile
    from contextlib import ExitStack

    from recorder.replay import replay_episode

    if args.policy:
        from recorder.replay import evaluate_policy

        out = evaluate_policy(args.episode, args.policy, rate_hz=args.policy_hz)
        print(json.dumps(out, indent=None if args.json else 1))
        return 0
    tap, _ = session_endpoints(port_base=args.port_base)
    robot = RobotEndpoints.on(port_base=args.port_base)
    with ExitStack() as stack:
        rpc = args.robot_rpc
        if args.sim:
            from robots.mujoco_sim.process import connect_when_ready, start_sim_process, stop_process

            log = Path(tempfile.gettempdir()) / f"teleop-replay-sim-{os.getpid()}.log"
            proc = start_sim_process(args.port_base, log, ["--cameras", "none", *args.sim_arg])
            stack.callback(stop_process, proc)
            connect_when_ready(robot.rpc, proc, log).disconnect()
            rpc = robot.rpc
        res = replay_episode(args.episode, speed=args.speed, publish=None if args.no_publish else tap,
                             robot_rpc=rpc, seconds=args.seconds)
    out = res.as_dict()
    if args.json:
        print(json.dumps(out))
    else:
        print(f"replayed {out['episode']}: {out['seconds']} s, {out['published']} messages, {out['commands']} "
              f"commands (ramp {out['ramp_s']} s), late p99 {out['late_ms_p99']} ms, tracking rms "
              f"{out['tracking_rms_rad']} rad")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from recorder.recorder import RecorderConfig, run_recorder
    from teleop.bus.security import CurveKeys

    tap, control = session_endpoints(port_base=args.port_base)
    robot = RobotEndpoints.on(port_base=args.port_base)
    camera = None if args.camera == "none" else (args.camera or robot.camera)
    cfg = RecorderConfig(
        dataset=Path(args.dataset), tap=args.tap or tap, control=args.control or control,
        state=args.state or robot.state, camera=camera, task=args.task, operator=args.operator,
        auto_start=args.start, codec=args.codec, crf=args.crf, preset=args.preset,
        max_episode_mb=args.max_episode_gb * 1000.0, max_queue_mb=args.max_queue_mb,
        keys=CurveKeys.load(args.keys) if args.keys else None,
    )
    try:  # recording is queued and bounded, control is not: on a busy machine the sim and the loop go first
        os.nice(5)
    except OSError:
        pass
    rec = run_recorder(cfg, args.seconds)
    for err in rec.errors:
        print(f"teleop record: {err}", file=sys.stderr)
    print(json.dumps({"dataset": str(rec.dataset), "episodes": rec.episodes_done, "received": rec.received,
                      "errors": rec.errors}))
    return 1 if rec.errors else 0


def cmd_episodes_list(args: argparse.Namespace) -> int:
    from recorder.episode import LOG_NAME, META_NAME, EpisodeError, list_episodes

    dataset = Path(args.dataset)
    if not dataset.is_dir():
        raise EpisodeError(f"{dataset}: no such dataset folder" + ("" if not dataset.exists() else " (it is a file)")
                           + "; give the folder `teleop record --dataset` (or [recorder] dataset) wrote")
    if (dataset / META_NAME).is_file() or (dataset / LOG_NAME).is_file():
        raise EpisodeError(f"{dataset} is one episode, not a dataset folder: `teleop episodes list {dataset.parent}`, "
                           f"or `teleop episodes inspect {dataset}`")
    every = list_episodes(dataset)
    eps = every if args.include_discarded else [e for e in every if not e.discarded]
    hidden = len(every) - len(eps)
    if args.json:
        print(json.dumps([e.as_dict() | {"state": e.state} for e in eps], indent=1))
        return 0
    if not eps:
        more = f" ({hidden} discarded: --include-discarded lists them)" if hidden else ""
        print(f"no episodes in {dataset}{more}")
        return 0
    width = max(10, *(len(_status(e)) for e in eps))
    print(f"{'#':>5}  {'status':{width}} {'outcome':8} {'seconds':>8}  {'task':24} operator / videos / notes / errors"
          " / latency p99 ms")
    for e in eps:
        vids = ",".join(f"{k}:{v}" for k, v in e.frames.items()) or "-"
        lag = "-" if e.latency_p99_ms is None else f"{e.latency_p99_ms:.1f}"  # the worst second's total
        print(f"{e.index:5d}  {_status(e):{width}} {e.outcome:8} {e.duration_s:8.1f}  {e.task[:24]:24} "
              f"{e.operator or '-'} / {vids} / {e.notes} / {e.errors} / {lag}")
        for why in e.degraded:
            print(f"{'':7}degraded: {why}")
    if hidden:
        print(f"({hidden} discarded episode{'' if hidden == 1 else 's'} not shown: --include-discarded lists them, "
              "`teleop episodes restore DATASET:INDEX` takes one back)")
    return 0


def _status(e: Any) -> str:
    """What `teleop episodes list` shows as the status: interrupted, DAMAGED (meta.json "damage",
    `teleop episodes verify`), discarded."""
    return e.state + (" DAMAGED" if e.damaged else "") + (" discarded" if e.discarded else "")


def cmd_episodes_label(args: argparse.Namespace) -> int:
    from recorder.episode import label_episode

    out = label_episode(args.episode, outcome=args.outcome, task=args.task, note=args.note)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['path']}: outcome {out['outcome']}, task {out['task']!r}, {out['notes']} notes")
    return 0


def cmd_episodes_restore(args: argparse.Namespace) -> int:
    from recorder.episode import restore_episode

    out = restore_episode(args.episode)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['path']}: " + ("restored" if out["changed"] else "was not discarded; nothing changed"))
    return 0


def _discard_offline(args: argparse.Namespace) -> int:
    from recorder.episode import discard_episode

    out = discard_episode(args.episode, reason=args.reason)
    if args.json:
        print(json.dumps(out))
    elif out["changed"]:
        print(f"{out['path']}: discarded (kept on disk; `teleop episodes restore {args.episode}` takes it back)")
    else:
        print(f"{out['path']}: already discarded; nothing changed")
    return 0


def _verify_targets(spec: str) -> tuple[list[Path], Path]:
    """The episode folders ``teleop episodes verify`` checks, and their dataset folder."""
    from recorder.episode import LOG_NAME, META_NAME, EpisodeError, list_episodes, resolve_episode

    path = Path(spec)
    if not path.exists():
        if ":" in spec:  # DATASET:INDEX
            path = resolve_episode(spec)
        else:
            raise EpisodeError(f"{path}: no such dataset or episode folder")
    if (path / LOG_NAME).is_file() or (path / META_NAME).is_file():
        return [path], path.parent
    if not path.is_dir():
        raise EpisodeError(f"{path} is not a dataset folder or an episode folder (give the folder `teleop record "
                           "--dataset` wrote, or one of its episode_NNNNNN folders)")
    eps = list_episodes(path)
    if not eps:
        raise EpisodeError(f"{path}: no episode folders (episode_NNNNNN/) in it, and no meta.json or {LOG_NAME}: "
                           "not a dataset or an episode")
    return [Path(e.path) for e in eps], path


def cmd_episodes_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every log is intact; 1 when damage, a torn tail or an unreadable episode was
    found (with or without --dry-run: data was lost); 2 (TeleopError) for a path that is not a
    dataset or an episode."""
    from recorder.episode import META_NAME, EpisodeError, read_meta, recorder_alive, verify_episode, write_index
    from recorder.log import LogError

    folders, dataset = _verify_targets(args.path)
    out, bad = [], 0
    for folder in folders:
        row: dict[str, Any] = {"episode": str(folder)}
        try:
            meta = read_meta(folder) if (folder / META_NAME).is_file() else {}
            row["status"] = meta.get("status", "?")
            if meta.get("status") == "recording" and recorder_alive(meta):
                row["skipped"] = f"being recorded right now (recorder pid {meta.get('recorder_pid')} alive)"
                out.append(row)
                continue
            row = verify_episode(folder, dry_run=args.dry_run)
        except (EpisodeError, LogError, OSError) as exc:
            row["error"] = str(exc)
        if row.get("error") or not row.get("intact", False):
            bad += 1
        out.append(row)
    if not args.dry_run and dataset.is_dir() and any(not r.get("skipped") for r in out):
        write_index(dataset)
    if args.json:
        print(json.dumps(out, indent=1))
        return 1 if bad else 0
    for r in out:
        if "skipped" in r:
            print(f"{r['episode']}: skipped, {r['skipped']}")
            continue
        if "error" in r:
            print(f"{r['episode']}: ERROR {r['error']}")
            continue
        if r["intact"]:
            print(f"{r['episode']}: {r['records']} records, intact, status {r['status']}")
            continue
        what = []
        if r["damaged"]:
            lost = "records lost unknown" if r["records_lost"] is None else \
                f"{r['records_lost']} record{'' if r['records_lost'] == 1 else 's'} lost"
            n, m = len(r["damage"]), r["messages_lost"]
            what.append(f"DAMAGED ({n} region{'' if n == 1 else 's'}, {r['damaged_bytes']} bytes, {lost}, "
                        f"{m} message{'' if m == 1 else 's'} missing by sequence number)")
        if r["torn_bytes"] or r["torn_reason"]:
            what.append(f"torn tail of {r['torn_bytes']} bytes")
        done = ("; --dry-run: nothing changed" if args.dry_run
                else "; marked in meta.json" if r["marked"] else "")
        print(f"{r['episode']}: {r['records']} records kept, {', '.join(what)}, status {r['status']}{done}")
        for d in r["damage"]:
            lost = "records lost: unknown (the length fields are damaged too)" if d["records_lost"] is None else \
                f"{d['records_lost']} record{'' if d['records_lost'] == 1 else 's'} lost"
            span = (f"{'start' if d['from_s'] is None else format(d['from_s'], '.3f') + ' s'} .. "
                    f"{'end' if d['to_s'] is None else format(d['to_s'], '.3f') + ' s'}")
            streams = ", ".join(f"{st['topic']} ({st['source']}) {st['lost']} message{'' if st['lost'] == 1 else 's'}"
                                for st in d["streams"]) or "no sequence gap"
            print(f"  damaged region at byte {d['offset']} ({d['bytes']} bytes): {lost}, {span} into the episode; "
                  f"streams: {streams}; not cut (readers skip it)")
        if "records_missing" in r:
            print(f"  meta.json counts {r['records_written']} records written: {r['records_missing']} missing")
        if r["torn_bytes"] or r["torn_reason"]:
            cut = (f"cut off, its bytes kept in {r['saved']}" if r["saved"] else "cut off") if r["truncated"] \
                else "not cut (--dry-run)"
            print(f"  torn tail at byte {r['torn_offset']} ({r['torn_bytes']} bytes, {r['torn_reason']}): {cut}")
    return 1 if bad else 0


def cmd_episodes_inspect(args: argparse.Namespace) -> int:
    from recorder.inspection import inspect_episode, plot_timelines

    report = inspect_episode(args.episode)
    if args.plot:
        plot_timelines(args.episode, Path(args.plot))
        report["plot"] = args.plot
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"episode {report['path']}  ({report['status']}, {report['outcome']}, {report['duration_s']} s, "
          f"task {report['task']!r})")
    print(f"  {'stream':36} {'kind':16} {'n':>7} {'Hz':>8} {'gaps':>5} {'start ms':>9} {'end ms':>9} "
          f"{'max dt ms':>9}")
    for s in report["streams"]:
        print(f"  {s['topic'][:36]:36} {s['kind'][:16]:16} {s['n']:7d} {s['rate_hz']:8.1f} {s['gaps']:5d} "
              f"{s['start_ms']:9.1f} {s['end_ms']:9.1f} {s['max_interval_ms']:9.1f}")
    for k, v in report["dropped"].items():
        print(f"  dropped {k}: {v}")
    _print_stages(report["stages_ms"], report["stages_seconds"])
    for why in report["degraded"]:
        print(f"  degraded: {why}")
    if report["discarded"]:
        mark = report["discarded"]
        print(f"  discarded {mark.get('t', '')} ({mark.get('reason') or 'no reason given'}); "
              "`teleop episodes restore` takes it back")
    log = report["log"]
    if log["damaged"]:
        print(f"  DAMAGED log: {log['summary']}; every intact record is used (`teleop episodes verify` marks it)")
        for line in log["regions"]:
            print(f"    {line}")
    if log["torn_bytes"]:
        print(f"  torn tail of {log['torn_bytes']} bytes ({log['torn_reason']}): a cut-short last write, not read; "
              "`teleop episodes verify` cuts it (keeping the bytes)")
    if report.get("plot"):
        print(f"  timeline plot: {report['plot']}")
    return 0


def _print_stages(stages: Any, seconds: Any) -> None:
    """The command path latency table of `inspect` (nothing for an episode without one)."""
    if not isinstance(stages, dict) or not stages:
        return
    print(f"  command path latency [ms] over {seconds} s (p50: median second, p99 and max: worst second)")
    print(f"    {'stage':14} {'p50':>9} {'p99':>9} {'max':>9}")
    for stage, row in stages.items():
        row = row if isinstance(row, dict) else {}
        cells = [f"{v:9.3f}" if isinstance(v := row.get(k), int | float) else f"{'-':>9}"
                 for k in ("p50", "p99", "max")]
        print(f"    {str(stage)[:14]:14} {' '.join(cells)}")


def cmd_episodes_control(args: argparse.Namespace) -> int:
    from teleop.bus.sockets import Bus
    from teleop.errors import LinkTimeoutError

    if args.op == "discard" and args.episode:
        return _discard_offline(args)
    _, control = session_endpoints(port_base=args.port_base)
    endpoint = args.control or control
    values: dict[str, Any] = {}
    if args.op in ("task", "note"):
        values["text"] = args.text
    if args.op == "start" and args.task:
        values["task"] = args.task
    from teleop.bus.security import CurveKeys

    with Bus("episodes-cli", keys=CurveKeys.load(args.keys) if args.keys else None) as bus:
        rpc = bus.rpc_client(endpoint, args.timeout)
        try:
            reply = rpc.request(args.op, **values)
        except LinkTimeoutError:
            raise TeleopError(_no_recorder(endpoint, args.op, args.timeout)) from None
        except TeleopError as exc:  # it answered: an error of its own (e.g. stop with nothing recording)
            raise TeleopError(f"the recorder at {endpoint}: {exc}") from exc
    print(json.dumps(dict(reply.values)))  # type: ignore[attr-defined]
    return 0


def cmd_lerobot_check(args: argparse.Namespace) -> int:
    from recorder.export.lerobot_check import run_lerobot_check

    summary = run_lerobot_check(dataset=args.dataset, export=args.export, out=args.out, codec=args.codec)
    print(json.dumps(summary, indent=1))
    if not summary["ok"]:
        print("teleop lerobot-check: FAILED: " + "; ".join(summary["problems"][:5]), file=sys.stderr)
    return 0 if summary["ok"] else 1


def cmd_export(args: argparse.Namespace) -> int:
    from recorder.export import export_hdf5, export_lerobot

    def progress(line: str) -> None:
        print(f"teleop export: {line}", file=sys.stderr, flush=True)

    common = dict(fps=args.fps, only_success=args.only_success, overwrite=args.overwrite,
                  skip_damaged=args.skip_damaged, skip_degraded=args.skip_degraded, episodes=args.episodes,
                  include_discarded=args.include_discarded, append=args.append,
                  progress=None if args.json else progress)
    if args.format == "lerobot":
        summary = export_lerobot(Path(args.dataset), Path(args.out), codec=args.codec, **common)
    else:
        summary = export_hdf5(Path(args.dataset), Path(args.out), **common)
    if args.json:  # (without --json the progress lines said it)
        for d in summary.damaged:
            print(f"teleop export: warning: {Path(d['episode']).name}: damaged log ({d['summary']}); "
                  + ("left out (--skip-damaged)" if d["skipped"] else "exported from every intact record"),
                  file=sys.stderr)
        for d in summary.degraded:
            print(f"teleop export: warning: {Path(d['episode']).name}: degraded recording ({'; '.join(d['reasons'])}); "
                  + ("left out (--skip-degraded)" if d["skipped"] else "exported"), file=sys.stderr)
    elif summary.appended:
        progress(f"appended {summary.episodes} episodes ({summary.frames} frames) to {summary.out}: it holds "
                 f"{summary.total_episodes} episodes, {summary.total_frames} frames")
    print(json.dumps(summary.as_dict(detail=args.json)))
    return 0


def _no_recorder(endpoint: str, op: str, timeout_s: float) -> str:
    """What to say when no recorder answers an episode control (it is not the robot server's fault)."""
    offline = (f"; a finished episode is labelled without a recorder: `teleop episodes {_OFFLINE[op]}`"
               if op in _OFFLINE else "")
    return (f"no recorder answered at {endpoint} within {timeout_s:g} s: episode controls go to a running "
            "recorder. Start one (`teleop record --dataset DIR`), or run the session with `[recorder] enabled = true` "
            "(`teleop run SESSION`); pass --port-base N or --control URL when it is not on the defaults, and --keys "
            f"when it uses CURVE{offline}")
