"""The live status of a session: a snapshot the loop refreshes ~10 times a second, and a printer
thread that shows it.

* ``tty`` on a terminal: ONE line, redrawn in place, cut to the terminal's width (read at every
  refresh) so it never wraps, the most important things first: the state and why, the keys that
  act now, a fresh fault, the recorder, the policy, the loop rate when it is below the configured
  one, the latency, the inputs. Log lines written meanwhile scroll above it (the line is cleared
  before each), and it is cleared when the session ends.
* ``tty`` when the stream is not a terminal (piped, redirected), or ``plain``: plain lines, no
  escape codes, no carriage returns: one per change of what the operator must know, and one
  every ``plain_every_s`` (10 s) while nothing changes.
* ``json`` (``--json-status``, stdout): the same fields as one JSON object per line, on each
  change and once a second.
* ``quiet``: nothing.

Before the loop runs (the robot server starting, the kernels compiling) and after it stopped
(the recorder finishing its videos) ``phase()`` says what the session is doing, so the status is
never blank. ``watch_recorder()`` adds the recorder's state, asked for on its control socket by a
thread of its own (the loop never waits for the recorder).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

from teleop.session.safety import LIMITS_APPLIED

__all__ = ["StatusPrinter", "RecorderWatch", "compose", "render_line", "available_keys", "episode_keys"]

Mode = Literal["tty", "plain", "json", "quiet"]

ALARM_STATES = ("estop", "lost", "stale")
# the faults that put the session in each alarm state: the newest one is the state's reason
STATE_FAULTS = {"estop": ("estop",), "lost": ("robot_lost", "robot_changed", "robot_exited"), "stale": ("stale_input",)}
# counted every tick they happen: totals in the summary, never news on the status line
COUNTERS = (*LIMITS_APPLIED, "policy_no_action")
FRESH_FAULT_S = 5.0  # a fault this recent is shown on the line
SEP = " | "
KEYS_ROOM = 32  # what the line keeps for the keys (the first ones: e-stop, the state's way on)


# -- what to show ---------------------------------------------------------------------------------
def _key_name(source: str) -> str:
    """``key:space`` -> ``space``; a device button or a gesture keeps its name."""
    kind, _, name = source.partition(":")
    return name if kind in ("key", "gesture") else source


def _first(sources: tuple[str, ...], keys_live: bool) -> str:
    """The binding an operator can use now: a terminal key when keys are live, else a device
    button or a gesture ("auto" is not something to press)."""
    keys = [s for s in sources if s.startswith("key:")] if keys_live else []
    others = [s for s in sources if s != "auto" and not s.startswith("key:")]
    usable = keys + others
    return _key_name(usable[0]) if usable else ""


def available_keys(state: str, controls: Any, keys_live: bool, *, policy: bool = False,
                   intervening: bool = False) -> list[str]:
    """The controls that act in ``state``, as "KEY action" ("hold KEY action" for a hold-mode
    control), e-stop first: the session's own rules (teleop/session/session.py ``_on_source``
    and ``_handle_requests``), only the bindings usable now."""
    if controls is None or state in ("starting", "stopping"):
        return []
    out: list[str] = []

    def add(sources: tuple[str, ...], action: str, hold: bool = False, held: bool = False) -> None:
        k = _first(sources, keys_live)
        if k:
            out.append(f"let go of {k}: {action}" if held else f"hold {k} {action}" if hold else f"{k} {action}")

    engage_hold = controls.engage_mode == "hold"
    iv_hold = controls.intervene_mode == "hold"
    if state != "estop":
        add(controls.estop, "e-stop")
    if state == "estop":
        add(controls.release, "release")
    elif state in ("idle", "stale"):
        add(controls.engage, "start policy" if policy else "engage", hold=engage_hold)
    elif state in ("ramping", "engaged", "policy", "returning"):
        add(controls.engage, "stop" if engage_hold else "disengage", held=engage_hold)
    if policy and state in ("policy", "returning"):
        add(controls.intervene, "take over", hold=iv_hold)
    elif policy and intervening and state in ("ramping", "engaged"):
        add(controls.intervene, "hand back", held=iv_hold)
    if keys_live:
        out.append("q quit")
    return out


def episode_keys(controls: Any, keys_live: bool, recorder: dict | None) -> list[str]:
    """The episode controls that act now (the recorder answers and is recording, or not)."""
    if controls is None or not recorder or not recorder.get("reachable"):
        return []
    if recorder.get("recording"):
        out = [f"{_first(controls.episode_stop, keys_live)} keep",
               f"{_first(controls.episode_discard, keys_live)} discard"]
    else:
        out = [f"{_first(controls.episode_start, keys_live)} record"]
    ok, bad = _first(controls.episode_success, keys_live), _first(controls.episode_failure, keys_live)
    if ok and bad and (recorder.get("recording") or recorder.get("episode", -1) >= 0):
        out.append(f"{ok}/{bad} success/failure")
    return [k for k in out if not k.startswith(" ")]


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def compose(snap: dict[str, Any], controls: Any = None, now: float | None = None) -> dict[str, Any]:
    """The status as the operator (and ``--json-status``) gets it: the loop's snapshot plus what
    follows from it (the state's reason, the stale inputs, the keys that act now, whether the
    loop is below its rate, a fresh fault). JSON-safe: no NaN or inf (null instead)."""
    now = time.monotonic() if now is None else now
    v = dict(snap)
    state = v.get("state", "starting")
    faults_at: dict[str, tuple[float, str]] = v.pop("faults_at", None) or {}
    reason = ""
    if state in STATE_FAULTS:
        hits = [faults_at[f] for f in STATE_FAULTS[state] if f in faults_at]
        if hits:
            reason = max(hits)[1]
    if state in ("starting", "stopping"):
        reason = v.get("phase", "")
    v["reason"] = reason
    fresh = [(t, name, msg) for name, (t, msg) in faults_at.items()
             if name not in COUNTERS and now - t < FRESH_FAULT_S and msg != reason]
    v["fresh_fault"] = (lambda f: {"reason": f[1], "message": f[2], "age_s": round(now - f[0], 1)})(max(fresh)) \
        if fresh else None
    inputs = {}
    for name, inp in (v.get("inputs") or {}).items():
        inputs[name] = {k: (_finite(x) if isinstance(x, float) else x) for k, x in inp.items()}
    v["inputs"] = inputs
    v["stale_inputs"] = [n for n, inp in inputs.items() if not inp.get("fresh")]
    rate, loop = v.get("rate_hz"), v.get("loop_hz")
    # judged once the loop ran a second: the first ticks' rate says nothing
    v["loop_low"] = bool(rate and loop is not None and v.get("ticks", 0) >= rate and loop < 0.95 * rate)
    v["latency_ms"] = {k: _finite(x) for k, x in (v.get("latency_ms") or {}).items()}
    v["stages_ms"] = {stage: {k: _finite(x) for k, x in stats.items()}
                      for stage, stats in (v.get("stages_ms") or {}).items()}
    rec = v.setdefault("recorder", None)  # None: this session has no recorder (no policy, likewise)
    pol = v.setdefault("policy", None)
    live = bool(v.get("keys_live"))
    v["keys"] = available_keys(state, controls, live, policy=pol is not None,
                               intervening=bool(pol and pol.get("intervening")))
    v["episode_keys"] = [] if state in ("starting", "stopping") else episode_keys(controls, live, rec)
    return v


_STATE_TEXT = {
    "idle": "idle: not driving", "ramping": "ramping to your pose", "engaged": "ENGAGED: driving",
    "policy": "POLICY drives", "returning": "returning to the policy",
}


def _age(ms: float | None) -> str:
    if ms is None:
        return "no sample yet"
    return f"{ms / 1e3:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def segments(v: dict[str, Any]) -> list[str]:
    """The line's parts, most important first."""
    state = v.get("state", "starting")
    pol = v.get("policy")
    if state in ("starting", "stopping"):
        first = f"{state}: {v.get('reason') or '...'}"
        if (v.get("phase_s") or 0) >= 1:  # a long step shows it is not stuck
            first += f" ({v['phase_s']:.0f} s)"
    elif state == "stale":
        inputs = v.get("inputs", {})
        first = ("STALE: no data from " + ", ".join(f"{n} ({_age(inputs[n].get('age_ms'))})" for n in v["stale_inputs"])
                 if v.get("stale_inputs") else "STALE: inputs back, engage again")
    elif state in ALARM_STATES:
        reason = v.get("reason") or "holding"
        first = f"{state.upper()}: {reason.removeprefix('e-stop: ')}"
    elif pol and pol.get("intervening") and state in ("ramping", "engaged"):
        first = "INTERVENING: you drive" if state == "engaged" else "taking over: ramping to your pose"
    else:
        first = _STATE_TEXT.get(state, state)
    out = [first]
    if v.get("stale_inputs") and state not in ("starting", "stopping", "stale"):
        inputs = v.get("inputs", {})
        out.append("no data: " + ", ".join(f"{n} {_age(inputs[n].get('age_ms'))}" for n in v["stale_inputs"]))
    if v.get("keys"):
        out.append("keys: " + ", ".join(v["keys"]))
    f = v.get("fresh_fault")
    if f:
        out.append(f"{f['reason']}: {f['message']}")
    rec = v.get("recorder")
    if rec is not None and (rec.get("reachable") or state != "stopping"):  # stopping: it is meant to go
        ek = v.get("episode_keys")
        out.append(_recorder_text(rec) + (f" ({', '.join(ek)})" if ek else ""))
    if pol is not None and (pol.get("late") or pol.get("errors")):
        out.append(f"policy late {pol.get('late', 0)}, errors {pol.get('errors', 0)}")
    if v.get("loop_low") and state not in ("starting", "stopping"):
        out.append(f"LOOP {v.get('loop_hz', 0):.0f} of {v['rate_hz']:.0f} Hz")
    lat = v.get("latency_ms") or {}
    if lat.get("p50") is not None:
        out.append(f"latency p50 {lat['p50']:.1f} p99 {lat.get('p99') or 0:.1f} ms" + _slowest_stage(v))
    if v.get("inputs") and not v.get("stale_inputs"):
        out.append("inputs ok: " + ", ".join(f"{n} {inp.get('hz') or 0:.0f} Hz" for n, inp in v["inputs"].items()))
    return out


