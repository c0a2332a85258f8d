"""Inputs: the newest fresh hand and wrist sample of every configured device (latest-sample
semantics: never waiting on a device; a sample older than ``safety.stale_timeout_s`` does not
count). A hand sample without (21, 3) keypoints does not drive; the state machine names why."""

from __future__ import annotations

import inspect

from drivers.samples import HandSample, PoseSample
from teleop.errors import DeviceTimeoutError, TeleopError
from teleop.session.frame import Frame
from teleop.types import SIDES

__all__ = ["InputsStage"]

_KIND = ("hand", "pose")


def _takes_side(dev) -> bool:
    """A driver written before ``read_latest`` took ``side`` is read as before."""
    return "side" in inspect.signature(dev.read_latest).parameters


class InputsStage:
    name = "inputs"

    def __init__(self, session, stale_s: float) -> None:
        self.fault = session.fault
        self.stale_s = stale_s
        # (slot, side index, role, device) of every configured input
        self.slots = [(2 * i + role, i, role, dev) for i, side in enumerate(SIDES) for role in (0, 1)
                      if (dev := session.input_device(side, role)) is not None]
        # a device that sees both hands (a camera: its spec has no side) is asked for each side's
        self.by_side = {slot: SIDES[i] if dev.sample_spec.side is None and _takes_side(dev) else None
                        for slot, i, _, dev in self.slots}
        self.needed = [(i, role) for _, i, role, _ in self.slots]

    def step(self, f: Frame) -> None:
        f.have[:] = False
        f.no_keypoints[0] = f.no_keypoints[1] = None
        newest, trigger, new = 0, -1, False
        for slot, i, role, dev in self.slots:
            try:
                side = self.by_side[slot]
                s = dev.read_latest(self.stale_s, _KIND[role], side) if side else dev.read_latest(self.stale_s,
                                                                                                    _KIND[role])
            except DeviceTimeoutError:
                continue
            except TeleopError as exc:
                self.fault("device_error", f"{SIDES[i]} {'hand' if role == 0 else 'wrist'}: {exc}")
                continue
            kps = s.keypoints if role == 0 and isinstance(s, HandSample) else None
            if getattr(kps, "shape", None) == (21, 3):  # anything else: refused, named at engage
                f.keypoints[i] = kps
            elif role == 1 and isinstance(s, PoseSample):
                f.wrist_pos[i] = s.position_m
                f.wrist_quat[i] = s.quat_wxyz
            else:
                if role == 0 and isinstance(s, HandSample):
                    f.no_keypoints[i] = s  # it arrives, but cannot drive the hand
                continue
            f.have[i, role] = True
            f.captures[slot] = s.capture_ns
            f.delivered[slot] = dev.delivered_ns(_KIND[role])
            if s.capture_ns > newest:
                newest, trigger = s.capture_ns, slot
            new = new or s.capture_ns > f.used[slot]
        f.trigger = trigger
        f.inputs_ok = all(f.have[i, role] for i, role in self.needed)
        f.new_sample = new
