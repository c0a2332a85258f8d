"""``ReplayPolicy``: plays a recorded episode's executed commands back as a policy.

Useful to test the policy path end to end (server, client, session arbiter) with known actions:
for an observation at ``episode_time_s`` it answers the commands the episode sent from that time
on, ``chunk`` rows ``dt_s`` apart, resampled by zero-order hold (before the first command: the
first; after the last: the last). Times are from the episode start (``meta.json`` ``start_ns``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from teleop.bus.messages import PolicyAction, PolicyObservation
from teleop.errors import ConfigError
from teleop.policy.base import Policy

__all__ = ["ReplayPolicy", "COMMAND_TOPIC"]

COMMAND_TOPIC = "session/command"


class ReplayPolicy(Policy):
    name: ClassVar[str] = "replay"

    def __init__(self, episode: str | Path, chunk: int = 10, dt_s: float = 0.02) -> None:
        from recorder.reader import load_episode

        if chunk < 1 or not dt_s > 0:
            raise ConfigError(f"replay policy: chunk={chunk} must be >= 1 and dt_s={dt_s} > 0 [s]")
        ep = load_episode(episode, topics=(COMMAND_TOPIC,))
        if COMMAND_TOPIC not in ep.streams or not len(ep.streams[COMMAND_TOPIC]):
            raise ConfigError(f"replay policy: episode {ep.path} has no {COMMAND_TOPIC} messages to replay")
        stream = ep.stream(COMMAND_TOPIC)
        self.episode = str(ep.path)
        self.t_s = (stream.t_ns - ep.start_ns) / 1e9  # (C,) from the episode start [s]
        self.q = stream.array("q", np.float64)  # (C, n)
        self.n_joints = int(self.q.shape[1])
        self.chunk = int(chunk)
        self.dt_s = float(dt_s)
        self._offsets = np.arange(self.chunk) * self.dt_s

    def act(self, obs: PolicyObservation) -> PolicyAction:
        times = obs.episode_time_s + self._offsets
        idx = np.clip(np.searchsorted(self.t_s, times, side="right") - 1, 0, len(self.t_s) - 1)
        done = bool(times[0] >= self.t_s[-1])
        return PolicyAction(obs_id=obs.obs_id, q=self.q[idx], dt_s=self.dt_s, done=done)