def _slowest_stage(v: dict[str, Any]) -> str:
    """Where most of the command path's p99 goes (docs/sessions.md, the per-stage table)."""
    stages = {k: st.get("p99") for k, st in (v.get("stages_ms") or {}).items() if k not in ("total", "oldest_input")}
    stages = {k: x for k, x in stages.items() if x is not None}
    if not stages:
        return ""
    name = max(stages, key=stages.__getitem__)
    return f" (most: {name} {stages[name]:.1f})"


def _recorder_text(rec: dict[str, Any]) -> str:
    if rec.get("reachable") is None:
        return "rec: asking the recorder"
    if not rec.get("reachable"):
        return "REC DOWN: " + (rec.get("error") or "the recorder does not answer")
    outcome = f" {rec['outcome']}" if rec.get("outcome") else ""
    if rec.get("recording"):
        return f"REC ep {rec.get('episode')}{outcome}"
    last = f", last ep {rec['episode']}{outcome}" if rec.get("episode", -1) >= 0 else ""
    return "rec off" + last


def render_line(v: dict[str, Any], width: int) -> str:
    """The segments joined, cut to ``width`` characters: whole segments while they fit, then the
    next one cut (ending in ``..``) if a useful part of it fits. What comes before the keys is
    cut short enough to leave the first of them room (down to 24 characters of it)."""
    segs = segments(v)
    keys_at = next((i for i, s in enumerate(segs) if s.startswith("keys: ")), -1)
    line = ""
    for i, seg in enumerate(segs):
        part = seg if not line else SEP + seg
        room = width - len(line)
        if i < keys_at:
            later = sum(len(SEP) + len(s) for s in segs[i + 1: keys_at]) + len(SEP) + min(len(segs[keys_at]), KEYS_ROOM)
            room = max(min(room, 24), room - later)
        if len(part) <= room:
            line += part
            continue
        if room >= (12 if line else 3):
            line += part[: room - 2] + ".."
            if i < keys_at:
                continue  # cut to leave the keys room: go on to them
        break
    return line[:width]


