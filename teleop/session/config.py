"""Session configs (TOML): which devices feed which hand and wrist, which robot, loop rate,
controls, safety limits, haptics. Parsed strictly: every error names the key and the fix.

    [session]   rate_hz, robot_description, operator
    [robot]     kind = "sim" | "bridge", rpc, port_base, sim_args, keys
    [device.NAME]   driver, options = { ... }     (one per physical device)
    [input.left] / [input.right]   hand = "NAME", wrist = "NAME"
    [controls]  engage, estop, release, intervene, episode_* (lists of sources: "key:<c>",
                "NAME:<button>", "gesture:<side>_<pinch|fist>", "auto"),
                engage_mode = "toggle" | "hold"
    [safety]    stale_timeout_s, max_start_distance_rad, engage_max_step_rad, min_hand_distance_m
    [haptics]   enabled, rate_hz, full_force_n, deadband_n, exponent, max_change_per_s
    [recorder]  enabled, dataset, task, start, codec, crf, preset
    [policy]    enabled, endpoint, rate_hz, timeout_s, max_hold_s, blend_max_step_rad, recentre_on_takeover, task
    [realtime]  priority, cpu, lock_memory (the loop thread; applied where permitted, reported in the summary)
    [loop]      mode = "on_sample" | "fixed", feed_s (teleop/session/pipeline.py)

Every number has an allowed range, declared with its field (``_num``) and checked on parsing;
NaN and +-inf never pass, and whole numbers (port_base, crf) are never truncated.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from robots.description import bundled_description_path
from teleop.bus.endpoints import (
    DEFAULT_HOST,
    DEFAULT_INPUT_ENDPOINT,
    DEFAULT_PORT_BASE,
    RobotEndpoints,
    is_loopback,
    session_endpoints,
)
from teleop.errors import ConfigError
from teleop.policy import DEFAULT_POLICY_ENDPOINT
from teleop.tomlcfg import NumberRange, check_keys, get, load_toml
from teleop.types import SIDES, Side

__all__ = [
    "DeviceConfig", "InputConfig", "RobotConfig", "ControlsConfig", "SafetyConfig", "HapticsConfig",
    "SessionConfig", "RecorderSettings", "PolicySettings", "RealtimeSettings", "LoopSettings", "WebSettings",
    "load_session", "parse_session", "bundled_session_path", "BUNDLED_SESSIONS_DIR",
    "default_endpoints", "bound_endpoints", "with_port_base", "with_sim_args", "has_display",
]

logger = logging.getLogger(__name__)

BUNDLED_SESSIONS_DIR = Path(__file__).resolve().parents[1] / "sessions"


def _num(default: float, low: float | None = None, high: float | None = None, *, low_open: bool = False,
         integer: bool = False) -> Any:
    """A numeric field with its allowed range (checked by ``parse_session``; NaN and inf never pass)."""
    return field(default=default, metadata={"range": NumberRange(low, high, low_open=low_open, integer=integer)})


def _range(cls: type, name: str) -> NumberRange:
    return {f.name: f for f in dataclasses.fields(cls)}[name].metadata["range"]


def bundled_session_path(name: str) -> Path:
    path = BUNDLED_SESSIONS_DIR / f"{name}.toml"
    if not path.is_file():
        names = sorted(p.stem for p in BUNDLED_SESSIONS_DIR.glob("*.toml"))
        raise ConfigError(f"no session config {name!r}: give a path to a .toml, or one of the bundled: {names}")
    return path


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    driver: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InputConfig:
    hand: str | None = None  # device name providing HandSamples for this side
    wrist: str | None = None  # device name providing PoseSamples for this side


@dataclass(frozen=True)
class RobotConfig:
    kind: Literal["sim", "bridge"] = "sim"
    rpc: str | None = None  # bridge: the server's request endpoint; sim: derived from port_base
    # the robot server uses port_base..+3, the session tap +4 and the recorder control +5
    port_base: int = _num(DEFAULT_PORT_BASE, 1024, 65530, integer=True)
    sim_args: tuple[str, ...] = ()
    keys: Path | None = None


@dataclass(frozen=True)
class ControlsConfig:
    engage: tuple[str, ...] = ("key:space",)
    estop: tuple[str, ...] = ("key:e",)
    release: tuple[str, ...] = ("key:r",)
    engage_mode: Literal["toggle", "hold"] = "toggle"
    # episode controls, sent to the recorder (recorder/recorder.py)
    episode_start: tuple[str, ...] = ("key:b",)
    episode_stop: tuple[str, ...] = ("key:s",)
    episode_discard: tuple[str, ...] = ("key:x",)
    episode_success: tuple[str, ...] = ("key:y",)
    episode_failure: tuple[str, ...] = ("key:n",)
    # takeover from a policy and return to it (policy.md); "hold": the human drives while held
    intervene: tuple[str, ...] = ("key:i",)
    intervene_mode: Literal["toggle", "hold"] = "toggle"


@dataclass(frozen=True)
class SafetyConfig:
    # no fresh hand/wrist sample for this long -> hold, re-engage needed; (0, 5]
    stale_timeout_s: float = _num(0.1, 0, 5, low_open=True)
    # refuse to engage when a joint's first command is farther than this; (0, 6.3] (6.3: about a full
    # turn, no joint is farther: the check is off in effect)
    max_start_distance_rad: float = _num(1.5, 0, 6.3, low_open=True)
    engage_max_step_rad: float = _num(0.01, 0, 0.5, low_open=True)  # per tick while ramping after (re-)engage
    min_hand_distance_m: float = _num(0.10, 0, 1)  # wrists never commanded closer than this; 0 = off
    # no robot state for this long -> the robot is lost: hold, re-engage needed; [0.01, 1] (read at
    # ~200 Hz, so lost within robot_timeout_s + 5 ms + a tick: under 100 ms by default)
    robot_timeout_s: float = _num(0.06, 0.01, 1)


@dataclass(frozen=True)
class HapticsConfig:
    enabled: bool = True
    rate_hz: float = _num(50.0, 0, 1000, low_open=True)
    full_force_n: float = _num(5.0, 0, 1000, low_open=True)  # contact force that maps to full feedback
    deadband_n: float = _num(0.2, 0, 1000)  # below full_force_n
    exponent: float = _num(1.0, 0.1, 10)  # curve: ((F - deadband) / (full - deadband)) ** exponent
    # rate limit of the feedback level (1 = full range per second)
    max_change_per_s: float = _num(10.0, 0, 1000, low_open=True)


@dataclass(frozen=True)
class PolicySettings:
    """A policy server drives the robot while engaged; the operator takes over with ``intervene``."""

    enabled: bool = False
    endpoint: str = DEFAULT_POLICY_ENDPOINT
    rate_hz: float = _num(50.0, 0, 1000, low_open=True)  # observations sent per second
    timeout_s: float = _num(0.1, 0, 10, low_open=True)  # an answer later than this is late (counted; the robot holds)
    max_hold_s: float = _num(0.2, 0, 10, low_open=True)  # how long past its last row a chunk may still be used
    blend_max_step_rad: float = _num(0.01, 0, 0.5, low_open=True)  # per tick, when control returns to the policy
    # true: at takeover the operator's wrists are re-centred on the robot's pose (relative mapping, as
    # when engaging). false: the wrist mapping set when the policy started is kept, so the robot ramps
    # to where the operator's hands are (a scripted expert that does not look at the scene needs this)
    recentre_on_takeover: bool = True
    task: str = ""


@dataclass(frozen=True)
class RecorderSettings:
    """``teleop run`` starts ``teleop record`` alongside the session when enabled."""

    enabled: bool = False
    dataset: str = ""  # default: ./data/<session name>
    task: str = ""
    start: str = "auto"  # "auto": an episode starts with the session; "manual": on episode_start
    codec: str = "h264"
    crf: int = _num(23, 0, 63, integer=True)  # video quality (lower: better; x264 uses 0..51, av1 0..63)
    preset: str = "ultrafast"


@dataclass(frozen=True)
class RealtimeSettings:
    """The loop thread's scheduling (teleop/session/realtime.py; docs/sessions.md "Real-time settings")."""

    priority: int = _num(0, 0, 99, integer=True)  # SCHED_FIFO priority 1..99; 0 = the normal scheduler
    cpu: int = _num(-1, -1, 1023, integer=True)  # pin the loop thread to this CPU; -1 = any
    lock_memory: bool = False  # mlockall: the loop's pages never fault to disk


