"""The ``teleop`` command. Subcommands are thin: parse options, build a config, call the part."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import textwrap
from pathlib import Path

import teleop  # noqa: F401  (render backend default before mujoco loads)
from teleop.bus.endpoints import DEFAULT_HOST, DEFAULT_PORT_BASE, RobotEndpoints, describe_defaults
from teleop.cli_types import finite_float, int_in, port_base, seconds
from teleop.errors import TeleopError
from teleop.lifeline import follow_parent
from teleop.view.sink import parse_target as parse_view_target

__all__ = ["main", "build_parser"]

logger = logging.getLogger("teleop")


def _cameras(value: str, description: Path) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if value == "none":
        return ()
    if value == "first":  # one camera by default: a CPU renderer cannot keep three at 15 Hz
        from robots.description import load_description

        return load_description(description).cameras[:1]
    return tuple(v for v in value.split(",") if v)


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {value!r}: write it as WIDTHxHEIGHT, e.g. 320x240") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"size {value!r}: width and height must be whole numbers in 16..4096")
    return w, h


def _endpoints(args: argparse.Namespace) -> RobotEndpoints:
    """--host/--port-base, then any --endpoint NAME=URL overrides (e.g. rpc=ipc:///tmp/robot-rpc)."""
    base = RobotEndpoints.on(args.host, args.port_base)
    overrides: dict[str, str] = {}
    for item in args.endpoint or []:
        name, sep, url = item.partition("=")
        if not sep or name not in base.as_dict():
            raise TeleopError(f"--endpoint {item!r}: write NAME=URL with NAME in {list(base.as_dict())}")
        overrides[name] = url
    return base.override(**overrides)


def cmd_sim(args: argparse.Namespace) -> int:
    from robots.description import bundled_description_path
    from robots.mujoco_sim.server import SimConfig, SimServer

    width, height = args.camera_size
    description = Path(args.config) if args.config else bundled_description_path()
    config = SimConfig(
        description=description,
        endpoints=_endpoints(args),
        keys=Path(args.keys) if args.keys else None,
        realtime=not args.fast,
        state_hz=args.state_hz,
        camera_hz=args.camera_hz,
        camera_width=width,
        camera_height=height,
        cameras=_cameras(args.cameras, description),
        camera_shadows=args.shadows,
        watchdog_s=args.watchdog_ms / 1000.0,
        viewer=args.viewer,
        duration_s=args.duration,
        instance=args.instance_id,
        object_poses=args.object_poses,
    )
    server = SimServer(config)

    def _stop(signum, frame):  # noqa: ARG001
        server.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    follow_parent()  # started by a session: stop when it dies (teleop/lifeline.py)
    ep = config.endpoints
    logger.info(
        "robot server %s: %d joints, state %.0f Hz on %s, commands on %s, cameras %s on %s, requests on %s",
        server.sim.description.name, server.sim.n_joints, 1 / server.tick_s, ep.state, ep.command,
        list(server.camera_names) or "off", ep.camera, ep.rpc,
    )
    try:
        stats = server.run()
    finally:
        server.close()
    logger.info("robot server stopped: %s", json.dumps(stats))
    return 0


def cmd_robot_check(args: argparse.Namespace) -> int:
    from robots.check import run_checks

    report = run_checks(args.endpoint, keys=args.keys, joint=args.joint, step_rad=args.step)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def cmd_robot_show(args: argparse.Namespace) -> int:
    import mujoco

    from robots.description import bundled_description_path, load_description
    from robots.mujoco_sim.model import load_sim_model

    desc = load_description(Path(args.config) if args.config else bundled_description_path())
    sim = load_sim_model(desc)
    m = sim.model
    groups = {g: [{"joint": j, "range_rad": [round(float(sim.lower[i]), 4), round(float(sim.upper[i]), 4)]}
                  for i, j in enumerate(desc.joint_names) if j in names]
              for g, names in desc.groups.items()}
    coupled = [f"{m.joint(int(m.eq_obj1id[e])).name} = {m.eq_data[e][0]:.4g} + {m.eq_data[e][1]:.4g} * "
               f"{m.joint(int(m.eq_obj2id[e])).name}" for e in range(m.neq)
               if m.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT and m.eq_obj2id[e] >= 0]  # mimic joints
    out = {"name": desc.name, "model": str(desc.model_path), "composed": desc.composition is not None,
           "base_frame": desc.base_frame, "groups": groups, "coupled_joints": coupled,
           "fingertips": list(desc.fingertip_frames), "wrists": {s: desc.sides[s].wrist_frame for s in desc.sides},
           "cameras": list(desc.cameras), "objects": list(sim.body_names), "home_keyframe": sim.home_key >= 0,
           "bodies": int(m.nbody), "geoms": int(m.ngeom), "meshes": int(m.nmesh)}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{desc.name}: {out['model']}{' (composed)' if out['composed'] else ''}")
    for g, joints in groups.items():
        print(f"  {g:<11} {len(joints):>2} joints: " + ", ".join(j["joint"] for j in joints))
    for line in coupled:
        print(f"  coupled     {line}")
    print(f"  wrists {out['wrists']}; fingertips {out['fingertips']}")
    print(f"  cameras {out['cameras']}; objects {out['objects']}; home keyframe: {out['home_keyframe']}")
    print(f"  {out['bodies']} bodies, {out['geoms']} geoms, {out['meshes']} meshes "
          f"(view it: python -m mujoco.viewer --mjcf={desc.model_path})")
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from teleop.bus.security import generate_keys

    paths = generate_keys(args.dir, force=args.force)
    print(f"keys written to {args.dir}:")
    for role, path in paths.items():
        print(f"  {role:<14} {path}")
    print(
        "Give the robot host the folder (it needs server.key_secret and authorized/), the teleop host "
        "server.key and client.key_secret; start both sides with --keys DIR."
    )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from teleop.doctor import format_report, run_doctor

    report = run_doctor(args.port_base)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if report["ok"] else 1


def cmd_warmup(args: argparse.Namespace) -> int:  # noqa: ARG001
    from teleop.warmup import warm_all

    took = warm_all()
    print("kernels compiled and cached: " + ", ".join(f"{name} {s:.1f} s" for name, s in took.items()))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "bus":
        from teleop.bench.bus import run

        result = run(count=args.count, port_base=args.port_base)
    elif args.what == "e2e":
        from teleop.bench.e2e import run

        result = run(seconds=args.seconds or 10.0, rate_hz=args.rate, input_hz=args.input_hz,
                     port_base=args.port_base + 40, load=args.load, realtime=args.realtime,
                     modes=("on_sample", "fixed") if args.mode == "both" else (args.mode,))
    elif args.what == "intervention":
        from teleop.bench.intervention import run

        result = run(port_base=args.port_base + 100)
    elif args.what == "recorder":
        from teleop.bench.recorder import run

        result = run(seconds=args.seconds or 60.0, port_base=args.port_base + 50)
    elif args.what == "faults":
        from teleop.bench.faults import run

        result = run(port_base=args.port_base + 200)
    elif args.what == "tactile":
        from teleop.bench.tactile import run

        result = run()
    elif args.what == "retarget":
        from teleop.bench.retarget import run

        result = run(reference=not args.no_reference, keypoints=args.keypoints, video=args.video,
                     keypoints_out=args.keypoints_out, robot=args.robot, hand=args.hand, side=args.side,
                     low_pass=args.low_pass)
    elif args.what == "video":
        from teleop.bench.video import run

        result = run(video=args.video, seconds=args.seconds, reference=not args.no_reference)
    elif args.what == "objects":
        from teleop.bench.objects import run

        result = run(seconds=args.seconds)
    elif args.what == "web":
        from teleop.bench.web import run

        result = run(seconds=args.seconds or 10.0, port_base=args.port_base + 70)  # the sim: 4 ports
    else:
        from teleop.bench.sim import run

        result = run(seconds=args.seconds or 10.0, port_base=args.port_base)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def cmd_retarget(args: argparse.Namespace) -> int:
    from retarget.offline import retarget_files
    from robots.description import bundled_description_path

    hand_only = args.config is not None or args.hand is not None
    if hand_only and args.robot:
        raise TeleopError("give --robot (a robot description) or --config/--hand (one hand without an arm), not both")
    if args.hand is not None and args.config is None:
        raise TeleopError("--hand needs --config RETARGET.toml (the task vectors; e.g. retarget/configs/*.toml)")
    if not hand_only:
        args.robot = args.robot or str(bundled_description_path())
        if args.side is None:
            raise TeleopError("--side left|right is required with a robot (a hand-only --config has its own default)")
    inputs = list(args.keypoints)
    if args.out_dir:
        outputs = [str(Path(args.out_dir) / (Path(i).stem + ".joints.npy")) for i in inputs]
    elif args.out:
        if len(inputs) != 1:
            raise TeleopError("--out takes one input; for several --keypoints files use --out-dir")
        outputs = [args.out]
    else:
        raise TeleopError("give --out OUT.npy (one input) or --out-dir DIR")
    poses = list(args.wrist_pose) if args.wrist_pose else None
    if poses is not None and len(poses) != len(inputs):
        raise TeleopError(f"{len(inputs)} --keypoints files but {len(poses)} --wrist-pose files")
    frame = "world" if (poses or args.frame == "world") else "wrist"
    summary = retarget_files(
        None if hand_only else args.robot, args.side, inputs, outputs, frame=frame, wrist_poses=poses, fps=args.fps,
        filter_keypoints=not args.no_filter, workers=args.workers, max_iters=args.iters,
        hand_config=args.config, hand_urdf=args.hand,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for r in summary["results"]:
            print(f"{r['input']} -> {r['output']}: {r['frames']} frames, {r['frames_per_s']:.0f} frames/s, "
                  f"residual {r['residual_mm']['mean']} mm, {r['rejected_frames']} rejected frames")
        print(f"{summary['frames']} frames ({summary['side']} hand) in {summary['wall_s']} s on "
              f"{summary['workers']} worker(s); residuals against the raw keypoints")
    return 0


def cmd_retarget_video(args: argparse.Namespace) -> int:
    from retarget.video_batch import run_batch
    from retarget.video_episode import VideoOptions
    from retarget.video_progress import say

    videos = list(args.videos)
    if args.from_list:
        try:
            lines = Path(args.from_list).expanduser().read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TeleopError(f"--from-list {args.from_list}: cannot read it ({exc})") from exc
        videos += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not videos:
        raise TeleopError("give VIDEO files or folders, or --from-list FILE")
    if args.preview and len(videos) != 1:
        raise TeleopError(f"--preview writes one file: give one VIDEO (got {len(videos)})")
    opts = VideoOptions(camera_pose=args.camera_pose, intrinsics=args.intrinsics, hfov_deg=args.hfov_deg,
                        mirror=args.mirror, start_frame=args.start_frame, max_frames=args.max_frames,
                        max_hands=args.max_hands, task=args.task, operator=args.operator, preview=args.preview)

    def line(r: dict) -> None:
        if args.json:
            return
        if r["status"] in ("complete", "no_hands"):
            hands = ", ".join(f"{s} {n}/{r['frames']}" for s, n in r["hands"].items())
            where = r["episode"] or r["reason"]
            say(f"{r['video']}: {r['frames']} frames, hands {hands}, gaps {r['gaps']}, {r['seconds']} s -> {where}")
        elif r["status"] == "skipped":
            say(f"{r['video']}: skipped, {r['reason']} ({r.get('episode') or 'no episode'})")
        else:
            say(f"{r['video']}: FAILED: {r['error']}")

    summary = run_batch(videos, args.robot, args.dataset, options=opts, workers=args.workers,
                        address=args.address, redo=args.redo, progress=False if args.no_progress else None,
                        on_result=line)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        n = len(summary["videos"])
        print(f"{n} video{'' if n == 1 else 's'}: {summary['complete']} complete, {summary['skipped']} skipped, "
              f"{summary['no_hands']} without hands, {summary['failed']} failed; {summary['frames']} frames in "
              f"{summary['wall_s']} s ({summary['cluster']}); ledger {summary['ledger']}")
    return 1 if summary["failed"] or summary["no_hands"] else 0


def _parse_driver_options(extra: list[str]) -> dict[str, str]:
    """``--port /dev/ttyUSB0 --baud=115200 --loop`` -> {"port": ..., "baud": ..., "loop": "true"}."""
    options: dict[str, str] = {}
    i = 0
    while i < len(extra):
        item = extra[i]
        if not item.startswith("--"):
            raise TeleopError(f"unexpected argument {item!r}: driver options are written --name value")
        name, eq, value = item[2:].partition("=")
        if not eq:
            if i + 1 < len(extra) and not extra[i + 1].startswith("--"):
                value = extra[i + 1]
                i += 1
            else:
                value = "true"  # a bare flag
        options[name] = value
        i += 1
    return options


def cmd_drivers_list(args: argparse.Namespace) -> int:
    from drivers.config import option_help
    from drivers.registry import available_drivers, driver_class

    rows = []
    for name, ep in available_drivers().items():
        try:
            cls = driver_class(name)
            desc = cls.description
            opts = option_help(cls.config_class)
        except TeleopError as exc:
            desc, opts = f"(cannot load: {exc})", []
        rows.append({"name": name, "entry_point": ep.value, "description": desc,
                     "options": [{"name": o, "type": t, "default": d, "help": h} for o, t, d, h in opts]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:<14} {r['description']}")
        if args.verbose:
            print(f"{'':14} {r['entry_point']}")
            for o in r["options"]:
                default = "required" if o["default"] == "required" else f"default {o['default']}"
                print(f"{'':16} --{o['name']:<24} {o['type']:<34} {default}" + (f"  {o['help']}" if o["help"] else ""))
    return 0


def cmd_drivers_echo(args: argparse.Namespace, extra: list[str]) -> int:
    import time as _time

    from drivers.registry import create_driver
    from drivers.samples import HandSample, hand_sample_problem, sample_to_json
    from teleop.errors import DeviceTimeoutError

    drv = create_driver(args.name, _parse_driver_options(extra))
    spec = drv.sample_spec
    last_print = 0.0
    printed = 0
    hand_checked = False  # the first hand sample is checked against the hand contract, once
    drv.connect()
    stop = _time.monotonic() + args.seconds if args.seconds else None
    try:
        while stop is None or _time.monotonic() < stop:
            try:
                sample = drv.get_sample(timeout_s=1.0)
            except DeviceTimeoutError as exc:
                print(f"teleop: waiting: {exc}", file=sys.stderr)
                continue
            if isinstance(sample, HandSample) and not hand_checked:
                hand_checked = True
                if problem := hand_sample_problem(sample, args.name):
                    print(f"teleop: warning: hand samples {problem}: a session cannot drive a hand with them; "
                          "a hand driver fills HandSample.keypoints (docs/adding-a-driver.md)", file=sys.stderr)
            obj = sample_to_json(sample, spec.channel_names)
            if args.json:
                print(json.dumps(obj, separators=(",", ":")), flush=True)
                printed += 1
            elif _time.monotonic() - last_print >= 1.0 / args.max_rate:
                obj.pop("keypoints", None)
                print(" ".join(f"{k}={v}" for k, v in obj.items() if v not in (None, [], {})), flush=True)
                last_print = _time.monotonic()
                printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        health = drv.health()
        drv.disconnect()
        print(f"teleop: {args.name}: {health.samples} samples, {health.rate_hz:.1f} reads/s, errors {health.errors}"
              + (f", last error: {health.last_error}" if health.last_error else ""), file=sys.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace, extra: list[str]) -> int:
    from teleop.vision.calibrate_cli import COMMANDS as CAMERA_COMMANDS
    from teleop.vision.calibrate_cli import run_command

    if args.operator:
        return _calibrate_operator(args, extra)
    if args.name in CAMERA_COMMANDS:  # before the driver lookup: camera, camera-pose, hand-eye, board
        if args.session:
            raise TeleopError(f"--session goes with --operator NAME; `teleop calibrate {args.name}` takes its own "
                              f"options (`teleop calibrate {args.name} --help`)")
        return run_command(args.name, extra, out=args.out)
    if not args.name:
        raise TeleopError("give a driver NAME (`teleop calibrate opengloves --port /dev/ttyUSB0 ...`) for one device, "
                          "or --operator NAME [--session SESSION] for an operator's walkthrough")
    if args.session:
        raise TeleopError("--session goes with --operator NAME (the operator walkthrough); a single device takes "
                          "its driver options instead")
    from drivers.registry import create_driver

    drv = create_driver(args.name, _parse_driver_options(extra))
    drv.connect()
    try:
        result = drv.calibrate()
    finally:
        drv.disconnect()
    if not result:
        print(f"{args.name}: this device needs no calibration")
        return 0
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"calibration written to {out}")
    else:
        print(json.dumps(result, indent=2))
    return 0


def _camera_usage() -> list[str]:
    from teleop.vision.calibrate_cli import usage_lines

    return usage_lines()


def _calibrate_operator(args: argparse.Namespace, extra: list[str]) -> int:
    from teleop.profiles import calibrate_operator
    from teleop.session.config import load_session

    if args.name or extra:
        raise TeleopError(f"--operator runs the walkthrough with the session's devices; drop {args.name or extra[0]!r} "
                          "(driver options belong in the session config)")
    config = load_session(args.session or "sim_synthetic")
    try:
        profile = calibrate_operator(config, args.operator, prompt=lambda text: print(text, flush=True),
                                     seconds=args.pose_seconds)
    except EOFError:
        raise TeleopError("the input ended (stdin closed) before the walkthrough did: nothing saved") from None
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(profile.to_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"profile also written to {out}")
    return 0


def cmd_operators_list(args: argparse.Namespace) -> int:
    from teleop.profiles import list_profiles, load_profile, profiles_dir

    rows = []
    for name in list_profiles():
        try:
            p = load_profile(name)
            rows.append({"name": name, "created": p.created, "updated": p.updated, "sides": list(p.sides)})
        except TeleopError as exc:
            rows.append({"name": name, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no operator profiles in {profiles_dir()}; "
              "create one with `teleop calibrate --operator NAME --session SESSION`")
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<20} BROKEN: {r['error']}")
        else:
            hands = ", ".join(r["sides"]) or "none"
            print(f"{r['name']:<20} updated {r['updated']}  created {r['created']}  hands: {hands}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from teleop.session.config import load_session
    from teleop.session.session import Session

    config = load_session(args.session)
    operator = args.operator or config.operator
    if operator:
        from teleop.profiles import apply_profile, load_profile

        config = apply_profile(config, load_profile(operator))
        logger.info("operator profile %r applied", operator)
    config = _prepare_run(config, args)
    status = "quiet" if args.quiet else "json" if args.json_status else "tty"
    session = Session(config, status=status, keys=not args.no_keys)

    def _stop(signum, frame):  # noqa: ARG001
        session.stop()

    signal.signal(signal.SIGTERM, _stop)
    view = _start_view(args.rerun, config)
    try:
        summary = session.run(seconds=args.seconds)
    finally:
        _stop_view(view)
    out = summary.as_dict()
    extra = out.pop("extra", None) or {}
    for key in ("episodes", "policy", "interventions", "tap_dropped", "stop_reason", "robot_max_gap_ms", "loop_mode",
                "stages_ms", "realtime"):
        if key in extra:
            out[key] = extra[key]
    print(json.dumps(_no_nan(out), indent=2, default=str) if args.json else _format_session(out))
    return 1 if out.get("stop_reason") else 0


def _start_view(target, config, port_base: int | None = None):
    """``--rerun``: the live view in its own process (teleop/view/child.py), before the session starts."""
    if target is None:
        return None
    from teleop.view.child import start_view

    view = start_view(target, config, port_base)
    print(f"teleop: rerun view: {view.url}", file=sys.stderr, flush=True)
    return view


def _stop_view(view) -> None:
    if view is None:
        return
    stats = view.stop()
    path = view.target.path
    where = f"saved {path} ({path.stat().st_size / 1e6:.1f} MB; `rerun {path}`)" if path and path.is_file() \
        else view.url
    status = "" if stats.get("exit_code") == 0 else f"; it exited with code {stats['exit_code']}, log {stats['log']}"
    if "logged" in stats:  # what it drew, and whether it kept up (docs/viewing.md, "Cost")
        status += (f"; drew {sum(stats['logged'].values())} samples, {stats['late_cycles']} late cycles, "
                   f"{stats['cpu_percent']}% of a core")
    print(f"teleop: rerun view: {where}{status}", file=sys.stderr, flush=True)


def _split_sim_args(text: str | None) -> list[str] | None:
    if text is None:
        return None
    import shlex

    try:
        return shlex.split(text)
    except ValueError as exc:
        raise TeleopError(f"--sim-args {text!r}: {exc}; write them as one quoted string, e.g. "
                          "--sim-args='--cameras none --fast'") from None


#: ``teleop sim`` options a session sets itself for the robot server it starts, and where to set them.
_SESSION_SIM_OPTIONS = {
    "--port-base": "use `teleop run --port-base N` (it moves the session's other ports too)",
    "--host": "the session's own robot server binds loopback",
    "--endpoint": "the session's own robot server binds loopback at its port base (`teleop run --port-base`)",
    "--config": "set [session] robot_description",
    "--instance-id": "the session gives its server an instance id of its own",
}


class _SimOptionsParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise TeleopError(f"robot server options: {message} (`teleop sim --help` lists them)")


def _check_sim_args(sim_args: tuple[str, ...]) -> None:
    """The options a session gives its robot server, checked here rather than by a child that
    dies with a usage error after the devices are open."""
    for arg in sim_args:
        name = arg.partition("=")[0]
        if name in _SESSION_SIM_OPTIONS:
            raise TeleopError(f"robot server option {name} is the session's own: {_SESSION_SIM_OPTIONS[name]}")
    parser = _SimOptionsParser(prog="teleop sim", add_help=False, allow_abbrev=False)
    _add_sim_options(parser)
    parser.parse_args(list(sim_args))


def _prepare_run(config, args: argparse.Namespace):
    """What ``teleop run`` settles before it starts anything: this run's ports and robot server
    options, every port the session will bind free, and every device there (each opened once and
    closed again: a missing glove is reported, with every other missing device, before a robot
    server or its viewer starts)."""
    from contextlib import ExitStack

    from teleop.doctor import check_session_ports
    from teleop.session.config import bound_endpoints, with_port_base, with_sim_args
    from teleop.session.session import open_devices

    if args.port_base is not None:
        config = with_port_base(config, args.port_base)
    viewer = True if args.viewer else False if args.headless else None
    config = with_sim_args(config, _split_sim_args(args.sim_args), viewer=viewer)
    if config.robot.kind == "sim":
        _check_sim_args(config.robot.sim_args)
    check_session_ports(config)
    endpoints = bound_endpoints(config)
    if config.robot.kind != "sim":
        endpoints = {"robot rpc (bridge)": config.rpc_endpoint(), **endpoints}
    if config.policy.enabled:
        endpoints["policy server"] = config.policy.endpoint
    logger.info("session endpoints: %s", ", ".join(f"{name} {url}" for name, url in endpoints.items()))
    with ExitStack() as stack:
        open_devices(config, stack)
    return config


def _no_nan(value):
    """JSON has no NaN: an empty statistic (no latency sample) is null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


#: What each fault a session counts means (the full table: docs/sessions.md).
FAULT_MEANINGS = {
    "stale_input": "a device stopped delivering fresh samples; the robot held until engaged again",
    "engage_refused": "an engage was refused (no fresh input, e-stopped, robot lost, or too far from its pose)",
    "estop": "e-stop: the robot server held until released",
    "hands_too_close": "the wrists would have come too close (safety.min_hand_distance_m); the arms held",
    "device_error": "a device reported an error while being read",
    "rate": "the loop ran below its configured rate",
    "policy_no_action": "ticks without a usable policy action (late or missing); the robot held",
    "intervene_refused": "an intervention was asked for, but the session has no policy",
    "recorder": "the recorder did not stop cleanly",
    "recorder_exited": "the recorder exited; nothing was recorded from then on",
    "robot_lost": "no robot state for safety.robot_timeout_s; the session held (lost)",
    "robot_back": "the robot server spoke again after a silence",
    "robot_changed": "another robot server instance answered; the session held",
    "robot_exited": "the robot server the session started exited",
}


def _ms(value) -> str:
    return "n/a" if value is None or value != value else f"{value} ms"


def _format_session(s: dict) -> str:
    from teleop.session.safety import LIMITS_APPLIED
    from teleop.session.trace import format_stages

    lat, jit = s["latency_ms"], s["jitter_ms"]
    if lat.get("p50") is None or lat["p50"] != lat["p50"]:  # NaN: no command carried capture times
        latency = "  latency n/a (no input with capture times)"
    else:
        latency = f"  latency (device capture -> command applied) p50 {lat['p50']} ms, p99 {lat['p99']} ms, " \
                  f"max {lat['max']} ms"
    faults = {k: v for k, v in s["faults"].items() if k not in LIMITS_APPLIED}
    limits = {k: v for k, v in s["faults"].items() if k in LIMITS_APPLIED}
    lines = [
        f"session: {s['seconds']} s, loop {s['loop_hz']} Hz of {s['rate_hz']:.0f} Hz"
        + ("" if s["held_rate"] else "  (BELOW the configured rate)"),
        f"  deadline misses {s['deadline_misses']}, jitter p99 {_ms(jit.get('p99'))}",
        latency,
        *[f"  per stage {line}" for line in [format_stages(s.get("stages_ms") or {}, s.get("loop_mode", ""))] if line],
        f"  commands {s['commands']}, engaged {s['engaged_s']} s, final state {s['final_state']}",
        "  faults: " + ("none" if not faults else f"{sum(faults.values())}"),
    ]
    width = max((len(k) for k in faults), default=0)
    lines += [f"    {name:<{width}} {count:>6}  {FAULT_MEANINGS.get(name, '')}".rstrip()
              for name, count in sorted(faults.items(), key=lambda kv: -kv[1])]
    if limits:
        lines.append("  limits applied (not faults): " + ", ".join(f"{name} {count} commands ({LIMITS_APPLIED[name]})"
                                                                  for name, count in limits.items()))
    if s["fault_log"]:
        lines.append("  last faults:")
        lines += [f"    {line}" for line in s["fault_log"][-10:]]
    if s.get("policy"):
        p = s["policy"]
        lines.append(f"  policy: {p.get('answers', 0)} answers, {p.get('late', 0)} late, latency p50 "
                     f"{_ms(p.get('latency_ms', {}).get('p50'))}; {len(s.get('interventions', []))} takeovers")
    for ep in s.get("episodes", []):
        lines.append(f"  episode recorded: {ep}")
    if s.get("stop_reason"):
        lines.append(f"  STOPPED: {s['stop_reason']}")
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    from teleop.demo import format_summary, run_demo

    port_base, view = args.port_base, None
    if args.rerun is not None:  # the view needs the ports before the demo would pick them
        from teleop.bus.endpoints import free_port_base
        from teleop.session.config import BUNDLED_SESSIONS_DIR, load_session

        if port_base is None:
            port_base = free_port_base(DEFAULT_PORT_BASE)
            if port_base != DEFAULT_PORT_BASE:
                print(f"teleop demo: ports {DEFAULT_PORT_BASE}.. are in use (another session?); using {port_base}..",
                      file=sys.stderr, flush=True)
        name = args.session or ("sim_demo" if (BUNDLED_SESSIONS_DIR / "sim_demo.toml").is_file() else "sim_synthetic")
        view = _start_view(args.rerun, load_session(name), port_base)
    try:
        summary = run_demo(port_base=port_base, session=args.session, status="quiet" if args.json else "auto")
    finally:
        _stop_view(view)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0 if summary["ok"] else 1


#: ``teleop bench intervention`` runs a session and a policy server from port base + 100, the policy
#: at + 20 of that: the highest port a benchmark uses.
_BENCH_PORTS = 120
#: ``teleop run --port-base``: the policy endpoint moves to port base + 20 (teleop/session/config.py).
_RUN_PORTS = 20


def _run_keys_epilog() -> str:
    """The key bindings, from the defaults of [controls] (teleop/session/config.py); ``q`` is the
    session's own (teleop/session/session.py)."""
    from teleop.session.config import ControlsConfig

    c = ControlsConfig()
    rows = [
        (c.engage, "engage / disengage (engage_mode \"hold\": while held); with a policy: hand it the robot"),
        (c.estop, "e-stop: the robot server holds, commands stop"),
        (c.release, "release the e-stop (then engage again)"),
        (("key:q",), "quit (Ctrl-C too); the robot is left holding"),
        (c.episode_start, "episode: start one (recorder.start \"auto\" starts one with the session)"),
        (c.episode_stop, "episode: stop and keep it"),
        (c.episode_success, "episode: mark success (the open episode, else the last one)"),
        (c.episode_failure, "episode: mark failure"),
        (c.episode_discard, "episode: stop and discard it"),
        (c.intervene, "intervention: take over from the policy / hand back (intervene_mode \"hold\": while held)"),
    ]
    lines = ["keys, when a terminal is attached (the defaults of a session's [controls]; a session may bind",
             "other keys, device buttons such as pedal:clutch, or gestures; episode keys need [recorder],",
             "intervention keys [policy]):"]
    for sources, meaning in rows:
        keys = " / ".join(src.partition(":")[2] for src in sources if src.startswith("key:"))
        lines.append(f"  {keys:<7} {meaning}")
    lines.append("\nPorts: teleop doctor lists the default ones and who holds them.")
    return "\n".join(lines)


def _add_sim_options(p: argparse.ArgumentParser) -> None:
    """The options of ``teleop sim`` (also what ``teleop run`` checks a session's sim options against)."""
    p.add_argument("--config", help="robot description TOML (default: robots/dexhumanoid/dexhumanoid.toml)")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s; others need --keys)")
    p.add_argument("--port-base", type=port_base(3), default=DEFAULT_PORT_BASE,
                   help="first of four ports, 1024..65532 (default %(default)s)")
    p.add_argument("--endpoint", action="append", metavar="NAME=URL",
                   help="override one endpoint: state, command, camera or rpc (repeatable), e.g. rpc=ipc:///tmp/rpc")
    p.add_argument("--keys", help="CURVE keys folder from `teleop keys generate` (required off loopback)")
    p.add_argument("--viewer", action="store_true", help="open the MuJoCo viewer (needs a display)")
    p.add_argument("--fast", action="store_true", help="run as fast as possible instead of wall-clock time")
    p.add_argument("--state-hz", type=finite_float(1, 5000, unit="Hz"), default=500.0,
                   help="state publish rate, 1..5000 Hz (default %(default)s)")
    p.add_argument("--camera-hz", type=finite_float(0, 120, unit="Hz"), default=15.0,
                   help="camera frame rate, 0..120 Hz, 0 = off (default %(default)s)")
    p.add_argument("--camera-size", type=_size, default=(320, 240),
                   help="WIDTHxHEIGHT, each 16..4096 (default 320x240)")
    p.add_argument("--cameras", default="first",
                   help="comma-separated camera names, 'first' (default: the config's first camera), 'all' or 'none'")
    p.add_argument("--shadows", action="store_true", help="render shadows and MSAA (slow on a CPU renderer)")
    p.add_argument("--watchdog-ms", type=finite_float(10, 10000, unit="ms"), default=90.0,
                   help="hold when no command for this long, 10..10000 ms (default %(default)s)")
    p.add_argument("--duration", type=seconds, help="stop after this many simulated seconds (> 0)")
    p.add_argument("--instance-id", help="this run's instance id (in the spec and every state; default: random); "
                   "a session starting its own server sets it, to drive no other")
    p.add_argument("--object-poses", choices=["truth", "tracked"], default="truth",
                   help="object poses in robot_state: MuJoCo's (truth, default) or measured by the marker tracker "
                   "on the sim's own camera (tracked; render that camera at 640x480: --camera-size 640x480)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teleop",
        description="Real-time bimanual teleoperation runtime for dexterous humanoid robots.",
        epilog=describe_defaults() + "\n\nDocs: docs/ (operator guide, robot bridge contract, bus).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("sim", help="run the MuJoCo robot server (bundled humanoid by default)",
                       epilog=describe_defaults(), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_sim_options(p)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("robot", help="robot tools")
    rsub = p.add_subparsers(dest="robot_command", metavar="ROBOT_COMMAND", required=True)
    c = rsub.add_parser("check", help="conformance kit: exercise a running robot server")
    c.add_argument("endpoint", nargs="?", default=RobotEndpoints.on().rpc, help="its request endpoint (default %(default)s)")
    c.add_argument("--keys", help="CURVE keys folder")
    c.add_argument("--joint", help="joint to move (default: the first right-hand joint)")
    c.add_argument("--step", type=finite_float(0, 0.5, low_open=True, unit="rad"), default=0.05,
                   help="test step, 0 < step <= 0.5 rad (default %(default)s)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_robot_check)
    c = rsub.add_parser("show", help="load a robot description (composing it if it mounts parts) and list what "
                        "the model has: joints and ranges per group, coupled (mimic) joints, frames, cameras, objects")
    c.add_argument("config", nargs="?", help="robot description TOML (default: the bundled dexhumanoid)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_robot_show)

    p = sub.add_parser("keys", help="CURVE key management")
    ksub = p.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)
    g = ksub.add_parser("generate", help="create server and client key pairs")
    g.add_argument("--dir", default=str(Path.home() / ".config" / "teleop" / "keys"), help="folder (default %(default)s)")
    g.add_argument("--force", action="store_true", help="replace existing keys")
    g.set_defaults(func=cmd_keys_generate)

    p = sub.add_parser("doctor", help="check this machine: versions, rendering, devices, ports")
    p.add_argument("--port-base", type=port_base(_RUN_PORTS), default=DEFAULT_PORT_BASE,
                   help="check the runtime's ports moved to this base, as `teleop run --port-base` moves them, "
                   f"1024..{65535 - _RUN_PORTS} (default %(default)s)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("warmup", help="compile every numba kernel now (`make install` does), not in the first session")
    p.set_defaults(func=cmd_warmup)

    p = sub.add_parser("bench", help="benchmarks (JSON with a same-run reference)")
    p.add_argument("what", choices=["bus", "sim", "retarget", "tactile", "e2e", "recorder", "intervention",
                                    "faults", "video", "web", "objects"])
    p.add_argument("--json", action="store_true", help="one-line JSON")
    p.add_argument("--count", type=int_in(1, 10_000_000), default=5000, help="bus: messages of each kind, "
                   "1..10000000 (default %(default)s)")
    p.add_argument("--seconds", type=seconds, help="sim: simulated seconds (default 10); e2e: session length (10); "
                   "recorder: load duration (60); video: the video's first seconds (default the whole video); "
                   "web: streaming (10)")
    p.add_argument("--video", help="video: the video file (default: the project's real hand video); retarget: "
                   "compare on its tracked (unfiltered) right hand")
    p.add_argument("--keypoints", metavar="FILE.npy", help="retarget: compare ours and dex-retargeting on these "
                   "(T, 21, 3) keypoints (wrist frame, metres) instead of the synthetic motion set")
    p.add_argument("--keypoints-out", metavar="FILE.npy", help="retarget, with --video: save the tracked keypoints "
                   "(alone: only that)")
    p.add_argument("--robot", metavar="CONFIG.toml", help="retarget, real keypoints: a robot description or a "
                   "hand-only retargeting config (default: the bundled robot)")
    p.add_argument("--hand", metavar="HAND.urdf", help="retarget, with a hand-only --robot config: its hand URDF")
    p.add_argument("--side", choices=["left", "right"], help="retarget, real keypoints: the robot's hand "
                   "(default right; the video's tracked hand too)")
    p.add_argument("--low-pass", type=finite_float(0, 1, low_open=True, high_open=True), metavar="ALPHA",
                   help="retarget, real keypoints: the low-pass of the filtered pass when the config has none "
                   "(default 0.1, dex-retargeting's)")
    # intervention: a session and a policy server from port base + 100 (+ 20 for the policy); faults: the
    # first free ports from port base + 200 on (free_port_base), so past the range below when those are held
    p.add_argument("--port-base", type=port_base(_BENCH_PORTS), default=17710,
                   help=f"loopback ports the benchmark may use: port base .. +{_BENCH_PORTS}, so 1024.."
                   f"{65535 - _BENCH_PORTS} (default %(default)s)")
    p.add_argument("--no-reference", action="store_true",
                   help="retarget, video: skip the dex-retargeting (and MediaPipe) reference")
    p.add_argument("--rate", type=finite_float(10, 1000, unit="Hz"), default=500.0,
                   help="e2e: session loop rate, 10..1000 Hz (default 500 Hz)")
    p.add_argument("--input-hz", type=finite_float(0, 2000, low_open=True, unit="Hz"), default=1000.0,
                   help="e2e: synthetic device sample rate, at most 2000 Hz (default 1000 Hz)")
    p.add_argument("--load", choices=["none", "demo"], default="none",
                   help="e2e: demo also runs the head camera and the recorder, as make demo does (default none)")
    p.add_argument("--realtime", type=int_in(0, 99), default=0, metavar="PRIORITY",
                   help="e2e: SCHED_FIFO priority of the session loop thread, 0 (off, the default) .. 99")
    p.add_argument("--mode", choices=["both", "on_sample", "fixed"], default="both",
                   help="e2e: the session loop mode(s) to run, one session each (default both: on_sample's "
                   "figures on top, fixed's under \"fixed\")")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("retarget", help="offline: human hand keypoint sequences -> robot hand joints",
                       description="Retarget (T, 21, 3) keypoint sequences (MediaPipe order, metres) to robot hand "
                       "joints (T, n): a robot's hand (--robot) or one hand without an arm (--config, with "
                       "--hand URDF or the config's urdf_path). Keypoints are in the wrist frame unless --frame "
                       "world (then the wrist frame comes from --wrist-pose files or is estimated from the "
                       "keypoints). Residuals are the commands' against the raw keypoints.")
    p.add_argument("--robot", default=None, help="robot description TOML (default: the bundled dexhumanoid)")
    p.add_argument("--config", default=None, metavar="RETARGET.toml",
                   help="hand-only retargeting config ([hand] keys as dex-retargeting's; e.g. "
                   "retarget/configs/ability_hand_right.toml)")
    p.add_argument("--hand", default=None, metavar="HAND.urdf", help="with --config: the hand URDF (instead of "
                   "the config's urdf_path)")
    p.add_argument("--side", choices=["left", "right"], default=None,
                   help="required with a robot; with --config, default: the config's side, else right")
    p.add_argument("--keypoints", nargs="+", required=True, metavar="IN.npy")
    p.add_argument("--out", metavar="OUT.npy", help="output joints (one input)")
    p.add_argument("--out-dir", help="output folder: <input stem>.joints.npy per input")
    p.add_argument("--frame", choices=["wrist", "world"], default="wrist", help="frame of the keypoints")
    p.add_argument("--wrist-pose", nargs="+", metavar="POSE.npy",
                   help="per input: wrist poses (T, 4, 4) or (T, 7) [x y z qw qx qy qz] in the keypoints' frame")
    p.add_argument("--fps", type=finite_float(0, 1000, low_open=True, unit="frames/s"), default=30.0,
                   help="frame rate of the sequences, for the filter, at most 1000 (default 30)")
    p.add_argument("--no-filter", action="store_true", help="do not One-Euro filter the keypoints even when "
                   "the config has [filter.keypoints] (without it they are never filtered)")
    p.add_argument("--iters", type=int_in(1, 10000),
                   help="solver iterations per frame, 1..10000 (default: the config's)")
    p.add_argument("--workers", type=int_in(1, 1024), help="processes, 1..1024 (default: one per core, at most one "
                   "per file)")
    p.add_argument("--json", action="store_true", help="print throughput and residuals as JSON")
    p.set_defaults(func=cmd_retarget)

    p = sub.add_parser("retarget-video", help="human videos -> robot episodes (also `teleop retarget video`)",
                       description="Track the hands in each VIDEO (every frame), retarget them to the robot (hands "
                       "from the keypoints, wrists through the arm IK) and write one episode per video into "
                       "--dataset, as the recorder does. A video with no hand in it writes no episode; a video that fails is "
                       "reported and the others go on (exit 1 for either). Videos the dataset has already are "
                       "skipped. docs/camera-hands.md, 'Human video -> robot episodes'.")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="video files, or folders of them (searched recursively)")
    p.add_argument("--from-list", metavar="FILE", help="also the videos listed in FILE, one path per line")
    p.add_argument("--robot", default=None, help="robot description TOML (default: the bundled dexhumanoid)")
    p.add_argument("--dataset", required=True, help="dataset folder the episodes go into")
    p.add_argument("--preview", metavar="OUT.mp4", help="also write the video with the detected skeletons drawn")
    p.add_argument("--camera-pose", default="0.08,0,0.36,1,0,0,0", metavar="X,Y,Z,QW,QX,QY,QZ",
                   help="the camera frame (x forward, y left, z up) in the robot base frame [m, unit quaternion] "
                   "(default: at the humanoid's head, looking ahead)")
    p.add_argument("--intrinsics", metavar="FILE", help="camera calibration TOML (default: a pinhole of --hfov-deg)")
    p.add_argument("--hfov-deg", type=finite_float(10, 170, unit="deg"), default=65.0,
                   help="horizontal field of view of the default pinhole, 10..170 (default 65)")
    p.add_argument("--mirror", action="store_true", help="the video is a mirror image (a selfie camera)")
    p.add_argument("--start-frame", type=int_in(0, 10**9), default=0, help="first frame to use (default 0)")
    p.add_argument("--max-frames", type=int_in(1, 10**9), default=None, help="at most this many frames (default all)")
    p.add_argument("--task", default="", help="the episodes' task text")
    p.add_argument("--operator", default="", help="the person in the video")
    p.add_argument("--max-hands", type=int_in(1, 2), default=2,
                   help="hands to look for, 1 or 2 (default 2; 1 for one-hand videos tracks about twice as fast: "
                   "palm detection runs only until the hand is found)")
    p.add_argument("--workers", type=int_in(1, 1024), default=None,
                   help="worker processes (default: one per core, at most one per video; more than one runs on a "
                   "local Dask cluster)")
    p.add_argument("--address", metavar="tcp://HOST:8786", default=None,
                   help="run on the Dask scheduler at this address instead (workers need the videos and the dataset "
                   "at the same paths)")
    p.add_argument("--redo", action="store_true",
                   help="process videos the dataset already has (default: skip them, so a rerun resumes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they are drawn on a terminal)")
    p.add_argument("--json", action="store_true", help="print the batch summary (per video results) as JSON")
    p.set_defaults(func=cmd_retarget_video)

    p = sub.add_parser("drivers", help="input device drivers (gloves, trackers, tactile sensors, pedals)")
    dsub = p.add_subparsers(dest="drivers_command", metavar="DRIVERS_COMMAND", required=True)
    d = dsub.add_parser("list", help="installed drivers (entry points, group teleop.drivers)")
    d.add_argument("-v", "--verbose", action="store_true", help="also each driver's options")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_drivers_list)
    d = dsub.add_parser("echo", help="open a driver and print its decoded samples live",
                        description="teleop drivers echo NAME [--OPTION VALUE ...]: options are the fields of the "
                        "driver's config (`teleop drivers list -v`), e.g. `teleop drivers echo opengloves --port "
                        "/dev/ttyUSB0 --side right`. With --json, one JSON object per sample per line (replayable "
                        "with the replay driver).")
    d.add_argument("name")
    d.add_argument("--json", action="store_true", help="one JSON object per sample per line")
    d.add_argument("--seconds", type=seconds, help="stop after this long (default: until Ctrl-C)")
    d.add_argument("--max-rate", type=finite_float(0, 1000, low_open=True, unit="lines/s"), default=20.0,
                   help="text mode: at most this many lines per second, at most 1000 (default %(default)s)")
    d.set_defaults(func=cmd_drivers_echo, takes_extra=True)

    p = sub.add_parser("run", help="run a teleop session: devices -> retargeting -> robot",
                       description=textwrap.fill(
                           "teleop run SESSION: a session config file (TOML) or the name of a bundled one "
                           "(teleop/sessions/: sim_synthetic, sim_opengloves_spacemouse, bridge_gloves_gelsight). "
                           "Before it starts anything it checks that every port it will bind is free and opens "
                           "every device once (all missing ones are reported together).", 90),
                       epilog=_run_keys_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", nargs="?", default="sim_synthetic")
    p.add_argument("--operator", help="operator profile to load (`teleop operators list`); default: the session's "
                   "[session] operator, if set")
    p.add_argument("--seconds", type=seconds, help="stop after this long (> 0)")
    p.add_argument("--quiet", action="store_true", help="no live status")
    p.add_argument("--json-status", action="store_true", help="live status as one JSON object per line (stdout)")
    p.add_argument("--no-keys", action="store_true", help="do not read keys from the terminal")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    p.add_argument("--port-base", type=port_base(_RUN_PORTS), default=None,
                   help="move every port of the session: its robot server base..+3, tap +4, recorder control +5, "
                   f"and the network input and policy endpoints (+10, +20 by default); 1024..{65535 - _RUN_PORTS} "
                   "(default: the session's [robot] port_base, 7610)")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--viewer", action="store_true",
                      help="open the MuJoCo viewer of the robot server the session starts (needs a display)")
    view.add_argument("--headless", action="store_true",
                      help="no viewer for the robot server the session starts, whatever its [robot] sim_args say")
    p.add_argument("--sim-args", metavar="'OPTIONS'",
                   help="options for the robot server the session starts, instead of its [robot] sim_args "
                   "(`teleop sim --help`), as one string: --sim-args='--cameras none --fast'")
    p.add_argument("--rerun", type=parse_view_target, metavar="spawn|web|OUT.rrd",
                   help="draw the session live in rerun, in its own process: a viewer window (spawn), the web viewer "
                   "on 127.0.0.1 (web; the URL is printed) or a recording file (OUT.rrd); docs/viewing.md")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("calibrate", help="calibrate an operator (profile), one device (e.g. glove channel ranges) "
                       "or a camera (intrinsics, pose, hand-eye)",
                       description=textwrap.fill(
                       "teleop calibrate --operator NAME [--session SESSION]: walks the operator through hand length,"
                       " glove ranges and a neutral wrist pose per hand with the session's devices and "
                       "saves the profile that `teleop run SESSION --operator NAME` loads. "
                       "teleop calibrate NAME [--OPTION VALUE ...] [--out FILE.json]: opens one driver with "
                       "its options and runs its calibration routine, with prompts (e.g. `teleop calibrate opengloves "
                       "--port /dev/ttyUSB0 --side right --calibration right_glove.json`). "
                       "Cameras (docs/calibration.md): `teleop calibrate camera|camera-pose|hand-eye|board --help`.",
                       80),
                       epilog="camera calibration:\n" + "\n".join(f"  {line}" for line in _camera_usage()),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", help="driver to calibrate on its own (not with --operator)")
    p.add_argument("--operator", help="run the operator walkthrough and save the profile under this name")
    p.add_argument("--session", help="with --operator: session config whose devices to use (default sim_synthetic)")
    p.add_argument("--pose-seconds", type=finite_float(0, 60, low_open=True, unit="s"), default=2.0,
                   help="with --operator: seconds per recorded pose, at most 60 (default %(default)s)")
    p.add_argument("--out", help="also write the result here (JSON)")
    p.set_defaults(func=cmd_calibrate, takes_extra=True)

    p = sub.add_parser("operators", help="operator profiles (`teleop calibrate --operator NAME` creates them)")
    osub = p.add_subparsers(dest="operators_command", metavar="OPERATORS_COMMAND", required=True)
    o = osub.add_parser("list", help="stored profiles with their dates")
    o.add_argument("--json", action="store_true")
    o.set_defaults(func=cmd_operators_list)

    from recorder.cli import add_parsers as add_recorder_parsers

    add_recorder_parsers(sub)
    from teleop.policy.cli import add_parsers as add_policy_parsers

    add_policy_parsers(sub)
    from teleop.view.cli import add_parsers as add_view_parsers

    add_view_parsers(sub)
    from drivers.camera_hands.cli import add_parsers as add_models_parsers

    add_models_parsers(sub)
    from teleop.web.cli import add_parsers as add_web_parsers

    add_web_parsers(sub)
    from robots.objects.cli import add_parsers as add_objects_parsers

    add_objects_parsers(sub)

    p = sub.add_parser("dagger", help="HG-DAgger rounds on the bundled pick task in simulation (JSON report)",
                       description="teleop dagger --rounds N: the synthetic operator demonstrates the bundled pick "
                       "(round 0), a kNN behaviour-cloning policy is trained, then each round the policy drives while "
                       "the operator takes over when the robot drifts from what the operator would do; episodes are "
                       "recorded and the policy retrained on all of them. Reports success, autonomous success and "
                       "intervention rates per round.")
    p.add_argument("--rounds", type=int_in(1, 100), default=2, help="1..100 (default %(default)s)")
    p.add_argument("--demos", type=int_in(1, 1000), default=3, help="demonstrations in round 0, 1..1000")
    p.add_argument("--episodes", type=int_in(1, 1000), default=3, help="policy rollouts with the operator per round, "
                   "1..1000")
    p.add_argument("--evals", type=int_in(1, 1000), default=3, help="evaluation rollouts of each round's policy alone, "
                   "on fixed starts, 1..1000")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    p.add_argument("--shift", type=finite_float(0, 0.3, unit="m"), default=0.02,
                   help="bottle start shift range [m] in x and y, 0..0.3")
    p.add_argument("--drift", type=finite_float(0, 3.2, low_open=True, unit="rad"), default=0.06,
                   help="takeover when the right arm drifts this far [rad], at most 3.2")
    p.add_argument("--kind", choices=("knn", "mlp"), default="knn")
    p.add_argument("--intervention-weight", type=finite_float(0, 1000), default=5.0,
                   help="weight of correction frames when retraining, 0..1000 (1 = plain DAgger aggregation; "
                   "default %(default)s, HG-DAgger style)")
    p.add_argument("--out", help="output folder (default: a temporary folder)")
    p.add_argument("--port-base", type=port_base(20), default=7700,
                   help="sim, session and policy server ports: port base .. +20, so 1024..65515 (default %(default)s)")
    p.add_argument("--json", action="store_true", help="one-line JSON")
    p.add_argument("--verbose-json", action="store_true", help="include every episode")
    p.set_defaults(func=lambda a: __import__("teleop.dagger", fromlist=["main_json"]).main_json(a))

    p = sub.add_parser("demo", help="a teleop session on the bundled humanoid in MuJoCo with synthetic hands and wrists")
    p.add_argument("--port-base", type=port_base(5), default=None,
                   help="robot server and session ports: port base .. +5, so 1024..65530 (default: "
                   f"{DEFAULT_PORT_BASE}, or the next free ones when those are in use)")
    p.add_argument("--session", help="session to run (default: the bundled sim_demo, else sim_synthetic)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rerun", type=parse_view_target, metavar="spawn|web|OUT.rrd",
                   help="draw the demo live in rerun: a viewer window, the web viewer, or OUT.rrd (docs/viewing.md)")
    p.set_defaults(func=cmd_demo)
    return parser


def _warn_if_not_ours() -> None:
    from teleop.provenance import check_provenance, imports_ours, warning_line

    if imports_ours():  # the usual case, without reading any package metadata
        return
    line = warning_line(check_provenance())
    if line:
        print(textwrap.fill(line, 100, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False),
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns its exit code (2 for a usage error: argparse has printed it)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["retarget", "video"]:  # `teleop retarget` itself takes options only: `video` names the subcommand
        argv[:2] = ["retarget-video"]
    if argv[:1] == ["calibrate"] and len(argv) > 2 and {"-h", "--help"} & set(argv[2:]):
        from teleop.vision.calibrate_cli import COMMANDS as CAMERA_COMMANDS
        from teleop.vision.calibrate_cli import build_parser as camera_parser

        if argv[1] in CAMERA_COMMANDS:  # their options are their own parser's, not `teleop calibrate`'s
            camera_parser(argv[1]).print_help()
            return 0
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "takes_extra", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help (0) or a bad option (2); argparse has printed the message
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    if args.func is not cmd_doctor:  # the doctor reports it among its checks
        _warn_if_not_ours()
    try:
        if getattr(args, "takes_extra", False):
            return int(args.func(args, extra))
        return int(args.func(args))
    except TeleopError as exc:
        print(f"teleop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `teleop ... | head`: the reader left; not an error
        import os as _os

        _os.dup2(_os.open(_os.devnull, _os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
