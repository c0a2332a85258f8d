"""Where things listen. This module is the one place that names default endpoints; docs and
``teleop --help`` print ``describe_defaults()``.

Everything binds to loopback by default. An endpoint reachable from another host needs CURVE
keys (``teleop keys generate``); ``require_secure`` enforces that.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields, replace
from urllib.parse import urlsplit

from teleop.errors import ConfigError, SecurityError

__all__ = [
    "RobotEndpoints",
    "DEFAULT_HOST",
    "DEFAULT_PORT_BASE",
    "DEFAULT_INPUT_ENDPOINT",
    "TOPIC_INPUT",
    "is_loopback",
    "require_secure",
    "describe_defaults",
    "connect_address",
    "TOPIC_STATE",
    "TOPIC_COMMAND",
    "TOPIC_CAMERA",
    "session_endpoints",
    "ports_free",
    "free_port_base",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 7610
#: Where the network input driver listens for hand keypoint and wrist pose streams.
DEFAULT_INPUT_ENDPOINT = "tcp://127.0.0.1:7620"
TOPIC_INPUT = "input/"


@dataclass(frozen=True)
class RobotEndpoints:
    """The four sockets of a robot server (bound by the server, connected by clients)."""

    state: str  # PUB, robot_state at >= 500 Hz
    command: str  # SUB on the server, joint_command (latest wins)
    camera: str  # PUB, camera_frame per camera, topic robot/camera/<name>
    rpc: str  # REP, spec / estop / release / ping / stats / reset

    @classmethod
    def on(cls, host: str = DEFAULT_HOST, port_base: int = DEFAULT_PORT_BASE) -> RobotEndpoints:
        if not 1024 <= port_base <= 65532:
            raise ConfigError(f"port base {port_base} must be in 1024..65532 (four ports are used)")
        return cls(
            state=f"tcp://{host}:{port_base}",
            command=f"tcp://{host}:{port_base + 1}",
            camera=f"tcp://{host}:{port_base + 2}",
            rpc=f"tcp://{host}:{port_base + 3}",
        )

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, str]) -> RobotEndpoints:
        want = {f.name for f in fields(cls)}
        if set(values) != want:
            raise ConfigError(f"robot endpoints need exactly the keys {sorted(want)}, got {sorted(values)}")
        return cls(**values)

    def override(self, **values: str | None) -> RobotEndpoints:
        return replace(self, **{k: v for k, v in values.items() if v})


def ports_free(port_base: int, count: int = 6, host: str = DEFAULT_HOST) -> bool:
    """True when ``count`` ports from ``port_base`` can be bound on ``host`` right now."""
    import socket

    for port in range(port_base, port_base + count):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port_base(preferred: int = DEFAULT_PORT_BASE, count: int = 6, host: str = DEFAULT_HOST) -> int:
    """``preferred`` if its ``count`` ports are free, else the next free base above it (steps of
    10, so bases stay readable), else one the kernel picks."""
    import socket

    # other defaults live above the session's ports: network input (7620), policy server (7630)
    reserved = {int(DEFAULT_INPUT_ENDPOINT.rsplit(":", 1)[1]), 7630}
    for base in range(preferred, min(preferred + 2000, 65530 - count), 10):
        if reserved.isdisjoint(range(base, base + count)) and ports_free(base, count, host):
            return base
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            base = s.getsockname()[1]
        if base + count <= 65535 and ports_free(base, count, host):
            return base
    raise ConfigError(f"no {count} consecutive free ports on {host}")


def session_endpoints(host: str = DEFAULT_HOST, port_base: int = DEFAULT_PORT_BASE) -> tuple[str, str]:
    """(tap, recorder control): the session publishes everything it sees and does on the tap
    (port_base + 4, PUB); the recorder answers episode controls on port_base + 5 (REP)."""
    return f"tcp://{host}:{port_base + 4}", f"tcp://{host}:{port_base + 5}"


TOPIC_STATE = "robot/state"
TOPIC_COMMAND = "robot/command"
TOPIC_CAMERA = "robot/camera/"


def _host(endpoint: str) -> str | None:
    if not endpoint.startswith("tcp://"):
        return None
    host = urlsplit(endpoint).hostname
    if host is None:
        raise ConfigError(f"endpoint {endpoint!r} has no host; write it like tcp://127.0.0.1:7610")
    return host


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on 127.0.0.0/8, ::1 or localhost."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        raise ConfigError(f"endpoint {endpoint!r}: only tcp://, ipc:// and inproc:// are supported")
    host = _host(endpoint)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def require_secure(endpoint: str, has_keys: bool) -> None:
    """Refuse a non-loopback endpoint without CURVE keys."""
    if not is_loopback(endpoint) and not has_keys:
        raise SecurityError(
            f"endpoint {endpoint} is reachable from other hosts; refusing to use it without "
            "encryption. Run `teleop keys generate --dir KEYS` and pass `--keys KEYS` on both sides "
            "(or use a 127.0.0.1 endpoint)."
        )


def connect_address(endpoint: str, peer_host: str | None) -> str:
    """Turn a bind address a server reports (``tcp://0.0.0.0:7610``) into one a client can dial."""
    if endpoint.startswith("tcp://") and peer_host:
        host = _host(endpoint)
        if host in ("0.0.0.0", "*", "::"):
            port = urlsplit(endpoint.replace("*", "0.0.0.0")).port
            return f"tcp://{peer_host}:{port}"
    return endpoint


def describe_defaults() -> str:
    ep = RobotEndpoints.on()
    return (
        "default endpoints (robot server binds, clients connect; override with --host/--port-base):\n"
        f"  robot state   PUB  {ep.state}   topic {TOPIC_STATE}\n"
        f"  robot command SUB  {ep.command}   topic {TOPIC_COMMAND}\n"
        f"  robot camera  PUB  {ep.camera}   topic {TOPIC_CAMERA}<camera>\n"
        f"  robot rpc     REP  {ep.rpc}   spec, estop, release, ping, stats, reset\n"
        f"  input streams SUB  {DEFAULT_INPUT_ENDPOINT}   topic {TOPIC_INPUT}<side>/... (drivers: network)\n"
        f"  session tap   PUB  {session_endpoints()[0]}   topics session/... (the recorder listens)\n"
        f"  recorder ctl  REP  {session_endpoints()[1]}   episode start, stop, discard, success, failure, task, note"
    )
