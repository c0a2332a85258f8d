"""GelSight Mini driver: replay of a generated MJPG video (conformance, displacements against the
field the video was made from), the camera path with OpenCV's capture class faked, device
discovery and its errors, config errors, re-taking the reference."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from support.conformance import check_driver

cv2 = pytest.importorskip("cv2")

from drivers.gelsight_mini import capture, gelsight_mini  # noqa: E402
from teleop.vision import devices  # noqa: E402
from drivers.gelsight_mini.config_gelsight_mini import GelSightMiniConfig  # noqa: E402
from drivers.gelsight_mini.gelsight_mini import GelSightMiniDriver  # noqa: E402
from drivers.gelsight_mini.synthetic import (  # noqa: E402
    ContactField,
    SyntheticCamera,
    marker_grid,
    press_motion,
    render_gel,
    true_displacement,
    write_video,
)
from drivers.registry import driver_class  # noqa: E402
from drivers.samples import TactileSample  # noqa: E402
from teleop.errors import ConfigError, DeviceError, DeviceNotConnectedError  # noqa: E402

REST = 4
FIELDS = [None] * REST + [press_motion(t) for t in np.linspace(0.12, 0.9, 30)] + [None] * 2
RAW = (640, 480)  # crops (0.15 per side) to 448x336 and resizes to 320x240


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    frames = (render_gel(f, raw_size=RAW, seed=k) for k, f in enumerate(FIELDS))
    return write_video(tmp_path_factory.mktemp("gelsight") / "press.avi", frames, fps=25.0, quality=95)


def _config(video: Path, **kw) -> GelSightMiniConfig:
    base = {"video": str(video), "realtime": False, "reference_frames": 3, "side": "right"}
    return GelSightMiniConfig(**{**base, **kw})


def _grid_order(markers: np.ndarray) -> np.ndarray:
    truth = marker_grid()
    return truth[np.argmin(np.linalg.norm(markers[:, None] - truth[None], axis=-1), axis=1)]


def test_entry_point_resolves():
    assert driver_class("gelsight_mini") is GelSightMiniDriver


def test_conformance_on_replayed_video(video):
    got = check_driver(lambda: GelSightMiniDriver(_config(video)), kinds=("tactile",))
    s = got[0]
    assert isinstance(s, TactileSample) and s.side == "right" and s.finger == "right_index"
    assert s.markers_px.shape == (63, 2) and s.displacement_px.shape == (63, 2)
    assert s.contact_mask.shape == (240, 320) and s.contact_mask.dtype == bool
    assert s.force_n.shape == (3,) and s.image is None and "press.avi" in s.source


def test_replayed_displacements_match_the_field(video):
    drv = GelSightMiniDriver(_config(video, include_image=True))
    with drv:
        samples = [drv.get_sample(5.0) for _ in range(len(FIELDS) - 3)]
    grid = _grid_order(samples[0].markers_px)
    worst = 0.0
    for s in samples:
        field = FIELDS[3 + s.seq]  # the first 3 frames made the reference
        err = np.linalg.norm(s.displacement_px - true_displacement(field, grid), axis=1)
        assert err.mean() < 0.3 and err.max() < 0.3, (s.seq, err.mean(), err.max())
        worst = max(worst, err.max())
        assert s.image is not None and s.image.shape == (240, 320, 3)
        if field is not None and field.indent > 0.3:
            assert s.contact_mask.any() and s.force_n[2] > 0
        if field is None:
            assert not s.contact_mask.any()
    assert worst > 0  # it did compare something
    assert max(np.abs(s.displacement_px).max() for s in samples) > 2.0


def test_replay_loops_and_paces_in_real_time(tmp_path):
    path = write_video(tmp_path / "short.avi", (render_gel(None, seed=k) for k in range(8)), fps=25.0)
    src = capture.VideoFile(path, border_fraction=0.0, loop=True, realtime=True)
    out = np.zeros((240, 320, 3), np.uint8)
    src.open()
    try:
        t0 = time.monotonic()
        idx = []
        while len(idx) < 12:
            if src.read(out) is not None:
                idx.append(src.frame_index)
        elapsed = time.monotonic() - t0
    finally:
        src.close()
    assert idx == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3]
    assert elapsed >= 11 / 25 - 0.02
    assert src.nominal_fps == pytest.approx(25.0)


def test_replay_stops_at_the_end_without_loop(tmp_path):
    path = write_video(tmp_path / "two.mp4", (render_gel(None, seed=k) for k in range(2)), fps=25.0)
    src = capture.VideoFile(path, border_fraction=0.0, realtime=False)
    out = np.zeros((240, 320, 3), np.uint8)
    src.open()
    try:
        assert src.read(out) is not None and src.read(out) is not None
        assert src.read(out) is None and src.eof
    finally:
        src.close()


def test_missing_video_file(tmp_path):
    with pytest.raises(DeviceError, match="does not exist"):
        GelSightMiniDriver(_config(tmp_path / "nope.avi")).connect()


def test_synthetic_source_and_calibrate(monkeypatch):
    fields = [None] * 4 + [ContactField(translation_px=(1.5, 0.0), indent=0.5)] * 4
    monkeypatch.setattr(gelsight_mini, "make_frame_source",
                        lambda cfg: SyntheticCamera(fields=fields, realtime=False, loop=True))
    drv = GelSightMiniDriver(GelSightMiniConfig(reference_frames=2, finger="left_thumb"))
    with pytest.raises(DeviceNotConnectedError):
        drv.calibrate()
    with drv:
        s = drv.get_sample(5.0)
        assert s.finger == "left_thumb" and s.source.startswith("gelsight_mini:synthetic")
        info = drv.calibrate()
        assert info == {"markers": 63, "marker_radius_px": pytest.approx(4.7, abs=0.4), "reference_frames": 2}
        assert drv.get_sample(5.0).seq > s.seq


def test_video_synthetic_option():
    drv = GelSightMiniDriver(GelSightMiniConfig(video="synthetic", realtime=False, reference_frames=1))
    with drv:
        assert drv.get_sample(5.0).markers_px.shape == (63, 2)


def test_no_markers_on_the_reference(monkeypatch):
    blank = lambda f, **kw: np.full((240, 320, 3), 128, np.uint8)  # noqa: E731
    monkeypatch.setattr(gelsight_mini, "make_frame_source",
                        lambda cfg: SyntheticCamera(fields=[None], realtime=False, render=blank))
    with pytest.raises(DeviceError, match="no markers"):
        GelSightMiniDriver(GelSightMiniConfig(reference_frames=1)).connect()


# -- camera path with a fake OpenCV capture ---------------------------------------------------------------


class _FakeCapture:
    """Stands in for cv2.VideoCapture on a V4L2 node: MJPG buffers when CONVERT_RGB is 0."""

    formats = ("MJPG",)
    payload: bytes | None = None

    def __init__(self, path, api):
        assert api == cv2.CAP_V4L2
        self.props = {cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter_fourcc(*"YUYV")), cv2.CAP_PROP_CONVERT_RGB: 1.0,
                      cv2.CAP_PROP_FRAME_WIDTH: 1640.0, cv2.CAP_PROP_FRAME_HEIGHT: 1232.0}
        self.grabs = 0

    def isOpened(self):
        return True

    def set(self, prop, value):
        if prop == cv2.CAP_PROP_FOURCC:
            name = "".join(chr((int(value) >> 8 * i) & 0xFF) for i in range(4))
            if name not in self.formats:
                return False
        if prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            return True  # the Mini has one mode: ignored (issue #36)
        self.props[prop] = float(value)
        return True

    def get(self, prop):
        if prop == cv2.CAP_PROP_POS_MSEC:
            return time.monotonic_ns() / 1e6 - 3.0  # buffer timestamp, 3 ms ago
        return self.props.get(prop, -1.0)

    def grab(self):
        self.grabs += 1
        return True

    def retrieve(self):
        buf = np.frombuffer(self.payload, np.uint8)
        if self.props[cv2.CAP_PROP_CONVERT_RGB]:
            return True, cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return True, buf.reshape(1, -1)

    def release(self):
        pass


class _Cv2:
    def __init__(self, capture_class):
        self.VideoCapture = capture_class

    def __getattr__(self, name):
        return getattr(cv2, name)


@pytest.fixture
def fake_camera(tmp_path, monkeypatch):
    field = ContactField(translation_px=(1.0, -1.5), indent=0.5)
    raw = render_gel(field, raw_size=(1640, 1232), seed=1)
    ok, jpg = cv2.imencode(".jpg", raw[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok

    class Cap(_FakeCapture):
        payload = jpg.tobytes()

    monkeypatch.setattr(capture, "load_cv2", lambda: _Cv2(Cap))
    dev = tmp_path / "video2"
    dev.touch()
    return dev, field, Cap


@pytest.mark.parametrize("reduce", [1, 4])
def test_camera_decodes_mjpg_and_crops(fake_camera, reduce):
    dev, field, _ = fake_camera
    cam = capture.UvcCamera(str(dev), decode_reduce=reduce, flush_frames=2)
    out = np.zeros((240, 320, 3), np.uint8)
    cam.open()
    try:
        t = cam.read(out)
        assert t is not None and 0 < time.monotonic_ns() - t < 100_000_000
        assert cam._raw == (reduce > 1)
    finally:
        cam.close()
    expected = render_gel(field, seed=1, noise=0.0)
    assert np.abs(out.astype(int) - expected).mean() < 4.0  # same scene after decode + crop + resize


def test_driver_on_fake_camera(fake_camera):
    dev, field, cap = fake_camera
    with GelSightMiniDriver(GelSightMiniConfig(device=str(dev), reference_frames=1, flush_frames=3)) as drv:
        s = drv.get_sample(5.0)
        assert s.source == f"gelsight_mini:camera {dev}"
        assert np.abs(s.displacement_px).max() < 0.05  # same frame as the reference


def test_camera_wrong_format(fake_camera):
    dev, _, cap = fake_camera
    cap.formats = ("YUYV",)
    with pytest.raises(DeviceError, match="streams YUYV, expected MJPG"):
        capture.UvcCamera(str(dev)).open()


def test_camera_undecodable_frames(fake_camera):
    dev, _, cap = fake_camera
    cap.payload = b"\x00" * 1000
    with pytest.raises(DeviceError, match="could not be decoded"):
        capture.UvcCamera(str(dev), flush_frames=0).open()


# -- discovery and its errors -------------------------------------------------------------------------------


def _fake_sysfs(tmp_path: Path, nodes: dict[str, tuple[str, int]]) -> tuple[Path, Path, Path]:
    sys_root, dev_root, by_id = tmp_path / "sys", tmp_path / "dev", tmp_path / "by-id"
    for p in (sys_root, dev_root, by_id):
        p.mkdir()
    for node, (name, index) in nodes.items():
        (sys_root / node).mkdir()
        (sys_root / node / "name").write_text(name + "\n")
        (sys_root / node / "index").write_text(f"{index}\n")
        (dev_root / node).touch()
    return sys_root, dev_root, by_id


def test_find_by_name_prefers_the_capture_node(tmp_path):
    roots = _fake_sysfs(tmp_path, {"video0": ("Integrated Camera", 0), "video3": ("GelSight Mini R0B 2BNN-4ZE7", 1),
                                   "video2": ("GelSight Mini R0B 2BNN-4ZE7", 0)})
    assert capture.find_device_by_name("GelSight Mini", *roots) == str(roots[1] / "video2")
    assert capture.resolve_device("0", "x", *roots) == str(roots[1] / "video0")


def test_find_by_name_falls_back_to_by_id(tmp_path):
    sys_root, dev_root, by_id = _fake_sysfs(tmp_path, {})
    (dev_root / "video4").touch()
    (by_id / "usb-Arducam_Technology_Co._Ltd._GelSight_Mini_R0B_2BNN-4ZE7-video-index1").symlink_to(dev_root / "video5")
    (by_id / "usb-Arducam_Technology_Co._Ltd._GelSight_Mini_R0B_2BNN-4ZE7-video-index0").symlink_to(dev_root / "video4")
    assert capture.find_device_by_name("GelSight Mini", sys_root, dev_root, by_id) == str(dev_root / "video4")


def test_device_not_found_lists_devices(tmp_path):
    roots = _fake_sysfs(tmp_path, {"video0": ("Integrated Camera", 0), "video1": ("Integrated Camera", 1)})
    with pytest.raises(DeviceError) as exc:
        capture.find_device_by_name("GelSight Mini", *roots)
    msg = str(exc.value)
    assert "GelSight Mini" in msg and f"{roots[1] / 'video0'} (Integrated Camera)" in msg and "video1" in msg
    with pytest.raises(DeviceError, match="video7 does not exist; devices: .*video0 \\(Integrated Camera\\)"):
        capture.resolve_device(str(roots[1] / "video7"), "GelSight Mini", *roots)


def test_no_video_devices_at_all(tmp_path):
    roots = _fake_sysfs(tmp_path, {})
    with pytest.raises(DeviceError, match="no /dev/video\\* at all"):
        capture.find_device_by_name("GelSight Mini", *roots)


def test_missing_device_path_from_the_driver():
    with pytest.raises(DeviceError, match="does not exist; devices: "):
        GelSightMiniDriver(GelSightMiniConfig(device="/dev/video_gelsight_test_missing")).connect()


def test_permission_denied(tmp_path, monkeypatch):
    dev = tmp_path / "video2"
    dev.touch()
    monkeypatch.setattr(devices.os, "access", lambda path, mode: False)
    with pytest.raises(DeviceError, match="permission denied.*usermod -aG"):
        capture.check_access(str(dev))
    assert os.path.exists(dev)


# -- config -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [{"device": "/dev/video2", "video": "a.avi"}, {"border_fraction": 0.6},
                                 {"decode_reduce": 3}, {"reference_frames": 0}, {"width": 8}, {"side": "middle"}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        GelSightMiniConfig(**bad)


def test_config_from_options():
    cfg = GelSightMiniConfig.from_options({"device": "/dev/video2", "border-fraction": "0.1", "include_image": "yes",
                                           "k_shear_n_per_mm": "3.5", "side": "left"})
    assert cfg.border_fraction == 0.1 and cfg.include_image and cfg.side == "left"
    assert cfg.force_constants().k_shear_n_per_mm == 3.5 and cfg.tactile_params().mm_per_px == 0.0634
    assert GelSightMiniDriver(cfg).sample_spec.kinds == ("tactile",)
