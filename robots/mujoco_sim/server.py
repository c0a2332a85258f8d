"""The MuJoCo robot server: the bundled humanoid (or any described robot) behind the robot
bridge contract of docs/robot-bridge.md.

One thread steps physics at a fixed timestep (paced to wall clock, or free-running with
``realtime=False``), takes the newest ``joint_command``, clamps it to position limits,
rate-limits it to velocity limits, publishes ``robot_state`` at ``state_hz`` and answers
requests. A camera thread renders offscreen. Safety lives here too, because a bridge is the
last line before motors: watchdog hold when commands stop, e-stop hold until released.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from robots.description import GROUPS, bundled_description_path
from robots.mujoco_sim.camera import CameraWorker
from robots.mujoco_sim.kernels import rate_limit_step
from robots.mujoco_sim.model import SimModel, load_sim_model
from teleop.bus import Bus, CurveKeys, JointCommand, Message, Reply, Request, RobotEndpoints, RobotSpec, RobotState
from teleop.bus.codec import Header
from teleop.bus.endpoints import TOPIC_COMMAND, TOPIC_STATE
from teleop.errors import ConfigError

__all__ = ["SimConfig", "SimServer", "RPC_OPS"]

logger = logging.getLogger(__name__)

RPC_OPS = ("spec", "estop", "release", "ping", "stats", "reset")
#: Requests answered per state tick at most: a client that pipelines requests (or floods) cannot
#: starve physics, state, the watchdog or another client's e-stop (REP queues fairly per peer).
MAX_REQUESTS_PER_TICK = 4
_INSTANCE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Options of ``teleop sim``. Rates in [Hz], times in [s]."""

    description: Path = field(default_factory=bundled_description_path)
    endpoints: RobotEndpoints = field(default_factory=RobotEndpoints.on)
    keys: Path | None = None
    realtime: bool = True
    state_hz: float = 500.0
    camera_hz: float = 15.0
    camera_width: int = 320
    camera_height: int = 240
    cameras: tuple[str, ...] | None = None  # None: the description's cameras; (): none
    camera_shadows: bool = False  # shadows and MSAA: pretty, but 5-8x slower on a CPU renderer
    watchdog_s: float = 0.09  # the hold is published within 100 ms of the last command (+ one tick)
    viewer: bool = False
    duration_s: float | None = None  # stop after this much simulated time
    instance: str | None = None  # this run's id (RobotSpec.instance); None: a random one
    object_poses: str = "truth"  # "truth": MuJoCo's; "tracked": the marker tracker on the sim's own camera

    def __post_init__(self) -> None:
        for name in ("state_hz", "camera_hz", "watchdog_s"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name}={getattr(self, name)}: must be a finite number")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ConfigError(f"duration_s={self.duration_s}: must be a finite number of seconds > 0")
        if self.instance is not None and not _INSTANCE.match(self.instance):
            raise ConfigError(f"instance={self.instance!r}: 1-64 characters of A-Z a-z 0-9 _ . -")
        if not 1.0 <= self.state_hz <= 5000.0:
            raise ConfigError(f"state_hz={self.state_hz}: must be within 1..5000 Hz")
        if not 0.0 <= self.camera_hz <= 120.0:
            raise ConfigError(f"camera_hz={self.camera_hz}: must be within 0..120 Hz (0 disables cameras)")
        if not 0.01 <= self.watchdog_s <= 10.0:
            raise ConfigError(f"watchdog_s={self.watchdog_s}: must be within 0.01..10 s (the bridge contract asks <= 0.5 s)")
        if self.camera_width < 16 or self.camera_height < 16:
            raise ConfigError("camera size must be at least 16x16 pixels")
        if self.object_poses not in ("truth", "tracked"):
            raise ConfigError(f"object_poses={self.object_poses!r}: 'truth' (MuJoCo's poses) or 'tracked' "
                              "(the marker tracker on the sim's camera)")


