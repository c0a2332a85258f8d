"""The hand tracker (MediaPipe's pipeline on LiteRT) on the real hand video: a right hand found on
nearly every frame, called right, with human bone lengths, one detection then tracking; two hands
(the video and its mirror image) that cross keep their sides; frames without a hand give none;
bad frames and options are refused. Prints the tracking rate on one thread, with and without
tracking."""

from __future__ import annotations

import time

import numpy as np
import pytest
from support.hands import HAND_VIDEO, require_hand_models

from retarget.human_hand import KEYPOINT_PARENT
from teleop.errors import ConfigError, DeviceError

VIDEO = HAND_VIDEO
STEP = 3  # every third frame of the 30 fps video: a 10 fps video, three times the motion between frames

# docs/hand-keypoints.md, the reference hand (0.185 m), per bone (ending at keypoint b + 1) [mm]:
# wrist -> CMC/MCP from the palm template, then the phalanges
_REFERENCE_BONE_MM = np.array([
    np.linalg.norm([24.0, 22.0, 6.0]), 46.22, 31.57, 27.34,
    np.linalg.norm([89.0, 26.0, 3.0]), 39.78, 22.38, 19.66,
    92.69, 44.63, 26.33, 21.35,
    np.linalg.norm([86.5, -22.5, 3.0]), 41.37, 25.65, 21.25,
    np.linalg.norm([78.0, -46.0, 6.0]), 32.57, 18.11, 19.69,
])