def _change_key(v: dict[str, Any]) -> tuple:
    """What, when it changes, is news: a plain or JSON line at once."""
    rec = v.get("recorder") or {}
    pol = v.get("policy") or {}
    f = v.get("fresh_fault") or {}
    return (v.get("state"), v.get("reason"), tuple(v.get("stale_inputs", ())), tuple(v.get("keys", ())),
            rec.get("reachable"), rec.get("recording"), rec.get("episode"), rec.get("outcome"),
            pol.get("intervening"), v.get("loop_low"), f.get("reason"), f.get("message"))


# -- where it goes --------------------------------------------------------------------------------
def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty()) and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # closed or not a file
        return False


def _width(stream: Any) -> int:
    """Columns of the terminal ``stream`` writes to. shutil.get_terminal_size (COLUMNS first)
    asks about stdout, which may be piped while the status goes to a terminal on stderr: then the
    stream's own size is used."""
    if "COLUMNS" not in os.environ:
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            pass
    return shutil.get_terminal_size((80, 24)).columns


class _LiveStream:
    """Stands in for the terminal stream while the live line is shown: anything written (log
    lines, prints) first clears the line, so it scrolls above it instead of running into it."""

    def __init__(self, real: Any, printer: StatusPrinter) -> None:
        self._real = real
        self._printer = printer

    def write(self, s: str) -> int:
        with self._printer._lock:
            self._printer._clear_locked()
            n = self._real.write(s)
            self._printer._partial = bool(s) and not s.endswith("\n")
            self._printer._partial_t = time.monotonic()
            return n

    def flush(self) -> None:
        self._real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class StatusPrinter:
    def __init__(self, mode: Mode = "tty", *, stream: Any = None, controls: Any = None, interval_s: float = 0.2,
                 plain_every_s: float = 10.0, json_every_s: float = 1.0) -> None:
        self.stream = stream if stream is not None else (sys.stdout if mode == "json" else sys.stderr)
        if mode == "tty" and not _is_terminal(self.stream):
            mode = "plain"  # piped or redirected: lines without escape codes
        self.mode = mode
        self.controls = controls
        self.interval_s = interval_s
        self.every_s = json_every_s if mode == "json" else plain_every_s
        self._snapshot: dict[str, Any] = {}
        self._phase_t = time.monotonic()
        self._lock = threading.RLock()  # the output: the live line and what _LiveStream passes on
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False  # the live line is on the terminal
        self._partial = False  # someone wrote part of a line: do not draw over it
        self._partial_t = 0.0
        self._last_key: tuple | None = None
        self._last_emit = 0.0
        self._swapped: list[tuple[logging.StreamHandler, Any]] = []
        self._recorder: RecorderWatch | None = None

    # -- feeding it ---------------------------------------------------------------------------------
    def publish(self, snapshot: dict[str, Any]) -> None:
        """The loop's snapshot. Never blocks: a reference swap (the printer thread may be stuck
        writing to a terminal that does not read)."""
        if snapshot.get("state") != self._snapshot.get("state"):
            self._wake.set()  # a state change shows at once
        self._snapshot = snapshot

    def phase(self, text: str, state: str = "starting") -> None:
        """What the session is doing before its loop runs (``starting``) or after (``stopping``)."""
        self._phase_t = time.monotonic()
        self._snapshot = {**self._snapshot, "state": state, "phase": text}
        self._wake.set()

    def watch_recorder(self, endpoint: str, keys: Any = None, *, shown_elsewhere: bool = False) -> None:
        """Show the recorder on ``endpoint`` (its control socket): on/off, episode, outcome
        (also when quiet if ``shown_elsewhere``: the web console shows it)."""
        if (self.mode == "quiet" and not shown_elsewhere) or self._recorder is not None:
            return
        self._recorder = RecorderWatch(endpoint, keys)
        self._recorder.start()

    # -- the thread -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "quiet" or self._thread is not None:
            return
        if self.mode == "tty":
            self._take_stream()
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None
        with self._lock:
            if self.mode == "tty":
                self._clear_locked()
                self._real_flush()
            self._give_back_stream()

    def view(self) -> dict[str, Any]:
        """The status as shown now (``compose`` of the newest snapshot)."""
        snap = dict(self._snapshot)
        phase_t = self._phase_t
        if not snap:
            snap = {"state": "starting", "phase": "starting"}
        if snap.get("state") in ("starting", "stopping"):
            snap["phase_s"] = round(time.monotonic() - phase_t, 1)
        if self._recorder is not None:
            snap["recorder"] = self._recorder.snapshot()
        return compose(snap, self.controls)

    def _run(self) -> None:
        failed = False
        while not self._stop.is_set():
            try:
                self.refresh()
            except (OSError, ValueError):  # the terminal or pipe went away: stop showing, never fail the session
                return
            except Exception:  # a snapshot it cannot show: say so once, keep showing the next ones
                if not failed:
                    logging.getLogger(__name__).exception("the status line could not show the session's state")
                failed = True
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def refresh(self) -> None:
        """Draw (tty) or, when there is news or it is time, write a line (plain, json)."""
        v = self.view()
        now = time.monotonic()
        if self.mode == "tty":
            self._draw(v)
            return
        key = _change_key(v)
        if key == self._last_key and now - self._last_emit < self.every_s:
            return
        self._last_key, self._last_emit = key, now
        if self.mode == "json":
            text = json.dumps(_json_safe(v), separators=(",", ":"), default=str)
        else:
            text = f"{time.strftime('%H:%M:%S')} " + SEP.join(segments(v))
        self.stream.write(text + "\n")
        self.stream.flush()

    # -- the live line ----------------------------------------------------------------------------------
    def _draw(self, v: dict[str, Any]) -> None:
        width = max(10, _width(self.stream) - 1)  # never the last column: some terminals wrap there
        line = render_line(v, width)
        if v.get("state") in ALARM_STATES:
            word = len(v["state"])
            line = f"\x1b[7m{line[:word]}\x1b[0m{line[word:]}"  # the alarm state in reverse video
        with self._lock:
            if self._partial and time.monotonic() - self._partial_t < 1.0:
                return  # someone is half-way through a line of their own
            self._partial = False
            self._real_write(f"\r{line}\x1b[K")
            self._shown = True
            self._real_flush()

    def _clear_locked(self) -> None:
        if self._shown:
            self._real_write("\r\x1b[K")
            self._shown = False

    def _real_write(self, s: str) -> None:
        real = self.stream._real if isinstance(self.stream, _LiveStream) else self.stream
        real.write(s)

    def _real_flush(self) -> None:
        real = self.stream._real if isinstance(self.stream, _LiveStream) else self.stream
        real.flush()

    def _take_stream(self) -> None:
        """Log handlers and ``sys.stderr`` writing to our terminal go through ``_LiveStream``."""
        real = self.stream
        live = _LiveStream(real, self)
        for h in logging.getLogger().handlers:
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is real:
                self._swapped.append((h, real))
                h.setStream(live)  # type: ignore[arg-type]
        if sys.stderr is real:
            sys.stderr = live  # type: ignore[assignment]
        self.stream = live

    def _give_back_stream(self) -> None:
        if not isinstance(self.stream, _LiveStream):
            return
        real = self.stream._real
        for h, old in self._swapped:
            if h.stream is self.stream:
                h.setStream(old)
        self._swapped.clear()
        if sys.stderr is self.stream:
            sys.stderr = real
        self.stream = real


