"""``teleop episodes inspect``: per-stream rate, gaps, drops and alignment, and a timeline plot.

The plot (``plot_timelines``) is the quick look a collector wants after a take: panels on one time
axis (seconds since the episode start) showing who drove (human, policy, a human correcting the
policy, nobody), a few representative joints of each arm (measured solid, commanded dashed), how
closed each hand is, the height of each object, and every stream's messages with its stalls and
gaps; tap silences are shaded across all panels. Drawn with OpenCV (already a dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recorder.reader import Episode, load_episode

__all__ = ["inspect_episode", "log_report", "plot_timelines"]


def inspect_episode(spec: str | Path) -> dict[str, Any]:
    from recorder.episode import degradation

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
        "stages_ms": m.get("stages_ms") or {},  # the command path's latency per stage (recorder/latency.py)
        "stages_seconds": m.get("stages_seconds", 0),
        "degraded": degradation(m),
        "discarded": m.get("discarded") or None,
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


PLOT_WIDTH = 1400
#: An interval above this many times a stream's median interval is drawn as a stall.
STALL_FACTOR = 3.0
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
_INK, _GRID, _MUTED, _RED = (30, 30, 30), (225, 225, 225), (120, 120, 120), (40, 40, 215)
#: A colour-blind-safe palette (Okabe-Ito), BGR.
_PALETTE = ((178, 114, 0), (0, 159, 230), (115, 158, 0), (167, 121, 204), (0, 94, 213), (233, 180, 86),
            (66, 228, 240), (0, 0, 0))
#: Who drove, per command (``_drivers``): label, BGR.
_DRIVERS = {"human": ("human", (178, 114, 0)), "policy": ("policy", (0, 159, 230)),
            "intervention": ("human correcting the policy", (167, 121, 204)),
            "hold": ("holding (nobody drives)", (190, 190, 190)), "off": ("not engaged", (235, 235, 235))}


def _nice_step(span: float, target: int = 12) -> float:
    raw = max(span, 1e-9) / target
    mag = 10 ** np.floor(np.log10(raw))
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


def _fmt(v: float, step: float) -> str:
    decimals = max(0, -int(np.floor(np.log10(step)))) if step < 1 else 0
    return f"{0.0 if abs(v) < step * 1e-6 else v:.{decimals}f}"  # never "-0"


class _Figure:
    """Panels stacked on one time axis; y grows downwards in pixels, up in data."""

    def __init__(self, width: int, t_end: float) -> None:
        self.width, self.t_end = width, max(t_end, 1e-3)
        self.left, self.right = 190, 250  # the right margin holds the legends
        self.panels: list[tuple[str, int, Any]] = []

    def x(self, t: np.ndarray | float) -> np.ndarray:
        return self.left + np.asarray(t, np.float64) / self.t_end * (self.width - self.left - self.right)

    def add(self, title: str, height: int, draw: Any) -> None:
        self.panels.append((title, height, draw))

    def render(self, header: list[tuple[str, tuple[int, int, int]]], shade: list[tuple[float, float]]) -> np.ndarray:
        import cv2

        top = 14 + 22 * len(header)
        gap, axis_h = 30, 48
        height = top + sum(h + gap for _, h, _ in self.panels) + axis_h
        img = np.full((height, self.width, 3), 255, np.uint8)
        for i, (text, color) in enumerate(header):
            cv2.putText(img, text, (12, 28 + 22 * i), _FONT, 0.6 if i == 0 else 0.48, color, 1 if i else 2, cv2.LINE_AA)
        step = _nice_step(self.t_end)
        ticks = np.arange(0, self.t_end + 1e-9, step)
        y = top
        x0, x1 = self.left, self.width - self.right
        for title, h, draw in self.panels:
            y += gap
            for a, b in shade:  # tap silences, across every panel
                xa, xb = (int(v) for v in self.x([a, b]))
                img[y:y + h, max(xa, x0):min(max(xb, xa + 2), x1)] = (225, 225, 250)
            for t in ticks:
                xt = int(self.x(t))
                cv2.line(img, (xt, y), (xt, y + h), _GRID, 1)
            cv2.putText(img, title, (12, y - 9), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
            draw(img, y, h)
            cv2.rectangle(img, (x0, y), (x1, y + h), (150, 150, 150), 1)
            y += h
        for t in ticks:
            xt = int(self.x(t))
            cv2.line(img, (xt, y + 2), (xt, y + 7), _INK, 1)
            label = _fmt(t, step)
            (tw, _), _ = cv2.getTextSize(label, _FONT, 0.42, 1)
            cv2.putText(img, label, (xt - tw // 2, y + 22), _FONT, 0.42, _INK, 1, cv2.LINE_AA)
        cv2.putText(img, "time since the episode start [s]", ((x0 + x1) // 2 - 120, y + 42), _FONT, 0.46, _INK, 1,
                    cv2.LINE_AA)
        return img


def _legend(img: np.ndarray, x1: int, y: int, items: list[tuple[str, tuple[int, int, int], str]]) -> None:
    """In the right margin next to a panel (``x1`` its right edge): a sample (``style`` solid,
    dashed, measured (a wide light band) or block) and a label per item."""
    import cv2

    x = x1 + 8
    for i, (label, color, style) in enumerate(items):
        yy = y + 10 + 16 * i
        if style == "block":
            cv2.rectangle(img, (x, yy - 6), (x + 26, yy + 2), color, -1)
            cv2.rectangle(img, (x, yy - 6), (x + 26, yy + 2), (160, 160, 160), 1)
        elif style == "dashed":
            for xs in range(x, x + 26, 9):
                cv2.line(img, (xs, yy - 2), (min(xs + 5, x + 26), yy - 2), color, 2, cv2.LINE_AA)
        elif style == "measured":
            cv2.line(img, (x, yy - 2), (x + 26, yy - 2), _tint(color), 5, cv2.LINE_AA)
        else:
            cv2.line(img, (x, yy - 2), (x + 26, yy - 2), color, 2, cv2.LINE_AA)
        cv2.putText(img, label, (x + 32, yy + 2), _FONT, 0.4, _INK, 1, cv2.LINE_AA)


def _tint(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour halfway to white (a measured trace, under its dashed command)."""
    return tuple(int(c + (255 - c) * 0.55) for c in color)  # type: ignore[return-value]