@dataclass(frozen=True)
class LoopSettings:
    """When commands go out (teleop/session/pipeline.py; docs/sessions.md "The pipeline")."""

    mode: str = "on_sample"  # "on_sample": a new hand or wrist sample is acted on at once; "fixed": at the tick
    # on_sample: the longest pause between the operator's commands before a tick sends one anyway
    feed_s: float = _num(0.01, 0.001, 0.05)


@dataclass(frozen=True)
class WebSettings:
    """[web]: the session serves its console and the XR page (teleop/web; docs/web.md)."""

    enabled: bool = False
    host: str = "0.0.0.0"  # every interface: the token gates access
    port: int = _num(8443, 0, 65535, integer=True)  # 0: any free port
    cert: str = ""  # the lab's own PEM certificate and key; default: one generated once and kept
    key: str = ""
    config_dir: str = ""  # where the generated certificate and the token are kept (default ~/.config/teleop/web)
    cameras: tuple[str, ...] = ("auto",)  # robot cameras shown: "auto" its first; two: the XR page's eyes; [] none
    camera_hz: float = _num(30.0, 1, 60)
    max_rate_hz: float = _num(250.0, 1, 2000)  # messages/s per socket

    def server_options(self, base: Path) -> dict[str, Any]:
        """The options a ``webxr`` device gets from [web] (it serves on the session's server)."""
        out: dict[str, Any] = {"host": self.host, "port": self.port, "max_rate_hz": self.max_rate_hz}
        for name in ("cert", "key", "config_dir"):
            if value := getattr(self, name):
                out[name] = str((base / Path(value).expanduser()).resolve())
        return out

    def web_config(self, base: Path, **extra: Any):
        """The server's own config (``teleop.web.server.WebConfig``: it checks ports, rates, certs)."""
        from teleop.web.server import WebConfig

        paths = ("cert", "key", "config_dir")
        return WebConfig(**{k: Path(v) if k in paths else v for k, v in self.server_options(base).items()}, **extra)


