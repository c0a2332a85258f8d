"""The teleop session: devices -> retargeting -> safety -> robot, at a fixed rate.

Per tick (``rate_hz``, default 500): controls (keys, device buttons, the robot's own e-stop),
the newest hand and wrist samples (latest-sample semantics, never waiting on a device),
retargeting (one numba call), the state machine, the safety filter (one numba call), one command
with the capture times of the samples it came from, haptics at their own rate, the status
snapshot. Garbage collection is frozen and disabled inside the loop; deadline misses are counted
and shown, and the summary says when the loop could not hold its rate.

States: ``idle`` (holding, not engaged) -> engage -> ``ramping`` (toward the operator's pose, at
most ``engage_max_step_rad`` per tick) -> ``engaged``; disengage -> ``idle``; a stale input
(a glove unplugged) -> ``stale`` (holding; only a fresh engage resumes); e-stop from a key, a
device button or the bus -> ``estop`` (the robot server holds; ``release`` then engage resumes).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import math
import secrets
import subprocess
import sys
import tempfile
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivers.base import Driver
from drivers.registry import create_driver
from drivers.samples import HandSample, HapticFeedback, PoseSample, hand_sample_problem
from retarget.bimanual import BimanualRetargeter
from robots.client import RobotClient
from robots.description import load_description
from teleop.bus.endpoints import session_endpoints
from teleop.bus.messages import SessionInfo
from teleop.errors import ConfigError, DeviceTimeoutError, TeleopError
from teleop.lifeline import child_env
from teleop.loop import LoopTimer, percentiles
from teleop.session.config import SessionConfig
from teleop.session.haptics import HapticsMapper
from teleop.session.keys import KeyReader
from teleop.session.realtime import apply as apply_realtime
from teleop.session.realtime import restore as restore_realtime
from teleop.session.safety import CLAMPED, HANDS_TOO_CLOSE, LIMITS_APPLIED, RAMPED, RATE_LIMITED, SafetyFilter
from teleop.session.status import StatusPrinter
from teleop.session.tap import AUTHORS as AUTHOR_NAMES
from teleop.session.tap import STATES, SessionTap
from teleop.session.watch import ChildWatch, RobotWatch
from teleop.types import SIDES
from teleop.warmup import compile_progress

__all__ = ["Session", "SessionSummary", "open_devices"]

logger = logging.getLogger(__name__)

IDLE, RAMPING, ENGAGED, STALE, ESTOP = "idle", "ramping", "engaged", "stale", "estop"
LOST = "lost"  # the robot server went silent or another instance answers: nothing is sent
POLICY, RETURNING = "policy", "returning"  # a policy drives; control is blending back to it
HUMAN_STATES = (RAMPING, ENGAGED)
POLICY_STATES = (POLICY, RETURNING)


@dataclass
class SessionSummary:
    seconds: float
    rate_hz: float
    loop_hz: float
    ticks: int
    deadline_misses: int
    jitter_ms: dict[str, float]
    latency_ms: dict[str, float]
    commands: int
    engaged_s: float
    faults: dict[str, int]
    fault_log: list[str]
    held_rate: bool  # False when the loop could not hold its rate
    final_state: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Session:
    def __init__(self, config: SessionConfig, *, status: str = "tty", keys: bool = True) -> None:
        self.config = config
        self.description = load_description(config.robot_description)
        self.status = StatusPrinter(status, controls=config.controls)  # type: ignore[arg-type]
        self.use_keys = keys
        self.state = IDLE
        self.faults: dict[str, int] = {}
        self.faults_at: dict[str, tuple[float, str]] = {}  # reason -> (monotonic s, message) of its newest
        self.fault_log: deque[str] = deque(maxlen=200)
        self.devices: dict[str, Driver] = {}
        self._stop = False
        self.sim_process: subprocess.Popen | None = None
        self.sim_log: Path | None = None
        self.client: RobotClient | None = None
        self.on_tick = None  # optional callable(session, tick) for tests and tools
        self.robot_state = None  # the newest robot state the loop has read (read-only for hooks)
        self._requests: deque[str] = deque()
        self.tap: SessionTap | None = None
        self.recorder_process: subprocess.Popen | None = None
        self.recorder_log: Path | None = None
        self.episodes: list[str] = []  # episode folders the recorder kept
        self.policy = None  # teleop.policy.client.PolicyClient when [policy] is enabled
        self.intervening = False  # the human has taken over from the policy
        self.interventions: list[dict[str, float]] = []  # takeover/return times (s since start)
        self._recentre_pending = False
        self.children = ChildWatch()  # the robot server and recorder this session started
        self.stop_reason = ""  # why the session ended by itself (its robot server died...)
        self._rec_status_path = ""  # the episode the recorder said it was writing

    # -- faults and controls --------------------------------------------------------------------
    def fault(self, reason: str, message: str) -> None:
        self.faults[reason] = self.faults.get(reason, 0) + 1
        self.faults_at[reason] = (time.monotonic(), message)
        line = f"{time.strftime('%H:%M:%S')} {reason}: {message}"
        if not self.fault_log or not self.fault_log[-1].endswith(message):
            self.fault_log.append(line)
            logger.warning("%s: %s", reason, message)
            if self.tap is not None:
                self.tap.event("fault", reason, message=message)

    def request(self, action: str) -> None:
        """engage, disengage, toggle, estop, release, stop (also used by keys and buttons)."""
        self._requests.append(action)

    # -- setup ----------------------------------------------------------------------------------
    def _start_robot(self, stack: ExitStack) -> RobotClient:
        cfg = self.config
        if cfg.robot.kind == "sim":
            from robots.mujoco_sim.process import connect_when_ready, start_sim_process

            self.sim_log = Path(tempfile.gettempdir()) / f"teleop-session-sim-{id(self)}.log"
            args = ["--config", str(cfg.robot_description), *cfg.robot.sim_args]
            if cfg.robot.keys and "--keys" not in args:
                args += ["--keys", str(cfg.robot.keys)]
            self.sim_process = start_sim_process(cfg.robot.port_base, self.sim_log, args)
            self.children.add("robot server", self.sim_process, self.sim_log)
            stack.callback(self._stop_sim)
            client = connect_when_ready(cfg.rpc_endpoint(), self.sim_process, self.sim_log, keys=cfg.robot.keys)
        else:
            client = RobotClient(cfg.rpc_endpoint(), keys=cfg.robot.keys, source="session", timeout_s=2.0)
            client.connect()
        stack.callback(client.disconnect)
        spec = client.spec
        if tuple(spec.joint_names) != self.description.joint_names:
            raise ConfigError(
                f"the robot at {cfg.rpc_endpoint()} ({spec.name}) has joints {list(spec.joint_names)[:4]}..., "
                f"but the session's robot description {cfg.robot_description} lists "
                f"{list(self.description.joint_names)[:4]}...; point session.robot_description at the robot's TOML"
            )
        period = 1.0 / cfg.rate_hz
        if spec.watchdog_s < 3 * period:  # the robot would trip its watchdog between two commands
            raise ConfigError(
                f"session.rate_hz = {cfg.rate_hz:g} sends a command every {period * 1e3:.0f} ms, but {spec.name} holds "
                f"after {spec.watchdog_s * 1e3:.0f} ms without one (its watchdog): raise rate_hz to at least "
                f"{math.ceil(3 / spec.watchdog_s)}")
        return client

    def _stop_sim(self) -> None:
        from robots.mujoco_sim.process import stop_process

        self.children.expect_exit(self.sim_process)
        stop_process(self.sim_process, 10.0)

    def _open_devices(self, stack: ExitStack) -> None:
        self.devices.update(open_devices(self.config, stack, self.tap))

    # -- the loop -------------------------------------------------------------------------------
    def run(self, seconds: float | None = None) -> SessionSummary:
        cfg = self.config
        with ExitStack() as stack:
            self.status.phase("starting the robot server" if cfg.robot.kind == "sim"
                              else f"connecting to the robot at {cfg.rpc_endpoint()}")
            self.status.start()  # from the start: the robot server and the kernels can take a while
            stack.callback(self.status.stop)
            client = self.client = self._start_robot(stack)
            spec = client.spec
            self.status.phase("compiling retargeting (first run only, up to a minute)")
            retarget = BimanualRetargeter(self.description)
            with compile_progress("the retargeting kernels", logger.info):  # silent when cached
                retarget.warmup()
            n = retarget.n_command
            self._retarget_sides = retarget.sides
            safety = SafetyFilter.for_retargeter(retarget, spec.lower, spec.upper, spec.velocity, cfg.rate_hz,
                                                 cfg.safety.min_hand_distance_m)
            haptics = HapticsMapper(cfg.haptics, tuple(spec.fingertip_names))
            warm = np.clip(np.zeros(n), spec.lower, spec.upper)
            safety.step(warm, warm, warm.copy())  # compile/load before the loop, not in it
            tap_ep, control_ep = session_endpoints(port_base=cfg.robot.port_base)
            tap = self.tap = SessionTap(tap_ep, n, keys=self._keys, source=f"session-{secrets.token_hex(6)}")
            tap.start()
            stack.callback(tap.stop)
            tap.set_info(self._session_info(spec), spec)
            first = client.get_state(2.0)
            tap.event("clock", source=client.server_source, offset_ns=-client.offset.offset_ns,
                      rtt_ns=client.offset.rtt_ns)
            if cfg.policy.enabled:
                from teleop.policy.client import PolicyClient

                self.status.phase(f"connecting to the policy at {cfg.policy.endpoint}")
                pc = cfg.policy
                self.policy = PolicyClient(pc.endpoint, n, len(spec.body_names), rate_hz=pc.rate_hz, keys=self._keys,
                                           timeout_s=pc.timeout_s, max_hold_s=pc.max_hold_s, task=pc.task,
                                           n_hands=2, n_tactile=len(spec.fingertip_names))
                self.policy.start()
                stack.callback(self.policy.stop)
            if cfg.recorder.enabled:
                self.status.phase(f"starting the recorder ({cfg.dataset_dir()})")
                self._start_recorder(stack, client, tap_ep, control_ep, spec)
            self.status.phase("opening devices: " + ", ".join(cfg.devices))
            self._open_devices(stack)
            tap.set_info(self._session_info(spec), spec)  # now with the devices' channel names
            self._begin_episode()
            if self.recorder_process is not None:
                self.status.watch_recorder(control_ep, self._keys)  # after the first episode began
            keys = KeyReader()
            if self.use_keys and keys.start():
                stack.callback(keys.stop)

            # which device gives what
            hand_dev = {s: self.devices.get(cfg.inputs[s].hand) if cfg.inputs.get(s) and cfg.inputs[s].hand else None for s in SIDES}
            wrist_dev = {s: self.devices.get(cfg.inputs[s].wrist) if cfg.inputs.get(s) and cfg.inputs[s].wrist else None for s in SIDES}
            controls = {a: tuple(getattr(cfg.controls, a)) for a in ("engage", "estop", "release")}
            from teleop.session.gestures import GestureDetector

            all_sources = [src for f in dataclasses.fields(cfg.controls) if isinstance(getattr(cfg.controls, f.name), tuple)
                           for src in getattr(cfg.controls, f.name)]
            gestures = GestureDetector([src.partition(":")[2] for src in all_sources if src.startswith("gesture:")],
                                       cfg.rate_hz)
            stale_s = cfg.safety.stale_timeout_s

            # preallocated per-tick buffers
            kp = np.zeros((2, 21, 3))
            kp[:, 1:, 0] = np.linspace(0.02, 0.18, 20)
            wpos = np.zeros((2, 3))
            wquat = np.tile([1.0, 0.0, 0.0, 0.0], (2, 1))
            q_target = np.zeros(n)
            q_cmd = np.zeros(n)
            q_next = np.zeros(n)
            captures = np.zeros(4, dtype=np.int64)
            have = np.zeros((2, 2), dtype=bool)  # [side, hand/wrist] fresh this tick
            no_kp: list[HandSample | None] = [None, None]  # per side: fresh this tick but without keypoints
            self._inputs_seen = (have, no_kp)  # what an engage refusal reports
            lat = np.zeros(1 << 15)
            n_lat = 0
            last_seq = -1

            self.command = q_cmd  # the command of the current tick (read-only for hooks)
            first = client.get_state(2.0)
            state_index = {name: i for i, name in enumerate(STATES)}
            last_state = self.state
            policy = self.policy
            q_policy = np.zeros(n)
            self.target, self.policy_command = q_target, q_policy  # read-only for hooks
            have_policy = False
            t_start_ns = time.monotonic_ns()
            q_cmd[:] = _held_pose(first, spec)
            state_msg = first
            timer = LoopTimer(cfg.rate_hz)
            dt = 1.0 / cfg.rate_hz
            haptic_every = max(1, round(cfg.rate_hz / cfg.haptics.rate_hz)) if cfg.haptics.enabled else 0
            status_every = max(1, round(cfg.rate_hz / 10))
            state_every = max(1, round(cfg.rate_hz / 200))  # robot state at ~200 Hz: freshness, e-stop, latency
            child_every = max(1, round(cfg.rate_hz / 10))
            robot_watch = RobotWatch(client, cfg.safety.robot_timeout_s)
            t_start = time.monotonic()
            engaged_ticks = 0
            commands = 0
            # "auto": engage as soon as every input is fresh (retried once a second until it takes)
            auto_next = time.monotonic() if "auto" in controls["engage"] else math.inf

            gc.collect()
            gc.freeze()  # setup objects never get scanned again
            gc.disable()
            # Driver threads share the GIL with this loop: make them hand it back within 0.2 ms,
            # not the default 5 ms, whenever the loop waits for it.
            switch = sys.getswitchinterval()
            sys.setswitchinterval(0.0002)
            rt = cfg.realtime  # on this thread only, after every other thread started; reported, never fatal
            realtime = apply_realtime(rt.priority, rt.cpu, rt.lock_memory)
            timer.start()
            tick = 0
            prev_ns = time.monotonic_ns()
            try:
                while not self._stop and (seconds is None or time.monotonic() - t_start < seconds):
                    now_ns = time.monotonic_ns()
                    # the loop itself was away (the process stalled): the drivers were too, so a sample
                    # looking old on this tick says nothing about the device; judge staleness next tick
                    loop_was_away = now_ns - prev_ns > stale_s * 5e8
                    prev_ns = now_ns
                    # -- controls
                    for key in keys.drain() if keys.active else ():
                        self._on_source(f"key:{key}", True, controls)
                    for name, drv in self.devices.items():
                        for ev in drv.drain_events():
                            self._on_source(f"{name}:{ev.button}", ev.pressed, controls)
                    # -- inputs (newest sample of each; stale ones do not count)
                    have[:] = False
                    no_kp[0] = no_kp[1] = None
                    for i, side in enumerate(SIDES):
                        for role, dev in ((0, hand_dev[side]), (1, wrist_dev[side])):
                            if dev is None:
                                continue
                            try:
                                s = dev.read_latest(stale_s, "hand" if role == 0 else "pose")
                            except DeviceTimeoutError:
                                continue
                            except TeleopError as exc:
                                self.fault("device_error", f"{side} {'hand' if role == 0 else 'wrist'}: {exc}")
                                continue
                            kps = s.keypoints if role == 0 and isinstance(s, HandSample) else None
                            if getattr(kps, "shape", None) == (21, 3):  # anything else: refused, named at engage
                                kp[i] = kps
                            elif role == 1 and isinstance(s, PoseSample):
                                wpos[i] = s.position_m
                                wquat[i] = s.quat_wxyz
                            else:
                                if role == 0 and isinstance(s, HandSample):
                                    no_kp[i] = s  # it arrives, but cannot drive the hand
                                continue
                            have[i, role] = True
                            captures[2 * i + role] = s.capture_ns
                    if gestures.names:
                        for source, pressed in gestures.update(kp, have[:, 0]):
                            self._on_source(source, pressed, controls)
                    needed_ok = all(
                        (hand_dev[s] is None or have[i, 0]) and (wrist_dev[s] is None or have[i, 1])
                        for i, s in enumerate(SIDES)
                    )
                    # -- robot state (e-stop from the bus shows here), fresh and from our instance
                    st = None
                    if tick % state_every == 0:
                        st = self._watch_robot(robot_watch, client, not loop_was_away, q_cmd)
                    if tick % child_every == 0:
                        self._watch_children()
                    if st is not None:
                        state_msg = self.robot_state = st
                        if st.mode == "estop" and self.state != ESTOP:
                            self.state = ESTOP
                            self.fault("estop", "the robot reports an e-stop (bus or another client)")
                        if st.cmd_seq != last_seq and st.cmd_applied_ns and len(st.cmd_source_capture_ns):
                            last_seq = st.cmd_seq
                            # the oldest sample the command came from; slots of absent inputs are 0
                            oldest = min((c for c in st.cmd_source_capture_ns.tolist() if c > 0), default=0)
                            if oldest > 0:
                                lat[n_lat % len(lat)] = (st.cmd_applied_ns - client.offset.offset_ns - oldest) / 1e6
                                n_lat += 1
                    # -- policy: observe at the state rate, read the action for this tick
                    if policy is not None:
                        if st is not None:
                            # the operator's hands too (what they would do, for policies that use it) and
                            # the fingertip contact forces
                            policy.observe(now_ns, (now_ns - t_start_ns) / 1e9, st.q, st.dq, q_cmd, st.body_pose,
                                           kp, st.fingertip_force)
                        have_policy = policy.action_at(now_ns, q_policy)
                    # -- state machine
                    if (needed_ok or policy is not None) and self.state == IDLE and time.monotonic() >= auto_next:
                        self.request("engage")
                        auto_next = time.monotonic() + 1.0
                    if self.state in HUMAN_STATES + POLICY_STATES:
                        auto_next = math.inf  # auto engages once; after that the operator decides
                    self._handle_requests(client, retarget, state_msg, needed_ok, wpos, wquat, kp, q_target, q_cmd)
                    if self._recentre_pending and needed_ok:
                        self._recentre(retarget, state_msg, wpos, wquat)
                        self._recentre_pending = False
                    if self.state in (RAMPING, ENGAGED) and not needed_ok and not loop_was_away:
                        self.state = STALE
                        missing = [f"{s} {r}" for i, s in enumerate(SIDES) for r, d in (("hand", hand_dev[s]), ("wrist", wrist_dev[s]))
                                   if d is not None and not have[i, 0 if r == "hand" else 1]]
                        self.fault("stale_input", f"no fresh sample for {stale_s * 1e3:.0f} ms from {', '.join(missing)}: "
                                                  "holding; re-engage when the device is back")
                    flags = 0
                    # -- retarget (always, so the filters and warm starts stay current)
                    if needed_ok:
                        retarget.tick(now_ns / 1e9, kp, wpos, wquat, q_target)
                    if self.state in POLICY_STATES:
                        if have_policy:
                            ramp = cfg.policy.blend_max_step_rad if self.state == RETURNING else math.inf
                            flags = safety.step(q_policy, q_cmd, q_next, ramp)
                            if self.state == RETURNING and not flags & RAMPED:
                                self.state = POLICY
                            if flags & HANDS_TOO_CLOSE:
                                self.fault("hands_too_close", f"the policy would bring the wrists closer than "
                                                              f"{cfg.safety.min_hand_distance_m} m: arms held")
                            q_cmd[:] = q_next
                            engaged_ticks += 1
                        else:  # late or missing answer: hold where we are, counted
                            self.faults["policy_no_action"] = self.faults.get("policy_no_action", 0) + 1
                    elif self.state in (RAMPING, ENGAGED):
                        self._hold_unsourced(q_target, q_cmd)
                        ramp = cfg.safety.engage_max_step_rad if self.state == RAMPING else math.inf
                        flags = safety.step(q_target, q_cmd, q_next, ramp)
                        if self.state == RAMPING and not flags & RAMPED:
                            self.state = ENGAGED
                        if flags & HANDS_TOO_CLOSE:
                            self.fault("hands_too_close", f"wrists would come closer than {cfg.safety.min_hand_distance_m} m: arms held")
                        if flags & CLAMPED:
                            self.faults["clamped"] = self.faults.get("clamped", 0) + 1
                        if flags & RATE_LIMITED:
                            self.faults["rate_limited"] = self.faults.get("rate_limited", 0) + 1
                        q_cmd[:] = q_next
                        engaged_ticks += 1
                    human = self.state in HUMAN_STATES
                    by_policy = self.state in POLICY_STATES and have_policy
                    author = 0 if human else (1 if by_policy else 2)
                    if self.state not in (ESTOP, LOST):
                        client.send_command(q_cmd, source_capture_ns=captures if human else None,
                                            author=AUTHOR_NAMES[author])
                        commands += 1
                    interv = human and self.intervening
                    tap.command(tick, now_ns, state_index[self.state], q_cmd, q_policy if by_policy else q_target, flags,
                                captures if human else None, author, interv,
                                q_policy if interv and have_policy else None)
                    if self.state != last_state:
                        last_state = self.state
                        tap.event("state", self.state)
                    # -- haptics
                    if haptic_every and tick % haptic_every == 0 and state_msg is not None:
                        levels = haptics.update(state_msg.fingertip_force, now_ns / 1e9)
                        for i, side in enumerate(SIDES):
                            dev = hand_dev[side]
                            if dev is not None and dev.sample_spec.feedback:
                                dev.send_feedback(HapticFeedback(force=levels[i].copy()))
                    # -- status
                    if tick % status_every == 0:
                        self._publish_status(timer, lat, n_lat, state_msg, captures, hand_dev, wrist_dev, keys.active)
                    if self.on_tick is not None:
                        self.on_tick(self, tick)
                    tick += 1
                    timer.wait()
            except KeyboardInterrupt:
                pass
            finally:
                restore_realtime(realtime)
                sys.setswitchinterval(switch)
                gc.enable()
                gc.unfreeze()
            # leave the robot holding where it is
            if self.state not in (ESTOP, LOST):
                client.send_command(q_cmd)
            summary = timer.summary()
            elapsed = time.monotonic() - t_start
            lat_ms = percentiles(lat[: min(n_lat, len(lat))])
            self._publish_status(timer, lat, n_lat, state_msg, captures, hand_dev, wrist_dev, keys.active)
            result = SessionSummary(
                seconds=round(elapsed, 3), rate_hz=cfg.rate_hz, loop_hz=summary.achieved_hz, ticks=summary.ticks,
                deadline_misses=summary.deadline_misses, jitter_ms=summary.jitter_ms, latency_ms=lat_ms,
                commands=commands, engaged_s=round(engaged_ticks * dt, 3), faults=dict(self.faults),
                fault_log=list(self.fault_log), held_rate=summary.achieved_hz >= 0.95 * cfg.rate_hz,
                final_state=self.state,
                extra={"robot": spec.name, "final_robot_state": state_msg, "robot_stats": self._robot_stats(client),
                       "robot_max_gap_ms": round(robot_watch.max_gap_s * 1e3, 1), "stop_reason": self.stop_reason,
                       "realtime": realtime.report},
            )
            if not result.held_rate:
                self.fault("rate", f"the loop ran at {summary.achieved_hz:.0f} Hz, below the configured {cfg.rate_hz:.0f} Hz")
                result.fault_log = list(self.fault_log)
            tap.event("summary", "", loop_hz=float(summary.achieved_hz), held_rate=bool(result.held_rate),
                      deadline_misses=int(summary.deadline_misses), jitter_ms_p99=float(summary.jitter_ms.get("p99", 0.0)))
            if self.recorder_process is not None:
                self.status.phase("stopping the recorder (closing the episode, finishing its videos)", "stopping")
                time.sleep(0.05)  # let the tap hand over the last ticks before the episode closes
                self._stop_recorder()
            result.extra["episodes"] = list(self.episodes)
            result.extra["recorder_log"] = str(self.recorder_log) if self.recorder_log else None
            result.extra["tap_dropped"] = tap.dropped
            if self.policy is not None:
                result.extra["policy"] = self.policy.stats
                result.extra["interventions"] = [
                    {k: round(v - t_start, 3) for k, v in iv.items()} for iv in self.interventions]
            return result

    def stop(self) -> None:
        self._stop = True

    # -- the tap and the recorder ------------------------------------------------------------------
    @functools.cached_property
    def _keys(self):
        """CURVE keys for every socket of the session ([robot] keys), also on loopback."""
        from teleop.bus.security import CurveKeys

        return CurveKeys.load(self.config.robot.keys) if self.config.robot.keys else None

    def _session_info(self, spec) -> SessionInfo:
        import teleop

        cfg = self.config
        src = cfg.source.read_text() if cfg.source and cfg.source.is_file() else ""
        channels = {}
        devices = {}
        for name, dc in cfg.devices.items():
            devices[name] = dc.driver
            drv = self.devices.get(name)
            if drv is not None:
                channels[name] = ",".join(drv.sample_spec.channel_names)
        return SessionInfo(
            session=cfg.name, operator=cfg.operator or "", robot=spec.name, rate_hz=float(cfg.rate_hz),
            joint_names=tuple(spec.joint_names), session_toml=src,
            description_toml=Path(cfg.robot_description).read_text(), devices=devices, channel_names=channels,
            software=teleop.__version__,
        )

    def _start_recorder(self, stack: ExitStack, client: RobotClient, tap_ep: str, control_ep: str, spec) -> None:
        """``teleop record`` in its own process (never in the loop's), ready before the loop starts."""
        cfg = self.config
        rc = cfg.recorder
        self.recorder_log = Path(tempfile.gettempdir()) / f"teleop-recorder-{id(self)}.log"
        cmd = [sys.executable, "-m", "teleop.cli", "record", "--dataset", str(cfg.dataset_dir()), "--tap", tap_ep,
               "--control", control_ep, "--state", client.endpoints.state, "--camera", client.endpoints.camera,
               "--codec", rc.codec, "--crf", str(int(rc.crf)), "--preset", rc.preset]
        if rc.task:
            cmd += ["--task", rc.task]
        if cfg.robot.keys:
            cmd += ["--keys", str(cfg.robot.keys)]
        log = open(self.recorder_log, "w")  # noqa: SIM115 - kept open for the child's lifetime
        stack.callback(log.close)
        self.recorder_process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env())
        self.children.add("recorder", self.recorder_process, self.recorder_log)
        stack.callback(self._kill_recorder)
        from teleop.bus.sockets import Bus

        self._rec_bus = Bus("session-recorder-ctl", keys=self._keys)
        stack.callback(self._rec_bus.close)
        self._rec_rpc = self._rec_bus.rpc_client(control_ep, 1.0)
        deadline = time.monotonic() + 20.0
        while True:
            if self.recorder_process.poll() is not None:
                raise TeleopError(f"the recorder exited at start (code {self.recorder_process.returncode}); "
                                  f"its log: {self.recorder_log}")
            try:
                self._rec_rpc.request("status", 1.0)
                break
            except TeleopError:
                if time.monotonic() > deadline:
                    raise TeleopError(f"the recorder did not answer on {control_ep} within 20 s; its log: "
                                      f"{self.recorder_log}") from None
        self.tap.set_info(self._session_info(spec), spec)  # type: ignore[union-attr]  # now it listens
        self.tap.event("clock", source=client.server_source, offset_ns=-client.offset.offset_ns,  # type: ignore[union-attr]
                       rtt_ns=client.offset.rtt_ns)

    def _begin_episode(self) -> None:
        """recorder.start = "auto": the episode starts with the loop (devices open, robot known)."""
        if self.recorder_process is None or self.config.recorder.start != "auto":
            return
        time.sleep(0.05)  # the info and clock events just published reach the recorder first
        reply = self._rec_rpc.request("start", 5.0)
        self._rec_status_path = str(reply.values.get("path", ""))  # type: ignore[attr-defined]
        logger.info("recording episode %s", self._rec_status_path)

    def _stop_recorder(self) -> None:
        p = self.recorder_process
        if p is None or p.poll() is not None:
            return
        self.children.expect_exit(p)
        try:
            st = self._rec_rpc.request("status", 2.0).values
            if st.get("recording"):
                self._rec_rpc.request("stop", 10.0)
            self.episodes = list(self._rec_rpc.request("quit", 2.0).values.get("kept", "").split("\n"))
            self.episodes = [e for e in self.episodes if e]
        except TeleopError as exc:
            self.fault("recorder", f"stopping the recorder: {exc}")
        try:
            p.wait(60)  # videos finalise before it exits
        except subprocess.TimeoutExpired:
            self.fault("recorder", f"the recorder did not exit within 60 s; see {self.recorder_log}")

    def _kill_recorder(self) -> None:
        from robots.mujoco_sim.process import stop_process

        self.children.expect_exit(self.recorder_process)
        stop_process(self.recorder_process, 60.0)  # it stops and keeps the open episode

    @staticmethod
    def _robot_stats(client: RobotClient) -> dict[str, Any]:
        try:
            return client.stats()
        except TeleopError:
            return {}

    # -- what the session depends on -------------------------------------------------------------
    def _watch_robot(self, watch: RobotWatch, client: RobotClient, judge: bool, q_cmd: np.ndarray):
        """Read the robot state; hold (LOST) when it goes silent or another instance answers.
        Back from LOST only to IDLE, commanding where the robot now is: a fresh engage and its
        start-pose check come before any motion."""
        reading = watch.read(judge)
        if reading.fault:
            if self.state != LOST:
                self._end_intervention("robot lost")
                self.state = LOST
            self.fault(reading.fault, reading.message)
            if reading.fault == "robot_changed" and self.config.robot.kind == "bridge":
                return self._adopt_new_instance(watch, client, q_cmd)
            return None
        st = reading.state
        if st is not None and self.state == LOST:
            watch.lost = False
            q_cmd[:] = _held_pose(st, client.spec)
            self.state = IDLE
            self.fault("robot_back", f"states from {client.instance} again after a silence: engage to drive")
        return st

    def _adopt_new_instance(self, watch: RobotWatch, client: RobotClient, q_cmd: np.ndarray):
        """A bridge restarted: bind to the new instance (a fresh spec, same joints) but stay held
        until the operator engages again."""
        try:
            old = client.instance
            spec = client.rebind()
        except TeleopError as exc:
            self.fault("robot_changed", f"could not reconnect to the new robot server instance: {exc}")
            return None
        if tuple(spec.joint_names) != self.description.joint_names:
            self.fault("robot_changed", f"the new robot server ({spec.name}) has other joints: not driving it; "
                       "restart the session")
            self._stop = True
            return None
        try:
            st = client.get_state(0.5)
        except TeleopError:  # WrongRobotError included
            return None
        watch.lost = False
        q_cmd[:] = np.clip(st.q, spec.lower, spec.upper)
        self.state = IDLE
        self.fault("robot_changed", f"now bound to robot server instance {client.instance} (was {old}): held; "
                   "engage to drive it (start-pose check first)")
        return st

    def _watch_children(self) -> None:
        for ex in self.children.exited():
            if ex.name == "robot server":
                self.state = LOST
                self._stop = True
                self.stop_reason = f"{ex.message}; the session stopped (a new server would be another robot)"
                self.fault("robot_exited", self.stop_reason)
            else:
                ep = self._rec_status_path or "the open episode"
                self.fault("recorder_exited", f"{ex.message}. Nothing is being recorded; {ep} is recovered (kept, "
                           "marked 'recovered') when a recorder next starts on the dataset, or now with "
                           "`teleop episodes verify DATASET`")

    def _on_source(self, source: str, pressed: bool, controls: dict[str, tuple[str, ...]]) -> None:
        if source in ("key:q",) and pressed:
            self.request("stop")
        c = self.config.controls
        if source in c.intervene:
            if c.intervene_mode == "hold":
                self.request("takeover" if pressed else "return")
            elif pressed:
                self.request("intervene")
            return
        for action in ("start", "stop", "discard", "success", "failure"):
            if pressed and source in getattr(c, f"episode_{action}") and self.tap is not None:
                self.tap.event("episode", action)  # the recorder acts on it; the loop never waits
                return
        if source in controls["estop"] and pressed:
            self.request("estop")
        elif source in controls["release"] and pressed:
            self.request("release")
        elif source in controls["engage"]:
            if self.config.controls.engage_mode == "hold":
                self.request("engage" if pressed else "disengage")
            elif pressed:
                self.request("toggle")

    def _handle_requests(self, client, retarget, state_msg, needed_ok, wpos, wquat, kp, q_target, q_cmd) -> None:
        while self._requests:
            action = self._requests.popleft()
            if action == "stop":
                self._stop = True
            elif action == "estop":
                try:
                    client.estop()
                except TeleopError as exc:
                    self.fault("estop", f"could not reach the robot to e-stop it: {exc}")
                self.state = ESTOP
                self.fault("estop", "e-stop: the robot holds; release (r), then engage")
            elif action == "release":
                if self.state == ESTOP:
                    client.release()
                    self.state = IDLE
                    # restart from where the robot holds (its setpoint since the e-stop)
                    held = client.get_state(1.0)
                    q_cmd[:] = np.clip(held.target, client.spec.lower, client.spec.upper)
            elif action == "disengage" or (action == "toggle" and self.state in HUMAN_STATES + POLICY_STATES):
                if self.state in HUMAN_STATES + POLICY_STATES:
                    self.state = IDLE
                    self._end_intervention("disengage")
            elif action in ("engage", "toggle"):
                if self.policy is not None:
                    if self.state == ESTOP:
                        self.fault("engage_refused", "e-stopped: release first (r)")
                    elif self.state in (IDLE, STALE):
                        self._end_intervention("stale")
                        self.state = RETURNING  # the policy takes over from where the robot is, blended
                        # the operator's mapping starts here too (what a takeover ramps to), as soon as the
                        # operator's devices have fresh samples
                        self._recentre_pending = True
                else:
                    self._engage(client, retarget, state_msg, needed_ok, wpos, wquat, kp, q_target, q_cmd)
            elif action in ("takeover", "return", "intervene"):
                self._intervene(action, client, retarget, state_msg, needed_ok, wpos, wquat, kp, q_target, q_cmd)

    def _intervene(self, action, client, retarget, state_msg, needed_ok, wpos, wquat, kp, q_target, q_cmd) -> None:
        """Takeover: the operator's wrists are re-centred on the robot's pose and the human
        command ramps in (bounded step). Return: the policy's command blends back in."""
        if self.policy is None:
            self.fault("intervene_refused", "no policy in this session ([policy] enabled = false)")
            return
        t = time.monotonic()
        if action in ("takeover", "intervene") and self.state in POLICY_STATES:
            self.state = IDLE
            if self.config.policy.recentre_on_takeover:
                self._engage(client, retarget, state_msg, needed_ok, wpos, wquat, kp, q_target, q_cmd)
            elif needed_ok and not self._recentre_pending:
                self.state = RAMPING  # toward the operator's pose under the mapping set at the policy start
            else:
                self.fault("engage_refused", self._inputs_not_ready())
            if self.state == RAMPING:
                self.intervening = True
                self.interventions.append({"takeover_s": t})
                if self.tap is not None:
                    self.tap.event("intervention", "takeover")
            else:  # refused (no fresh hand input, too far): the policy keeps control
                self.state = POLICY
        elif action in ("return", "intervene") and self.state in HUMAN_STATES and self.intervening:
            self.state = RETURNING
            self._end_intervention("return")

    def _end_intervention(self, why: str) -> None:
        if not self.intervening:
            return
        self.intervening = False
        if self.interventions:
            self.interventions[-1]["return_s"] = time.monotonic()
        if self.tap is not None:
            self.tap.event("intervention", why)

    def _engage(self, client, retarget, state_msg, needed_ok, wpos, wquat, kp, q_target, q_cmd) -> None:
        if self.state == ESTOP:
            self.fault("engage_refused", "e-stopped: release first (r)")
            return
        if self.state == LOST:
            self.fault("engage_refused", "the robot server is lost (no fresh state from it): nothing to engage")
            return
        if self.state in (RAMPING, ENGAGED):
            return
        if not needed_ok:
            self.fault("engage_refused", self._inputs_not_ready())
            return
        measured = state_msg.q
        self._recentre(retarget, state_msg, wpos, wquat)
        retarget.tick(time.monotonic_ns() / 1e9, kp, wpos, wquat, q_target)
        self._hold_unsourced(q_target, measured)
        delta = np.abs(q_target - measured)
        worst = int(np.argmax(delta))
        if delta[worst] > self.config.safety.max_start_distance_rad:
            name = client.spec.joint_names[worst]
            self.fault("engage_refused", f"{name} would have to move {delta[worst]:.2f} rad (limit "
                       f"{self.config.safety.max_start_distance_rad} rad): bring your hand to the robot's pose and engage again")
            for side in SIDES:
                retarget.disengage(side)
            return
        self.state = RAMPING

    def _inputs_not_ready(self) -> str:
        """Why the inputs cannot engage, per input: a hand whose samples arrive without keypoints
        (the driver breaks the hand contract), or an input with no fresh sample."""
        have, no_kp = self._inputs_seen
        why = []
        for i, side in enumerate(SIDES):
            inp = self.config.inputs.get(side)
            for role, dev in enumerate((inp.hand, inp.wrist) if inp else ()):
                if dev is None or have[i, role]:
                    continue
                what = f"{side} {'hand' if role == 0 else 'wrist'}"
                driver = self.config.devices[dev].driver if dev in self.config.devices else dev
                if role == 0 and no_kp[i] is not None:
                    why.append(f"{what}: samples arrive but {hand_sample_problem(no_kp[i], driver)}: see "
                               "docs/adding-a-driver.md (a hand driver fills HandSample.keypoints)")
                else:
                    why.append(f"{what}: no fresh sample from device {dev!r} ({driver}): check it with "
                               f"`teleop drivers echo {driver}`")
        return "; ".join(why) or "an input has no fresh sample: check the devices (`teleop drivers echo`)"

    def _recentre(self, retarget, state_msg, wpos, wquat) -> None:
        """Re-centre the wrist mapping on where the robot is now (the clutch)."""
        for side in SIDES:
            sl = retarget.sides[side].arm_slice
            if self.config.inputs.get(side) and self.config.inputs[side].wrist:
                retarget.engage(side, wpos[SIDES.index(side)], wquat[SIDES.index(side)], state_msg.q[sl])

    def _hold_unsourced(self, q_target, q_hold) -> None:
        """Groups with no input device (no glove on the left, no wrist tracker...) hold."""
        for side in SIDES:
            inp = self.config.inputs.get(side)
            sl = self._retarget_sides[side]
            if inp is None or inp.hand is None:
                q_target[sl.hand_slice] = q_hold[sl.hand_slice]
            if inp is None or inp.wrist is None:
                q_target[sl.arm_slice] = q_hold[sl.arm_slice]

    def _publish_status(self, timer, lat, n_lat, state_msg, captures, hand_dev, wrist_dev, keys_active) -> None:
        rate, misses, jitter_p99 = timer.recent()
        recent_lat = lat[max(0, min(n_lat, len(lat)) - 500): min(n_lat, len(lat))]
        now_ns = time.monotonic_ns()
        stale_ms = self.config.safety.stale_timeout_s * 1e3
        inputs = {}
        for i, side in enumerate(SIDES):
            for role, dev in (("hand", hand_dev[side]), ("wrist", wrist_dev[side])):
                if dev is not None:
                    h = dev.health()
                    got = int(captures[2 * i + (role == "wrist")])  # the newest fresh sample's capture time
                    age = (now_ns - got) / 1e6 if got else math.inf
                    inputs[f"{side}_{role}"] = {"device": getattr(self.config.inputs[side], role), "hz": h.rate_hz,
                                                "age_ms": round(age, 1), "fresh": age <= stale_ms}
        pol = self.policy
        self.status.publish({
            "state": self.state,
            "loop_hz": round(rate, 1),
            "rate_hz": float(self.config.rate_hz),
            "ticks": timer.ticks,
            "deadline_misses": misses,
            "jitter_ms_p99": round(jitter_p99, 3),
            "latency_ms": percentiles(recent_lat),
            "robot_mode": getattr(state_msg, "mode", "?"),
            "inputs": inputs,
            "policy": None if pol is None else {"intervening": self.intervening, "late": pol.late,
                                                "errors": pol.errors},
            "faults": dict(self.faults),
            "faults_at": dict(self.faults_at),
            "fault_count": sum(v for k, v in self.faults.items() if k not in LIMITS_APPLIED),
            "last_fault": self.fault_log[-1] if self.fault_log else None,
            "keys_live": keys_active,
        })


