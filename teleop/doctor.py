"""``teleop doctor``: what this machine has, what is missing, and what to do about it."""

from __future__ import annotations

import errno
import glob
import importlib
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from teleop.bus.endpoints import DEFAULT_PORT_BASE, free_port_base
from teleop.errors import ConfigError

__all__ = ["run_doctor", "format_report", "busy_ports", "port_holder", "check_session_ports"]

_PACKAGES = [
    ("numpy", "numpy"),
    ("pinocchio", "pin"),
    ("zmq", "pyzmq"),
    ("msgpack", "msgpack"),
    ("serial", "pyserial"),
    ("hid", "hidapi"),
    ("mujoco", "mujoco"),
    ("numba", "numba"),
]

#: Imported only by the feature that needs them: (module, name shown, distribution, what needs it,
#: required). A required one missing breaks that feature (WARN); ``rerun`` is optional (info).
_FEATURE_PACKAGES = [
    ("av", "av", "av", "recording: episode video (H.264/AV1, fragmented MP4); LeRobot export videos", True),
    ("h5py", "h5py", "h5py", "`teleop export --format hdf5` (robomimic-style HDF5)", True),
    ("pyarrow", "pyarrow", "pyarrow", "`teleop export --format lerobot` (LeRobot v3 parquet files)", True),
    ("cv2", "opencv", "opencv-python-headless", "GelSight Mini capture (V4L2, JPEG), episode timeline plots, "
     "`teleop bench tactile`", True),
    ("rerun", "rerun", "rerun-sdk", "live view of a session or an episode in the Rerun viewer", False),
    ("ai_edge_litert", "litert", "ai-edge-litert", "the camera_hands driver (MediaPipe's hand models on LiteRT)",
     False),
]

_RENDER_PROBE = """
import time, mujoco
m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><light pos="0 0 2"/><geom type="box" size=".1 .1 .1"/></worldbody></mujoco>')
d = mujoco.MjData(m); mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 240, 320); r.update_scene(d); r.render()
t = time.perf_counter(); r.update_scene(d); r.render(); print((time.perf_counter() - t) * 1e3)
"""


def _item(name: str, status: str, detail: str, fix: str = "") -> dict[str, str]:
    return {"check": name, "status": status, "detail": detail, "fix": fix}


def _packages() -> list[dict[str, str]]:
    out = []
    for module, dist in _PACKAGES:
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # a broken native library shows up here
            out.append(_item(f"package {dist}", "fail", f"cannot import {module}: {exc}", f"pip install {dist}"))
            continue
        detail = f"{dist} {_version(mod, dist)}"
        if module == "zmq":
            import zmq

            detail += f" (libzmq {zmq.zmq_version()}, CURVE {'yes' if zmq.has('curve') else 'no'})"
            if not zmq.has("curve"):
                out.append(_item(f"package {dist}", "warn", detail, "reinstall pyzmq from PyPI wheels for CURVE"))
                continue
        out.append(_item(f"package {dist}", "ok", detail))
    return out


