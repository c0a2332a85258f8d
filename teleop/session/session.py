"""The teleop session: devices -> retargeting -> safety -> robot, as a pipeline of stages.

``Session.run`` sets up (the robot server, the retargeting kernels, the tap, the policy, the
recorder, the devices), builds the frame (teleop/session/frame.py), the state machine
(machine.py), the arbiter (arbiter.py) and the stage list (stages/), runs the pipeline
(pipeline.py: a fixed-rate tick of every stage, and in ``on_sample`` mode a pass of the command
path as soon as a sample arrives), and tears down with a summary: loop rate and jitter, the
command path per stage (trace.py), faults, episodes. Garbage collection is frozen and disabled
while the pipeline runs; the real-time settings (realtime.py) apply to its thread.
"""

from __future__ import annotations

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
from retarget.bimanual import BimanualRetargeter
from robots.client import RobotClient
from robots.description import load_description
from teleop.bus.endpoints import session_endpoints
from teleop.bus.messages import SessionInfo
from teleop.errors import ConfigError, TeleopError
from teleop.lifeline import child_env
from teleop.loop import LoopTimer
from teleop.session import stages as st
from teleop.session.arbiter import Arbiter
from teleop.session.config import SessionConfig
from teleop.session.frame import Frame
from teleop.session.haptics import HapticsMapper
from teleop.session.keys import KeyReader
from teleop.session.machine import (
    ENGAGED,
    ESTOP,
    HUMAN_STATES,
    IDLE,
    LOST,
    POLICY,
    POLICY_STATES,
    RAMPING,
    RETURNING,
    STALE,
    StateMachine,
)
from teleop.session.pipeline import Cadence, Pipeline
from teleop.session.realtime import apply as apply_realtime
from teleop.session.realtime import restore as restore_realtime
from teleop.session.safety import SafetyFilter
from teleop.session.stages.robot import held_pose
from teleop.session.status import StatusPrinter
from teleop.session.tap import SessionTap
from teleop.session.trace import CommandTrace
from teleop.session.watch import ChildWatch, RobotWatch
from teleop.types import SIDES
from teleop.warmup import compile_progress

__all__ = ["Session", "SessionSummary", "open_devices", "IDLE", "RAMPING", "ENGAGED", "STALE", "ESTOP", "LOST",
           "POLICY", "RETURNING", "HUMAN_STATES", "POLICY_STATES"]

