"""recorder.video against real PyAV and real files: round trips, drops, crashes and failures."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import recorder.video as video
from recorder.video import VideoError, VideoInfo, VideoWriter, probe_video, read_video
from teleop.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
W, H, FPS = 64, 48, 30


def smooth_image(i: int, width: int = W, height: int = H) -> np.ndarray:
    """A smooth gradient that drifts with i, so every frame differs and H.264 keeps it close."""
    yy, xx = np.mgrid[0:height, 0:width]
    r = 128 + 100 * np.sin(xx / 9.0 + i / 5.0)
    g = 128 + 100 * np.cos(yy / 7.0 - i / 7.0)
    b = np.full_like(r, 40 + (i * 5) % 170)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def write_frames(writer: VideoWriter, n: int) -> list[int]:
    return [writer.write(smooth_image(i), i / FPS) for i in range(n)]


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


class BlockingReformatter:
    """Stands in for PyAV's VideoReformatter: holds the encoder thread until released (a slow encoder)."""

    release = threading.Event()

    def reformat(self, frame, **kwargs):
        self.release.wait(10)
        return frame.reformat(**kwargs)


class FailingReformatter:
    """Stands in for PyAV's VideoReformatter and fails on the third frame (an encoder fault)."""

    def __init__(self) -> None:
        self.calls = 0

    def reformat(self, frame, **kwargs):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("injected encoder fault")
        return frame.reformat(**kwargs)


def test_round_trip_exact_count_and_content(tmp_path: Path) -> None:
    n = 45
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS)
    assert write_frames(writer, n) == list(range(n))
    info = writer.close()

    assert info == VideoInfo(tmp_path / "cam.mp4", n, W, H, 30.0, "h264", 0, info.bytes, n / FPS)
    assert info.bytes == (tmp_path / "cam.mp4").stat().st_size > 0
    assert writer.frames_written == n
    decoded = list(read_video(info.path))
    assert [i for i, _ in decoded] == list(range(n))
    for i, image in decoded:
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        assert mean_abs_error(image, smooth_image(i)) < 8, i
    assert probe_video(info.path) == info  # a finished file: counted from its packets


def test_read_video_range_seeks_to_the_right_frames(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS, gop=10)
    write_frames(writer, 40)
    path = writer.close().path
    part = list(read_video(path, start=23, stop=31))
    assert [i for i, _ in part] == list(range(23, 31))
    for i, image in part:
        assert mean_abs_error(image, smooth_image(i)) < 8, i
    with pytest.raises(ValueError, match="start"):
        read_video(path, start=5, stop=2)


def test_av1_round_trip(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS, codec="av1")
    write_frames(writer, 12)
    info = writer.close()
    assert (info.frames, info.codec) == (12, "av1")
    decoded = list(read_video(info.path))
    assert [i for i, _ in decoded] == list(range(12))
    assert max(mean_abs_error(img, smooth_image(i)) for i, img in decoded) < 8
    assert probe_video(info.path).codec == "av1"


def test_full_queue_drops_without_blocking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    BlockingReformatter.release.clear()
    monkeypatch.setattr(video, "VideoReformatter", BlockingReformatter)
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS, queue_frames=3)
    try:
        t0 = time.perf_counter()
        indices = write_frames(writer, 20)
        elapsed_s = time.perf_counter() - t0
    finally:
        BlockingReformatter.release.set()
    info = writer.close()

    assert elapsed_s < 0.5  # the encoder was stuck the whole time; write() never waited for it
    accepted = [i for i in indices if i >= 0]
    assert accepted == list(range(len(accepted)))  # indices stay dense: dropped frames take none
    assert 3 <= len(accepted) <= 4  # the queue, plus the frame the stuck thread had already taken
    assert writer.dropped == info.dropped == 20 - len(accepted)
    assert info.frames == len(accepted)
    assert [i for i, _ in read_video(info.path)] == accepted


def test_close_async_returns_a_future_and_close_is_idempotent(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS)
    write_frames(writer, 10)
    future = writer.close_async()
    assert isinstance(future, concurrent.futures.Future)
    assert writer.close_async() is future
    info = future.result(timeout=10)
    assert info.frames == 10
    assert writer.close() == info
    with pytest.raises(VideoError, match="after close"):
        writer.write(smooth_image(10), 10 / FPS)


def test_bad_frames_raise_value_error_naming_the_expected_shape(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS)
    with pytest.raises(ValueError, match=r"\(48, 64, 3\)"):
        writer.write(np.zeros((H, W + 2, 3), np.uint8), 0.0)
    with pytest.raises(ValueError, match=r"uint8.*float32"):
        writer.write(np.zeros((H, W, 3), np.float32), 0.0)
    with pytest.raises(ValueError, match=r"\(48, 64, 3\)"):
        writer.write(np.zeros((H, W, 4), np.uint8), 0.0)
    assert writer.write(smooth_image(0), 0.5) == 0
    with pytest.raises(ValueError, match="must increase"):
        writer.write(smooth_image(1), 0.5)
    assert writer.close().frames == 1