def _json_safe(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


# -- the recorder ---------------------------------------------------------------------------------
class RecorderWatch:
    """The recorder's state, asked for every ``interval_s`` on its control socket by a thread of
    its own: recording or not, the episode, its outcome (the episode's meta.json, re-read only
    when it changed). ``reachable``: None before the first answer, False after two unanswered
    asks in a row."""

    def __init__(self, endpoint: str, keys: Any = None, interval_s: float = 0.5, timeout_s: float = 0.5) -> None:
        self.endpoint = endpoint
        self.keys = keys
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        # until its first answer: not known to be up, not known to be down
        self._state: dict[str, Any] = {"reachable": None, "recording": False, "episode": -1, "outcome": None}
        self._misses = 0
        self._meta: tuple[str, float, str | None] = ("", 0.0, None)  # path, mtime, outcome
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, Any]:
        return dict(self._state)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="status-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 1.0)

    def _run(self) -> None:
        from teleop.bus.sockets import Bus
        from teleop.errors import TeleopError

        bus = Bus("session-status", keys=self.keys)
        try:
            rpc = bus.rpc_client(self.endpoint, self.timeout_s)
            while not self._stop.is_set():
                try:
                    self._state = self._read(dict(rpc.request("status").values))  # type: ignore[attr-defined]
                    self._misses = 0
                except TeleopError as exc:
                    self._misses += 1
                    if self._misses >= 2:
                        self._state = {**self._state, "reachable": False, "recording": False,
                                       "error": f"no answer on {self.endpoint}: {str(exc).split(';')[0]}"}
                self._stop.wait(self.interval_s)
        finally:
            bus.close()

    def _read(self, st: dict[str, Any]) -> dict[str, Any]:
        recording = bool(st.get("recording"))
        path = str(st.get("path", "")) if recording else (str(st.get("kept", "")).split("\n")[-1])
        episode = int(st.get("episode", -1)) if recording else _index_of(path)
        return {"reachable": True, "recording": recording, "episode": episode, "path": path,
                "outcome": self._outcome(path), "errors": int(st.get("errors", 0)),
                "last_error": str(st.get("last_error", ""))}

    def _outcome(self, folder: str) -> str | None:
        if not folder:
            return None
        meta = Path(folder) / "meta.json"
        try:
            mtime = meta.stat().st_mtime
            if self._meta[:2] != (folder, mtime):
                outcome = json.loads(meta.read_text()).get("outcome")
                self._meta = (folder, mtime, outcome if outcome in ("success", "failure") else None)
        except (OSError, ValueError):
            return None
        return self._meta[2]


def _index_of(folder: str) -> int:
    """``.../episode_000003`` -> 3 (-1 when there is none)."""
    tail = Path(folder).name.rpartition("_")[2] if folder else ""
    return int(tail) if tail.isdigit() else -1
