"""A recorded episode in the view: the recorder's files fed to the same logger as the live view.

The log (``recorder.reader.load_episode``) gives every message on the session clock; camera and
tactile images come from the episode's videos, frame by frame as the log's ``video_frame``
records point to them. Everything is dispatched in time order and thinned exactly as live, so a
recorded episode looks like the session did (and an .rrd of it stays small).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from recorder.reader import Episode, load_episode
from teleop.view.rerun_log import ViewLogger

__all__ = ["log_episode"]

_TACTILE_VIDEO = "tactile_"  # the recorder names tactile sensor videos tactile_<device>


def log_episode(spec: str | Path, view: ViewLogger) -> dict[str, Any]:
    """Log the episode ``spec`` (a folder, or what ``teleop episodes`` accepts) through ``view``."""
    ep = load_episode(spec)
    view.t0_ns = ep.start_ns
    m = ep.meta
    for topic in ("session/info", "session/robot_spec"):  # context first (the recorder logs it first too)
        s = ep.streams.get(topic)
        if s is not None and len(s):
            (view.on_info if topic == "session/info" else view.on_spec)(int(s.t_ns[-1]), s.messages[-1])
    view.text(ep.start_ns, f"episode {ep.path.name}: task {m.get('task', '')!r}, outcome "
              f"{m.get('outcome', 'unknown')}, {m.get('duration_s', '?')} s, status {m.get('status', '?')}")
    for err in m.get("errors", []):
        view.text(ep.start_ns, f"episode error: {err}", "WARN")
    events = sorted(_events(ep, view), key=lambda e: e[0])
    for t_ns, fn, args in events:
        fn(t_ns, *args)
    return {"episode": str(ep.path), "messages": len(events), **view.stats()}


def _events(ep: Episode, view: ViewLogger) -> Iterator[tuple[int, Any, tuple]]:
    """(time, handler, args) for every message the view draws."""
    for topic, s in ep.streams.items():
        kind = s.kind
        t = s.t_ns
        if kind == "session_command":
            yield from ((int(t[i]), view.on_command, (m,)) for i, m in enumerate(s.messages))
        elif kind == "robot_state":
            yield from ((int(t[i]), view.on_state, (m,)) for i, m in enumerate(s.messages))
        elif kind == "session_event":
            yield from ((int(t[i]), view.on_event, (m,)) for i, m in enumerate(s.messages))
        elif kind == "hand_sample":
            yield from ((int(t[i]), view.on_hand, (m.device, m)) for i, m in enumerate(s.messages))
        elif kind == "pose_sample":
            yield from ((int(t[i]), view.on_pose, (m.device, m)) for i, m in enumerate(s.messages))
        elif kind == "tactile_sample":
            yield from ((int(t[i]), view.on_tactile, (m.device, m)) for i, m in enumerate(s.messages))
        elif kind == "video_frame" and topic.startswith("recorder/video/"):
            name = topic[len("recorder/video/"):]
            path = ep.videos().get(name)
            if path is None or not path.is_file():
                continue
            frames = _Frames(path)
            if name.startswith(_TACTILE_VIDEO):
                handler, key = view.on_tactile_image, name[len(_TACTILE_VIDEO):]
            else:
                handler, key = view.on_camera, name
            for i, ref in enumerate(s.messages):
                if ref.video_index >= 0:
                    yield int(t[i]), _with_frame(handler, frames, ref.video_index), (key,)


class _Frames:
    """An episode video decoded forward, frame by frame, as the log asks for them (in order)."""

    def __init__(self, path: Path) -> None:
        from recorder.video import read_video

        self._it = read_video(path)
        self._index, self._frame = -1, None

    def get(self, index: int) -> np.ndarray | None:
        while self._index < index:
            try:
                self._index, self._frame = next(self._it)
            except StopIteration:  # a video cut short by a crash: the rest is not there
                return None
        return self._frame if self._index == index else None


def _with_frame(handler: Any, frames: _Frames, index: int) -> Any:
    def call(t_ns: int, key: str) -> None:
        image = frames.get(index)
        if image is not None:
            handler(t_ns, key, image)

    return call
