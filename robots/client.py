"""Client side of the robot bridge contract: used by the teleop session, the recorder, the
conformance kit and anything else that talks to a robot server."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from robots.base import Robot
from teleop.bus import Bus, CameraFrame, CurveKeys, JointCommand, Received, Reply, RobotSpec, RobotState, Subscriber
from teleop.bus.endpoints import TOPIC_CAMERA, TOPIC_COMMAND, TOPIC_STATE, RobotEndpoints, connect_address
from teleop.errors import DeviceNotConnectedError, LinkError, LinkTimeoutError, WrongRobotError

__all__ = ["RobotClient", "ClockOffset"]


def _requires_connected(method):
    @functools.wraps(method)
    def wrapper(self: RobotClient, *args, **kwargs):
        if not self.is_connected:
            raise DeviceNotConnectedError(f"robot client for {self.rpc_endpoint} is not connected; call connect() first")
        return method(self, *args, **kwargs)

    return wrapper


class ClockOffset:
    """Server clock minus our clock [ns], from the ping with the smallest round trip."""

    def __init__(self, offset_ns: int, rtt_ns: int) -> None:
        self.offset_ns = offset_ns
        self.rtt_ns = rtt_ns

    def __repr__(self) -> str:
        return f"ClockOffset(offset_ns={self.offset_ns}, rtt_ns={self.rtt_ns})"


class RobotClient(Robot):
    """Talks to a robot server whose request endpoint is ``rpc_endpoint``; every other endpoint
    comes from the server's spec.

    The client is bound to one server instance (``RobotSpec.instance``, or ``instance`` when the
    caller knows which one it started): a state from any other instance raises
    ``WrongRobotError`` and is never returned, so a restarted server, or another one on the same
    ports, is never taken for the robot this client was driving. ``state_age_s`` says how long
    ago the newest state arrived (the session holds when it grows)."""

    def __init__(
        self,
        rpc_endpoint: str = RobotEndpoints.on().rpc,
        *,
        keys: str | Path | None = None,
        source: str = "client",
        timeout_s: float = 2.0,
        instance: str | None = None,
    ) -> None:
        self.rpc_endpoint = rpc_endpoint
        self.expected_instance = instance
        self.instance = ""  # the instance this client is bound to (from the spec)
        self.last_command_seq = -1  # header sequence of the newest command sent
        self.last_state_ns = 0  # local monotonic time the newest state of our instance arrived
        self.keys_dir = keys
        self.source = source
        self.timeout_s = timeout_s
        self._bus: Bus | None = None
        self._spec: RobotSpec | None = None
        self._state_sub: Subscriber | None = None
        self._last_state: RobotState | None = None
        self.offset = ClockOffset(0, 0)  # server clock - ours, measured at connect()
        self.server_source = ""  # the bus source id the server stamps its states with

    # -- lifecycle --------------------------------------------------------------------------
    def connect(self) -> RobotSpec:
        if self._bus is not None:
            return self.spec
        keys = CurveKeys.load(self.keys_dir) if self.keys_dir else None
        self._bus = Bus(self.source, keys=keys)
        try:
            self._rpc = self._bus.rpc_client(self.rpc_endpoint, self.timeout_s)
            spec = self._rpc.request("spec")
            if not isinstance(spec, RobotSpec):
                raise LinkError(f"{self.rpc_endpoint} answered 'spec' with {type(spec).__name__}, not a robot_spec")
            if not spec.instance:
                raise LinkError(f"the robot server at {self.rpc_endpoint} ({spec.name}) reports no instance id; a "
                                "server must name each run of itself in its spec and states (docs/robot-bridge.md)")
            if self.expected_instance and spec.instance != self.expected_instance:
                raise WrongRobotError(f"{self.rpc_endpoint} is answered by instance {spec.instance!r} of "
                                      f"{spec.name}, not {self.expected_instance!r}")
            self._spec = spec
            self.instance = spec.instance
            self.offset = self.clock_offset(20)  # the shortest of 20 round trips: a busy server skews a few
            host = urlsplit(self.rpc_endpoint).hostname if self.rpc_endpoint.startswith("tcp://") else None
            self.endpoints = RobotEndpoints.from_dict({k: connect_address(v, host) for k, v in spec.endpoints.items()})
            shapes = {"n": spec.n_joints, "b": len(spec.body_names), "f": len(spec.fingertip_names)}
            self._state_sub = self._bus.subscriber(
                self.endpoints.state, [TOPIC_STATE], accept=(RobotState,), mode="latest", shapes=shapes
            )
            # immediate: nothing is queued while the server is unreachable, so a restarted server
            # never receives commands meant for the one that went away
            self._cmd_pub = self._bus.publisher(self.endpoints.command, bind=False, sndhwm=100, immediate=True)
        except BaseException:
            self.disconnect()
            raise
        return spec

    def rebind(self) -> RobotSpec:
        """Forget the instance this client was bound to and connect again to whatever server
        answers on the endpoint now (a fresh spec and clock offset)."""
        self.disconnect()
        self.expected_instance = None
        self.instance = ""
        self.last_state_ns = 0
        return self.connect()

    def disconnect(self) -> None:
        if self._bus is not None:
            self._bus.close()
        self._bus = None
        self._state_sub = None

    @property
    def is_connected(self) -> bool:
        return self._bus is not None and self._spec is not None

    @property
    def spec(self) -> RobotSpec:
        if self._spec is None:
            raise DeviceNotConnectedError("robot spec unknown; call connect() first")
        return self._spec

    # -- state and commands -----------------------------------------------------------------
    def _age_s(self, got: Received) -> float:
        """Seconds since the server sent this message (clock offset corrects across hosts)."""
        return (time.monotonic_ns() - (got.header.send_ns - self.offset.offset_ns)) / 1e9

    def _ours(self, got: Received) -> RobotState:
        state: RobotState = got.msg  # type: ignore[assignment]
        if state.instance != self.instance:
            raise WrongRobotError(
                f"a robot state from instance {state.instance!r} arrived on {self.endpoints.state}, but this client "
                f"is bound to instance {self.instance!r}: the robot server restarted or another one took its ports")
        self.last_state_ns = got.recv_ns
        return state

    @property
    def state_age_s(self) -> float:
        """Seconds since the newest state of our instance arrived (inf before the first)."""
        return (time.monotonic_ns() - self.last_state_ns) / 1e9 if self.last_state_ns else float("inf")

    @_requires_connected
    def read_latest(self, max_age_s: float | None = None) -> RobotState | None:
        """Newest state received since the last call, or None (also when older than
        ``max_age_s``). Never blocks. Raises ``WrongRobotError`` for another instance's state."""
        got = self._state_sub.latest()  # type: ignore[union-attr]
        if got is None:
            return None
        state = self._ours(got)
        if max_age_s is not None and self._age_s(got) > max_age_s:
            return None
        self._last_state = state
        self.server_source = got.header.source
        return self._last_state

    @_requires_connected
    def get_state(self, timeout_s: float = 0.5, max_age_s: float | None = None) -> RobotState:
        """Newest state, waiting up to ``timeout_s`` for one; states older than ``max_age_s``
        (a server that stopped) do not count. Raises ``LinkTimeoutError``."""
        state = self.read_latest(max_age_s)
        if state is not None:
            return state
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self._state_sub.recv(left)  # type: ignore[union-attr]
            except LinkTimeoutError:
                break
            state = self._ours(got)
            if max_age_s is None or self._age_s(got) <= max_age_s:
                self._last_state = state
                self.server_source = got.header.source
                return self.read_latest(max_age_s) or self._last_state  # type: ignore[return-value]
        raise LinkTimeoutError(
            f"no robot state from {self.endpoints.state} for {timeout_s} s; is the server running and stepping?"
        )

    @_requires_connected
    def send_command(
        self,
        q: npt.NDArray[np.float64],
        source_capture_ns: npt.NDArray[np.int64] | None = None,
        author: str = "human",
        capture_ns: int | None = None,
    ) -> npt.NDArray[np.float64]:
        """Publish joint targets (spec order); returns them after clamping to the limits."""
        spec = self.spec
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (spec.n_joints,):
            raise ValueError(f"command has shape {q.shape}; {spec.name} takes ({spec.n_joints},) in spec order")
        if not np.isfinite(q).all():
            raise ValueError("command contains NaN or inf; refusing to send it")
        sent = np.clip(q, spec.lower, spec.upper)
        src = np.zeros(0, dtype=np.int64) if source_capture_ns is None else np.asarray(source_capture_ns, dtype=np.int64)
        # its sequence comes back in RobotState.cmd_seq: how a tracer finds which command a state answers
        self.last_command_seq = self._cmd_pub.publish(
            JointCommand(q=sent, source_capture_ns=src, author=author, instance=self.instance), TOPIC_COMMAND,
            capture_ns)
        return sent

    @_requires_connected
    def camera_subscriber(self, names: tuple[str, ...] | None = None, mode: str = "latest") -> Subscriber:
        """A subscriber for camera frames (all cameras by default)."""
        topics = [TOPIC_CAMERA + n for n in (names or self.spec.camera_names)]
        return self._bus.subscriber(self.endpoints.camera, topics, accept=(CameraFrame,), mode=mode)  # type: ignore[union-attr,arg-type]

    # -- requests ---------------------------------------------------------------------------
    @_requires_connected
    def request(self, op: str, timeout_s: float | None = None, **args: object) -> Reply:
        reply = self._rpc.request(op, timeout_s, **args)
        if not isinstance(reply, Reply):
            raise LinkError(f"{op}: unexpected reply {type(reply).__name__}")
        return reply

    def estop(self) -> None:
        self.request("estop")

    def release(self) -> None:
        self.request("release")

    def reset(self, **shifts: float) -> None:
        """Back to the home pose; ``bottle_dx=0.02`` etc. move free objects from their home (sim)."""
        self.request("reset", **shifts)

    def stats(self) -> dict[str, object]:
        return dict(self.request("stats").values)

    def clock_offset(self, pings: int = 10) -> ClockOffset:
        best: ClockOffset | None = None
        for _ in range(pings):
            t0 = time.monotonic_ns()
            server_ns = int(self.request("ping").values["t_ns"])
            t1 = time.monotonic_ns()
            cand = ClockOffset(server_ns - (t0 + t1) // 2, t1 - t0)
            if best is None or cand.rtt_ns < best.rtt_ns:
                best = cand
        assert best is not None
        return best
