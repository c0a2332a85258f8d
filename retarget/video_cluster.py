"""A video batch on Dask: a local cluster of worker processes, or a running scheduler by address.

Each video is one Dask task running ``retarget.video_job.run_job`` (one thread per worker: the
tracker and the retargeting are single-threaded kernels, a core each). Workers report frames done
as Dask events on a topic of this batch's own (``Worker.log_event``), which the submitting
process turns into the frames bar. A worker process that dies (killed, out of memory, a crash in
a native decoder) costs its video one retry on another worker, then the video is reported
failed; the others go on.

Why Dask and not Ray: it is pure Python (installs in seconds on every Python and platform, no
raylet or object store to size), a local cluster starts in about a second on two cores, and a lab
cluster is ``dask scheduler`` plus ``dask worker tcp://HOST:8786`` on each machine (or
dask-jobqueue on SLURM), with no cluster configuration on our side.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retarget.video_episode import VideoOptions
from teleop.errors import ConfigError, TeleopError

__all__ = ["run_on_dask"]

_WAIT_S = 0.25  # how often the submitting process turns progress events into the bar
_CONNECT_S = 20.0


def run_on_dask(videos: list, robot: str | Path | None, dataset: Path, opts: VideoOptions, done_keys: set, *,
                workers: int, address: str | None, on_frames: Callable[[int, int], None],
                on_result: Callable[[Any, dict[str, Any]], None]) -> tuple[str, float]:
    """Run every video's job on Dask and call ``on_result(video, result)`` as each finishes.
    Returns the cluster's description and its start-up time [s]: until every worker was up,
    checked and warm (the models loaded, the kernels compiled)."""
    t0 = time.perf_counter()
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise TeleopError(f"running videos on several workers needs Dask ({exc}): pip install 'dexteleop[hands]', "
                          "or give --workers 1") from exc
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,  # one retry after a worker dies
                          "distributed.worker.daemon": False,
                          # its 10 ms stack sampler costs a CPU-bound job about a third more CPU
                          "distributed.worker.profile.enabled": False}), _quiet("distributed"):
        if address:
            client, cluster, where = _connect(Client, address), None, f"dask {address}"
        else:
            # loopback only, free ports, no dashboard: another batch or session may hold 8786/8787
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   scheduler_port=0, dashboard_address=None, silence_logs=logging.ERROR,
                                   scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
            client, where = Client(cluster), f"dask local, {workers} workers"
        try:
            _check_workers(client, dataset, address)
            _warm_workers(client, robot)
            startup_s = time.perf_counter() - t0
            _run(client, videos, robot, dataset, opts, done_keys, on_frames, on_result)
            _sweep_everywhere(client, dataset)  # a worker that died mid-video left its build folder
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return where, startup_s


@contextlib.contextmanager
def _quiet(name: str):
    """The scheduler and client log their start, stop and every connection at INFO, and a
    closing connection's traceback at shutdown: the batch's own lines say what matters."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _connect(client_cls, address: str):
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address.strip()):
        raise ConfigError(f"--address {address!r}: give the Dask scheduler's address, e.g. tcp://10.0.0.5:8786")
    _reachable(address.strip())
    try:
        client = client_cls(address.strip(), timeout=f"{_CONNECT_S:.0f}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise TeleopError(f"could not reach a Dask scheduler at {address} ({exc}): start one with `dask scheduler` "
                          "and workers with `dask worker ADDRESS` on the machines, or leave out --address to use "
                          "local worker processes") from exc
    try:
        client.wait_for_workers(1, timeout=_CONNECT_S)
    except TimeoutError as exc:
        client.close()
        raise TeleopError(f"the Dask scheduler at {address} has no workers (waited {_CONNECT_S:.0f} s): start "
                          f"`dask worker {address}` on the machines that should process the videos") from exc
    return client


