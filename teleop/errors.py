"""One error hierarchy for the whole runtime.

Every error says what failed, the value it got, and what is allowed or what to do next.
Stdlib parents let callers catch by meaning (``except TimeoutError``) without importing us.
"""

from __future__ import annotations

__all__ = [
    "TeleopError",
    "ConfigError",
    "DeviceError",
    "DeviceNotConnectedError",
    "DeviceTimeoutError",
    "LinkError",
    "LinkTimeoutError",
    "WrongRobotError",
    "DecodeError",
    "SecurityError",
    "RobotError",
    "RetargetError",
    "SolverFailed",
]


class TeleopError(Exception):
    """Root of every error raised on purpose by this project."""


class ConfigError(TeleopError, ValueError):
    """A config file or option is wrong; the message names the key and the fix."""


class DeviceError(TeleopError):
    """A hardware device misbehaved."""


class DeviceNotConnectedError(DeviceError, ConnectionError):
    """A device method needs ``connect()`` first."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """No fresh sample from a device within the allowed time."""


class LinkError(TeleopError, ConnectionError):
    """The ZeroMQ bus or a peer on it failed."""


class LinkTimeoutError(LinkError, TimeoutError):
    """A peer did not answer a request in time."""


class WrongRobotError(LinkError):
    """A robot server other than the one this client connected to (or was told to expect)
    answered: it restarted, or another server holds the endpoints."""


class DecodeError(TeleopError, ValueError):
    """A message on the bus was rejected by strict decoding.

    ``reason`` is a short stable key (``bad_version``, ``bad_shape`` ...) used for counters.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SecurityError(LinkError):
    """An endpoint would be exposed without authentication (CURVE keys missing)."""


class RobotError(TeleopError):
    """The robot (simulated or real) refused or failed an operation."""


class RetargetError(TeleopError):
    """Retargeting could not produce joint targets."""


class SolverFailed(RetargetError):
    """An optimiser did not converge to a usable solution."""