def open_devices(config: SessionConfig, stack: ExitStack, tap: SessionTap | None = None) -> dict[str, Driver]:
    """Open every device of ``config`` (``stack`` closes them). Every device that fails is tried
    anyway, and one error names them all, each with its message: an operator with two gloves
    unplugged learns it in one go. ``teleop run`` calls this once before the robot server starts."""
    opened: dict[str, Driver] = {}
    failed: list[str] = []
    for name, dc in config.devices.items():
        options = {k: (str(Path(v).expanduser()) if isinstance(v, str) and v.startswith("~") else v)
                   for k, v in dc.options.items()}
        try:
            drv = create_driver(dc.driver, options)
            if tap is not None:
                drv.add_tap(functools.partial(tap.sample, name))
            drv.connect()
        except TeleopError as exc:
            failed.append(f"device {name!r} ({dc.driver}): " + str(exc).replace("\n", "\n    "))
            continue
        stack.callback(drv.disconnect)
        opened[name] = drv
    if len(failed) == 1:
        raise TeleopError(failed[0])
    if failed:
        raise TeleopError(f"{len(failed)} of {len(config.devices)} devices could not be opened:\n  "
                          + "\n  ".join(failed))
    return opened


def _held_pose(state, spec) -> np.ndarray:
    """Where the robot holds now: its applied target once it has taken commands (active, hold),
    else its measured pose; within the limits."""
    return np.clip(state.target if state.mode in ("active", "hold") else state.q, spec.lower, spec.upper)