@pytest.fixture(scope="module", autouse=True)
def _models():
    require_hand_models()


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    import av

    if not VIDEO.is_file():
        pytest.skip(f"the test video {VIDEO} is not there")
    out = []
    with av.open(str(VIDEO)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i % STEP == 0:
                out.append(frame.to_ndarray(format="rgb24"))
    assert out[0].shape == (720, 1280, 3)
    return out


@pytest.fixture(scope="module")
def video_run(frames):
    """The tracker as the driver runs it (up to 2 hands, tracking) over the video."""
    from drivers.camera_hands.tracker import HandTracker

    tracker = HandTracker(max_hands=2, threads=2)
    hands = [tracker.process(rgb, i * STEP / 30.0) for i, rgb in enumerate(frames)]
    return tracker, hands


def test_the_real_right_hand_is_found_on_nearly_every_frame_and_called_right(video_run, frames):
    tracker, hands = video_run
    found = [h for h in hands if h]
    assert len(found) >= 0.95 * len(frames), f"{len(found)} of {len(frames)} frames"
    assert max(len(h) for h in hands) == 1  # one hand, never reported twice
    sides = [h[0].side for h in found]
    assert sides.count("right") >= 0.98 * len(found), {s: sides.count(s) for s in set(sides)}
    assert np.median([h[0].handedness for h in found]) > 0.9  # P(right) of an un-mirrored right hand
    for hand in (h[0] for h in found):
        assert hand.image_px.shape == (21, 2) and hand.world_m.shape == (21, 3) and hand.confidence.shape == (21,)
        assert hand.image_px.dtype == np.float64 and hand.world_m.dtype == np.float64
        assert 0.5 <= hand.presence <= 1.0 and np.all(hand.confidence == hand.presence)
        # the hand is in the picture, upright: fingertips above the wrist, the ROI around it
        assert np.all((hand.image_px >= 0) & (hand.image_px < [1280, 720]))
        assert hand.image_px[12, 1] < hand.image_px[0, 1]
        cx, cy, w, h, rot = hand.roi
        assert w == h and 100 < w < 1000 and abs(rot) < 1.0
    # one palm detection, then tracking (detection only while fewer than 2 hands are tracked)
    stats = tracker.stats
    assert stats["frames"] == len(frames) and stats["frames_tracked"] >= len(frames) - 3
    assert stats["landmark_runs"] <= len(frames) + 3
    assert len({h[0].track_id for h in found}) <= 2


def test_world_landmarks_have_human_bone_lengths(video_run):
    _, hands = video_run
    world = np.stack([h[0].world_m for h in hands if h])
    assert np.all(np.isfinite(world))
    bones = np.linalg.norm(world[:, 1:] - world[:, KEYPOINT_PARENT[1:]], axis=-1) * 1e3  # (T, 20) mm
    ratio = bones / _REFERENCE_BONE_MM
    # adult hands span about 0.85..1.2 of the reference; joint centres are not radiographic bone ends
    median = np.median(ratio, axis=0)
    assert np.all((median > 0.6) & (median < 1.6)), median.round(2)
    assert np.mean(np.all((ratio > 0.3) & (ratio < 2.5), axis=1)) >= 0.98  # no broken skeletons
    length = np.linalg.norm(world[:, 9] - world[:, 0], axis=-1) + bones[:, 9:12].sum(axis=1) / 1e3
    assert 0.15 < np.median(length) < 0.23, np.median(length)  # wrist -> middle fingertip [m]


def test_two_crossing_hands_keep_their_sides(frames):
    """The video's right hand and its mirror image (a left hand) slide past each other."""
    from drivers.camera_hands.tracker import HandTracker

    tracker = HandTracker(max_hands=2, threads=2)
    crop = slice(540, 980)  # the hand and its forearm
    width = crop.stop - crop.start
    centre = 215  # the hand's centre in the crop [px]
    seq = frames[::4][:50]
    checked = both = 0
    for t, rgb in enumerate(seq):
        right = rgb[:, crop]
        canvas = np.full((720, 1280, 3), 128, np.uint8)
        rx = round(t / (len(seq) - 1) * (1280 - width))
        lx = 1280 - width - rx
        canvas[:, lx:lx + width] = right[:, ::-1]
        canvas[:, rx:rx + width] = right  # in front while they overlap
        want = {"right": rx + centre, "left": lx + width - centre}
        hands = tracker.process(canvas, t / 10.0)
        assert len({h.side for h in hands}) == len(hands)  # never two of one side
        both += len(hands) == 2
        if abs(want["right"] - want["left"]) < 250:
            continue  # overlapping: whichever is visible
        for hand in hands:
            x = hand.image_px[:, 0].mean()
            assert abs(x - want[hand.side]) < abs(x - want[_other(hand.side)]), (t, hand.side, x, want)
            checked += 1
    assert both >= 0.6 * len(seq) and checked >= 50


def _other(side: str) -> str:
    return "left" if side == "right" else "right"


def test_frames_without_a_hand_give_none(video_run, frames):
    from drivers.camera_hands.tracker import HandTracker

    rng = np.random.default_rng(0)
    blank = np.full((720, 1280, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    fresh = HandTracker(max_hands=2)
    assert fresh.process(blank, 0.0) == [] and fresh.process(noise, 0.1) == []
    assert fresh.stats["detections_run"] == 2 and fresh.stats["landmark_runs"] == 0
    tracking = HandTracker(max_hands=1)
    assert len(tracking.process(frames[0], 0.0)) == 1
    assert tracking.process(blank, 0.1) == []  # the tracked region now holds no hand: dropped
    assert tracking.process(noise, 0.2) == []
    tracking.reset()
    assert len(tracking.process(frames[0], 0.3)) == 1


def test_tracking_rate_on_one_thread_with_and_without_tracking(frames):
    from drivers.camera_hands.tracker import HandTracker

    seq = frames[:30]
    rates = {}
    for name, kwargs in (("tracking", {"max_hands": 1}), ("detection every frame", {"track": False}),
                         ("max_hands=2, one hand seen", {"max_hands": 2})):
        tracker = HandTracker(threads=1, **kwargs)
        tracker.process(seq[0], 0.0)  # warm-up: the first invoke is slower
        t0 = time.perf_counter()
        for i, rgb in enumerate(seq[1:], 1):
            assert len(tracker.process(rgb, i * STEP / 30.0)) == 1
        rates[name] = (len(seq) - 1) / (time.perf_counter() - t0)
        if name == "tracking":
            assert tracker.stats["detections_run"] == 1
        elif name == "detection every frame":
            assert tracker.stats["detections_run"] == len(seq) and tracker.stats["frames_tracked"] == 0
    print("hand tracker, 1280x720, 1 thread: " + ", ".join(f"{k} {v:.0f} frames/s" for k, v in rates.items()))
    assert all(v > 3.0 for v in rates.values()), rates  # a very loose floor: speed is measured, not promised


def test_bad_frames_and_options_are_refused():
    from drivers.camera_hands.tracker import HandTracker, ssd_anchors

    anchors = ssd_anchors()
    assert anchors.shape == (2016, 2) and np.allclose(anchors[0], 0.5 / 24) and np.allclose(anchors[1152], 0.5 / 12)
    for kwargs in ({"max_hands": 0}, {"max_hands": 2.0}, {"threads": 0}, {"min_detection": 1.5},
                   {"min_presence": float("nan")}, {"detect_every": 0}):
        with pytest.raises(ConfigError, match=next(iter(kwargs))):
            HandTracker(**kwargs)
    tracker = HandTracker(max_hands=1)
    for bad in (np.zeros((720, 1280, 3), np.float32), np.zeros((720, 1280), np.uint8),
                np.zeros((720, 1280, 4), np.uint8), np.zeros((8, 8, 3), np.uint8), "frame"):
        with pytest.raises(DeviceError, match="frame"):
            tracker.process(bad, 0.0)
    with pytest.raises(DeviceError, match="finite"):
        tracker.process(np.zeros((64, 64, 3), np.uint8), float("nan"))