def _render() -> list[dict[str, str]]:
    out = []
    working = []
    for backend in ("egl", "osmesa"):
        env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
        try:
            res = subprocess.run(
                [sys.executable, "-c", _RENDER_PROBE], env=env, capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            out.append(_item(f"render {backend}", "warn", "probe timed out"))
            continue
        if res.returncode == 0:
            working.append(backend)
            ms = float(res.stdout.strip().splitlines()[-1])
            out.append(_item(f"render {backend}", "ok", f"offscreen 320x240 works ({ms:.0f} ms per trivial frame)"))
        else:
            last = (res.stderr.strip().splitlines() or ["failed"])[-1][:160]
            pkg = "libegl1 libgl1-mesa-dri" if backend == "egl" else "libosmesa6"
            out.append(_item(f"render {backend}", "warn", last, f"apt install {pkg}"))
    chosen = os.environ.get("MUJOCO_GL", "egl")
    if not working:
        out.append(_item("render backend", "fail", "no offscreen backend works: sim cameras are unavailable",
                         "apt install libegl1 libgl1-mesa-dri (or libosmesa6), or run `teleop sim --cameras none`"))
    elif chosen not in working:
        out.append(_item("render backend", "warn", f"MUJOCO_GL={chosen} does not work here; {working} do",
                         f"export MUJOCO_GL={working[0]}"))
    else:
        out.append(_item("render backend", "ok", f"MUJOCO_GL={chosen}"))
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    out.append(_item("display", "ok" if display else "info",
                     f"display {display}" if display
                     else "no display: headless only (`teleop sim --viewer`, `teleop run --viewer` need one)"))
    return out


def _devices() -> list[dict[str, str]]:
    out = []
    try:
        from serial.tools import list_ports

        ports = [p for p in list_ports.comports() if p.hwid != "n/a"]  # skip legacy on-board UARTs
    except Exception as exc:
        ports = []
        out.append(_item("serial", "warn", f"cannot list serial ports: {exc}"))
    if not ports:
        out.append(_item("serial", "info", "no serial ports (gloves such as LucidGloves appear as /dev/ttyUSB* or /dev/ttyACM*)"))
    for p in ports:
        ok = os.access(p.device, os.R_OK | os.W_OK)
        out.append(_item(f"serial {p.device}", "ok" if ok else "fail", f"{p.description} [{p.hwid}]",
                         "" if ok else "sudo usermod -aG dialout $USER, then log in again"))
    hidraw = sorted(glob.glob("/dev/hidraw*"))
    denied = [h for h in hidraw if not os.access(h, os.R_OK | os.W_OK)]
    if hidraw:
        out.append(_item("hid", "warn" if denied else "ok", f"{len(hidraw)} hidraw devices, {len(denied)} not accessible",
                         "add a udev rule granting your user access (docs/operator-guide.md)" if denied else ""))
    else:
        out.append(_item("hid", "info", "no hidraw devices (SpaceMouse, foot pedals appear as /dev/hidraw*)"))
    videos = sorted(glob.glob("/dev/video*"))
    vdenied = [v for v in videos if not os.access(v, os.R_OK | os.W_OK)]
    out.append(_item("video", "warn" if vdenied else ("ok" if videos else "info"),
                     f"{len(videos)} video devices" + (f", {len(vdenied)} not accessible" if vdenied else "")
                     + ("" if videos else " (GelSight Mini appears as /dev/video*)"),
                     "sudo usermod -aG video $USER" if vdenied else ""))
    return out


def _version(module: object, dist: str) -> str:
    version = getattr(module, "__version__", None) or getattr(module, "version", "")
    version = version() if callable(version) else version
    if not isinstance(version, str) or not version:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version(dist)
        except PackageNotFoundError:
            version = "?"
    return version


def _feature_packages() -> list[dict[str, str]]:
    out = []
    for module, name, dist, used_for, required in _FEATURE_PACKAGES:
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # missing, or a broken native library
            why = "not installed" if isinstance(exc, ModuleNotFoundError) else f"cannot import {module}: {exc}"
            out.append(_item(f"package {name}", "warn" if required else "info",
                             f"{dist} {why}; needed for {used_for}", f"pip install {dist}"))
            continue
        out.append(_item(f"package {name}", "ok", f"{dist} {_version(mod, dist)}: {used_for}"))
    return out


def _tcp_port(endpoint: str) -> tuple[str, int] | None:
    from urllib.parse import urlsplit

    if not endpoint.startswith("tcp://"):
        return None
    parts = urlsplit(endpoint.replace("//*:", "//0.0.0.0:"))
    return (parts.hostname or "0.0.0.0", parts.port) if parts.port else None


def port_holder(port: int) -> str | None:
    """Who listens on tcp ``port`` here: ``"pid N: COMMAND"`` when this user may see it (Linux
    /proc), a hint when someone else's process does, None when nobody listens."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{f[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                cmd = " ".join((proc / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
                return f"pid {proc.name}: {cmd[:160]}"
        except OSError:  # gone, or another user's
            continue
    return "a process of another user (`sudo ss -ltnp` names it)"


def busy_ports(endpoints: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """(name, endpoint, holder) of each tcp endpoint that cannot be bound right now. The probe
    binds with SO_REUSEADDR, as ZeroMQ does: a port left in TIME_WAIT by a session that just
    ended is not busy, one that something listens on is."""
    busy = []
    for name, endpoint in endpoints.items():
        where = _tcp_port(endpoint)
        if where is None:
            continue
        with socket.socket(socket.AF_INET6 if ":" in where[0] else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(where)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    busy.append((name, endpoint, port_holder(where[1])))
    return busy


def _describe_busy(busy: list[tuple[str, str, str | None]]) -> str:
    return "; ".join(f"{name} {endpoint} (held by {holder or 'an unknown program'})" for name, endpoint, holder in busy)


def check_session_ports(config) -> None:
    """Before a session starts anything: every port it or its children will bind must be free,
    else one error naming each port, its holder and a ``--port-base`` that is free now."""
    from teleop.session.config import bound_endpoints, with_port_base

    busy = busy_ports(bound_endpoints(config))
    if not busy:
        return
    lines = "\n  ".join(f"{name}: {endpoint} is held by {holder or 'another program'}"
                         for name, endpoint, holder in busy)
    hint = "pass --port-base N to move every port of the session"
    preferred = config.robot.port_base + 10
    for _ in range(50):  # the block free_port_base finds, and the session's ports above it too
        try:
            base = free_port_base(preferred, count=6)
            if base > 65515 or busy_ports(bound_endpoints(with_port_base(config, base))):
                preferred = base + 10
                continue
        except ConfigError:
            break
        hint = f"pass --port-base {base} (free now) to move every port of the session"
        break
    raise ConfigError(f"ports this session needs are in use:\n  {lines}\nStop what holds them, or {hint}.")


def _ports(port_base: int) -> list[dict[str, str]]:
    """Every default endpoint of the runtime, moved with ``port_base`` the way ``teleop run
    --port-base`` moves them (teleop/session/config.py ``default_endpoints``)."""
    from teleop.session.config import default_endpoints

    endpoints = default_endpoints(port_base)
    busy = busy_ports(endpoints)
    listed = ", ".join(f"{name} {_tcp_port(url)[1]}" for name, url in endpoints.items() if _tcp_port(url))
    if busy:
        return [_item("ports", "warn", f"in use: {_describe_busy(busy)}; checked: {listed}",
                      "stop what holds them (a robot server or session may already run), or use other ports: "
                      "--port-base N on teleop run / sim / doctor")]
    return [_item("ports", "ok", f"free on 127.0.0.1: {listed}")]


def _numba_cache() -> list[dict[str, str]]:
    import robots

    where = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(robots.__file__).parent)
    ok = os.access(where, os.W_OK)
    return [_item("numba cache", "ok" if ok else "warn", f"kernels cached under {where}",
                  "" if ok else "set NUMBA_CACHE_DIR to a writable folder (kernels recompile at every start otherwise)")]


def _hand_models() -> list[dict[str, str]]:
    from drivers.camera_hands.models import status

    report = status()
    bad = {name: m["state"] for name, m in report["models"].items() if m["state"] != "ok"}
    if not bad:
        return [_item("hand models", "ok", f"{', '.join(report['models'])} in {report['dir']}")]
    return [_item("hand models", "warn", f"{'; '.join(f'{n} {state}' for n, state in bad.items())} in {report['dir']}: "
                  "the camera_hands driver needs them", "teleop models fetch (make install does)")]


def _provenance() -> list[dict[str, str]]:
    from teleop.provenance import DISTRIBUTION, check_provenance

    p = check_provenance()
    problem = p.problem()
    if problem:
        return [_item("teleop package", "fail" if not p.ours else "warn", problem, p.fix())]
    mode = "editable" if p.editable else "installed"
    return [_item("teleop package", "ok", f"{DISTRIBUTION} {_version(sys.modules['teleop'], DISTRIBUTION)} "
                  f"({mode}) from {p.imported_from}")]


def run_doctor(port_base: int = DEFAULT_PORT_BASE) -> dict:
    t0 = time.perf_counter()
    items = [_item("python", "ok" if sys.version_info >= (3, 11) else "fail",
                   f"{platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} cores",
                   "" if sys.version_info >= (3, 11) else "install Python 3.11 or newer")]
    items += _provenance()
    items += _packages() + _feature_packages() + _render() + _devices() + _ports(port_base) + _numba_cache()
    items += _hand_models()
    return {"ok": not any(i["status"] == "fail" for i in items), "checks": items,
            "seconds": round(time.perf_counter() - t0, 2)}


def format_report(report: dict) -> str:
    marks = {"ok": "ok  ", "info": "info", "warn": "WARN", "fail": "FAIL"}
    lines = ["teleop doctor"]
    for i in report["checks"]:
        lines.append(f"  [{marks[i['status']]}] {i['check']:<22} {i['detail']}")
        if i["fix"]:
            lines.append(f"  {'':6} {'':<22} -> {i['fix']}")
    lines.append("everything needed is in place" if report["ok"] else "some checks FAILED: fix the lines marked FAIL")
    return "\n".join(lines)