@dataclass
class _Trace:
    seq: int = -1
    capture_ns: int = 0
    recv_ns: int = 0
    applied_ns: int = 0
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class SimServer:
    """Usage: ``SimServer(config).run()`` (blocks; ``stop()`` from another thread or a signal)."""

    def __init__(self, config: SimConfig | None = None, sim: SimModel | None = None) -> None:
        self.config = config or SimConfig()
        self.sim = sim or load_sim_model(self.config.description)
        m = self.sim.model
        self.model = m
        self.data = mujoco.MjData(m)
        self.tick_s = 1.0 / self.config.state_hz
        self.steps_per_tick = max(1, round(self.tick_s / m.opt.timestep))
        self.tick_s = self.steps_per_tick * m.opt.timestep  # the state period is whole physics steps
        if self.config.state_hz > 1.01 / m.opt.timestep:
            raise ConfigError(
                f"state_hz {self.config.state_hz:.0f} exceeds the model's physics rate {1 / m.opt.timestep:.0f} Hz "
                f"(timestep {m.opt.timestep * 1e3:g} ms); lower --state-hz or the model timestep"
            )
        cams = self.sim.camera_names if self.config.cameras is None else self.config.cameras
        unknown = [c for c in cams if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, c) < 0]
        if unknown:
            raise ConfigError(f"unknown camera(s) {unknown}; the model has {list(self.sim.camera_names)}")
        self.camera_names = tuple(cams) if self.config.camera_hz > 0 else ()
        self._stop = threading.Event()
        self.instance = self.config.instance or secrets.token_hex(8)
        self._requests_left = MAX_REQUESTS_PER_TICK
        self.mode = "idle"
        self.counters = {
            "commands": 0,
            "ignored_in_estop": 0,
            "watchdog_trips": 0,
            "estops": 0,
            "ticks": 0,
            "overruns": 0,
            "clamped_position": 0,
            "rate_limited": 0,
            "other_instance": 0,  # commands addressed to another server instance, dropped
            "requests_deferred": 0,  # ticks whose request budget ran out (a flood or a pipelining client)
        }
        self._trace = _Trace()
        self._last_cmd_wall = 0.0
        self.desired = np.zeros(self.sim.n_joints)
        self.target = np.zeros(self.sim.n_joints)
        self._max_step = self.sim.velocity * m.opt.timestep
        self._f6 = np.zeros(6)
        rate_limit_step(self.desired, self.target, self._max_step)  # compile before the loop
        self._reset()
        keys = CurveKeys.load(self.config.keys) if self.config.keys else None
        self.bus = Bus(f"sim:{self.sim.description.name}", keys=keys)
        self.camera: CameraWorker | None = None
        self.objects = None
        try:
            self.objects = self._object_tracking()
            ep = self.config.endpoints
            self.state_pub = self.bus.publisher(ep.state)
            self.cmd_sub = self.bus.subscriber(
                ep.command, [TOPIC_COMMAND], accept=(JointCommand,), bind=True, mode="latest",
                shapes={"n": self.sim.n_joints}, max_bytes=1 << 20,
            )
            self.rpc = self.bus.rpc_server(ep.rpc)
            if self.camera_names:
                self.camera = CameraWorker(
                    self.sim.description, m.nq, self.camera_names, self.config.camera_width,
                    self.config.camera_height, ep.camera, keys=self.config.keys, shadows=self.config.camera_shadows,
                )
                self.camera.start()
            if self.objects is not None:
                self.objects.start(ep.camera, self.config.keys)
        except BaseException:
            self.close()
            raise
        self._spec = self._build_spec()
        import zmq

        # what idle waits on: commands, then requests (left out once the tick's request budget is spent)
        self._wake_fds = [self.cmd_sub.sock.getsockopt(zmq.FD), self.rpc.sock.getsockopt(zmq.FD)]

    def _object_tracking(self):
        """The tracker on the sim's own camera, when ``object_poses = "tracked"``."""
        cfg = self.config
        if cfg.object_poses != "tracked":
            return None
        desc = self.sim.description
        if desc.objects_path is None:
            raise ConfigError(f"object_poses='tracked': the robot description {desc.source} names no objects config "
                              "(key 'objects'), so there are no markers to track")
        from robots.objects.config import load_objects
        from robots.objects.sim_tracking import SimObjectTracking

        objects = load_objects(desc.objects_path)
        if objects.camera not in self.camera_names:
            raise ConfigError(f"object_poses='tracked' reads camera {objects.camera!r}, which this server does not "
                              f"render (cameras: {list(self.camera_names)}, camera_hz {cfg.camera_hz:g})")
        return SimObjectTracking(self.sim, objects, cfg.camera_width, cfg.camera_height)

    # -- state --------------------------------------------------------------------------------
    def _reset(self, shifts: dict[str, object] | None = None) -> None:
        """Back to the home keyframe. ``shifts``: ``<body>_dx`` / ``_dy`` / ``_dz`` [m] move a free
        object from its home position (varied starts for data collection and policy evaluation)."""
        m, d, sim = self.model, self.data, self.sim
        moves = []  # (qpos index, metres): every shift checked before anything moves
        for key, value in (shifts or {}).items():
            body, _, axis = key.rpartition("_")
            if body not in sim.body_names or axis not in ("dx", "dy", "dz"):
                raise ValueError(f"reset: {key!r} is not <body>_dx|dy|dz; bodies: {list(sim.body_names)}")
            if type(value) not in (int, float) or not math.isfinite(value) or abs(value) > 0.5:
                raise ValueError(f"reset: {key}={value!r}: a finite number of metres within -0.5..0.5")
            jnt = m.body_jntadr[m.body(body).id]
            moves.append((m.jnt_qposadr[jnt] + "xyz".index(axis[1]), float(value)))
        if sim.home_key >= 0:
            mujoco.mj_resetDataKeyframe(m, d, sim.home_key)
        else:
            mujoco.mj_resetData(m, d)
        for index, metres in moves:
            d.qpos[index] += metres
        mujoco.mj_forward(m, d)
        q = np.clip(d.qpos[sim.qpos_adr], sim.lower, sim.upper)
        self.target[:] = q
        self.desired[:] = q
        d.ctrl[sim.actuator_ids] = q
        self.mode = "idle"

    def _fingertip_forces(self) -> np.ndarray:
        """Net contact force on each fingertip body, world frame [N]. Shape (f, 3)."""
        m, d, sim = self.model, self.data, self.sim
        out = np.zeros((len(sim.fingertip_names), 3))
        if d.ncon == 0 or not len(out):
            return out
        owner = sim.geom_fingertip[d.contact.geom]  # (ncon, 2): fingertip index or -1
        hits = np.flatnonzero((owner >= 0).any(axis=1))
        if hits.size == 0:
            return out
        f6 = self._f6
        frames = d.contact.frame
        for i in hits:  # only contacts that touch a fingertip (a handful)
            mujoco.mj_contactForce(m, d, int(i), f6)
            world = frames[i].reshape(3, 3).T @ f6[:3]  # force of geom1 on geom2
            t1, t2 = owner[i]
            if t2 >= 0:
                out[t2] += world
            if t1 >= 0:
                out[t1] -= world
        return out

    def state(self) -> RobotState:
        d, sim = self.data, self.sim
        tracked = {}
        if self.objects is not None:  # the tracker's measurements stand in for MuJoCo's poses
            bodies, pose_ns, status, truth = self.objects.fill()
            tracked = {"body_pose_ns": pose_ns, "body_status": status, "body_pose_truth": truth}
        else:
            bodies = np.concatenate([d.xpos[sim.body_ids], d.xquat[sim.body_ids]], axis=1)
        tr = self._trace
        return RobotState(
            time_s=float(d.time),
            mode=self.mode,
            q=d.qpos[sim.qpos_adr],
            dq=d.qvel[sim.dof_adr],
            target=self.target.copy(),
            effort=d.actuator_force[sim.actuator_ids],
            body_pose=bodies,
            fingertip_force=self._fingertip_forces(),
            cmd_seq=tr.seq,
            cmd_capture_ns=tr.capture_ns,
            cmd_recv_ns=tr.recv_ns,
            cmd_applied_ns=tr.applied_ns,
            cmd_source_capture_ns=tr.sources,
            instance=self.instance,
            **tracked,
        )

    # -- commands and safety ------------------------------------------------------------------
    def _on_command(self, header: Header, cmd: JointCommand, recv_ns: int) -> None:
        self.counters["commands"] += 1
        if cmd.instance and cmd.instance != self.instance:  # meant for an earlier run of this server
            self.counters["other_instance"] += 1
            return
        if self.mode == "estop":
            self.counters["ignored_in_estop"] += 1
            return
        sim = self.sim
        clipped = np.clip(cmd.q, sim.lower, sim.upper)
        if not np.array_equal(clipped, cmd.q):
            self.counters["clamped_position"] += 1
        self.desired[:] = clipped
        self.mode = "active"
        self._last_cmd_wall = time.monotonic()
        # applied = became the setpoint (clamped); the rate-limited target tracks it from the next step
        self._trace = _Trace(header.seq, header.capture_ns, recv_ns, time.monotonic_ns(), np.array(cmd.source_capture_ns))

    def _hold(self) -> None:
        self.desired[:] = self.target

    def estop(self) -> None:
        """Hold where the robot is now and ignore commands until ``release``."""
        q = np.clip(self.data.qpos[self.sim.qpos_adr], self.sim.lower, self.sim.upper)
        self.target[:] = q
        self.desired[:] = q
        self.data.ctrl[self.sim.actuator_ids] = q
        if self.mode != "estop":
            self.counters["estops"] += 1
        self.mode = "estop"

    def _apply_targets(self) -> None:
        # Rate limit: never move the applied target faster than the velocity limit.
        if rate_limit_step(self.desired, self.target, self._max_step):
            self.counters["rate_limited"] += 1
        self.data.ctrl[self.sim.actuator_ids] = self.target

    # -- requests ---------------------------------------------------------------------------
    def _build_spec(self) -> RobotSpec:
        sim, cfg = self.sim, self.config
        desc = sim.description
        toml_text = desc.source.read_text(encoding="utf-8") if desc.source else ""
        return RobotSpec(
            name=desc.name,
            joint_names=sim.joint_names,
            group_names=GROUPS,
            group_sizes=sim.group_sizes,
            lower=np.array(sim.lower),
            upper=np.array(sim.upper),
            velocity=np.array(sim.velocity),
            body_names=sim.body_names,
            fingertip_names=sim.fingertip_names,
            camera_names=self.camera_names,
            camera_shapes=np.array([[cfg.camera_height, cfg.camera_width]] * len(self.camera_names), dtype=np.int64).reshape(-1, 2),
            camera_hz=cfg.camera_hz if self.camera_names else 0.0,
            state_hz=1.0 / self.tick_s,
            watchdog_s=cfg.watchdog_s,
            endpoints=cfg.endpoints.as_dict(),
            wrist_frames=tuple(desc.sides[s].wrist_frame for s in ("left", "right")),
            description_toml=toml_text,
            instance=self.instance,
        )

    def stats(self) -> dict[str, int | float | str]:
        out: dict[str, int | float | str] = dict(self.counters)
        out["mode"] = self.mode
        out["instance"] = self.instance
        out["time_s"] = float(self.data.time)
        for reason, count in self.cmd_sub.stats.rejected.items():
            out[f"rejected.{reason}"] = count
        out["rejected_total"] = self.cmd_sub.stats.rejected_total
        out["rpc_rejected_total"] = self.rpc.decoder.stats.rejected_total
        if self.camera is not None:
            out["camera_frames"] = self.camera.frames
            out["camera_skipped"] = self.camera.skipped
            if self.camera.error:
                out["camera_error"] = self.camera.error
        if self.objects is not None:
            out["objects_frames"] = self.objects.frames
            out.update({f"objects.{k}": v for k, v in self.objects.tracker.counters.as_dict().items()})
            if self.objects.error:
                out["objects_error"] = self.objects.error
        return out

    def _handle(self, header: Header, req: Message) -> Message:
        assert isinstance(req, Request)  # the RPC decoder only accepts requests
        op = req.op
        if op == "spec":
            return self._spec
        if op == "estop":
            self.estop()
            logger.warning("e-stop requested by %s", header.source)
            return Reply(op=op, ok=True, values={"mode": self.mode})
        if op == "release":
            if self.mode == "estop":
                self.mode = "idle"
                logger.warning("e-stop released by %s", header.source)
            return Reply(op=op, ok=True, values={"mode": self.mode})
        if op == "ping":
            return Reply(op=op, ok=True, values={"t_ns": time.monotonic_ns()})
        if op == "stats":
            return Reply(op=op, ok=True, values=self.stats())
        if op == "reset":
            estopped = self.mode == "estop"
            try:
                self._reset(dict(req.args))
            except ValueError as exc:  # checked before anything moved: the robot is where it was
                return Reply(op=op, ok=False, error=str(exc))
            if estopped:  # only `release` clears an e-stop
                self.estop()
            return Reply(op=op, ok=True, values={"mode": self.mode})
        return Reply(op=op, ok=False, error=f"unknown op {op!r}; ops: {list(RPC_OPS)}")

    # -- loop -------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> dict[str, int | float | str]:
        """Run until ``stop()`` (or ``duration_s`` of simulated time). Returns the stats."""
        m, d, cfg = self.model, self.data, self.config
        cam_period = 1.0 / cfg.camera_hz if self.camera is not None else 0.0
        next_cam = d.time if self.camera is not None else float("inf")
        viewer = self._open_viewer() if cfg.viewer else None
        next_view = 0.0
        start_sim = d.time
        next_wall = time.perf_counter()
        try:
            while not self._stop.is_set():
                self._take_command()
                now = time.monotonic()
                if self.mode == "active" and now - self._last_cmd_wall > cfg.watchdog_s:
                    self.mode = "hold"
                    self.counters["watchdog_trips"] += 1
                    self._hold()
                    logger.warning("no command for %.0f ms: holding", cfg.watchdog_s * 1e3)
                for _ in range(self.steps_per_tick):
                    self._apply_targets()
                    mujoco.mj_step(m, d)
                self.state_pub.publish(self.state(), TOPIC_STATE)
                self.counters["ticks"] += 1
                self._requests_left = MAX_REQUESTS_PER_TICK
                self._serve_requests()
                if d.time >= next_cam:
                    if not cfg.realtime:
                        self.camera.wait_idle()  # type: ignore[union-attr]
                    self.camera.submit(d.qpos, d.time)  # type: ignore[union-attr]
                    if self.objects is not None:
                        self.objects.on_render(d)
                    next_cam += cam_period
                if viewer is not None and time.perf_counter() >= next_view:
                    if not viewer.is_running():
                        break
                    viewer.sync()
                    next_view = time.perf_counter() + 1 / 60
                if cfg.duration_s is not None and d.time - start_sim >= cfg.duration_s:
                    break
                if cfg.realtime:
                    next_wall += self.tick_s
                    delay = self._idle_until(next_wall)
                    if delay < -self.tick_s:
                        self.counters["overruns"] += 1
                        if delay < -0.1:  # far behind (debugger, swap): resync, do not burst
                            next_wall = time.perf_counter()
        finally:
            if viewer is not None:
                viewer.close()
        if self.camera is not None:
            self.camera.wait_idle()
        return self.stats()

    def _idle_until(self, deadline: float) -> float:
        """Sleep until ``deadline`` (perf_counter s), taking commands and answering requests the
        moment they arrive, so a command becomes the setpoint at once and an e-stop is applied at
        once, not at the next tick. Returns how early (+) or late (-) we were."""
        import zmq

        cmd, rpc = self.cmd_sub.sock, self.rpc.sock
        delay = deadline - time.perf_counter()
        while delay > 0:
            # ZMQ_EVENTS says what is queued (and re-arms the sockets' edge-triggered FDs); select
            # then waits on those FDs with a microsecond timeout (zmq's own poll counts whole ms)
            if cmd.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                self._take_command()
            elif self._requests_left > 0 and rpc.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                self._serve_requests()
            else:
                select.select(self._wake_fds if self._requests_left > 0 else self._wake_fds[:1], [], [], delay)
            delay = deadline - time.perf_counter()
        return delay

    def _serve_requests(self) -> None:
        """Answer queued requests within this tick's budget; the rest wait for the next tick."""
        while self._requests_left > 0 and self.rpc.serve_one(self._handle):
            self._requests_left -= 1
        if self._requests_left <= 0:
            self.counters["requests_deferred"] += 1

    def _take_command(self) -> None:
        """Take the newest command as the controller setpoint now, also between ticks; the
        velocity-limited target moves toward it from the next physics step on."""
        got = self.cmd_sub.latest()
        if got is not None:
            self._on_command(got.header, got.msg, got.recv_ns)  # type: ignore[arg-type]

    def _open_viewer(self):  # pragma: no cover - needs a display
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            raise ConfigError("--viewer needs a display (DISPLAY is not set); run headless without --viewer")
        import mujoco.viewer

        return mujoco.viewer.launch_passive(self.model, self.data)

    def close(self) -> None:
        if getattr(self, "objects", None) is not None:
            self.objects.stop()
        if self.camera is not None:
            self.camera.stop()
            self.camera = None
        self.bus.close() if hasattr(self, "bus") else None

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
