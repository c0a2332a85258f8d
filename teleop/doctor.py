"""``teleop doctor``: what this machine has, what is missing, and what to do about it."""

from __future__ import annotations

import glob
import importlib
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from teleop.bus.endpoints import DEFAULT_HOST, RobotEndpoints

__all__ = ["run_doctor", "format_report"]

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
        version = getattr(mod, "__version__", None) or getattr(mod, "version", "")
        version = version() if callable(version) else version
        detail = f"{dist} {version}"
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
                     f"display {display}" if display else "no display: headless only (`teleop sim --viewer` needs one)"))
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


def _ports(port_base: int) -> list[dict[str, str]]:
    ep = RobotEndpoints.on(DEFAULT_HOST, port_base)
    busy = []
    for name, addr in ep.as_dict().items():
        port = int(addr.rsplit(":", 1)[1])
        with socket.socket() as s:
            try:
                s.bind((DEFAULT_HOST, port))
            except OSError:
                busy.append(f"{name}:{port}")
    if busy:
        return [_item("ports", "warn", f"in use: {', '.join(busy)} (a robot server may already be running)",
                      "stop it, or pass --port-base to use other ports")]
    return [_item("ports", "ok", f"{port_base}..{port_base + 3} free on {DEFAULT_HOST}")]


def _numba_cache() -> list[dict[str, str]]:
    import robots

    where = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(robots.__file__).parent)
    ok = os.access(where, os.W_OK)
    return [_item("numba cache", "ok" if ok else "warn", f"kernels cached under {where}",
                  "" if ok else "set NUMBA_CACHE_DIR to a writable folder (kernels recompile at every start otherwise)")]


def run_doctor(port_base: int = 7610) -> dict:
    t0 = time.perf_counter()
    items = [_item("python", "ok" if sys.version_info >= (3, 11) else "fail",
                   f"{platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} cores",
                   "" if sys.version_info >= (3, 11) else "install Python 3.11 or newer")]
    items += _packages() + _render() + _devices() + _ports(port_base) + _numba_cache()
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
