"""``teleop robot check ENDPOINT``: a conformance kit for robot servers.

It exercises a running server the way the runtime will (spec, state stream, command response,
limits, watchdog, e-stop, malformed input) and reports each check with what it measured. A lab
writing a bridge for a real robot runs it until every line passes. It moves ONE joint (by
default the first right-hand joint) by a small step and then to its upper limit; choose another with
``--joint`` and keep people clear of the robot while it runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import zmq

from robots.client import ClockOffset, RobotClient
from teleop.bus import Bus, JointCommand, RobotSpec, RobotState
from teleop.bus.codec import SCHEMA_VERSION, Encoder, encode_raw
from teleop.bus.endpoints import TOPIC_COMMAND, TOPIC_STATE
from teleop.errors import TeleopError

__all__ = ["CheckResult", "CheckReport", "run_checks", "apply_latency"]


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class CheckReport:
    endpoint: str
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def as_dict(self) -> dict:
        return {"endpoint": self.endpoint, "ok": self.ok, "checks": [asdict(r) for r in self.results]}

    def format(self) -> str:
        lines = [f"robot check {self.endpoint}"]
        for r in self.results:
            lines.append(f"  [{'PASS' if r.ok else 'FAIL'}] {r.name:<18} {r.detail}")
        failed = [r.name for r in self.results if not r.ok]
        lines.append("all checks passed" if not failed else f"FAILED: {', '.join(failed)} (see docs/robot-bridge.md)")
        return "\n".join(lines)


class _Failed(Exception):
    pass


OFFSET_PINGS = 20  # for the latency's clock offset: the best of many bounds its error tightly


def apply_latency(lat_ms: list[float], offset: ClockOffset) -> tuple[bool, str, dict[str, float]]:
    """Judge command -> applied times [ms] taken across the two clocks with ``offset``.

    The offset is known to +-rtt/2 of its best ping (the server stamped ``t_ns`` somewhere
    between our send and our receive), so a conforming server's latency can come out below zero
    by at most that. Further below zero is a clock error, never a latency: the server's
    ``cmd_applied_ns`` and its ping ``t_ns`` are not the same monotonic clock, or it copies
    ``cmd_capture_ns`` wrong. Returns (ok, text, values)."""
    bound = offset.rtt_ns / 2e6
    if not lat_ms:
        return True, "command->applied not traced (no state with cmd_applied_ns and cmd_capture_ns set)", {}
    p50 = float(np.median(lat_ms))
    if p50 >= 0:
        return True, f"command->applied p50 {p50:.2f} ms (clock offset +-{bound:.2f} ms)", {"apply_latency_ms_p50": p50}
    if p50 >= -bound:
        return True, (f"command->applied below {bound:.2f} ms, the clock offset's resolution (best ping round trip "
                      f"{offset.rtt_ns / 1e6:.2f} ms)"), {"apply_latency_ms_max": bound}
    return False, (f"clock error: command->applied came out {p50:.2f} ms, negative beyond the clock offset's "
                   f"+-{bound:.2f} ms. cmd_applied_ns and the ping's t_ns must both be the server's monotonic clock "
                   "(time.monotonic_ns()), and cmd_capture_ns the command header's tc, copied (docs/bus.md#times-"
                   "and-clock-offsets)"), {"clock_error_ms": -p50 - bound}


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise _Failed(msg)


class _Kit:
    def __init__(self, client: RobotClient, joint: str | None, step_rad: float) -> None:
        self.c = client
        self.spec: RobotSpec = client.spec
        names = list(self.spec.joint_names)
        if joint is None:
            hand = self.spec.group_slice("right_hand")
            self.j = hand.start if hand.stop > hand.start else 0
        elif joint in names:
            self.j = names.index(joint)
        else:
            raise TeleopError(f"--joint {joint!r} is not a joint of {self.spec.name}; joints: {names}")
        self.step = step_rad
        self.home: np.ndarray | None = None
        self._goal: np.ndarray | None = None  # where command_response left the joint

    @property
    def goal(self) -> np.ndarray:
        _need(self._goal is not None, "not run: it starts where command_response leaves the joint, and that failed")
        return self._goal

    def states(self, seconds: float) -> list[RobotState]:
        out = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s = self.c.read_latest()
            if s is not None:
                out.append(s)
            time.sleep(0.001)
        return out

    def drive(self, q: np.ndarray, seconds: float, until: Callable[[RobotState], bool] | None = None) -> list[RobotState]:
        """Send ``q`` at 200 Hz for up to ``seconds``; stop early once ``until(state)``."""
        seen = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.c.send_command(q)
            s = self.c.read_latest()
            if s is not None:
                seen.append(s)
                if until is not None and until(s):
                    break
            time.sleep(0.005)
        return seen

    # -- checks -------------------------------------------------------------------------------
    def spec_check(self) -> CheckResult:
        s = self.spec
        n = s.n_joints
        _need(n > 0, "spec lists no joints")
        _need(len(set(s.joint_names)) == n, "joint names are not unique")
        _need(int(np.sum(s.group_sizes)) == n, f"group sizes {list(s.group_sizes)} do not add up to {n} joints")
        _need(bool(np.all(s.lower < s.upper)), "some lower limits are not below their upper limits")
        _need(bool(np.all(s.velocity > 0)), "some velocity limits are not positive")
        _need(s.state_hz >= 500, f"state rate {s.state_hz} Hz is below the 500 Hz the contract asks")
        _need(0 < s.watchdog_s <= 0.5, f"watchdog {s.watchdog_s} s; the contract asks for a hold within 0.5 s")
        groups = ", ".join(f"{g}={k}" for g, k in zip(s.group_names, s.group_sizes))
        return CheckResult("spec", True, f"{s.name}: {n} joints ({groups}), {len(s.camera_names)} cameras")

    def ping_check(self) -> CheckResult:
        off = self.c.clock_offset(5)
        _need(off.rtt_ns < 50e6, f"round trip {off.rtt_ns / 1e6:.1f} ms > 50 ms")
        return CheckResult("ping", True, f"rtt {off.rtt_ns / 1e6:.2f} ms, clock offset {off.offset_ns / 1e6:.3f} ms",
                           {"rtt_ms": off.rtt_ns / 1e6})

    def stream_check(self, bus: Bus) -> CheckResult:
        sub = bus.subscriber(self.c.endpoints.state, [TOPIC_STATE], accept=(RobotState,), mode="lossless",
                             shapes={"n": self.spec.n_joints})
        sub.recv(2.0)  # joined
        got = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            got.append(sub.recv(1.0))
        _need(len(got) >= 10, f"only {len(got)} state messages in 1 s")
        elapsed = (got[-1].recv_ns - got[0].recv_ns) / 1e9
        rate = (len(got) - 1) / elapsed
        times = np.array([g.msg.time_s for g in got])
        seqs = np.array([g.header.seq for g in got])
        _need(sub.stats.rejected_total == 0, f"{sub.stats.rejected_total} state messages failed decoding: {sub.stats.last_error}")
        _need(bool(np.all(np.diff(seqs) == 1)), f"state sequence has gaps ({int(np.sum(np.diff(seqs) - 1))} missing)")
        _need(bool(np.all(np.diff(times) > 0)), "state time_s does not increase")
        _need(all(np.isfinite(g.msg.q).all() and np.isfinite(g.msg.dq).all() for g in got), "state has NaN/inf")
        others = {g.msg.instance for g in got} - {self.spec.instance}
        _need(not others, f"states carry instance(s) {sorted(others)}, not the spec's {self.spec.instance!r}")
        _need(rate >= 0.9 * self.spec.state_hz, f"state rate {rate:.0f} Hz < 90% of the announced {self.spec.state_hz:.0f} Hz")
        return CheckResult("state_stream", True, f"{rate:.0f} Hz over {len(got)} messages, no gaps", {"state_hz": rate})

    def command_check(self) -> CheckResult:
        self.c.release()
        base = self.c.get_state(1.0).target.copy()
        self.home = base.copy()
        j, hi = self.j, self.spec.upper[self.j]
        goal = base.copy()
        goal[j] = base[j] + self.step if base[j] + self.step < hi else base[j] - self.step
        t0, t0_ns = time.monotonic(), time.monotonic_ns()
        seen = self.drive(goal, 3.0, until=lambda s: abs(s.q[j] - goal[j]) < 0.25 * self.step and s.mode == "active")
        _need(bool(seen), "no state while commanding")
        last = seen[-1]
        _need(last.mode == "active", f"mode {last.mode!r} while commanding (expected 'active')")
        _need(abs(last.target[j] - goal[j]) < 1e-6, f"applied target {last.target[j]:.4f} != commanded {goal[j]:.4f}")
        err = abs(last.q[j] - goal[j])
        _need(err < 0.25 * self.step, f"joint {self.spec.joint_names[j]} reached {last.q[j]:.4f}, goal {goal[j]:.4f} (error {err:.4f} rad)")
        moved = f"{self.spec.joint_names[j]} moved {goal[j] - base[j]:+.3f} rad in {time.monotonic() - t0:.2f} s"
        # capture is on our clock, applied on the server's: correct by an offset measured now with
        # many pings (the client's, from 3 pings at connect, can be off by half a slow round trip:
        # it once made this -6.96 ms)
        off = self.c.clock_offset(OFFSET_PINGS)
        # once per command of ours (a state repeats the trace of the newest command; states from
        # before our first one trace someone else's, on their clock)
        ours = {s.cmd_seq: s for s in seen if s.cmd_applied_ns and s.cmd_capture_ns >= t0_ns}
        lat = [(s.cmd_applied_ns - s.cmd_capture_ns - off.offset_ns) / 1e6 for s in ours.values()]
        self._goal = goal
        ok, text, values = apply_latency(lat, off)
        return CheckResult("command_response", ok, f"{moved}; {text}", values)

    def limits_check(self, bus: Bus) -> CheckResult:
        j = self.j
        beyond = np.array(self.goal)
        beyond[j] = self.spec.upper[j] + 0.5
        pub = bus.publisher(self.c.endpoints.command, bind=False)
        time.sleep(0.2)  # PUB/SUB join
        seen: list[RobotState] = []
        end = time.monotonic() + 3.0
        while time.monotonic() < end:  # raw publish: the client library would clamp for us
            pub.publish(JointCommand(q=beyond), TOPIC_COMMAND)
            s = self.c.read_latest()
            if s is not None:
                seen.append(s)
                if abs(s.target[j] - self.spec.upper[j]) < 1e-9:
                    break
            time.sleep(0.005)
        _need(bool(seen), "no state while commanding past the limit")
        tmax = max(s.target[j] for s in seen)
        _need(tmax <= self.spec.upper[j] + 1e-9, f"applied target {tmax:.4f} exceeds the upper limit {self.spec.upper[j]:.4f}")
        _need(abs(seen[-1].target[j] - self.spec.upper[j]) < 1e-9, "applied target never reached the (clamped) limit")
        rates = [
            abs(b.target[j] - a.target[j]) / (b.time_s - a.time_s)
            for a, b in zip(seen, seen[1:]) if b.time_s > a.time_s
        ]
        vmax = max(rates) if rates else 0.0
        limit = self.spec.velocity[j]
        _need(vmax <= limit * 1.05, f"applied target moved at {vmax:.2f} rad/s > velocity limit {limit:.2f}")
        self.drive(self.goal, 3.0, until=lambda s: abs(s.target[j] - self.goal[j]) < 1e-9)
        return CheckResult("limits", True, f"clamped at {self.spec.upper[j]:.3f} rad, peak target rate {vmax:.2f} <= {limit:.2f} rad/s",
                           {"peak_rate": vmax})

    def watchdog_check(self) -> CheckResult:
        self.drive(self.goal, 0.2)
        t_stop = time.monotonic()
        held = None
        while time.monotonic() - t_stop < 1.0:
            s = self.c.read_latest()
            if s is not None and s.mode == "hold":
                held = time.monotonic() - t_stop
                break
            time.sleep(0.001)
        _need(held is not None, "mode never became 'hold' within 1 s after commands stopped")
        after = self.states(0.3)
        _need(bool(after), "no state after the watchdog tripped")
        drift = float(np.max(np.abs(np.array([s.target for s in after]) - after[0].target)))
        _need(drift < 1e-9, f"applied targets kept moving by {drift:.4f} rad while holding")
        _need(held <= self.spec.watchdog_s + 0.1, f"hold after {held * 1e3:.0f} ms > watchdog {self.spec.watchdog_s * 1e3:.0f} ms + 100 ms")
        return CheckResult("watchdog", True, f"hold {held * 1e3:.0f} ms after the last command (watchdog {self.spec.watchdog_s * 1e3:.0f} ms)",
                           {"hold_ms": held * 1e3})

    def estop_check(self) -> CheckResult:
        self.drive(self.goal, 0.2)
        t0 = time.monotonic()
        self.c.estop()
        s = self.c.get_state(1.0)
        while s.mode != "estop" and time.monotonic() - t0 < 1.0:
            s = self.c.get_state(1.0)
        dt = time.monotonic() - t0
        _need(s.mode == "estop", "mode is not 'estop' within 1 s of the e-stop request")
        frozen = s.target.copy()
        other = self.goal.copy()
        other[self.j] = self.home[self.j]  # type: ignore[index]
        seen = self.drive(other, 0.4)
        moved = max(float(np.max(np.abs(x.target - frozen))) for x in seen) if seen else 0.0
        _need(moved < 1e-9, f"targets moved {moved:.4f} rad during e-stop: commands must be ignored")
        self.c.release()
        seen = self.drive(other, 2.0, until=lambda x: x.mode == "active")
        _need(bool(seen) and seen[-1].mode == "active", "commands are not accepted again after release")
        return CheckResult("estop", True, f"held within {dt * 1e3:.0f} ms, commands ignored until release", {"estop_ms": dt * 1e3})

    def _junk(self) -> list[tuple[str, list[bytes], bool]]:
        """(what, frames, counted): malformed commands; ``counted`` is False for those the socket
        may drop before any decoding (the subscription filter, ZMQ_CONFLATE and multipart)."""
        n = self.spec.n_joints
        enc = Encoder("robot-check")
        topic = TOPIC_COMMAND.encode() + b"\0"
        head = {"v": SCHEMA_VERSION, "k": "joint_command", "t": TOPIC_COMMAND, "s": "x", "q": 0, "tc": 0, "ts": 0}
        return [
            ("random bytes", [b"\xff" + os.urandom(63)], False),
            ("garbage payload", [topic + os.urandom(200)], True),
            # a conflating (latest-wins) socket does not deliver multipart messages whole: libzmq drops
            # them or passes on the last part alone, so it may go uncounted; it must never move the robot
            ("two frames", [topic, b"second frame"], False),
            ("wrong joint count", [enc.encode(JointCommand(q=np.zeros(n + 3)), TOPIC_COMMAND)], True),
            ("NaN targets", [enc.encode(JointCommand(q=np.full(n, np.nan)), TOPIC_COMMAND)], True),
            ("unknown version", [topic + encode_raw({"v": SCHEMA_VERSION + 99, "b": {}})], True),
            ("version as an array", [topic + encode_raw({**head, "v": np.array([SCHEMA_VERSION]),
                                                          "b": {"q": np.zeros(n)}})], True),
            ("float32 targets", [topic + encode_raw({**head, "b": {"q": np.zeros(n, dtype=np.float32)}})], True),
            ("bytes and str keys", [topic + encode_raw({**head, b"b": {}, "b": {"q": np.zeros(n)}})], True),
            ("1 GiB length claim", [topic + b"\x81\xa1v\xc6" + (1 << 30).to_bytes(4, "big") + b"tiny"], True),
            ("topic with a suffix", [enc.encode(JointCommand(q=np.zeros(n)), TOPIC_COMMAND + "EVIL")], True),
            ("oversized trace array", [enc.encode(JointCommand(q=np.zeros(n), source_capture_ns=np.zeros(
                100_000, np.int64)), TOPIC_COMMAND)], True),
        ]

    def _rejected(self) -> int:
        return int(self.c.stats().get("rejected_total", 0))  # type: ignore[arg-type]

    def malformed_check(self, bus: Bus) -> CheckResult:
        pub = bus.publisher(self.c.endpoints.command, bind=False)
        time.sleep(0.2)
        s = self.c.get_state(1.0)
        end = time.monotonic() + self.spec.watchdog_s + 1.0
        while s.mode == "active" and time.monotonic() < end:  # let the watchdog hold first
            s = self.c.get_state(1.0)
        target_before = s.target.copy()
        missed = []
        # One at a time, each confirmed counted before the next: with ZMQ_CONFLATE a message that
        # arrives before the server read the previous one replaces it uncounted.
        for what, frames, counted in self._junk():
            before = self._rejected()
            pub.send_raw(frames)
            deadline = time.monotonic() + (1.0 if counted else 0.1)
            while self._rejected() == before and time.monotonic() < deadline:
                time.sleep(0.005)
            if counted and self._rejected() == before:
                missed.append(what)
        raw = bus.context.socket(zmq.REQ)
        raw.linger = 0
        if bus.keys is not None:
            bus.keys.apply(raw, bind=False)
        raw.connect(self.c.rpc_endpoint)
        raw.send(os.urandom(100))
        answered = bool(raw.poll(2000))
        raw.close(0)
        s = self.c.get_state(1.0)
        _need(answered, "the request socket did not answer a garbage request (it must reply with an error)")
        _need(bool(np.isfinite(s.target).all()), "a NaN command reached the applied targets")
        moved = float(np.max(np.abs(s.target - target_before)))
        _need(s.mode != "active", "malformed commands made the robot active")
        _need(moved < 1e-9, f"garbage moved the targets by {moved:.4f} rad")
        _need(not missed, f"the server did not count these malformed commands as rejected within 1 s: {missed}")
        rate_states = self.states(0.5)
        _need(len(rate_states) > 0, "the server stopped publishing state after malformed input")
        self.spec_check()
        n_junk = len(self._junk())
        return CheckResult("malformed_input", True, f"{n_junk} bad commands and a bad request rejected, each counted, "
                           "server alive", {"rejected": n_junk - 2})

    def restore(self) -> None:
        if self.home is not None:
            self.drive(self.home, 1.0, until=lambda s: abs(s.target[self.j] - self.home[self.j]) < 1e-9)  # type: ignore[index]


def run_checks(rpc_endpoint: str, *, keys: str | None = None, joint: str | None = None, step_rad: float = 0.05) -> CheckReport:
    results: list[CheckResult] = []
    client = RobotClient(rpc_endpoint, keys=keys, source="robot-check", timeout_s=2.0)
    try:
        client.connect()
    except TeleopError as exc:
        return CheckReport(rpc_endpoint, [CheckResult("connect", False, str(exc))])
    results.append(CheckResult("connect", True, f"spec from {rpc_endpoint}"))
    from teleop.bus.security import CurveKeys

    bus = Bus("robot-check", keys=CurveKeys.load(keys) if keys else None)
    kit = _Kit(client, joint, step_rad)
    steps: list[tuple[str, Callable[[], CheckResult]]] = [
        ("spec", kit.spec_check),
        ("ping", kit.ping_check),
        ("state_stream", lambda: kit.stream_check(bus)),
        ("command_response", kit.command_check),
        ("limits", lambda: kit.limits_check(bus)),
        ("watchdog", kit.watchdog_check),
        ("estop", kit.estop_check),
        ("malformed_input", lambda: kit.malformed_check(bus)),
    ]
    try:
        for name, fn in steps:
            try:
                results.append(fn())
            except (_Failed, TeleopError) as exc:
                results.append(CheckResult(name, False, str(exc)))
            except Exception as exc:  # a bridge answering with something unexpected
                results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))
                if name in ("spec", "state_stream", "command_response"):
                    break  # later checks depend on these
        kit.restore()
    finally:
        try:
            client.release()
        except TeleopError:
            pass
        client.disconnect()
        bus.close()
    return CheckReport(rpc_endpoint, results)
