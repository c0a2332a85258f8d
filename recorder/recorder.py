"""The recorder process (``teleop record``): taps the session, the robot state and the cameras
without loss and writes episodes (recorder/episode.py).

One thread owns the open episode and the log; an intake thread (recorder/intake.py) empties the
three lossless subscribers into a queue bounded in bytes, so memory stays bounded under any
input; the episode's disk use is bounded too (``max_episode_mb``, and the free-space guard checked
every ``DISK_CHECK_BYTES`` written and every second). An episode holds one session only: a
message from another session on the tap, or a state from another robot server instance, closes
it (said in its errors) rather than mixing two runs in one episode. Messages are logged as the bytes that
travelled (no re-encoding) except camera images, which go to the episode's videos (encoded in
their own threads, recorder/video.py) and are logged as ``video_frame`` references. Stopping an
episode closes the log at once and finalises the videos in the background, so the next episode
can start immediately; a finalising failure is written into that episode's meta.json.

Episode controls arrive as requests on the control socket (``teleop episodes start|stop|...``,
tools, a policy runner) or as ``session_event`` ``episode`` events on the tap (keys, pedal,
glove buttons mapped in the session's [controls]).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

import teleop
from recorder.episode import (
    LOG_NAME,
    VIDEO_DIR,
    EpisodeError,
    delete_tree,
    discard,
    episode_dir,
    list_episodes,
    next_index,
    read_meta,
    recover,
    write_index,
    write_meta,
)
from recorder.latency import StageSeconds
from recorder.log import LogError, LogWriter
from teleop.bus.codec import DecodeError, Decoder, Encoder, Header, Message, encode_with_header
from teleop.bus.messages import (
    CameraFrame,
    Reply,
    Request,
    RobotSpec,
    SessionEvent,
    SessionInfo,
    TactileSampleMsg,
    VideoFrameRef,
)
from teleop.bus.security import CurveKeys
from teleop.bus.sockets import Bus

__all__ = ["Recorder", "RecorderConfig", "OUTCOMES"]

logger = logging.getLogger(__name__)

OUTCOMES = ("success", "failure", "unknown")
_EMPTY_IMG = np.zeros((0, 0, 3), np.uint8)
#: Free space and the episode's size are checked at least this often in bytes written (and every second).
DISK_CHECK_BYTES = 32 * 1024 * 1024
#: A tap silent this long while recording is noted in the episode (``silences``).
SILENCE_S = 1.0
# The largest message taken on each stream (a robot state of the largest declared dimensions is
# ~40 KB; tactile images and camera frames are megabytes).
_STREAM_MAX_BYTES = {"tap": 16 << 20, "state": 1 << 20, "camera": 64 << 20}


@dataclass(frozen=True)
class RecorderConfig:
    dataset: Path
    tap: str  # the session tap (PUB), e.g. tcp://127.0.0.1:7614
    control: str  # our REP socket for episode control
    state: str | None = None  # the robot server's state PUB
    camera: str | None = None  # the robot server's camera PUB
    task: str = ""
    operator: str = ""
    auto_start: bool = False  # start an episode as soon as the session is heard
    codec: str = "h264"
    crf: int = 23
    preset: str = "ultrafast"
    min_free_mb: float = 200.0  # below this the episode is closed (disk full), the session goes on
    max_episode_mb: float = 20_000.0  # an episode's log and videos at most; then it is closed
    max_queue_mb: float = 512.0  # messages received but not yet written, at most (then dropped, counted)
    keys: CurveKeys | None = None
    extra_meta: dict[str, Any] = field(default_factory=dict)


class _Active:
    """The episode being recorded."""

    def __init__(self, index: int, folder: Path, log: LogWriter, meta: dict[str, Any]) -> None:
        self.index, self.folder, self.log, self.meta = index, folder, log, meta
        self.videos: dict[str, Any] = {}
        self.last_seq: dict[tuple[str, str], int] = {}
        self.gaps: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.span: dict[str, list[int]] = {}  # first and last capture time per topic
        self.rejected_at_start: dict[str, int] = {}
        self.overload_at_start: dict[str, int] = {}
        self.session_source = ""  # the tap source (one session run) this episode records
        self.robot_instance = ""  # the robot server instance whose states it holds
        self.bytes_at_check = 0
        self.stages = StageSeconds()  # the session's per-second command path latency (meta "stages_ms")


class Recorder:
    def __init__(self, config: RecorderConfig) -> None:
        self.config = config
        self.dataset = Path(config.dataset).expanduser()
        self._stop = threading.Event()
        self._encoder = Encoder("recorder")
        self._decoder = Decoder()
        self.active: _Active | None = None
        self.info: SessionInfo | None = None
        self.spec: RobotSpec | None = None
        self._preamble: dict[str, bytes] = {}  # newest info/spec/clock frames, logged first in every episode
        self._finalising: list[tuple[Path, list[Future]]] = []
        self.errors: list[str] = []
        self.received = 0
        self.episodes_done: list[str] = []
        self._heard_session = False
        self._last_disk_check = 0.0
        self._session_source = ""  # header source of the newest session_info
        self._last_session_ns = 0
        self._silent_since_ns = 0
        self.orphaned = False  # the process that started us died (teleop/lifeline.py)
        self.intake: Any = None

    # -- public ---------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, seconds: float | None = None, ready: threading.Event | None = None) -> None:
        from recorder.intake import Intake

        cfg = self.config
        self.dataset.mkdir(parents=True, exist_ok=True)
        self._recover_crashed()
        with Bus("recorder", keys=cfg.keys) as bus:
            streams = [("tap", cfg.tap, "session/")]
            if cfg.state:
                streams.append(("state", cfg.state, "robot/state"))
            if cfg.camera:
                streams.append(("camera", cfg.camera, "robot/camera/"))
            subs = [bus.subscriber(ep, [topic], mode="lossless", max_bytes=_STREAM_MAX_BYTES[name], hwm=10_000)
                    for name, ep, topic in streams]
            rpc = bus.rpc_server(cfg.control, accept=(Request,))
            self.intake = intake = Intake([s.sock for s in subs], int(cfg.max_queue_mb * 1e6))
            intake.start()
            if ready is not None:
                ready.set()
            logger.info("recorder: dataset %s, tap %s, control %s", self.dataset, cfg.tap, cfg.control)
            t_end = None if seconds is None else time.monotonic() + seconds
            try:
                while not self._stop.is_set() and (t_end is None or time.monotonic() < t_end):
                    # wait for messages, not for requests: a request waits at most one batch or 10 ms
                    for frame, recv_ns in intake.take(2000, 0.01):
                        self._on_frame(frame, recv_ns)
                    if rpc.sock.poll(0, zmq.POLLIN):
                        rpc.serve_one(self._on_request)
                    self._housekeeping()
                intake.stop()
                while batch := intake.take(100_000, 0.0):  # what was still queued belongs to the episode too
                    for frame, recv_ns in batch:
                        self._on_frame(frame, recv_ns)
            finally:
                intake.stop()
                if self.active is not None:
                    if self.orphaned:
                        self.active.meta["errors"].append(
                            "the session that started this recorder died without closing the episode; the "
                            "recorder closed it with everything received")
                    self._stop_episode(keep=True)
                self._wait_finalising(60.0)

    def orphan(self) -> None:
        """The process that started us is gone: close the episode and stop."""
        self.orphaned = True
        self.stop()

    # -- receiving ------------------------------------------------------------------------------
    def _on_frame(self, frame: bytes, recv_ns: int) -> None:
        self.received += 1
        try:
            header, msg = self._decoder.decode([frame])
        except DecodeError as err:
            logger.debug("recorder: rejected %s", err)
            return
        kind = header.kind
        if header.topic.startswith("session/"):
            self._one_session(header, recv_ns)
        elif kind == "robot_state" and not self._one_robot(msg):  # type: ignore[arg-type]
            return
        if kind == "session_info":
            self.info = msg  # type: ignore[assignment]
            self._session_source = header.source
            self._preamble["info"] = frame
            if self.active is not None and not self.active.meta.get("session"):
                self._fill_meta_from_info(self.active.meta)
                write_meta(self.active.folder, self.active.meta)
            self._first_contact()
        elif kind == "robot_spec":
            self.spec = msg  # type: ignore[assignment]
            self._preamble["spec"] = frame
        elif kind == "session_event":
            ev: SessionEvent = msg  # type: ignore[assignment]
            if ev.event == "clock":
                self._preamble[f"clock:{ev.values.get('source')}"] = frame
            elif ev.event == "episode":
                self._log(header, frame, recv_ns)
                try:
                    self._control(ev.detail, dict(ev.values))
                except (EpisodeError, LogError, ValueError) as exc:  # e.g. stop with nothing recording
                    self.errors.append(f"episode control {ev.detail!r}: {exc}")
                    logger.warning("recorder: episode control %r: %s", ev.detail, exc)
                return
            elif ev.event == "summary" and self.active is not None:
                self.active.meta["loop"] = dict(ev.values)
            elif ev.event == "stages" and self.active is not None:
                self.active.stages.add(dict(ev.values))
            elif ev.event == "fault" and self.active is not None:
                faults = self.active.meta.setdefault("faults", {})
                faults[ev.detail] = faults.get(ev.detail, 0) + 1
        ep = self.active
        if ep is None:
            return
        if kind == "camera_frame":
            self._video_frame(ep, header, msg, recv_ns)  # type: ignore[arg-type]
        elif kind == "tactile_sample" and msg.image.size:  # type: ignore[attr-defined]
            self._tactile_frame(ep, header, msg, recv_ns)  # type: ignore[arg-type]
        else:
            self._log(header, frame, recv_ns)

    def _one_session(self, header: Header, recv_ns: int) -> None:
        """A tap message from another session run than the one the open episode records closes
        the episode first (the message then goes on as one heard with no episode open)."""
        ep = self.active
        if ep is not None:
            if not ep.session_source:
                ep.session_source = ep.meta["session_source"] = header.source
            elif header.source != ep.session_source:
                self._fail_episode(f"another session ({header.source}) appeared on the tap while this episode "
                                   f"recorded {ep.session_source}: the episode was closed before its first message")
                ep = None
        if ep is not None:
            self._note_silence(ep.meta, recv_ns)
        self._silent_since_ns = 0
        self._last_session_ns = recv_ns

    def _note_silence(self, meta: dict[str, Any], until_ns: int) -> None:
        """Into ``silences``: the tap silence under way (if any), from its start to ``until_ns``.
        Judged on receive times: a recorder behind on its queue suspects a silence that its queue
        already disproves (the next message arrived right after the last one handled)."""
        if self._silent_since_ns and until_ns - self._silent_since_ns >= SILENCE_S * 1e9:
            meta.setdefault("silences", []).append({
                "after_s": round((self._silent_since_ns - meta["start_ns"]) / 1e9, 3),
                "seconds": round((until_ns - self._silent_since_ns) / 1e9, 3)})

    def _one_robot(self, state: Any) -> bool:
        ep = self.active
        if ep is None:
            return True
        if not ep.robot_instance:
            ep.robot_instance = state.instance
            ep.meta["robot_instance"] = state.instance
        elif state.instance != ep.robot_instance:
            self._fail_episode(f"robot states of another server instance ({state.instance!r}, was "
                               f"{ep.robot_instance!r}) arrived: the robot server restarted; episode closed")
            return False
        return True

    def _first_contact(self) -> None:
        if not self._heard_session:
            self._heard_session = True
            if self.config.auto_start and self.active is None:
                self._start_episode()

    def _log(self, header: Header, frame: bytes, recv_ns: int) -> None:
        ep = self.active
        if ep is None:
            return
        key = (header.source, header.topic)
        last = ep.last_seq.get(key)
        if last is not None and header.seq > last + 1:
            ep.gaps[header.topic] = ep.gaps.get(header.topic, 0) + header.seq - last - 1
        ep.last_seq[key] = header.seq
        ep.counts[header.topic] = ep.counts.get(header.topic, 0) + 1
        span = ep.span.get(header.topic)
        if span is None:
            ep.span[header.topic] = [header.capture_ns, header.capture_ns]
        else:
            span[1] = header.capture_ns
        try:
            ep.log.append(frame, recv_ns)
        except LogError as exc:
            self._fail_episode(f"{exc}; the episode was closed with what it had, the session goes on")
            return
        if ep.log.bytes - ep.bytes_at_check >= DISK_CHECK_BYTES:
            self._check_disk(ep)

    def _check_disk(self, ep: _Active) -> None:
        """Close the episode when the disk is nearly full or the episode reached its size limit."""
        self._last_disk_check = time.monotonic()
        ep.bytes_at_check = ep.log.bytes
        free_mb = shutil.disk_usage(ep.folder).free / 1e6
        if free_mb < self.config.min_free_mb:
            self._fail_episode(f"disk nearly full ({free_mb:.0f} MB free in {ep.folder.parent}): "
                               "episode closed; free space, then start a new one")
            return
        size_mb = (ep.log.bytes + sum(_size(ep.folder / v["file"]) for v in ep.meta.get("videos", {}).values())) / 1e6
        if size_mb > self.config.max_episode_mb:
            self._fail_episode(f"the episode reached {size_mb:.0f} MB, over the limit of "
                               f"{self.config.max_episode_mb:.0f} MB (--max-episode-gb): closed; a new episode can "
                               "start")

    def _video(self, ep: _Active, name: str, image: np.ndarray, fps: float) -> Any:
        from recorder.video import VideoWriter

        w = ep.videos.get(name)
        if w is None:
            h, wd = image.shape[:2]
            rel = f"{VIDEO_DIR}/{name}.mp4"
            (ep.folder / VIDEO_DIR).mkdir(exist_ok=True)
            w = VideoWriter(ep.folder / rel, wd, h, fps, codec=self.config.codec, crf=self.config.crf,
                            preset=self.config.preset)
            ep.videos[name] = w
            ep.meta.setdefault("videos", {})[name] = {"file": rel, "width": wd, "height": h, "fps": fps,
                                                      "codec": self.config.codec, "frames": 0}
            write_meta(ep.folder, ep.meta)
        return w

    def _write_video(self, ep: _Active, name: str, image: np.ndarray, fps: float, t_ns: int) -> int:
        from recorder.video import VideoError

        try:
            w = self._video(ep, name, image, fps)
            return w.write(image, (t_ns - ep.meta["start_ns"]) / 1e9)
        except (VideoError, ValueError, OSError) as exc:
            msg = f"video {name}: {exc}"
            if msg not in ep.meta.setdefault("errors", []):
                ep.meta["errors"].append(msg)
                logger.error("recorder: %s", msg)
            return -1

    def _video_frame(self, ep: _Active, header: Header, msg: CameraFrame, recv_ns: int) -> None:
        fps = self.spec.camera_hz if self.spec is not None and self.spec.camera_hz > 0 else 30.0
        idx = self._write_video(ep, msg.camera, msg.image, fps, header.capture_ns)
        ref = VideoFrameRef(video=msg.camera, video_index=idx, frame_index=msg.frame_index, time_s=msg.time_s,
                            source=header.source, seq=header.seq)
        self._log_ref(ep, header, ref, f"recorder/video/{msg.camera}", recv_ns)

    def _tactile_frame(self, ep: _Active, header: Header, msg: TactileSampleMsg, recv_ns: int) -> None:
        name = f"tactile_{msg.device}"
        idx = self._write_video(ep, name, msg.image, 25.0, header.capture_ns)
        stripped = TactileSampleMsg(**{**{k: getattr(msg, k) for k in msg.SCHEMA}, "image": _EMPTY_IMG})
        frame = encode_with_header(stripped, header)  # the original header, the pixels left out
        self._log(header, frame, recv_ns)
        ref = VideoFrameRef(video=name, video_index=idx, frame_index=msg.seq, time_s=0.0, source=header.source,
                            seq=header.seq)
        self._log_ref(ep, header, ref, f"recorder/video/{name}", recv_ns)

    def _log_ref(self, ep: _Active, header: Header, ref: VideoFrameRef, topic: str, recv_ns: int) -> None:
        frame = self._encoder.encode(ref, topic, header.capture_ns)
        try:
            ep.log.append(frame, recv_ns)
        except LogError as exc:
            self._fail_episode(f"{exc}; the episode was closed with what it had, the session goes on")
        ep.counts[topic] = ep.counts.get(topic, 0) + 1

    # -- control ----------------------------------------------------------------------------------
    def _on_request(self, header: Header, req: Message) -> Message:
        assert isinstance(req, Request)
        try:
            values = self._control(req.op, dict(req.args))
        except (EpisodeError, LogError, ValueError) as exc:
            return Reply(op=req.op, ok=False, error=str(exc))
        return Reply(op=req.op, ok=True, values=values)

    def _control(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "start":
            if self.active is not None:
                self._stop_episode(keep=True)
            return self._start_episode(task=args.get("task"))
        if op in ("stop", "discard"):
            if self.active is None:
                raise EpisodeError(f"{op}: no episode is being recorded")
            return self._stop_episode(keep=op == "stop")
        if op in ("success", "failure", "mark"):
            outcome = args.get("outcome", op) if op == "mark" else op
            if outcome not in OUTCOMES:
                raise ValueError(f"outcome {outcome!r}; allowed: {OUTCOMES}")
            return self._set_meta(outcome=outcome)
        if op == "task":
            return self._set_meta(task=str(args.get("text", "")))
        if op == "note":
            return self._add_note(str(args.get("text", "")))
        if op == "status":
            return self._status()
        if op == "quit":
            self._stop.set()
            return self._status()
        raise ValueError(f"unknown episode control {op!r}: start, stop, discard, success, failure, mark, task, note, "
                         "status, quit")

    def _status(self) -> dict[str, Any]:
        ep = self.active
        return {
            "recording": ep is not None,
            "episode": ep.index if ep else -1,
            "path": str(ep.folder) if ep else "",
            "records": ep.log.records if ep else 0,
            "received": self.received,
            "dataset": str(self.dataset),
            "session": self.info.session if self.info else "",
            "errors": len(self.errors),
            "last_error": self.errors[-1] if self.errors else "",
            "finalising": len(self._finalising),
            "kept": "\n".join(self.episodes_done),  # the episodes this recorder kept, in order
        }

    def _set_meta(self, **values: Any) -> dict[str, Any]:
        ep = self.active
        folder = ep.folder if ep else self._last_folder()
        meta = ep.meta if ep else read_meta(folder)
        meta.update(values)
        write_meta(folder, meta)
        if ep is None:
            write_index(self.dataset)
        return {"episode": meta["index"], **values}

    def _add_note(self, text: str) -> dict[str, Any]:
        ep = self.active
        folder = ep.folder if ep else self._last_folder()
        meta = ep.meta if ep else read_meta(folder)
        meta.setdefault("notes", []).append({"t": time.strftime("%Y-%m-%dT%H:%M:%S"), "text": text})
        write_meta(folder, meta)
        return {"episode": meta["index"], "notes": len(meta["notes"])}

    def _last_folder(self) -> Path:
        eps = list_episodes(self.dataset)
        if not eps:
            raise EpisodeError(f"no episode in {self.dataset} to mark")
        return Path(eps[-1].path)

    # -- episodes ---------------------------------------------------------------------------------
    def _recover_crashed(self) -> None:
        for e in list_episodes(self.dataset):
            if e.status == "recording":
                meta = recover(Path(e.path))
                logger.warning("recorder: recovered episode %s left open by a crash (%s)", e.path, meta["errors"][-1])
        for p in self.dataset.glob(".discarded_episode_*"):
            delete_tree(p)
        write_index(self.dataset)

    def _start_episode(self, task: str | None = None) -> dict[str, Any]:
        cfg = self.config
        free_mb = shutil.disk_usage(self.dataset).free / 1e6
        if free_mb < cfg.min_free_mb:
            raise EpisodeError(f"only {free_mb:.0f} MB free in {self.dataset} (need {cfg.min_free_mb:.0f} MB): "
                               "free space or record to another disk")
        index = next_index(self.dataset)
        folder = episode_dir(self.dataset, index)
        folder.mkdir(parents=True)
        info = self.info
        start_ns = time.monotonic_ns()
        meta: dict[str, Any] = {
            "format": "teleop-episode/1",
            "index": index,
            "status": "recording",
            "task": task if task is not None else cfg.task,
            "operator": (info.operator if info and info.operator else cfg.operator),
            "outcome": "unknown",
            "notes": [],
            "errors": [],
            "start_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "start_ns": start_ns,  # recorder clock = session clock when on the session's host
            "stop_ns": 0,
            "duration_s": 0.0,
            "session": "",
            "robot": self.spec.name if self.spec else "",
            "joint_names": list(self.spec.joint_names) if self.spec else [],
            "software": {"teleop": teleop.__version__, "recorder": "1"},
            "recorder_pid": os.getpid(),
            "recorder_host": socket.gethostname(),
            "log": LOG_NAME,
            "videos": {},
            **cfg.extra_meta,
        }
        if info is not None:
            self._fill_meta_from_info(meta)
        write_meta(folder, meta)
        log = LogWriter(folder / LOG_NAME)
        self.active = _Active(index, folder, log, meta)
        self.active.rejected_at_start = dict(self._decoder.stats.rejected)
        self.active.overload_at_start = dict(self.intake.dropped) if self.intake is not None else {}
        self.active.session_source = self._session_source
        if self._session_source:
            meta["session_source"] = self._session_source
        self._silent_since_ns = 0
        for frame in self._preamble.values():  # every episode carries its own context
            log.append(frame, start_ns)
        logger.info("recorder: episode %d started: %s", index, folder)
        return {"episode": index, "path": str(folder)}

    def _fill_meta_from_info(self, meta: dict[str, Any]) -> None:
        info = self.info
        assert info is not None
        meta.update(session=info.session, robot=info.robot, rate_hz=info.rate_hz, joint_names=list(info.joint_names),
                    session_toml=info.session_toml, description_toml=info.description_toml, devices=dict(info.devices),
                    channel_names={k: v.split(",") if v else [] for k, v in info.channel_names.items()})
        if info.operator and not meta.get("operator"):
            meta["operator"] = info.operator

    def _stop_episode(self, keep: bool) -> dict[str, Any]:
        ep = self.active
        assert ep is not None
        self.active = None
        stop_ns = time.monotonic_ns()
        try:
            ep.log.close()
        except LogError as exc:
            ep.meta["errors"].append(str(exc))
        futures = []
        for w in ep.videos.values():
            futures.append(w.close_async())
        if not keep:
            for f in futures:  # nothing of a discarded episode is wanted: do not wait on it
                f.add_done_callback(lambda _f: None)
            trash = discard(ep.folder)
            threading.Thread(target=_delete_when_done, args=(trash, futures), daemon=True).start()
            write_index(self.dataset)
            logger.info("recorder: episode %d discarded", ep.index)
            return {"episode": ep.index, "kept": False}
        m = ep.meta
        self._note_silence(m, stop_ns)  # the session went quiet and never spoke again in this episode
        m["status"] = "complete"
        m["stop_ns"] = stop_ns
        m["stop_time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        m["duration_s"] = round((stop_ns - m["start_ns"]) / 1e9, 3)
        m["records"] = ep.log.records
        m["streams"] = dict(sorted(ep.counts.items()))
        m["dropped"] = {"bus_gaps": dict(ep.gaps), "video": {}}
        rejected = {k: v - ep.rejected_at_start.get(k, 0) for k, v in self._decoder.stats.rejected.items()}
        m["dropped"]["rejected"] = {k: v for k, v in rejected.items() if v}  # malformed messages, not logged
        dropped = dict(self.intake.dropped) if self.intake is not None else {}
        overload = {k: v - ep.overload_at_start.get(k, 0) for k, v in dropped.items()}
        m["dropped"]["overload"] = {k: v for k, v in overload.items() if v}
        if m["dropped"]["overload"]:
            m["errors"].append(f"{sum(overload.values())} messages arrived faster than they could be written and "
                               f"were dropped (the recorder's queue was full at {self.config.max_queue_mb:.0f} MB): "
                               f"{m['dropped']['overload']}")
        if m["dropped"]["rejected"]:
            m["errors"].append(f"{sum(rejected.values())} malformed messages were not logged "
                               f"({m['dropped']['rejected']}; last: {self._decoder.stats.last_error})")
        m.update(ep.stages.meta())  # nothing from a session that does not send it
        n_cmd = ep.counts.get("session/command", 0)
        span = ep.span.get("session/command")
        if n_cmd > 1 and span and span[1] > span[0]:
            # what the log holds, whatever the session claimed: a slow loop shows here
            hz = (n_cmd - 1) / ((span[1] - span[0]) / 1e9)
            loop = m.setdefault("loop", {})
            loop["commands_logged_hz"] = round(hz, 1)
            if m.get("rate_hz"):
                loop["configured_hz"] = m["rate_hz"]
                loop["held_rate_in_log"] = bool(hz >= 0.95 * m["rate_hz"])
        write_meta(ep.folder, m)
        self._finalising.append((ep.folder, futures))
        self.episodes_done.append(str(ep.folder))
        if not futures:
            self._finish_meta(ep.folder, [])
        logger.info("recorder: episode %d kept (%s s, %d records)", ep.index, m["duration_s"], ep.log.records)
        return {"episode": ep.index, "kept": True, "path": str(ep.folder), "records": ep.log.records,
                "duration_s": m["duration_s"]}

    def _fail_episode(self, message: str) -> None:
        ep = self.active
        if ep is None:
            return
        self.errors.append(message)
        logger.error("recorder: %s", message)
        ep.meta.setdefault("errors", []).append(message)
        try:
            self._stop_episode(keep=True)
        except Exception as exc:  # noqa: BLE001 - the disk may refuse meta.json too; the log is what counts
            self.errors.append(f"closing the episode after the error also failed: {exc}")

    def _finish_meta(self, folder: Path, futures: list[Future]) -> None:
        try:
            meta = read_meta(folder)
            for f in futures:
                exc = f.exception()
                if exc is not None:
                    meta["errors"].append(f"video finalising failed: {exc}")
                    self.errors.append(f"{folder}: video finalising failed: {exc}")
                    continue
                info = f.result()
                for v in meta.get("videos", {}).values():
                    if Path(v["file"]).name == Path(info.path).name:
                        v.update(frames=info.frames, dropped=info.dropped, bytes=info.bytes)
                        meta["dropped"]["video"][Path(info.path).stem] = info.dropped
            write_meta(folder, meta)
            write_index(self.dataset)
        except Exception as exc:  # noqa: BLE001 - reported, not lost
            self.errors.append(f"{folder}: finishing the metadata failed: {exc}")
            logger.exception("recorder: finishing %s", folder)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        ep = self.active
        if ep is not None:
            try:
                ep.log.tick(now)
            except LogError as exc:
                self._fail_episode(f"{exc}; the episode was closed with what it had, the session goes on")
            if now - self._last_disk_check > 1.0 and self.active is ep:
                self._check_disk(ep)
            if self._last_session_ns and not self._silent_since_ns and \
                    time.monotonic_ns() - self._last_session_ns > SILENCE_S * 1e9:
                self._silent_since_ns = self._last_session_ns  # noted when the tap speaks again
        still = []
        for folder, futures in self._finalising:
            if all(f.done() for f in futures):
                self._finish_meta(folder, futures)
            else:
                still.append((folder, futures))
        self._finalising = still

    def _wait_finalising(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for folder, futures in self._finalising:
            for f in futures:
                try:
                    f.result(max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - recorded by _finish_meta
                    pass
            self._finish_meta(folder, futures)
        self._finalising = []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _delete_when_done(trash: Path, futures: list[Future]) -> None:
    for f in futures:
        try:
            f.result(60)
        except Exception:  # noqa: BLE001 - a discarded video's failure does not matter
            pass
    delete_tree(trash)


def run_recorder(config: RecorderConfig, seconds: float | None = None) -> Recorder:
    """Run until SIGINT/SIGTERM (or ``seconds``); stops and keeps the open episode."""
    rec = Recorder(config)

    def _sig(*_: object) -> None:
        rec.stop()

    old = {s: signal.signal(s, _sig) for s in (signal.SIGINT, signal.SIGTERM)}
    from teleop.lifeline import follow_parent

    follow_parent(rec.orphan)  # started by a session: close the episode and stop if it dies
    try:
        rec.run(seconds)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return rec