def _yaxis(img: np.ndarray, fig: _Figure, y: int, h: int, lo: float, hi: float, unit: str) -> Any:
    """Y ticks and grid for [lo, hi]; returns data -> pixel row."""
    import cv2

    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def row(v: np.ndarray | float) -> np.ndarray:
        return y + h - (np.asarray(v, np.float64) - lo) / (hi - lo) * h

    step = _nice_step(hi - lo, 4)
    for v in np.arange(np.ceil(lo / step) * step, hi, step):
        r = int(row(v))
        cv2.line(img, (fig.left, r), (fig.width - fig.right, r), _GRID, 1)
        label = _fmt(v, step)
        (tw, _), _ = cv2.getTextSize(label, _FONT, 0.38, 1)
        cv2.putText(img, label, (fig.left - tw - 6, r + 4), _FONT, 0.38, _INK, 1, cv2.LINE_AA)
    cv2.putText(img, unit, (12, y + h // 2 + 4), _FONT, 0.4, _MUTED, 1, cv2.LINE_AA)
    return row


def _trace(img: np.ndarray, fig: _Figure, row: Any, t: np.ndarray, v: np.ndarray, color: tuple[int, int, int],
           dashed: bool = False, wide: bool = False) -> None:
    """One value per pixel column (the latest sample at or before it): solid, dashed, or a wide
    light band (``wide``: a measured value, so its command dashed on top stays visible)."""
    import cv2

    if not len(t):
        return
    cols = np.arange(int(fig.x(max(t[0], 0.0))), int(fig.x(min(t[-1], fig.t_end))) + 1)
    if not len(cols):
        return
    tc = (cols - fig.left) / (fig.width - fig.left - fig.right) * fig.t_end
    i = np.clip(np.searchsorted(t, tc, side="right") - 1, 0, len(t) - 1)
    pts = np.stack([cols, row(v[i])], 1).round().astype(np.int32)
    if not dashed:
        cv2.polylines(img, [pts], False, _tint(color) if wide else color, 5 if wide else 2, cv2.LINE_AA)
        return
    for k in range(0, len(pts), 10):
        cv2.polylines(img, [pts[k:k + 6]], False, color, 2, cv2.LINE_AA)


def _drivers(commands: Any) -> tuple[np.ndarray, list[str]]:
    """Who drove at each command: intervention, policy, human, hold, or off (not engaged)."""
    author = commands.array("author")
    state = commands.array("state")
    interv = commands.array("intervention", bool)
    who = np.where(interv, "intervention", np.where(author == "policy", "policy",
                                                    np.where(author == "hold", "hold", "human")))
    who = np.where((state == "engaged") | interv | (author == "policy"), who, "off")
    return commands.t_ns, [str(w) for w in who]


def _stalls(t_ns: np.ndarray) -> list[tuple[int, int]]:
    if len(t_ns) < 3:
        return []
    dt = np.diff(t_ns)
    med = float(np.median(dt))
    return [(int(t_ns[i]), int(t_ns[i + 1])) for i in np.nonzero(dt > STALL_FACTOR * max(med, 1.0))[0][:500]]


def _groups(spec: Any, n: int) -> list[tuple[str, slice]]:
    if spec is None or int(np.sum(spec.group_sizes)) != n:
        return [("joints", slice(0, n))]
    out, start = [], 0
    for name, size in zip(spec.group_names, spec.group_sizes, strict=True):
        out.append((str(name), slice(start, start + int(size))))
        start += int(size)
    return out


def plot_timelines(spec: str | Path, out: Path, width: int = PLOT_WIDTH) -> Path:
    """The episode as a PNG (module docstring). Returns ``out``."""
    import cv2

    from recorder.episode import degradation, tap_silences

    ep = load_episode(spec)
    t0 = ep.start_ns
    t_end = max([(ep.stop_ns - t0) / 1e9] + [(int(s.t_ns[-1]) - t0) / 1e9 for s in ep.streams.values() if len(s)])
    fig = _Figure(width, t_end)
    x0, x1 = fig.left, width - fig.right
    spec_msg = ep.streams["session/robot_spec"].messages[-1] if len(ep.streams.get("session/robot_spec", ())) else None
    state = ep.streams.get("robot/state")
    cmd = ep.streams.get("session/command")

    def sec(t: Any) -> np.ndarray:  # session clock ns -> plot seconds
        return (np.asarray(t, np.int64) - t0) / 1e9

    if cmd is not None and len(cmd):
        t_cmd, who = _drivers(cmd)
        ts = sec(t_cmd)

        def draw_drivers(img: np.ndarray, y: int, h: int) -> None:
            xs = fig.x(ts).astype(np.int64)
            start = 0
            for i in range(1, len(who) + 1):
                if i == len(who) or who[i] != who[start]:
                    end = xs[i] if i < len(who) else xs[-1] + 1
                    img[y + 1:y + h, max(xs[start], x0):min(max(end, xs[start] + 1), x1)] = _DRIVERS[who[start]][1]
                    start = i
            items = []
            for k in (k for k in _DRIVERS if k in set(who)):  # with the share of the commands each had
                share = who.count(k) / len(who) * 100
                items.append((f"{_DRIVERS[k][0]} ({share:.0f} %)" if share >= 1 else f"{_DRIVERS[k][0]} (<1 %)",
                              _DRIVERS[k][1], "block"))
            _legend(img, x1, y - 4, items)
            for ev in _intervention_events(ep):
                xe = int(fig.x(sec(ev[0])))
                cv2.line(img, (xe, y - 4), (xe, y + h), _INK, 1)
                cv2.putText(img, ev[1], (xe + 3, y + 12), _FONT, 0.38, _INK, 1, cv2.LINE_AA)

        fig.add("who drove (each command's author)", max(26, 16 * len(set(who)) - 6), draw_drivers)

    if state is not None and len(state):
        q = state.array("q", np.float64)
        ts_state = sec(state.t_ns)
        qc = cmd.array("q", np.float64) if cmd is not None and len(cmd) else np.zeros((0, q.shape[1]))
        tc = sec(cmd.t_ns) if cmd is not None and len(cmd) else np.zeros(0)
        names = list(spec_msg.joint_names) if spec_msg is not None else [f"q{i}" for i in range(q.shape[1])]
        groups = _groups(spec_msg, q.shape[1])
        hands = [(g, sl) for g, sl in groups if "hand" in g or "gripper" in g]
        arms = [(g, sl) for g, sl in groups if (g, sl) not in hands]
        for g, sl in arms:
            rng = np.ptp(q[:, sl], axis=0) if len(q) else np.zeros(0)
            picks = [sl.start + int(i) for i in np.argsort(-rng)[:3]]  # the joints that moved most

            def draw_arm(img: np.ndarray, y: int, h: int, picks: list[int] = picks) -> None:
                both = [q[:, picks]] + ([qc[:, picks]] if qc.shape[1] == q.shape[1] and len(qc) else [])
                vals = np.concatenate([b.ravel() for b in both])
                row = _yaxis(img, fig, y, h, float(vals.min()), float(vals.max()), "rad")
                items = []
                for k, j in enumerate(picks):
                    color = _PALETTE[k % len(_PALETTE)]
                    _trace(img, fig, row, ts_state, q[:, j], color, wide=True)
                    if qc.shape[1] == q.shape[1] and len(qc):
                        _trace(img, fig, row, tc, qc[:, j], color, dashed=True)
                    items.append((names[j] if j < len(names) else f"q{j}", color, "solid"))
                items += [("measured", _MUTED, "measured"), ("commanded", _MUTED, "dashed")]
                _legend(img, x1, y, items)

            fig.add(f"{g.replace('_', ' ')}: the {len(picks)} joints that moved most, measured (wide, light) and "
                    "commanded (dashed)", 150, draw_arm)
        if hands and spec_msg is not None and len(spec_msg.lower) == q.shape[1]:
            lo, hi = np.asarray(spec_msg.lower, np.float64), np.asarray(spec_msg.upper, np.float64)
            span = np.where(hi - lo > 1e-6, hi - lo, 1.0)

            def closure(x: np.ndarray, sl: slice) -> np.ndarray:
                return np.clip(((x[:, sl] - lo[sl]) / span[sl]).mean(axis=1), 0.0, 1.0) if len(x) else np.zeros(0)

            def draw_hands(img: np.ndarray, y: int, h: int) -> None:
                row = _yaxis(img, fig, y, h, 0.0, 1.0, "closed")
                items = []
                for k, (g, sl) in enumerate(hands):
                    color = _PALETTE[(k + 4) % len(_PALETTE)]
                    _trace(img, fig, row, ts_state, closure(q, sl), color, wide=True)
                    if qc.shape[1] == q.shape[1] and len(qc):
                        _trace(img, fig, row, tc, closure(qc, sl), color, dashed=True)
                    items.append((g.replace("_", " "), color, "solid"))
                items += [("measured", _MUTED, "measured"), ("commanded", _MUTED, "dashed")]
                _legend(img, x1, y, items)

            fig.add("grasp: how closed each hand is (mean of its joints, 0 open .. 1 at the closing limits)", 110,
                    draw_hands)
        poses = state.array("body_pose", np.float64)
        if poses.ndim == 3 and poses.shape[1]:
            bodies = list(spec_msg.body_names) if spec_msg is not None and len(spec_msg.body_names) == poses.shape[1] \
                else [f"body{i}" for i in range(poses.shape[1])]
            z = poses[:, :, 2]

            def draw_objects(img: np.ndarray, y: int, h: int) -> None:
                row = _yaxis(img, fig, y, h, float(z.min()), float(z.max()), "m")
                items = []
                for k, b in enumerate(bodies):
                    color = _PALETTE[(k + 1) % len(_PALETTE)]
                    _trace(img, fig, row, ts_state, z[:, k], color)
                    lift = float(z[:, k].max() - z[0, k])
                    items.append((f"{b} (peak lift {lift * 100:+.1f} cm)", color, "solid"))
                _legend(img, x1, y, items)

            fig.add("objects: height of each (z)", 110, draw_objects)

    topics = sorted(ep.streams)

    def draw_streams(img: np.ndarray, y: int, h: int) -> None:
        rh = h / max(len(topics), 1)
        for r, topic in enumerate(topics):
            s = ep.streams[topic]
            yc = int(y + rh * (r + 0.5))
            label = f"{topic[:30]}  {s.rate_hz:.0f} Hz" + (f", {s.gaps} lost" if s.gaps else "")
            cv2.putText(img, label, (12, yc + 4), _FONT, 0.38, _RED if s.gaps else _INK, 1, cv2.LINE_AA)
            if not len(s):
                continue
            cols = np.unique(np.clip(fig.x(sec(s.t_ns)).astype(np.int64), x0, x1))
            img[yc - 4:yc + 4, cols] = (200, 160, 110)
            if s.kind == "video_frame":  # frames the encoder had to drop (video_index -1)
                lost = s.array("video_index") < 0
                img[yc - 6:yc + 6, np.unique(np.clip(fig.x(sec(s.t_ns[lost])).astype(np.int64), x0, x1))] = _RED
            for a, b in _stalls(s.t_ns) if s.kind not in ("session_event", "session_info", "robot_spec") else []:
                xa, xb = int(fig.x(sec(a))), int(fig.x(sec(b)))
                cv2.rectangle(img, (xa, yc - 6), (max(xb, xa + 2), yc + 6), _RED, -1)
        _legend(img, x1, y, [("messages (one tick per pixel)", (200, 160, 110), "block"),
                             (f"stall: > {STALL_FACTOR:g}x the median interval", _RED, "block"),
                             ("(video) a frame dropped", _RED, "block"),
                             ("tap silence (in every panel)", (225, 225, 250), "block"),
                             ("red name: messages lost", _RED, "solid")])

    fig.add("streams: messages, stalls and gaps", max(60, 17 * len(topics)), draw_streams)

    m = ep.meta
    loop = m.get("loop") or {}
    header = [(f"{ep.path.name}   task {m.get('task', '')!r}   outcome {m.get('outcome', 'unknown')}   "
               f"status {m.get('status', '?')}   {t_end:.2f} s", _INK),
              (f"operator {m.get('operator') or '-'}   robot {m.get('robot') or '-'}"
               + (f"   loop {loop.get('loop_hz', loop.get('commands_logged_hz', '?'))} Hz of "
                  f"{loop.get('configured_hz') or m.get('rate_hz') or '?'} Hz" if loop else "")
               + ("   DISCARDED (`teleop episodes restore`)" if m.get("discarded") else ""), _MUTED)]
    header += [(f"degraded: {why}", _RED) for why in degradation(m)]
    if ep.damaged:
        header.append(("damaged log: some records were lost (`teleop episodes verify`)", _RED))
    shade = [(float(x["after_s"]), float(x["after_s"]) + float(x["seconds"])) for x in tap_silences(m)]
    img = fig.render(header, shade)
    out = Path(out)
    if not cv2.imwrite(str(out), img):
        raise OSError(f"could not write {out} (the name must end in .png, and its folder must exist)")
    return out


def _intervention_events(ep: Episode) -> list[tuple[int, str]]:
    s = ep.streams.get("session/event")
    if s is None:
        return []
    return [(int(t), str(m.detail)) for t, m in zip(s.t_ns, s.messages, strict=True)
            if m.event == "intervention" and m.detail]
