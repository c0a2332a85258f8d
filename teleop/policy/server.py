"""``PolicyServer``: a REP socket answering ``policy_obs`` with ``policy_action`` (docs/policies.md).

One request at a time: a slow ``act`` delays the next answer, and the client counts it late. A
policy that raises gets its observation answered with ``reply(ok=False, error=...)`` and the
server goes on; failures are counted and logged (the first one with its traceback, then one
line per ``LOG_EVERY_S``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from teleop.bus import Bus, CurveKeys, Header, Message, Reply, Request
from teleop.bus.messages import PolicyObservation
from teleop.policy import DEFAULT_POLICY_ENDPOINT
from teleop.policy.base import Policy

__all__ = ["PolicyServer", "OPS"]

logger = logging.getLogger(__name__)

#: Request ops a policy server answers.
OPS = ("info", "reset", "ping", "stats")
LOG_EVERY_S = 5.0
_TIMES = 4096  # act durations kept for the p50/p99 in ``stats``


class PolicyServer:
    """Serves ``policy`` on ``endpoint`` (binds it). The socket opens on the first ``serve``;
    ``close`` (or the ``with`` block) releases it."""

    def __init__(self, policy: Policy, endpoint: str = DEFAULT_POLICY_ENDPOINT, keys: CurveKeys | None = None,
                 *, source: str = "policy") -> None:
        self.policy = policy
        self.endpoint = endpoint
        self.keys = keys
        self.source = source
        self._bus: Bus | None = None
        self._rpc: Any = None
        self.observations = 0
        self.answers = 0
        self.errors = 0
        self.requests = 0
        self.last_error = ""
        self._act_ms = np.zeros(_TIMES)
        self._n_act = 0
        self._last_log = -1e9

    def open(self) -> None:
        if self._rpc is None:
            self._bus = Bus(self.source, keys=self.keys)
            try:
                self._rpc = self._bus.rpc_server(self.endpoint, accept=(PolicyObservation, Request))
            except BaseException:
                self._bus.close()
                self._bus = None
                raise

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
        self._bus, self._rpc = None, None

    def __enter__(self) -> PolicyServer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve(self, seconds: float | None = None, stop_event: threading.Event | None = None) -> dict[str, Any]:
        """Answer requests until ``seconds`` pass or ``stop_event`` is set; returns ``stats``."""
        self.open()
        deadline = None if seconds is None else time.monotonic() + seconds
        while not (stop_event is not None and stop_event.is_set()):
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._rpc.serve_one(self._handle, timeout_s=0.05)
        return self.stats

    @property
    def stats(self) -> dict[str, Any]:
        n = min(self._n_act, _TIMES)
        p50, p99 = (np.percentile(self._act_ms[:n], [50, 99]) if n else (0.0, 0.0))
        out = {"observations": self.observations, "answers": self.answers, "errors": self.errors,
               "requests": self.requests, "act_ms_p50": round(float(p50), 3), "act_ms_p99": round(float(p99), 3)}
        if self._rpc is not None:
            out["rejected"] = self._rpc.decoder.stats.rejected_total
        return out

    def _handle(self, header: Header, msg: Message) -> Message:
        del header  # the observation carries its own time (t_ns)
        if isinstance(msg, PolicyObservation):
            return self._act(msg)
        self.requests += 1
        if not isinstance(msg, Request):  # the decoder accepts only the two kinds; kept for type checkers
            return Reply(op="?", ok=False, error=f"unexpected message kind {msg.KIND!r}")
        return self._request(msg)

    def _act(self, obs: PolicyObservation) -> Message:
        self.observations += 1
        t0 = time.perf_counter()
        try:
            action = self.policy.answer(obs)
        except Exception as exc:
            return self._failed("act", exc)
        self._act_ms[self._n_act % _TIMES] = (time.perf_counter() - t0) * 1e3
        self._n_act += 1
        self.answers += 1
        return action

    def _request(self, req: Request) -> Message:
        try:
            if req.op == "info":
                return Reply(op="info", ok=True, values=self.policy.info())
            if req.op == "reset":
                task = req.args.get("task", "")
                self.policy.reset(str(task))
                return Reply(op="reset", ok=True)
            if req.op == "ping":
                return Reply(op="ping", ok=True, values={"t_ns": time.monotonic_ns()})
            if req.op == "stats":
                return Reply(op="stats", ok=True, values=self.stats)
        except Exception as exc:
            return self._failed(req.op, exc)
        return Reply(op=req.op, ok=False, error=f"unknown op {req.op!r}; a policy server answers {list(OPS)}")

    def _failed(self, op: str, exc: Exception) -> Reply:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            # the first failure with its traceback, later ones as one line per LOG_EVERY_S
            logger.error("policy %s failed (%d failures so far): %s", op, self.errors, self.last_error,
                         exc_info=self.errors == 1)
            self._last_log = now
        return Reply(op=op, ok=False, error=f"policy {op} failed: {self.last_error}")
