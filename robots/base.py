"""What the rest of the runtime needs from a robot, whatever is behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from teleop.bus import RobotSpec, RobotState

__all__ = ["Robot"]


class Robot(ABC):
    """A bimanual robot. ``send_command`` returns the targets actually sent (after clamping), so
    a recorder logs what the robot was asked to do, not what the caller hoped for."""

    @abstractmethod
    def connect(self) -> RobotSpec: ...

    @abstractmethod
    def disconnect(self) -> None: ...

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    def get_state(self, timeout_s: float = 0.5) -> RobotState:
        """The newest state; waits up to ``timeout_s`` for one, else ``LinkTimeoutError``."""

    @abstractmethod
    def send_command(
        self, q: npt.NDArray[np.float64], source_capture_ns: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.float64]: ...

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
