"""``network``: hand keypoints and wrist poses published on the bus by other programs (a VR app,
a mocap bridge, a video hand tracker), in a documented schema (teleop/bus/messages.py:
``hand_keypoints``, ``wrist_pose``, ``wrist_matrix``; topic ``input/<side>/...``). Conventions
are declared per source in the config and converted here."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from drivers.base import ThreadedDriver
from drivers.network.config_network import NetworkConfig
from drivers.network.conventions import convert_pose, matrix_from_flat, to_mediapipe
from drivers.samples import HandSample, PoseSample, Sample, SampleSpec
from retarget.kernels.poses import mat_to_quat, quat_to_mat
from teleop.bus import Bus, CurveKeys, HandKeypoints, WristMatrix, WristPose
from teleop.bus.endpoints import TOPIC_INPUT
from teleop.errors import DeviceError, LinkError, LinkTimeoutError

__all__ = ["NetworkDriver"]


class NetworkDriver(ThreadedDriver):
    name: ClassVar[str] = "network"
    config_class: ClassVar[type[NetworkConfig]] = NetworkConfig
    description: ClassVar[str] = "hand keypoint / wrist pose streams over ZeroMQ (VR apps, mocap, trackers)"
    config: NetworkConfig

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__(config)
        self._bus: Bus | None = None
        self._sub = None

    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(kinds=("hand", "pose"), side=self.config.side, frame="tracker")

    def _open(self) -> None:
        c = self.config
        keys = CurveKeys.load(c.keys) if c.keys else None
        self._bus = Bus(f"network-driver-{c.side or 'both'}", keys=keys)
        topic = TOPIC_INPUT + (c.side + "/" if c.side else "")
        try:
            self._sub = self._bus.subscriber(c.endpoint, [topic], accept=(HandKeypoints, WristPose, WristMatrix),
                                             bind=c.bind, mode="lossless", max_bytes=1 << 20)
        except LinkError as exc:
            raise DeviceError(f"network input on {c.endpoint}: {exc}") from None

    def _read(self) -> Sample | None:
        assert self._sub is not None
        rejected = self._sub.stats.rejected_total
        try:
            got = self._sub.recv(timeout_s=0.1)
        except LinkTimeoutError:
            self._count_rejects(rejected)
            return None
        self._count_rejects(rejected)
        msg, c = got.msg, self.config
        side = getattr(msg, "side", None)
        if side not in ("left", "right") or (c.side is not None and side != c.side):
            self.count("bad_side", f"side {side!r} in a message on {got.header.topic}")
            return None
        now = time.monotonic_ns()  # arrival on this host: sender clocks are not ours
        try:
            if isinstance(msg, HandKeypoints):
                kp = to_mediapipe(msg.keypoints, c.keypoint_layout, c.axes, c.units)
                if c.keypoint_frame == "world":
                    kp = self._world_to_wrist(kp, side)
                return HandSample(side=side, capture_ns=now, seq=self.next_seq(), keypoints=kp,
                                  source=f"{self.name}:{got.header.source}")
            if isinstance(msg, WristPose):
                rot = np.zeros((3, 3))
                quat_to_mat(np.ascontiguousarray(msg.quat_wxyz), rot)
                pos = msg.position
            else:
                m = matrix_from_flat(msg.matrix, c.matrix_layout)
                pos, rot = m[:3, 3], m[:3, :3]
            p, r = convert_pose(pos, rot, c.axes, c.units, c.wrist_rotation_rpy_deg)
            q = np.zeros(4)
            mat_to_quat(np.ascontiguousarray(r), q)
            return PoseSample(side=side, capture_ns=now, seq=self.next_seq(), position_m=p, quat_wxyz=q,
                              frame="tracker", source=f"{self.name}:{got.header.source}")
        except ValueError as exc:
            self.count("bad_message", str(exc))
            return None

    def _count_rejects(self, before: int) -> None:
        if self._sub is not None:
            for _ in range(self._sub.stats.rejected_total - before):  # one count per rejected message
                self.count("rejected", self._sub.stats.last_error)

    @staticmethod
    def _world_to_wrist(kp: np.ndarray, side: str) -> np.ndarray:
        from retarget.offline import to_wrist_frame, wrist_frame_from_keypoints

        pos, rot = wrist_frame_from_keypoints(kp[None], side)  # type: ignore[arg-type]
        return to_wrist_frame(kp[None], pos, rot)[0]

    def _close(self) -> None:
        if self._bus is not None:
            self._bus.close()
        self._bus = None
        self._sub = None
