"""Output: the command goes to the robot server, with the capture times of the samples it came
from (human commands) and who authored it; nothing is sent while e-stopped or lost. A human
command computed from a new sample starts its trace (teleop/session/trace.py)."""

from __future__ import annotations

import time

from teleop.session.arbiter import HUMAN
from teleop.session.frame import Frame
from teleop.session.machine import ESTOP, LOST
from teleop.session.tap import AUTHORS
from teleop.session.trace import CommandTrace

__all__ = ["OutputStage"]


class OutputStage:
    name = "output"

    def __init__(self, client, machine, trace: CommandTrace) -> None:
        self.client, self.machine, self.trace = client, machine, trace
        self.commands = 0

    def step(self, f: Frame) -> None:
        f.sent = False
        if not f.send or self.machine.state in (ESTOP, LOST):
            return
        human = f.author == HUMAN
        self.client.send_command(f.q_cmd, source_capture_ns=f.captures if human else None,
                                 author=AUTHORS[f.author])
        now = time.monotonic_ns()
        f.sent, f.last_sent_ns = True, now
        self.commands += 1
        if human and f.new_sample and f.trigger >= 0:
            st = f.stamps
            st[0] = f.captures[f.trigger]
            st[1] = f.delivered[f.trigger]
            st[2] = f.now_ns
            st[5] = now
            oldest = min((int(c) for c in f.captures if c > 0), default=int(st[0]))
            self.trace.begin(self.client.last_command_seq, st, oldest)
        if human:
            f.used[:] = f.captures
            f.new_sample = False