def test_bad_settings_fail_in_the_constructor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="even width and height.*64x48"):
        VideoWriter(tmp_path / "odd.mp4", 63, 47)
    with pytest.raises(ConfigError, match="h264"):
        VideoWriter(tmp_path / "x.mp4", W, H, codec="vp9")  # type: ignore[arg-type]
    with pytest.raises(VideoError, match="missing_dir.*No such file"):
        VideoWriter(tmp_path / "missing_dir" / "cam.mp4", W, H)
    with pytest.raises(VideoError, match="Is a directory"):
        VideoWriter(tmp_path, W, H)
    with pytest.raises(VideoError, match="No space left"):
        VideoWriter("/dev/full", W, H)  # the header write already fails on a full disk


def test_encoder_fault_is_reported_by_write_and_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video, "VideoReformatter", FailingReformatter)
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS)
    with pytest.raises(VideoError, match=r"cam\.mp4.*injected encoder fault") as raised:
        for i in range(500):  # the fault reaches the caller at its next write() after the thread hits it
            writer.write(smooth_image(i), i / FPS)
            time.sleep(0.01)
    assert isinstance(writer.error, RuntimeError)
    assert raised.value.__cause__ is writer.error
    with pytest.raises(VideoError, match="injected encoder fault"):
        writer.close()
    assert isinstance(writer.close_async().exception(timeout=1), VideoError)


_FILE_TOO_LARGE = """
import resource, signal, sys, time
import numpy as np
from recorder.video import VideoWriter, VideoError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then writes past the limit fail with EFBIG, like ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (12000, 12000))
rng = np.random.default_rng(0)
writer = VideoWriter(sys.argv[1], 64, 48)
for i in range(300):
    try:
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), i / 30)
    except VideoError as e:
        print("write:", e)
        break
    time.sleep(0.005)
try:
    writer.close()
except VideoError as e:
    print("close:", e)
"""


def test_disk_full_mid_episode_is_reported(tmp_path: Path) -> None:
    # RLIMIT_FSIZE is per process, so the failing disk lives in a child
    path = tmp_path / "cam.mp4"
    out = subprocess.run(
        [sys.executable, "-c", _FILE_TOO_LARGE, str(path)], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("write:") and str(path) in lines[0] and "File too large" in lines[0], out.stdout
    assert lines[1].startswith("close:") and "File too large" in lines[1], out.stdout
    assert probe_video(path).frames >= 1  # what reached the disk is still readable


_KILLED_WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from test_video import smooth_image
from recorder.video import VideoWriter
writer = VideoWriter(sys.argv[1], 64, 48, 30)
for i in range(10_000):
    writer.write(smooth_image(i), i / 30)
    print(i + 1, writer.frames_written, flush=True)
    time.sleep(1 / 60)
"""


def test_kill_9_keeps_everything_muxed_before_the_kill(tmp_path: Path) -> None:
    path = tmp_path / "cam.mp4"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path), str(Path(__file__).parent)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            sent, muxed = map(int, line.split())
            if sent >= 70:  # mid-GOP: keyframes are at 0, 30, 60, 90
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)

    decoded = list(read_video(path))
    indices = [i for i, _ in decoded]
    # every frame muxed before the kill is on disk but the last (the MP4 muxer holds one packet back to
    # learn its duration): far more than the spec's floor of sent - fps - queue
    assert len(decoded) >= max(muxed - 1, sent - FPS)
    # a clean prefix; only the last frame may skip indices (its B-frames were still in the encoder)
    assert indices[:-1] == list(range(len(decoded) - 1)) and indices[-1] < sent
    for i, image in decoded:
        assert mean_abs_error(image, smooth_image(i)) < 8, i
    info = probe_video(path)  # no index at the end: counted by decoding
    assert (info.frames, info.width, info.height, info.fps) == (len(decoded), W, H, 30.0)


def test_truncated_files_read_up_to_the_cut(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "cam.mp4", W, H, FPS)
    write_frames(writer, 30)
    data = writer.close().path.read_bytes()
    counts = []
    for cut in (len(data) // 4, len(data) // 2, len(data) - 100):
        path = tmp_path / f"cut_{cut}.mp4"
        path.write_bytes(data[:cut])
        indices = [i for i, _ in read_video(path)]
        assert indices[:-1] == list(range(len(indices) - 1)), cut
        counts.append(len(indices))
    assert counts == sorted(counts) and counts[-1] >= 28

    # killed before the first frame: an empty file or a bare ftyp box holds no frames, and says so
    for name, content in (("empty.mp4", b""), ("ftyp.mp4", data[: int.from_bytes(data[:4], "big")])):
        (tmp_path / name).write_bytes(content)
        assert list(read_video(tmp_path / name)) == []
        assert probe_video(tmp_path / name).frames == 0

    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoError, match="junk.mp4"):
        list(read_video(tmp_path / "junk.mp4"))
    with pytest.raises(VideoError, match="no such video"):
        probe_video(tmp_path / "absent.mp4")
