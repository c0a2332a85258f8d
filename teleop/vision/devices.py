"""Video devices on Linux: find a V4L2 capture node by path, number or name, check that this
user may open it, and load OpenCV with an install hint. Shared by every camera input (the
GelSight Mini, the hand tracker, the object tracker)."""

from __future__ import annotations

import grp
import os
from pathlib import Path
from typing import Any

from teleop.errors import DeviceError

__all__ = ["load_cv2", "list_video_devices", "find_device_by_name", "resolve_device", "check_access",
           "describe_devices", "SYS_VIDEO4LINUX", "DEV", "BY_ID"]

SYS_VIDEO4LINUX = Path("/sys/class/video4linux")
DEV = Path("/dev")
BY_ID = Path("/dev/v4l/by-id")


def load_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise DeviceError(
            f"camera and video input needs OpenCV ({exc}); "
            "install it with `pip install opencv-python-headless`"
        ) from None
    return cv2


# -- device discovery -------------------------------------------------------------------------------


def list_video_devices(sys_root: Path = SYS_VIDEO4LINUX, dev_root: Path = DEV) -> list[tuple[str, str]]:
    """(device path, name) of every V4L2 node: ``/dev/video*`` plus the names from sysfs."""
    found: dict[str, str] = {}
    if sys_root.is_dir():
        for entry in sys_root.iterdir():
            try:
                name = (entry / "name").read_text().strip()
            except OSError:
                name = "?"
            found[str(dev_root / entry.name)] = name
    for p in dev_root.glob("video*"):
        found.setdefault(str(p), "?")

    def key(item: tuple[str, str]) -> tuple[int, str]:
        digits = "".join(c for c in Path(item[0]).name if c.isdigit())
        return (int(digits) if digits else 1 << 30, item[0])

    return sorted(found.items(), key=key)


def describe_devices(devices: list[tuple[str, str]]) -> str:
    if not devices:
        return ("none (no /dev/video* at all: is the sensor plugged in, see `lsusb | grep -i 0c45:636d`, "
                "and is the uvcvideo module loaded?)")
    return ", ".join(f"{p} ({n})" for p, n in devices)


def find_device_by_name(name: str, sys_root: Path = SYS_VIDEO4LINUX, dev_root: Path = DEV,
                        by_id_root: Path = BY_ID) -> str:
    """The capture node whose sysfs name contains ``name`` (case-insensitive), preferring stream
    index 0 (a UVC camera also exposes a metadata node with index 1); else a
    ``/dev/v4l/by-id/*<name>*-video-index0`` symlink. ``DeviceError`` listing what is there."""
    want = name.lower()
    hits: list[tuple[int, int, str]] = []
    if sys_root.is_dir():
        for entry in sys_root.iterdir():
            try:
                got = (entry / "name").read_text().strip()
            except OSError:
                continue
            if want not in got.lower():
                continue
            try:
                index = int((entry / "index").read_text().strip())
            except (OSError, ValueError):
                index = 0
            digits = "".join(c for c in entry.name if c.isdigit())
            hits.append((index, int(digits) if digits else 0, str(dev_root / entry.name)))
    if hits:
        return sorted(hits)[0][2]
    if by_id_root.is_dir():
        tokens = [want.replace(" ", "_"), want.replace(" ", "")]
        links = sorted(p for p in by_id_root.iterdir() if any(t in p.name.lower() for t in tokens))
        for p in sorted(links, key=lambda p: (not p.name.endswith("index0"), p.name)):
            return str(p.resolve())
    raise DeviceError(
        f"no video device named like {name!r}; devices: {describe_devices(list_video_devices(sys_root, dev_root))}. "
        "Plug the sensor in, or pass device=/dev/videoN"
    )


def resolve_device(device: str | None, name: str, sys_root: Path = SYS_VIDEO4LINUX, dev_root: Path = DEV,
                   by_id_root: Path = BY_ID) -> str:
    """``device`` (a path, or a bare number N for /dev/videoN) if given, else found by ``name``."""
    if device:
        path = str(dev_root / f"video{device}") if device.isdigit() else device
        if not os.path.exists(path):
            found = describe_devices(list_video_devices(sys_root, dev_root))
            raise DeviceError(f"video device {path} does not exist; devices: {found}")
        return path
    return find_device_by_name(name, sys_root, dev_root, by_id_root)


def check_access(path: str) -> None:
    """``DeviceError`` with the fix when this user may not open ``path``."""
    if os.access(path, os.R_OK | os.W_OK):
        return
    try:
        group = grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        group = "video"
    raise DeviceError(
        f"permission denied on {path} (group {group!r}); add yourself to it: "
        f"`sudo usermod -aG {group} $USER`, then log out and in again (or `newgrp {group}`)"
    )
