"""``synthetic``: scripted hands and wrists, paced in real time. Sample k is a pure function of k
(time k / rate_hz * speed), so runs are identical; two samples per tick: a HandSample (angles and
keypoints through the human hand model) and a PoseSample (the wrist in the tracker frame)."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from drivers.base import ThreadedDriver
from drivers.samples import HandSample, PoseSample, Sample, SampleSpec
from drivers.synthetic.config_synthetic import SyntheticConfig
from drivers.synthetic.script import BimanualScript
from retarget.human_hand import HumanHand

__all__ = ["SyntheticDriver"]


class SyntheticDriver(ThreadedDriver):
    name: ClassVar[str] = "synthetic"
    config_class: ClassVar[type[SyntheticConfig]] = SyntheticConfig
    description: ClassVar[str] = "scripted bimanual hands and wrists (deterministic; the default input)"
    config: SyntheticConfig

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        super().__init__(config)
        self._script: BimanualScript | None = None
        self._hand: HumanHand | None = None
        self._k = 0
        self._t0 = 0.0
        self._rng = np.random.default_rng(self.config.seed)
        self._period = 1
        self._kp: np.ndarray | None = None

    @property
    def sample_spec(self) -> SampleSpec:
        kinds = (("hand",) if self.config.emit_hand else ()) + (("pose",) if self.config.emit_pose else ())
        return SampleSpec(kinds=kinds, side=self.config.side, rate_hz=self.config.rate_hz, frame="tracker")  # type: ignore[arg-type]

    def _precompute(self) -> None:
        """The whole script once at open (a loop period of samples), so a tick costs an index."""
        assert self._script is not None and self._hand is not None
        c = self.config
        n = max(1, int(round(self._script.duration_s / c.speed * c.rate_hz)))
        self._period = n
        self._angles = np.zeros((n, 20))
        self._pos = np.zeros((n, 3))
        self._quat = np.zeros((n, 4))
        for k in range(n):
            self._angles[k], self._pos[k], self._quat[k] = self._script.at(k / c.rate_hz * c.speed, c.side)
        if any(c.shift_m):
            kfs = self._script.keys
            t = np.arange(n) / c.rate_hz * c.speed
            w = np.clip((t - kfs[0].duration_s) / max(kfs[1].duration_s if len(kfs) > 1 else 1.0, 1e-6), 0.0, 1.0)
            self._pos += w[:, None] * np.asarray(c.shift_m)
        self._kp = self._hand.keypoints_batch(self._angles) if c.emit_hand else None

    def sample_at(self, k: int) -> list[Sample]:
        """The samples of tick ``k`` (capture time: now)."""
        c = self.config
        i = k % self._period if c.loop else min(k, self._period - 1)
        now = time.monotonic_ns()
        out: list[Sample] = []
        if c.emit_hand:
            kp = self._kp[i]  # type: ignore[index]
            if c.noise_m > 0:
                kp = kp + self._rng.normal(0.0, c.noise_m, kp.shape)
                kp[0] = 0.0
            out.append(HandSample(side=c.side, capture_ns=now, seq=self.next_seq(), keypoints=kp, angles=self._angles[i],
                                  source=self.name))
        if c.emit_pose:
            out.append(PoseSample(side=c.side, capture_ns=now, seq=self.next_seq(), position_m=self._pos[i],
                                  quat_wxyz=self._quat[i], frame="tracker", source=self.name))
        return out

    def _open(self) -> None:
        self._script = BimanualScript(self.config.script, loop=self.config.loop)
        self._hand = HumanHand(self.config.side, hand_length_m=self.config.hand_length_m)
        self._precompute()
        self._k = 0
        self._t0 = time.monotonic()

    def _read(self) -> list[Sample] | None:
        due = self._t0 + self._k / self.config.rate_hz
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, 0.1))
            if time.monotonic() < due:
                return None
        if not self.config.loop and self._k >= self._period:
            time.sleep(0.05)
            return None
        samples = self.sample_at(self._k)
        self._k += 1
        return samples

    def _close(self) -> None:
        self._script = None
        self._hand = None
        self._kp = None