logger = logging.getLogger(__name__)


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
        self.machine: StateMachine | None = None
        self._state = IDLE  # before the machine exists
        self.faults: dict[str, int] = {}
        self.faults_at: dict[str, tuple[float, str]] = {}  # reason -> (monotonic s, message) of its newest
        self.fault_log: deque[str] = deque(maxlen=200)
        self.devices: dict[str, Driver] = {}
        self._stop = False
        self.sim_process: subprocess.Popen | None = None
        self.sim_log: Path | None = None
        self.client: RobotClient | None = None
        self.on_tick = None  # optional callable(session, tick) for tests and tools, once per tick
        self.robot_state = None  # the newest robot state the loop has read (read-only for hooks)
        self.requests: deque[str] = deque()
        self.tap: SessionTap | None = None
        self.recorder_process: subprocess.Popen | None = None
        self.recorder_log: Path | None = None
        self.episodes: list[str] = []  # episode folders the recorder kept
        self.policy = None  # teleop.policy.client.PolicyClient when [policy] is enabled
        self.children = ChildWatch()  # the robot server and recorder this session started
        self.stop_reason = ""  # why the session ended by itself (its robot server died...)
        self.rec_status_path = ""  # the episode the recorder said it was writing
        self.frame: Frame | None = None
        self.pipeline: Pipeline | None = None
        self.web = None  # teleop.session.web.SessionWeb when [web] is enabled

    # -- what hooks read (the frame's arrays and the machine's state) -----------------------------
    @property
    def state(self) -> str:
        return self.machine.state if self.machine is not None else self._state

    @property
    def intervening(self) -> bool:
        return self.machine is not None and self.machine.intervening

    @property
    def interventions(self) -> list[dict[str, float]]:
        return self.machine.interventions if self.machine is not None else []

    @property
    def _recentre_pending(self) -> bool:
        return self.machine is not None and self.machine.recentre_pending

    @property
    def command(self) -> np.ndarray:  # what the robot is commanded now
        return self.frame.q_cmd  # type: ignore[union-attr]

    @property
    def target(self) -> np.ndarray:  # the operator's retargeted target
        return self.frame.q_target  # type: ignore[union-attr]

    @property
    def policy_command(self) -> np.ndarray:
        return self.frame.q_policy  # type: ignore[union-attr]

    # -- faults and controls --------------------------------------------------------------------
    def fault(self, reason: str, message: str) -> None:
        self.faults[reason] = self.faults.get(reason, 0) + 1
        self.faults_at[reason] = (time.monotonic(), message)
        line = f"{time.strftime('%H:%M:%S')} {reason}: {message}"
        if not self.fault_log or not self.fault_log[-1].endswith(message):
            self.fault_log.append(line)
            logger.warning("%s: %s", reason, message)
            self.tap_event("fault", reason, message=message)

    def tap_event(self, event: str, detail: str = "", **values: Any) -> None:
        if self.tap is not None:
            self.tap.event(event, detail, **values)

    def request(self, action: str) -> None:
        """engage, disengage, toggle, estop, release, stop, takeover, return, intervene (also used
        by keys, buttons and the bus); carried out by the state machine at the next tick."""
        self.requests.append(action)

    def input_device(self, side: str, role: int) -> Driver | None:
        """The device that gives ``side``'s hand (role 0) or wrist (role 1), if any."""
        inp = self.config.inputs.get(side)
        name = (inp.hand if role == 0 else inp.wrist) if inp else None
        return self.devices.get(name) if name else None

    def hold_unsourced(self, q_target: np.ndarray, q_hold: np.ndarray) -> None:
        """Groups with no input device (no glove on the left, no wrist tracker...) hold."""
        for side in SIDES:
            inp = self.config.inputs.get(side)
            sl = self._retarget_sides[side]
            if inp is None or inp.hand is None:
                q_target[sl.hand_slice] = q_hold[sl.hand_slice]
            if inp is None or inp.wrist is None:
                q_target[sl.arm_slice] = q_hold[sl.arm_slice]

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
        self.devices.update(open_devices(self.config, stack, self.tap, self.web.server if self.web else None))

    def _start_web(self, stack: ExitStack, client: RobotClient) -> None:
        """[web]: the console (and the XR page, for the webxr devices) before the devices open."""
        from teleop.session.web import SessionWeb

        self.status.phase(f"starting the web console on port {self.config.web.port}")
        self.web = SessionWeb(self, client.endpoints.camera, tuple(client.spec.camera_names))
        stack.callback(self.web.stop)
        self.web.start()

    def _set_up(self, stack: ExitStack) -> tuple[RobotClient, BimanualRetargeter, SafetyFilter, str]:
        """The robot, the kernels (compiled before anything moves), the tap, the policy, the
        recorder and the devices, in that order. Returns the client, the retargeter, the safety
        filter and the recorder's control endpoint."""
        cfg = self.config
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
        self._retarget_sides = retarget.sides
        safety = SafetyFilter.for_retargeter(retarget, spec.lower, spec.upper, spec.velocity, cfg.rate_hz,
                                             cfg.safety.min_hand_distance_m)
        warm = np.clip(np.zeros(retarget.n_command), spec.lower, spec.upper)
        safety.step(warm, warm, warm.copy())  # compile/load before the loop, not in it
        tap_ep, control_ep = session_endpoints(port_base=cfg.robot.port_base)
        tap = self.tap = SessionTap(tap_ep, retarget.n_command, keys=self._keys,
                                    source=f"session-{secrets.token_hex(6)}")
        tap.start()
        stack.callback(tap.stop)
        tap.set_info(self._session_info(spec), spec)
        client.get_state(2.0)
        tap.event("clock", source=client.server_source, offset_ns=-client.offset.offset_ns,
                  rtt_ns=client.offset.rtt_ns)
        if cfg.policy.enabled:
            from teleop.policy.client import PolicyClient

            self.status.phase(f"connecting to the policy at {cfg.policy.endpoint}")
            pc = cfg.policy
            self.policy = PolicyClient(pc.endpoint, retarget.n_command, len(spec.body_names), rate_hz=pc.rate_hz,
                                       keys=self._keys, timeout_s=pc.timeout_s, max_hold_s=pc.max_hold_s,
                                       task=pc.task, n_hands=2, n_tactile=len(spec.fingertip_names))
            self.policy.start()
            stack.callback(self.policy.stop)
        if cfg.recorder.enabled:
            self.status.phase(f"starting the recorder ({cfg.dataset_dir()})")
            self._start_recorder(stack, client, tap_ep, control_ep, spec)
        if cfg.web.enabled:
            self._start_web(stack, client)
        self.status.phase("opening devices: " + ", ".join(cfg.devices))
        self._open_devices(stack)
        tap.set_info(self._session_info(spec), spec)  # now with the devices' channel names
        return client, retarget, safety, control_ep

    def _build(self, client: RobotClient, retarget: BimanualRetargeter, safety: SafetyFilter, keys: KeyReader,
               timer: LoopTimer, trace: CommandTrace) -> Pipeline:
        """The frame, the state machine, the arbiter and the stage list, in pipeline order."""
        cfg, spec = self.config, client.spec
        frame = self.frame = Frame(retarget.n_command)
        machine = self.machine = StateMachine(self, client, retarget)
        frame.robot_state = self.robot_state = first = client.get_state(2.0)
        frame.q_cmd[:] = held_pose(first, spec)
        period_s = max(1.0 / cfg.rate_hz, 1.0 / spec.state_hz)  # at most one command per robot tick
        cadence = Cadence(cfg.loop.mode, machine, period_s, cfg.loop.feed_s)
        arbiter = self.arbiter = Arbiter(self, machine)
        output = self.output = st.OutputStage(client, machine, trace)
        robot = self.robot_stage = st.RobotStage(self, machine, RobotWatch(client, cfg.safety.robot_timeout_s), trace)
        stages = [
            st.InputsStage(self, cfg.safety.stale_timeout_s),
            st.ControlsStage(self, keys),
            robot,
            *([st.PolicyStage(self.policy, time.monotonic_ns())] if self.policy is not None else []),
            st.MachineStage(self, machine, cadence),
            st.RetargetStage(retarget),
            st.SafetyStage(arbiter, safety),
            output,
            st.TapStage(self.tap, machine, int(1e9 / cfg.rate_hz)),  # type: ignore[arg-type]
            st.HapticsStage(self, HapticsMapper(cfg.haptics, tuple(spec.fingertip_names))),
            st.StatusStage(self, machine, timer, trace, keys),
        ]
        pipeline = self.pipeline = Pipeline(stages, frame, cadence, timer)
        pipeline.stale_s = cfg.safety.stale_timeout_s
        if cadence.on_sample:
            for side in SIDES:
                for role in (0, 1):
                    if (dev := self.input_device(side, role)) is not None:
                        dev.add_waker(pipeline.wake.set)
        return pipeline

    # -- the loop -------------------------------------------------------------------------------
    def run(self, seconds: float | None = None) -> SessionSummary:
        cfg = self.config
        with ExitStack() as stack:
            client, retarget, safety, control_ep = self._set_up(stack)
            self._begin_episode()
            if self.recorder_process is not None:
                # after the first episode began
                self.status.watch_recorder(control_ep, self._keys, shown_elsewhere=self.web is not None)
            keys = KeyReader()
            if self.use_keys and keys.start():
                stack.callback(keys.stop)
            timer = LoopTimer(cfg.rate_hz)
            trace = CommandTrace()
            pipeline = self._build(client, retarget, safety, keys, timer, trace)
            t_start = time.monotonic()
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
            try:
                while not self._stop and (seconds is None or time.monotonic() - t_start < seconds):
                    pipeline.tick()
                    if self.on_tick is not None:
                        self.on_tick(self, pipeline.frame.tick - 1)
                    pipeline.between_ticks()
                    timer.wait()
            except KeyboardInterrupt:
                pass
            finally:
                restore_realtime(realtime)
                sys.setswitchinterval(switch)
                gc.enable()
                gc.unfreeze()
            return self._tear_down(client, timer, trace, t_start, realtime.report)

    def _tear_down(self, client: RobotClient, timer: LoopTimer, trace: CommandTrace, t_start: float,
                   realtime: dict[str, Any]) -> SessionSummary:
        cfg, frame, tap = self.config, self.frame, self.tap
        assert frame is not None and tap is not None and self.pipeline is not None
        if self.state not in (ESTOP, LOST):  # leave the robot holding where it is
            client.send_command(frame.q_cmd)
        summary = timer.summary()
        elapsed = time.monotonic() - t_start
        self.pipeline.stages[-1].publish(frame)
        stages_ms = trace.table()
        result = SessionSummary(
            seconds=round(elapsed, 3), rate_hz=cfg.rate_hz, loop_hz=summary.achieved_hz, ticks=summary.ticks,
            deadline_misses=summary.deadline_misses, jitter_ms=summary.jitter_ms, latency_ms=stages_ms["total"],
            commands=self.output.commands, engaged_s=round(self.arbiter.engaged_ticks / cfg.rate_hz, 3),
            faults=dict(self.faults), fault_log=list(self.fault_log),
            held_rate=summary.achieved_hz >= 0.95 * cfg.rate_hz, final_state=self.state,
            extra={"robot": client.spec.name, "final_robot_state": frame.robot_state,
                   "robot_stats": self._robot_stats(client), "stop_reason": self.stop_reason,
                   "robot_max_gap_ms": round(self.robot_stage.watch.max_gap_s * 1e3, 1),
                   "realtime": realtime, "loop_mode": cfg.loop.mode, "stages_ms": stages_ms,
                   "traced_commands": trace.n, "sample_passes": self.pipeline.sample_passes,
                   "stage_compute_us": self.pipeline.clock.table_us()},
        )
        logger.info("command path per stage [ms] (%d commands traced, %s mode): %s", trace.n, cfg.loop.mode,
                    "; ".join(f"{k} p50 {v['p50']:.3f} p99 {v['p99']:.3f} max {v['max']:.3f}"
                              for k, v in stages_ms.items()))
        if not result.held_rate:
            self.fault("rate", f"the loop ran at {summary.achieved_hz:.0f} Hz, below the configured "
                       f"{cfg.rate_hz:.0f} Hz")
            result.fault_log = list(self.fault_log)
        values = trace.second()
        if values:
            tap.event("stages", "", **values)
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
        self.rec_status_path = str(reply.values.get("path", ""))  # type: ignore[attr-defined]
        logger.info("recording episode %s", self.rec_status_path)

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


def open_devices(config: SessionConfig, stack: ExitStack, tap: SessionTap | None = None,
                 web_server=None) -> dict[str, Driver]:
    """Open every device of ``config`` (``stack`` closes them). Every device that fails is tried
    anyway, and one error names them all, each with its message: an operator with two gloves
    unplugged learns it in one go. ``teleop run`` calls this once before the robot server starts.
    A device that serves a web page (``webxr``) serves it on ``web_server`` when given ([web])."""
    opened: dict[str, Driver] = {}
    failed: list[str] = []
    for name, dc in config.devices.items():
        options = {k: (str(Path(v).expanduser()) if isinstance(v, str) and v.startswith("~") else v)
                   for k, v in dc.options.items()}
        try:
            drv = create_driver(dc.driver, options)
            if web_server is not None and hasattr(drv, "attach_web"):
                drv.attach_web(web_server)
            if tap is not None:
                both = drv.sample_spec.side is None and bool({"hand", "pose"} & set(drv.sample_spec.kinds))
                drv.add_tap(functools.partial(tap.sample, name, by_side=both))
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
