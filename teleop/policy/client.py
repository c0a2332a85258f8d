"""``PolicyClient``: the control loop's side of a policy server (docs/policies.md).

Two threads share it:

* the **control loop** (500 Hz) calls ``observe`` and ``action_at``. Both only copy between
  preallocated arrays and never wait: no socket, no lock, no array allocation;
* the **request thread** (``rate_hz``) sends the newest observation (REQ/REP, lazy pirate: a
  request unanswered after ``timeout_s`` is counted ``late`` and its socket rebuilt) and stores
  the answer.

Hand-over in both directions is a double buffer with an index swap; each buffer carries a
version that is odd while it is being written (a seqlock), so a reader that raced a writer sees
the version change and reads again instead of using a torn copy. The loop never waits for the
thread; the thread retries a torn read of an observation (a copy of a few hundred bytes).

Chunk timing: row ``k`` of the newest answer is the target from ``t_obs + start_s + k * dt_s``
(``t_obs`` is the ``t_ns`` passed to the ``observe`` call that was sent) until the next row; before
row 0 it is row 0; after the last row, ``dt_s`` later, that row is held for ``max_hold_s`` more.
Beyond that ``action_at`` returns False and the caller holds the robot (and it is counted).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from teleop.bus import Bus, CurveKeys, Reply, Request, RpcClient
from teleop.bus.messages import PolicyAction, PolicyObservation
from teleop.errors import ConfigError, LinkError, LinkTimeoutError, TeleopError
from teleop.policy.base import PolicyError

__all__ = ["PolicyClient", "MAX_CHUNK"]

logger = logging.getLogger(__name__)

#: Rows of a chunk the client keeps; longer chunks are truncated (and counted).
MAX_CHUNK = 128
LOG_EVERY_S = 5.0
_LATENCIES = 2048  # request->answer times kept for the p50/p99 in ``stats``
_READ_TRIES = 4


class PolicyClient:
    """Client of a policy server (``endpoint``, usually ``DEFAULT_POLICY_ENDPOINT``) for a robot
    with ``n_joints`` joints and ``n_bodies`` free bodies (``object_poses`` rows). See the module
    docstring for threads and timing."""

    def __init__(
        self,
        endpoint: str,
        n_joints: int,
        n_bodies: int,
        *,
        rate_hz: float = 50.0,
        timeout_s: float = 0.1,
        max_hold_s: float = 0.2,
        keys: CurveKeys | None = None,
        task: str = "",
        max_chunk: int = MAX_CHUNK,
        connect_timeout_s: float = 2.0,
        source: str = "policy-client",
        n_hands: int = 0,
        n_tactile: int = 0,
    ) -> None:
        if n_joints < 1:
            raise ConfigError(f"PolicyClient: n_joints={n_joints}; give the robot's joint count (>= 1)")
        if n_bodies < 0:
            raise ConfigError(f"PolicyClient: n_bodies={n_bodies} must be >= 0")
        if not rate_hz > 0 or not timeout_s > 0 or not max_hold_s >= 0 or max_chunk < 1:
            raise ConfigError(f"PolicyClient: rate_hz={rate_hz} and timeout_s={timeout_s} must be > 0, "
                              f"max_hold_s={max_hold_s} >= 0, max_chunk={max_chunk} >= 1")
        self.endpoint = endpoint
        self.n_joints = n = int(n_joints)
        self.n_bodies = b = int(n_bodies)
        self.rate_hz = float(rate_hz)
        self.timeout_s = float(timeout_s)
        self.max_hold_s = float(max_hold_s)
        self.max_chunk = H = int(max_chunk)
        self.connect_timeout_s = float(connect_timeout_s)
        self.keys = keys
        self.source = source
        self.task = task
        self.info: dict[str, Any] = {}  # the server's answer to ``info``, after ``start``

        # observation double buffer: the loop writes, the request thread reads
        self._obs_q = np.zeros((2, n))
        self._obs_dq = np.zeros((2, n))
        self._obs_cmd = np.zeros((2, n))
        self._obs_poses = np.zeros((2, b, 7))
        # optional: the operator's hand keypoints (n_hands, 21, 3) and tactile forces (n_tactile, 3)
        self.n_hands, self.n_tactile = int(n_hands), int(n_tactile)
        self._obs_kp = np.zeros((2, self.n_hands, 21, 3))
        self._obs_tac = np.zeros((2, self.n_tactile, 3))
        self._tx_kp = np.zeros((self.n_hands, 21, 3))
        self._tx_tac = np.zeros((self.n_tactile, 3))
        self._obs_t_ns = [0, 0]
        self._obs_time_s = [0.0, 0.0]
        self._obs_ver = [0, 0]  # odd while the loop writes that buffer
        self._obs_front = 0
        self._obs_count = 0  # observations completed by the loop
        # the request thread's private copy of the observation it sends
        self._tx_q, self._tx_dq, self._tx_cmd = np.zeros(n), np.zeros(n), np.zeros(n)
        self._tx_poses = np.zeros((b, 7))
        self._tx_t_ns = 0
        self._tx_time_s = 0.0

        # action double buffer: the request thread writes, the loop reads
        self._act_q = np.zeros((2, H, n))
        self._act_rows = [[self._act_q[i, k] for k in range(H)] for i in range(2)]  # views made once
        self._act_t0_ns = [0, 0]  # t_obs + start_s: when row 0 applies
        self._act_dt_ns = [1, 1]
        self._act_rows_n = [0, 0]
        self._act_end_ns = [0, 0]  # after this, the chunk is unusable (last row + dt_s + max_hold_s)
        self._act_ver = [0, 0]
        self._act_front = -1  # -1: no chunk yet (or invalidated by ``reset``)
        self._epoch = 0  # bumped by ``reset``: answers to observations sent before it are dropped
        self.done = False  # the newest answer's ``done`` flag

        # counters (each written by one thread only)
        self.requests = 0
        self.answers = 0
        self.late = 0
        self.errors = 0
        self.truncated = 0
        self.no_action = 0  # written by the loop
        self.last_error = ""
        self._latency_ms = np.zeros(_LATENCIES)
        self._n_latency = 0
        self._last_log = -1e9

        self._bus: Bus | None = None
        self._rpc: RpcClient | None = None  # the request thread's socket
        self._control: RpcClient | None = None  # info/reset, from non-loop threads, under _control_lock
        self._control_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_obs_id = 0

    # -- lifecycle (not for the loop) ---------------------------------------------------------------
    def start(self) -> None:
        """Connect, ask the server for ``info`` (checks ``n_joints``) and start the request thread.
        Raises ``LinkTimeoutError`` when no server answers, ``ConfigError`` on a joint mismatch."""
        if self._thread is not None:
            return
        bus = Bus(self.source, keys=self.keys)
        try:
            self._control = bus.rpc_client(self.endpoint, timeout_s=self.connect_timeout_s)
            try:
                reply = self._control.call(Request(op="info"))
            except LinkTimeoutError:
                raise LinkTimeoutError(
                    f"no policy server answered at {self.endpoint} within {self.connect_timeout_s} s; start one "
                    "with `teleop policy serve --policy NAME --endpoint URL` (`teleop policy info` checks it)"
                ) from None
            if not isinstance(reply, Reply) or not reply.ok:
                detail = reply.error if isinstance(reply, Reply) else f"a {reply.KIND} message"
                raise LinkError(f"policy server at {self.endpoint} answered info with {detail}")
            info = dict(reply.values)
            expected = int(info.get("n_joints", 0) or 0)
            if expected and expected != self.n_joints:
                raise ConfigError(
                    f"policy {info.get('name', '?')!r} at {self.endpoint} expects {expected} joints, this robot "
                    f"has {self.n_joints}; serve a policy trained for this robot"
                )
            self._rpc = bus.rpc_client(self.endpoint, timeout_s=self.timeout_s)
        except BaseException:
            bus.close()
            self._control = None
            raise
        self._bus = bus
        self.info = info
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="policy-client", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the request thread and close the sockets (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 2.0)
            if self._thread.is_alive():
                logger.warning("policy client thread did not stop within %.1f s", self.timeout_s + 2.0)
        self._thread = None
        if self._bus is not None:
            self._bus.close()
        self._bus, self._rpc, self._control = None, None, None

    def __enter__(self) -> PolicyClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, task: str = "", timeout_s: float = 2.0) -> None:
        """Start a new rollout: drop the current chunk (``action_at`` returns False until an answer
        to a newer observation arrives) and send ``reset`` with ``task``. Blocks: not for the loop."""
        self.task = task
        self._epoch += 1  # first: an answer stored from now on is checked against it
        self._act_front = -1
        self.done = False
        if self._control is None:
            raise LinkError("PolicyClient.reset before start()")
        with self._control_lock:
            reply = self._control.call(Request(op="reset", args={"task": task}), timeout_s)
        if not isinstance(reply, Reply) or not reply.ok:
            raise PolicyError(f"policy server at {self.endpoint} refused reset: "
                              f"{reply.error if isinstance(reply, Reply) else reply.KIND}")

    # -- loop side: never blocks, never allocates arrays ----------------------------------------------
    def observe(self, t_ns: int, episode_time_s: float, q: npt.NDArray[np.float64], dq: npt.NDArray[np.float64],
                command: npt.NDArray[np.float64], object_poses: npt.NDArray[np.float64],
                keypoints: npt.NDArray[np.float64] | None = None,
                tactile_force: npt.NDArray[np.float64] | None = None) -> None:
        """Hand the newest observation to the request thread. ``t_ns``: the loop's monotonic
        clock [ns]; ``q``, ``dq``, ``command`` shape (n,); ``object_poses`` shape (b, 7);
        ``keypoints`` (n_hands, 21, 3) and ``tactile_force`` (n_tactile, 3) when configured."""
        i = 1 - self._obs_front
        ver = self._obs_ver
        ver[i] += 1  # odd: being written
        try:
            np.copyto(self._obs_q[i], q)
            np.copyto(self._obs_dq[i], dq)
            np.copyto(self._obs_cmd[i], command)
            np.copyto(self._obs_poses[i], object_poses)
            if keypoints is not None and self.n_hands:
                np.copyto(self._obs_kp[i], keypoints)
            if tactile_force is not None and self.n_tactile:
                np.copyto(self._obs_tac[i], tactile_force)
            self._obs_t_ns[i] = t_ns
            self._obs_time_s[i] = episode_time_s
        finally:
            ver[i] += 1
        self._obs_front = i
        self._obs_count += 1

    def action_at(self, t_ns: int, out: npt.NDArray[np.float64]) -> bool:
        """Write the target for time ``t_ns`` into ``out`` (shape (n,)) from the newest chunk.
        Returns False, leaving ``out`` as it was, when there is no usable chunk: none yet, or the
        newest one ended more than ``max_hold_s`` ago (the server is late or gone)."""
        for _ in range(_READ_TRIES):
            i = self._act_front
            if i < 0:
                break
            v = self._act_ver[i]
            if v & 1:
                continue
            if t_ns >= self._act_end_ns[i]:
                if self._act_ver[i] == v:
                    break
                continue
            k = (t_ns - self._act_t0_ns[i]) // self._act_dt_ns[i]
            last = self._act_rows_n[i] - 1
            k = 0 if k < 0 else (last if k > last else k)
            np.copyto(out, self._act_rows[i][k])
            if self._act_ver[i] == v:  # not overwritten while we copied
                return True
        self.no_action += 1
        return False

    # -- statistics (not for the loop: allocates) --------------------------------------------------
    @property
    def stats(self) -> dict[str, Any]:
        n = min(self._n_latency, _LATENCIES)
        p50, p99 = (np.percentile(self._latency_ms[:n], [50, 99]) if n else (0.0, 0.0))
        return {"requests": self.requests, "answers": self.answers, "late": self.late, "errors": self.errors,
                "no_action": self.no_action, "truncated": self.truncated,
                "latency_ms": {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}}

    # -- request thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        sent = 0  # ``_obs_count`` of the last observation sent
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                sent = self._step(sent)
            except Exception as exc:  # never die silently: count, log, go on
                self.errors += 1
                self._log("policy client request failed", exc)
            next_t += period
            now = time.monotonic()
            if next_t < now - period:  # fell behind (a slow answer): do not burst to catch up
                next_t = now
            self._stop.wait(max(0.0, next_t - now))

    def _read_observation(self) -> int:
        """Copy the newest observation into the ``_tx_*`` arrays; its count, or -1 if none is stable."""
        for _ in range(100):
            count = self._obs_count
            i = self._obs_front
            v = self._obs_ver[i]
            if v & 1:
                time.sleep(0)
                continue
            np.copyto(self._tx_q, self._obs_q[i])
            np.copyto(self._tx_dq, self._obs_dq[i])
            np.copyto(self._tx_cmd, self._obs_cmd[i])
            np.copyto(self._tx_poses, self._obs_poses[i])
            np.copyto(self._tx_kp, self._obs_kp[i])
            np.copyto(self._tx_tac, self._obs_tac[i])
            t_ns, time_s = self._obs_t_ns[i], self._obs_time_s[i]
            if self._obs_ver[i] == v:
                self._tx_t_ns, self._tx_time_s = t_ns, time_s
                return count
            time.sleep(0)  # let the loop finish its write
        return -1

    def _step(self, sent: int) -> int:
        if self._obs_count == sent or self._rpc is None:
            return sent
        count = self._read_observation()
        if count < 0:
            return sent
        epoch = self._epoch
        obs_id = self._next_obs_id
        self._next_obs_id += 1
        obs = PolicyObservation(obs_id=obs_id, t_ns=int(self._tx_t_ns), episode_time_s=float(self._tx_time_s),
                                q=self._tx_q, dq=self._tx_dq, command=self._tx_cmd, object_poses=self._tx_poses,
                                keypoints=self._tx_kp, tactile_force=self._tx_tac, task=self.task)
        self.requests += 1
        t0 = time.perf_counter()
        try:
            reply = self._rpc.call(obs)  # lazy pirate: a timeout rebuilds the socket
        except LinkTimeoutError:
            self.late += 1
            self._log(f"policy server at {self.endpoint} late (no answer within {self.timeout_s} s)", None)
            return count
        except LinkError as exc:  # an answer that does not decode
            self.errors += 1
            self._log("bad answer from the policy server", exc)
            return count
        self._latency_ms[self._n_latency % _LATENCIES] = (time.perf_counter() - t0) * 1e3
        self._n_latency += 1
        if isinstance(reply, Reply):
            self.errors += 1
            self.last_error = reply.error
            self._log(f"policy server error: {reply.error}", None)
            return count
        if not isinstance(reply, PolicyAction):
            raise PolicyError(f"policy server answered with a {reply.KIND} message, expected policy_action")
        if reply.obs_id != obs_id or reply.q.ndim != 2 or reply.q.shape[1] != self.n_joints:
            raise PolicyError(f"policy answer for obs {reply.obs_id} with q of shape {reply.q.shape}; expected "
                              f"obs {obs_id} and (H, {self.n_joints})")
        if epoch == self._epoch:  # else: sent before a reset, dropped
            self._store(reply, self._tx_t_ns, epoch)
        self.answers += 1
        return count

    def _store(self, action: PolicyAction, t_obs_ns: int, epoch: int) -> None:
        rows = action.q.shape[0]
        if rows > self.max_chunk:
            self.truncated += 1
            rows = self.max_chunk
        dt_ns = max(1, int(round(action.dt_s * 1e9)))
        t0 = int(t_obs_ns) + int(round(action.start_s * 1e9))
        i = 0 if self._act_front < 0 else 1 - self._act_front
        ver = self._act_ver
        ver[i] += 1
        try:
            self._act_q[i, :rows] = action.q[:rows]
            self._act_t0_ns[i] = t0
            self._act_dt_ns[i] = dt_ns
            self._act_rows_n[i] = rows
            self._act_end_ns[i] = t0 + rows * dt_ns + int(round(self.max_hold_s * 1e9))
        finally:
            ver[i] += 1
        self._act_front = i
        self.done = bool(action.done)
        if self._epoch != epoch:  # a reset raced this store: drop the chunk
            self._act_front = -1

    def _log(self, what: str, exc: BaseException | None) -> None:
        if exc is not None:
            self.last_error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            unexpected = exc is not None and not isinstance(exc, TeleopError)  # a bug: show where
            logger.warning("%s%s (requests %d, answers %d, late %d, errors %d; logged once per %.0f s)", what,
                           f": {self.last_error}" if exc is not None else "", self.requests, self.answers,
                           self.late, self.errors, LOG_EVERY_S, exc_info=exc if unexpected else None)