#: webxr options that [web] sets for every webxr device of the session
WEB_SERVER_KEYS = ("host", "port", "cert", "key", "config_dir", "max_rate_hz", "new_cert", "new_token", "camera",
                   "camera_names", "camera_hz")


@dataclass(frozen=True)
class SessionConfig:
    rate_hz: float = field(metadata={"range": NumberRange(10, 1000)})  # [session] rate_hz; default 500
    robot_description: Path
    robot: RobotConfig
    devices: dict[str, DeviceConfig]
    inputs: dict[Side, InputConfig]
    controls: ControlsConfig = field(default_factory=ControlsConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    haptics: HapticsConfig = field(default_factory=HapticsConfig)
    operator: str | None = None
    recorder: RecorderSettings = field(default_factory=RecorderSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    loop: LoopSettings = field(default_factory=LoopSettings)
    web: WebSettings = field(default_factory=WebSettings)
    source: Path | None = None

    @property
    def name(self) -> str:
        return self.source.stem if self.source else "session"

    def dataset_dir(self) -> Path:
        d = self.recorder.dataset or f"data/{self.name}"
        return Path(d).expanduser().resolve()

    def rpc_endpoint(self) -> str:
        if self.robot.rpc:
            return self.robot.rpc
        from teleop.bus.endpoints import RobotEndpoints

        return RobotEndpoints.on(port_base=self.robot.port_base).rpc


_TOP = {"session", "robot", "device", "input", "controls", "safety", "haptics", "recorder", "policy", "realtime", "loop",
        "web"}


def _dataclass_from(table: dict[str, Any], cls: type, where: str, prefix: str) -> Any:
    """Fill a flat dataclass of floats/bools/strings/lists from a TOML table, strictly."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(table, set(fields), where, prefix)
    values: dict[str, Any] = {}
    defaults = cls()
    for name, value in table.items():
        default = getattr(defaults, name)
        if isinstance(default, bool):
            values[name] = get(table, name, bool, where, prefix)
        elif isinstance(default, (int, float)):
            rng = fields[name].metadata.get("range")
            if not isinstance(rng, NumberRange):
                raise TypeError(f"{cls.__name__}.{name}: a numeric config field needs its allowed range (use _num)")
            values[name] = rng.check(get(table, name, (int, float), where, prefix), f"{prefix}{name}", where)
        elif isinstance(default, tuple):
            items = get(table, name, list, where, prefix)
            if not all(isinstance(v, str) for v in items):
                raise ConfigError(f"{where}: key '{prefix}{name}' must be a list of strings, got {items!r}")
            values[name] = tuple(items)
        else:
            values[name] = get(table, name, str, where, prefix)
    return cls(**values)


def parse_session(raw: dict[str, Any], source: Path | None = None) -> SessionConfig:
    where = str(source) if source else "<session config>"
    base = source.parent if source else Path.cwd()
    check_keys(raw, _TOP, where)
    sess = get(raw, "session", dict, where, required=False) or {}
    check_keys(sess, {"rate_hz", "robot_description", "operator"}, where, "session.")
    rate = get(sess, "rate_hz", (int, float), where, "session.", required=False)
    rate = 500.0 if rate is None else _range(SessionConfig, "rate_hz").check(rate, "session.rate_hz", where)
    desc_path = bundled_description_path()
    if (rel := get(sess, "robot_description", str, where, "session.", required=False)) is not None:
        desc_path = (base / rel).resolve() if not Path(rel).is_absolute() else Path(rel)
        if not desc_path.is_file():
            raise ConfigError(f"{where}: key 'session.robot_description' points to {desc_path}, which does not exist")

    rob = get(raw, "robot", dict, where, required=False) or {}
    check_keys(rob, {"kind", "rpc", "port_base", "sim_args", "keys"}, where, "robot.")
    kind = get(rob, "kind", str, where, "robot.", required=False) or "sim"
    if kind not in ("sim", "bridge"):
        raise ConfigError(f"{where}: key 'robot.kind' = {kind!r}; allowed: 'sim' (start the MuJoCo server) or 'bridge'")
    rpc = get(rob, "rpc", str, where, "robot.", required=False)
    if kind == "bridge" and not rpc:
        raise ConfigError(f"{where}: robot.kind = 'bridge' needs key 'robot.rpc', the bridge's request endpoint")
    sim_args = get(rob, "sim_args", list, where, "robot.", required=False) or []
    if not all(isinstance(a, str) for a in sim_args):
        raise ConfigError(f"{where}: key 'robot.sim_args' must be a list of strings (teleop sim options)")
    keys = get(rob, "keys", str, where, "robot.", required=False)
    port_base = get(rob, "port_base", (int, float), where, "robot.", required=False)
    port_base = DEFAULT_PORT_BASE if port_base is None else _range(RobotConfig, "port_base").check(
        port_base, "robot.port_base", where)
    robot = RobotConfig(kind=kind, rpc=rpc, port_base=port_base, sim_args=tuple(sim_args),
                        keys=(base / keys) if keys else None)

    devices: dict[str, DeviceConfig] = {}
    for name, table in (get(raw, "device", dict, where, required=False) or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [device.{name}] must be a table with 'driver' and 'options'")
        check_keys(table, {"driver", "options"}, where, f"device.{name}.")
        driver = get(table, "driver", str, where, f"device.{name}.")
        options = get(table, "options", dict, where, f"device.{name}.", required=False) or {}
        devices[name] = DeviceConfig(name, driver, dict(options))

    inputs: dict[Side, InputConfig] = {}
    inp = get(raw, "input", dict, where, required=False) or {}
    check_keys(inp, set(SIDES), where, "input.")
    for side in SIDES:
        table = get(inp, side, dict, where, "input.", required=False) or {}
        check_keys(table, {"hand", "wrist"}, where, f"input.{side}.")
        ic = InputConfig(hand=get(table, "hand", str, where, f"input.{side}.", required=False),
                         wrist=get(table, "wrist", str, where, f"input.{side}.", required=False))
        for role in ("hand", "wrist"):
            dev = getattr(ic, role)
            if dev is not None and dev not in devices:
                raise ConfigError(f"{where}: key 'input.{side}.{role}' = {dev!r} names no [device.{dev}]; devices: {sorted(devices)}")
        inputs[side] = ic

    controls = _dataclass_from(get(raw, "controls", dict, where, required=False) or {}, ControlsConfig, where, "controls.")
    if controls.engage_mode not in ("toggle", "hold"):
        raise ConfigError(f"{where}: key 'controls.engage_mode' = {controls.engage_mode!r}; allowed: 'toggle', 'hold'")
    if controls.intervene_mode not in ("toggle", "hold"):
        raise ConfigError(f"{where}: key 'controls.intervene_mode' = {controls.intervene_mode!r}; allowed: 'toggle', 'hold'")
    for key in ("engage", "estop", "release", "episode_start", "episode_stop", "episode_discard", "episode_success",
                "episode_failure", "intervene"):
        for src in getattr(controls, key):
            _check_control(src, devices, where, f"controls.{key}")
    safety = _dataclass_from(get(raw, "safety", dict, where, required=False) or {}, SafetyConfig, where, "safety.")
    haptics = _dataclass_from(get(raw, "haptics", dict, where, required=False) or {}, HapticsConfig, where, "haptics.")
    if haptics.full_force_n <= haptics.deadband_n:
        raise ConfigError(f"{where}: key 'haptics.full_force_n' must be above 'haptics.deadband_n', got "
                          f"{haptics.full_force_n} <= {haptics.deadband_n}")
    recorder = _dataclass_from(get(raw, "recorder", dict, where, required=False) or {}, RecorderSettings, where,
                               "recorder.")
    if recorder.start not in ("auto", "manual"):
        raise ConfigError(f"{where}: key 'recorder.start' = {recorder.start!r}; allowed: 'auto', 'manual'")
    if recorder.codec not in ("h264", "av1"):
        raise ConfigError(f"{where}: key 'recorder.codec' = {recorder.codec!r}; allowed: 'h264', 'av1'")
    policy = _dataclass_from(get(raw, "policy", dict, where, required=False) or {}, PolicySettings, where, "policy.")
    realtime = _dataclass_from(get(raw, "realtime", dict, where, required=False) or {}, RealtimeSettings, where,
                               "realtime.")
    if realtime.cpu >= 0 and hasattr(os, "sched_getaffinity") and realtime.cpu not in (cpus := os.sched_getaffinity(0)):
        raise ConfigError(f"{where}: key 'realtime.cpu' = {realtime.cpu} is not a CPU this process may use; "
                          f"allowed: {sorted(cpus)}, or -1 for any")
    loop = _dataclass_from(get(raw, "loop", dict, where, required=False) or {}, LoopSettings, where, "loop.")
    if loop.mode not in ("on_sample", "fixed"):
        raise ConfigError(f"{where}: key 'loop.mode' = {loop.mode!r}; allowed: 'on_sample', 'fixed'")
    web = _web(raw, where, base, devices)
    if not any(ic.hand or ic.wrist for ic in inputs.values()) and not policy.enabled:
        raise ConfigError(f"{where}: no inputs: add [input.left] / [input.right] with hand = and wrist = device names "
                          "(or enable [policy] for a session driven by a policy alone)")
    return SessionConfig(
        rate_hz=rate, robot_description=desc_path, robot=robot, devices=devices, inputs=inputs, controls=controls,
        safety=safety, haptics=haptics, operator=get(sess, "operator", str, where, "session.", required=False),
        recorder=recorder, policy=policy, realtime=realtime, loop=loop, web=web, source=source,
    )


def _web(raw: dict[str, Any], where: str, base: Path, devices: dict[str, DeviceConfig]) -> WebSettings:
    """[web], checked as the server checks it; with it enabled every ``webxr`` device serves on
    the session's server, so the server's options are [web]'s alone."""
    web = _dataclass_from(get(raw, "web", dict, where, required=False) or {}, WebSettings, where, "web.")
    if not web.enabled:
        return web
    if bool(web.cert) != bool(web.key):
        raise ConfigError(f"{where}: keys 'web.cert' and 'web.key' go together: the lab's own PEM files, or neither")
    if len(web.cameras) > 2 or ("auto" in web.cameras and len(web.cameras) > 1):
        raise ConfigError(f"{where}: key 'web.cameras' = {list(web.cameras)}: [\"auto\"] (the robot's first camera), "
                          "one or two camera names (two: the XR page's left and right eye), or [] for none")
    try:
        web.web_config(base, camera_hz=web.camera_hz)
    except ConfigError as exc:
        raise ConfigError(f"{where}: [web]: {exc}") from None
    for name, dc in devices.items():
        if dc.driver != "webxr":
            continue
        if own := sorted(set(dc.options) & set(WEB_SERVER_KEYS)):
            raise ConfigError(f"{where}: [device.{name}] options {own}: with [web] enabled the XR page is served by "
                              "the session's server; set these in [web] (cameras: web.cameras)")
        devices[name] = dataclasses.replace(dc, options={**dc.options, **web.server_options(base)})
    return web


def _check_control(src: str, devices: dict[str, DeviceConfig], where: str, key: str) -> None:
    if src == "auto":
        return
    kind, sep, rest = src.partition(":")
    if not sep or not rest:
        raise ConfigError(f"{where}: '{key}' entry {src!r}: write 'key:<char>', '<device>:<button>' or 'auto'")
    if kind == "key":
        if rest not in ("space", "enter") and len(rest) != 1:
            raise ConfigError(f"{where}: '{key}' entry {src!r}: a key is one character, 'space' or 'enter'")
    elif kind == "gesture":
        from teleop.session.gestures import GESTURES

        if rest not in GESTURES:
            raise ConfigError(f"{where}: '{key}' entry {src!r}: gestures are {sorted(GESTURES)}")
    elif kind not in devices:
        raise ConfigError(f"{where}: '{key}' entry {src!r} names no device {kind!r}; devices: {sorted(devices)}")


def load_session(path_or_name: str | Path) -> SessionConfig:
    """A session TOML by path, or the name of a bundled one (teleop/sessions/<name>.toml)."""
    p = Path(path_or_name)
    if not p.suffix and not p.exists():
        p = bundled_session_path(str(path_or_name))
    return parse_session(load_toml(p, "session config"), source=p.resolve())


# -- what one run changes: the ports, the robot server's options ------------------------------------

def _loopback_tcp_port(endpoint: str) -> int | None:
    """The port of a tcp:// endpoint on loopback (what a port base moves); None for the others
    (ipc://, another host: not ours to move)."""
    if not endpoint.startswith("tcp://") or not is_loopback(endpoint):
        return None
    from urllib.parse import urlsplit

    return urlsplit(endpoint).port


def _moved(endpoint: str, delta: int, what: str) -> str:
    port = _loopback_tcp_port(endpoint)
    if port is None or delta == 0:
        return endpoint
    new = port + delta
    if not 1024 <= new <= 65535:
        raise ConfigError(f"{what} {endpoint} would move to port {new}, outside 1024..65535: pick another --port-base")
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
    return f"tcp://{host}:{new}"


def default_endpoints(port_base: int = DEFAULT_PORT_BASE) -> dict[str, str]:
    """Every endpoint the runtime uses by default (teleop/bus/endpoints.py; the policy server's
    from teleop/policy), moved together the way ``teleop run --port-base`` moves them: the robot
    server base..+3, the session tap +4, the recorder control +5, the network input +10 and the
    policy server +20 (7610..7615, 7620, 7630 by default)."""
    delta = port_base - DEFAULT_PORT_BASE
    robot = RobotEndpoints.on(DEFAULT_HOST, port_base).as_dict()
    tap, control = session_endpoints(DEFAULT_HOST, port_base)
    return {**{f"robot {name}": url for name, url in robot.items()}, "session tap": tap, "recorder control": control,
            "network input": _moved(DEFAULT_INPUT_ENDPOINT, delta, "the network input"),
            "policy server": _moved(DEFAULT_POLICY_ENDPOINT, delta, "the policy server")}


def _binds(value: Any) -> bool:
    return value.strip().lower() not in ("false", "0", "no", "off") if isinstance(value, str) else bool(value)


def bound_endpoints(config: SessionConfig) -> dict[str, str]:
    """What the session and the children it starts will bind, so what must be free before it
    starts: its robot server's four ports (kind "sim"), its tap, the recorder's control (when
    recording), and the endpoint of every network input device that binds. (The policy server
    is not here: the session connects to it.)"""
    out: dict[str, str] = {}
    if config.robot.kind == "sim":
        robot = RobotEndpoints.on(DEFAULT_HOST, config.robot.port_base).as_dict()
        out.update({f"robot {name}": url for name, url in robot.items()})
    tap, control = session_endpoints(port_base=config.robot.port_base)
    out["session tap"] = tap
    if config.recorder.enabled:
        out["recorder control"] = control
    for name, dc in config.devices.items():
        if dc.driver == "network" and _binds(dc.options.get("bind", True)):
            out[f"device {name} (network input)"] = str(dc.options.get("endpoint", DEFAULT_INPUT_ENDPOINT))
        elif dc.driver == "webxr" and not config.web.enabled and (port := dc.options.get("port", 8443)):
            out[f"device {name} (XR page)"] = f"tcp://{dc.options.get('host', '0.0.0.0')}:{port}"
    if config.web.enabled and config.web.port:
        out["web (console, XR page)"] = f"tcp://{config.web.host}:{config.web.port}"
    return out


def with_port_base(config: SessionConfig, port_base: int) -> SessionConfig:
    """The session on other ports: the robot server it starts (base..+3), its tap (+4) and the
    recorder's control (+5) from ``port_base``; every other loopback tcp endpoint of the config
    (network input devices, the policy server) moves by as much as the base did, so the default
    7620 and 7630 become base + 10 and base + 20. A bridge's endpoint ([robot] rpc with kind =
    "bridge") is the bridge's own and stays."""
    _range(RobotConfig, "port_base").check(port_base, "port base", "teleop run --port-base")
    delta = port_base - config.robot.port_base
    devices = {}
    for name, dc in config.devices.items():
        options = dict(dc.options)
        if dc.driver == "network" and "endpoint" not in options:
            options["endpoint"] = DEFAULT_INPUT_ENDPOINT  # its default moves too
        if isinstance(options.get("endpoint"), str):
            options["endpoint"] = _moved(options["endpoint"], delta, f"device {name!r} endpoint")
        devices[name] = dataclasses.replace(dc, options=options)
    rpc = config.robot.rpc
    if rpc and config.robot.kind == "sim":
        rpc = _moved(rpc, delta, "robot.rpc")
    robot = dataclasses.replace(config.robot, port_base=port_base, rpc=rpc)
    policy = dataclasses.replace(config.policy, endpoint=_moved(config.policy.endpoint, delta, "policy.endpoint"))
    web = config.web
    if web.enabled and web.port and delta:  # the console moves with the rest (a second session beside the first)
        moved = web.port + delta
        if not 1024 <= moved <= 65535:
            raise ConfigError(f"web.port {web.port} would move to {moved}, outside 1024..65535: "
                              "pick another --port-base")
        web = dataclasses.replace(web, port=moved)
        devices = {name: dataclasses.replace(dc, options={**dc.options, "port": moved}) if dc.driver == "webxr" else dc
                   for name, dc in devices.items()}
    return dataclasses.replace(config, robot=robot, devices=devices, policy=policy, web=web)


def has_display() -> bool:
    """Whether a window can open here (what the MuJoCo viewer needs)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def with_sim_args(config: SessionConfig, sim_args: list[str] | None = None, *, viewer: bool | None = None,
                  display: bool | None = None) -> SessionConfig:
    """The session with the options of the robot server it starts, for this run: ``sim_args``
    replaces [robot] sim_args; ``viewer`` True adds ``--viewer``, False takes it out (headless).
    Without a display a viewer asked for here is an error, while one the config asks for is
    dropped with a warning: a profile written at a desk still runs on a headless machine."""
    display = has_display() if display is None else display
    if config.robot.kind != "sim":
        if sim_args is not None or viewer:
            raise ConfigError(f"{config.name}: robot.kind = {config.robot.kind!r}: the session starts no robot "
                              "server, so there are no sim options or viewer to set (drop --sim-args / --viewer)")
        return config
    args = list(config.robot.sim_args if sim_args is None else sim_args)
    asked = viewer is True or (sim_args is not None and "--viewer" in sim_args)
    if viewer is False:
        args = [a for a in args if a != "--viewer"]
    elif asked and not display:
        raise ConfigError("--viewer needs a display (neither DISPLAY nor WAYLAND_DISPLAY is set): run without it "
                          "(headless), or from a desktop session")
    elif viewer is True and "--viewer" not in args:
        args.append("--viewer")
    elif "--viewer" in args and not display:
        logger.warning("%s asks for the MuJoCo viewer (robot.sim_args) but there is no display (DISPLAY, "
                       "WAYLAND_DISPLAY): running the robot server headless", config.name)
        args = [a for a in args if a != "--viewer"]
    return dataclasses.replace(config, robot=dataclasses.replace(config.robot, sim_args=tuple(args)))
