"""The pipeline: which stages run when, and the pacing between them.

* A **tick** (``rate_hz``, fixed, paced by ``LoopTimer``) runs every stage: it keeps the robot fed
  while holding, ramps, runs the policy, watches staleness and the robot, sends haptics and the
  status.
* A **sample pass** (``loop.mode = "on_sample"``, the default) runs the command path alone
  (inputs, retarget, safety, output, tap) as soon as a driver says a new hand or wrist sample is
  there, while the operator drives (``engaged``; ramps and holds go at the tick): the sample does
  not wait for the next tick.

``Cadence`` keeps commands at least a period apart (the slower of the loop's and the robot
server's own rate): a sample that arrives sooner waits for the slot, so the robot server gets at
most one command per its tick and the safety filter's per-command step bound is the velocity
bound as in the classic loop. ``fixed`` mode is that classic loop: every tick sends, no sample
passes.

Every stage's ``step`` is timed into a ``StageClock`` (always on; ~0.2-0.5 us per stage, as
``teleop bench e2e`` measures it).
"""

from __future__ import annotations

import threading
import time

from teleop.session.frame import Frame
from teleop.session.machine import ENGAGED, StateMachine
from teleop.session.safety import RATE_LIMITED
from teleop.session.trace import StageClock

__all__ = ["Cadence", "Pipeline", "MODES", "SAMPLE_PASS"]

MODES = ("on_sample", "fixed")
SAMPLE_PASS = ("inputs", "retarget", "safety", "output", "tap")  # the stages a sample pass runs
_TICK_GUARD_S = 0.0003  # no sample pass this close to a tick: the tick itself acts on the sample


class Cadence:
    """When a command is due. ``period_s``: the minimum time between two commands (the loop
    period or the robot server's, whichever is longer); ``feed_s``: in ``on_sample`` mode, how
    long the operator's commands may pause (samples slower than the loop) before the tick sends
    one anyway (the ramp and the robot's watchdog never wait on a slow device)."""

    def __init__(self, mode: str, machine: StateMachine, period_s: float, feed_s: float) -> None:
        if mode not in MODES:
            raise ValueError(f"loop mode must be one of {MODES}, got {mode!r}")
        self.on_sample = mode == "on_sample"
        self.machine = machine
        self.period_ns = int(period_s * 1e9)
        self.feed_ns = int(feed_s * 1e9)

    def due(self, f: Frame) -> bool:
        """A tick's command: always in ``fixed`` mode and while holding or ramping; while engaged in
        ``on_sample`` mode for a sample no command used yet, while the command still catches up
        with the operator (held to the velocity limits), or after ``feed_s`` without one."""
        if not self.on_sample or self.machine.state != ENGAGED:
            return True
        since = f.now_ns - f.last_sent_ns
        catching_up = f.flags & RATE_LIMITED
        return ((f.new_sample or catching_up) and since >= self.period_ns) or since >= self.feed_ns

    def slot_opens_ns(self, f: Frame) -> int:
        return f.last_sent_ns + self.period_ns


class Pipeline:
    """Runs ``stages`` (objects with ``name`` and ``step(frame)``) over one ``frame``."""

    def __init__(self, stages: list, frame: Frame, cadence: Cadence, timer) -> None:
        self.stages = stages
        self.frame = frame
        self.cadence = cadence
        self.timer = timer
        self.clock = StageClock(tuple(s.name for s in stages))
        self.sample_stages = [(k, s) for k, s in enumerate(stages) if s.name in SAMPLE_PASS]
        self.tick_stages = list(enumerate(stages))
        self.wake = threading.Event()  # set by the drivers (Driver.add_waker) when a sample arrives
        self.sample_passes = 0
        self.stale_s = 0.1
        self._prev_ns = 0

    def _run(self, stages) -> None:
        f, add, now = self.frame, self.clock.add, time.monotonic_ns
        for k, stage in stages:
            t = now()
            stage.step(f)
            add(k, now() - t)

    def tick(self) -> None:
        """One fixed-rate tick: every stage."""
        f = self.frame
        f.now_ns = now = time.monotonic_ns()
        # the loop itself was away (the process stalled): the drivers were too, so a sample
        # looking old on this tick says nothing about the device; judge staleness next tick
        f.loop_was_away = self._prev_ns > 0 and now - self._prev_ns > self.stale_s * 5e8
        self._prev_ns = now
        f.is_tick = True
        self.wake.clear()  # this tick reads every input
        self._run(self.tick_stages)
        f.tick += 1

    def between_ticks(self) -> None:
        """Until the next tick is due: a sample pass for every new sample, while the operator
        drives and a command slot is open (``on_sample`` mode). Then the timer waits out the rest."""
        c = self.cadence
        if not c.on_sample:
            return
        f, wake, perf = self.frame, self.wake, time.perf_counter
        deadline = self.timer.next_deadline() - _TICK_GUARD_S
        while c.machine.state == ENGAGED:
            slot = (c.slot_opens_ns(f) - time.monotonic_ns()) / 1e9
            left = deadline - perf()
            if slot > 0:  # a command went out less than a period ago: the next may not go before
                if slot >= left:
                    return
                time.sleep(slot)
                continue
            if not f.new_sample:  # else one arrived before the slot opened: act on it now
                if left <= 0 or not wake.wait(left):
                    return
                wake.clear()
            self.sample_pass()

    def sample_pass(self) -> None:
        f = self.frame
        f.now_ns = time.monotonic_ns()
        f.is_tick = False
        k, inputs = self.sample_stages[0]
        t = time.monotonic_ns()
        inputs.step(f)
        self.clock.add(k, time.monotonic_ns() - t)
        if not (f.inputs_ok and f.new_sample):  # a device went quiet: the next tick judges it
            return
        f.send = True
        self.sample_passes += 1
        self._run(self.sample_stages[1:])