def _reachable(address: str) -> None:
    """A TCP scheduler that is not there is said at once (Dask itself retries until its timeout)."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, loc = parse_address(address)
        host, port = parse_host_port(loc, 8786)
    except ValueError as exc:
        raise ConfigError(f"--address {address!r}: {exc}; give e.g. tcp://10.0.0.5:8786") from exc
    if scheme != "tcp":
        return  # tls://, ucx://, inproc://: Dask's own connection says what is wrong
    try:
        socket.create_connection((host, port), timeout=5.0).close()
    except OSError as exc:
        raise TeleopError(f"no Dask scheduler answers at {address} ({exc}): start one with `dask scheduler` and "
                          "workers with `dask worker ADDRESS`, or leave out --address to use local workers") from exc


def _check_workers(client, dataset: Path, address: str | None) -> None:
    """Every worker has this runtime and the hand models, and can write the dataset: said once,
    before any video is given out, not as the same error per video."""
    try:
        reports = client.run(_worker_report, str(dataset))
    except Exception as exc:  # noqa: BLE001 - e.g. the workers cannot import this package
        raise TeleopError(f"the Dask workers could not run the video job ({type(exc).__name__}: {exc}); install "
                          "this runtime with its [hands] extra on every worker and run `teleop models fetch` "
                          "there") from exc
    bad = {w: r for w, r in reports.items() if r}
    if bad:
        lines = "; ".join(f"{w}: {r}" for w, r in sorted(bad.items()))
        where = f" of the scheduler at {address}" if address else ""
        raise TeleopError(f"workers{where} cannot process videos: {lines}")


def _worker_report(dataset: str) -> str:
    """What keeps this worker from processing videos ('' when nothing does)."""
    from drivers.camera_hands import models
    from retarget.video_episode import sweep_incoming

    problems = []
    if not os.access(dataset, os.W_OK):
        problems.append(f"cannot write the dataset {dataset} (a cluster needs it on a shared filesystem)")
    else:
        sweep_incoming(dataset)  # what a dead worker of this host left half built
    st = models.status()
    if not st["ok"]:
        bad = ", ".join(f"{name} {m['state']}" for name, m in st["models"].items() if m["state"] != "ok")
        problems.append(f"hand models not usable in {st['dir']} ({bad}): run `teleop models fetch` there")
    return "; ".join(problems)


def _warm_workers(client, robot) -> None:
    """Every worker loads the models and kernels at once, before the first video (a worker that
    cannot is said here, once)."""
    from retarget.video_episode import warm_up

    try:
        client.run(warm_up, str(robot) if robot else None)
    except TeleopError as exc:
        raise TeleopError(f"the Dask workers could not get ready for videos: {exc}") from exc


def _sweep_everywhere(client, dataset: Path) -> None:
    from retarget.video_episode import sweep_incoming

    try:
        client.run(sweep_incoming, str(dataset))
    except Exception:  # noqa: BLE001 - tidying only; the next batch sweeps again
        pass


def _run(client, videos: list, robot, dataset: Path, opts: VideoOptions, done_keys: set,
         on_frames: Callable[[int, int], None], on_result: Callable[[Any, dict[str, Any]], None]) -> None:
    from distributed import wait
    from distributed.client import FIRST_COMPLETED

    from retarget.video_job import run_job

    topic = f"teleop-video-{uuid.uuid4().hex[:12]}"
    events: queue.SimpleQueue = queue.SimpleQueue()
    client.subscribe_topic(topic, events.put)
    by_key = {}
    for v in videos:
        fut = client.submit(run_job, v, robot, dataset, opts, done_keys, _Report(topic, v.index),
                            key=f"video-{v.index}-{topic}", pure=False)
        by_key[fut.key] = (v, fut)
    pending = {fut for _, fut in by_key.values()}
    try:
        while pending:
            try:
                finished = wait(pending, timeout=_WAIT_S, return_when=FIRST_COMPLETED).done
            except TimeoutError:
                finished = set()
            _drain(events, on_frames)
            lost = {f for f in finished if f.status not in ("finished", "error", "cancelled")}
            if lost:
                time.sleep(0.05)  # a dead worker's video, "lost" until the scheduler gives it to another one
            for fut in finished - lost:
                pending.discard(fut)
                v, _ = by_key[fut.key]
                on_result(v, _result(v, fut))
        _drain(events, on_frames)
    finally:
        for fut in pending:
            fut.cancel()
        client.unsubscribe_topic(topic)


def _drain(events: queue.SimpleQueue, on_frames: Callable[[int, int], None]) -> None:
    while True:
        try:
            _, msg = events.get_nowait()
        except queue.Empty:
            return
        if isinstance(msg, dict) and isinstance(msg.get("video"), int) and isinstance(msg.get("frames"), int):
            on_frames(msg["video"], msg["frames"])


def _result(v, fut) -> dict[str, Any]:
    """The job's result, or a failed result saying why there is none."""
    from distributed import KilledWorker

    try:
        return fut.result()
    except KilledWorker as exc:
        error = (f"the worker process running this video died twice ({exc}): killed, out of memory, or a crash in "
                 "a native library (a damaged file can crash a decoder); the worker logs say which")
    except Exception as exc:  # noqa: BLE001 - the task could not run at all (e.g. it could not be unpickled)
        error = f"the job could not run on the cluster ({type(exc).__name__}: {exc})"
    return {"video": v.path, "status": "failed", "error": error, "seconds": 0.0}


class _Report:
    """The job's progress callback on a worker: frames done -> an event on the batch's topic."""

    def __init__(self, topic: str, index: int) -> None:
        self.topic, self.index = topic, index

    def __call__(self, frames: int) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, {"video": self.index, "frames": int(frames)})
