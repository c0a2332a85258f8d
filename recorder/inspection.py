"""``teleop episodes inspect``: per-stream rate, gaps, drops and alignment, and a timeline plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recorder.reader import Episode, load_episode

__all__ = ["inspect_episode", "log_report", "plot_timelines"]


def inspect_episode(spec: str | Path) -> dict[str, Any]:
    ep = load_episode(spec)
    t0 = ep.start_ns
    streams = []
    for topic in sorted(ep.streams):
        s = ep.streams[topic]
        t = s.t_ns
        dt = np.diff(t) / 1e6 if len(t) > 1 else np.zeros(0)
        streams.append({
            "topic": topic,
            "kind": s.kind,
            "source": s.source,
            "n": len(s),
            "rate_hz": round(s.rate_hz, 2),
            "gaps": s.gaps,  # numbered by the sender, missing in the log
            "start_ms": round((int(t[0]) - t0) / 1e6, 2) if len(t) else 0.0,
            "end_ms": round((int(t[-1]) - t0) / 1e6, 2) if len(t) else 0.0,
            "max_interval_ms": round(float(dt.max()), 2) if len(dt) else 0.0,
            "interval_ms_p99": round(float(np.percentile(dt, 99)), 3) if len(dt) else 0.0,
            # transport + queueing: recorder receive time minus capture time (same host only)
            "recv_delay_ms_p50": round(float(np.median((s.recv_ns - t) / 1e6)), 3) if len(t) else 0.0,
        })
    m = ep.meta
    return {
        "path": str(ep.path),
        "status": m.get("status", "?"),
        "outcome": m.get("outcome", "unknown"),
        "task": m.get("task", ""),
        "duration_s": m.get("duration_s", round((ep.stop_ns - ep.start_ns) / 1e9, 3)),
        "clock_offsets_ns": ep.offsets_ns,
        "streams": streams,
        "dropped": {
            "bus_gaps": sum(s["gaps"] for s in streams),
            "video_frames": sum((v.get("dropped") or 0) for v in m.get("videos", {}).values()),
            "video_refs_without_frame": sum(
                int(np.sum(s.array("video_index") < 0)) for t, s in ep.streams.items() if t.startswith("recorder/video/")
            ),
        },
        "loop": m.get("loop", {}),
        "errors": m.get("errors", []),
        "log": log_report(ep),
    }


def log_report(ep: Episode) -> dict[str, Any]:
    """What reading the episode's log found: damage skipped (what was lost), a torn tail."""
    from recorder.episode import damage_summary

    sc = ep.log
    if sc is None:
        return {"intact": True, "damaged": False, "records": 0, "torn_bytes": 0, "torn_reason": "", "damage": []}
    d = sc.as_dict()
    out: dict[str, Any] = {
        "intact": sc.intact, "damaged": sc.damaged, "records": sc.records, "damage": d["damage"],
        "damaged_bytes": d["damaged_bytes"], "records_lost": d["records_lost"], "messages_lost": d["messages_lost"],
        "torn_bytes": sc.torn_bytes, "torn_reason": sc.torn_reason,
        "marked": bool(ep.meta.get("damage")),  # `teleop episodes verify` recorded it in meta.json
    }
    if sc.damaged:
        out["summary"] = damage_summary({"regions": d["damage"], "bytes": d["damaged_bytes"],
                                         "records_lost": d["records_lost"]})
        out["regions"] = sc.describe()[:len(sc.damage)]
    return out


def plot_timelines(spec: str | Path, out: Path, width: int = 1200) -> Path:
    """One row per stream: a tick per message (thinned to the pixel grid), gaps in red."""
    import cv2

    ep = load_episode(spec)
    topics = sorted(ep.streams)
    t0, t1 = ep.start_ns, max(ep.stop_ns, ep.start_ns + 1)
    for s in ep.streams.values():
        if len(s):
            t1 = max(t1, int(s.t_ns[-1]))
    left, row_h, top = 300, 22, 30
    img = np.full((top + row_h * len(topics) + 30, width, 3), 255, np.uint8)
    span = width - left - 20
    cv2.putText(img, f"{ep.path.name}  {(t1 - t0) / 1e9:.2f} s", (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    for r, topic in enumerate(topics):
        s = ep.streams[topic]
        y = top + r * row_h + row_h // 2
        cv2.putText(img, f"{topic[:34]} {s.rate_hz:.0f}Hz", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
        if not len(s):
            continue
        x = left + ((s.t_ns - t0) / (t1 - t0) * span).astype(np.int64)
        cols = np.unique(np.clip(x, left, left + span))
        img[y - 6:y + 6, cols] = (200, 90, 20)
        if len(s) > 2:  # an interval above 3x the median is a gap
            dt = np.diff(s.t_ns)
            med = np.median(dt)
            for i in np.nonzero(dt > 3 * med)[0][:200]:
                cv2.line(img, (int(x[i]), y + 8), (int(x[i + 1]), y + 8), (0, 0, 230), 2)
    out = Path(out)
    if not cv2.imwrite(str(out), img):
        raise OSError(f"could not write {out}")
    return out
