"""MediaPipe's hand pipeline on LiteRT: palm detection -> hand region -> 21 landmarks, and the
region for the next frame from those landmarks (tracking), as MediaPipe's ``Hands`` graph does it.

Faithful to mediapipe 0.10.x (``hand_landmark_tracking_cpu`` and its subgraphs), with the same
numbers:

* palm detection (``palm_detection_full``): the whole frame letterboxed into 192x192 (zero border,
  RGB in [0, 1]); 2016 SSD anchors (4 layers, strides 8, 16, 16, 16, offset 0.5, fixed size);
  boxes and 7 keypoints decoded against them (x, y, w, h / 192), score = sigmoid(logit clipped to
  +-100) >= ``min_detection``; weighted non-max suppression (IoU > 0.3 merged, weighted by score);
  the ``max_hands`` best kept;
* detection -> region: the box, rotated so that keypoint 0 (wrist centre) -> keypoint 2 (middle
  finger MCP) points up, shifted by -0.5 of its height along that axis, squared on its long side
  and scaled by 2.6;
* landmarks (``hand_landmark_full``): the rotated region warped into 224x224 (bilinear, border
  replicated, [0, 1]); 21 image landmarks back into the frame, 21 world landmarks [m] turned by the
  region's rotation (camera axes: x right, y down, z away); hand presence (a probability) must
  reach ``min_presence``;
* landmarks -> region for the next frame: wrist, thumb CMC..IP and the MCP and PIP of the four
  fingers; rotation from the wrist to the mean of (mean of index and ring MCP, middle MCP); their
  bounding box in the rotated frame, shifted by -0.1 of its height, squared, scaled by 2.0.

Palm detection runs only while fewer hands are tracked than ``max_hands`` (with ``track=False``:
on every frame, the regions always from the detector); once one hand is tracked, at most every
``detect_every`` frames (1, MediaPipe's choice: every frame; more saves the detector's time while
a second hand is awaited). A detection that
overlaps a tracked hand (IoU > 0.5, MediaPipe's association, or its palm centre inside the tracked
hand's landmarks) is that hand, not a new one; two results that land on the same hand are one.

Handedness: the landmark model's raw output is MediaPipe's score for its label "Left", and
MediaPipe labels assume a mirrored (selfie) image. On an unmirrored camera frame the raw value is
therefore P(the person's RIGHT hand); ``TrackedHand.handedness`` is that, and ``side`` is the
person's hand (give un-mirrored frames: the driver flips a mirrored camera first). A hand keeps its
side while it is tracked (and for a short while after it is lost): the side follows a smoothed
handedness with hysteresis, and two hands never hold the same side, so crossing hands do not swap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from teleop.errors import ConfigError, DeviceError
from teleop.types import Side

__all__ = ["TrackedHand", "HandTracker", "ssd_anchors", "PALM_INPUT", "LANDMARK_INPUT"]

PALM_INPUT = 192
LANDMARK_INPUT = 224

# palm_detection_cpu: SsdAnchorsCalculator / TensorsToDetectionsCalculator / NonMaxSuppression
_ANCHOR_STRIDES = (8, 16, 16, 16)
_ANCHOR_OFFSET = 0.5
_N_ANCHORS = 2016
_SCORE_CLIP = 100.0
_NMS_IOU = 0.3
# palm_detection_detection_to_roi: keypoint 0 (wrist) -> 2 (middle MCP) up; RectTransformation
_DET_SCALE = 2.6
_DET_SHIFT_Y = -0.5
# hand_landmark_landmarks_to_roi: HandLandmarksToRectCalculator's partial landmarks; RectTransformation
_PARTIAL = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])
_TRACK_SCALE = 2.0
_TRACK_SHIFT_Y = -0.1
_ASSOCIATION_IOU = 0.5  # AssociationNormRectCalculator's min_similarity_threshold

# side bookkeeping (ours, not MediaPipe's)
_HANDEDNESS_EMA = 0.2  # weight of the newest frame in a track's smoothed P(right)
_SIDE_FLIP_MARGIN = 0.3  # a track changes side only once its smoothed P(right) is past 0.5 -+ this
_FORGET_S = 0.5  # a lost hand's side is remembered this long, for the same hand found again
_REMEMBER_IOU = 0.2  # a new hand is a remembered one when their regions overlap this much
_MIN_ROI_PX = 8.0  # a region smaller than this is no hand


@dataclass
class TrackedHand:
    """One hand in one frame. Keypoints in MediaPipe order (docs/hand-keypoints.md)."""

    side: Side  # the person's hand
    presence: float  # the landmark model's hand score, 0..1
    handedness: float  # P(right hand), this frame's
    image_px: np.ndarray  # (21, 2) float64, pixels of the input frame
    world_m: np.ndarray  # (21, 3) float64, metres, hand-centred, camera axes (x right, y down, z away)
    confidence: np.ndarray  # (21,) float64: the presence for every keypoint (the model scores the hand)
    roi: tuple[float, float, float, float, float]  # (cx, cy, w, h, rotation_rad) [px] the landmarks came from
    track_id: int = 0  # the same number while the same hand is tracked
    from_detection: bool = False  # the region came from palm detection this frame (not from tracking)


def ssd_anchors(input_size: int = PALM_INPUT, strides: tuple[int, ...] = _ANCHOR_STRIDES,
                offset: float = _ANCHOR_OFFSET) -> np.ndarray:
    """Anchor centres (N, 2) (x, y) in [0, 1], in SsdAnchorsCalculator's order: per run of equal
    strides, row by row, 2 anchors per layer of that stride (aspect ratio 1 and the interpolated
    scale); fixed anchor size, so only the centres matter."""
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        n = math.ceil(input_size / strides[i])
        grid = (np.arange(n, dtype=np.float64) + offset) / n
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        centres = np.stack([xx.ravel(), yy.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(out)


def _normalize_radians(a: float) -> float:
    return a - 2.0 * math.pi * math.floor((a + math.pi) / (2.0 * math.pi))


def _rotation_up(x0: float, y0: float, x1: float, y1: float) -> float:
    """The rotation that makes (x0, y0) -> (x1, y1) point up in the image (MediaPipe's 90 degrees target)."""
    return _normalize_radians(0.5 * math.pi - math.atan2(-(y1 - y0), x1 - x0))


def _transform_rect(cx: float, cy: float, w: float, h: float, rot: float, scale: float,
                    shift_y: float) -> np.ndarray:
    """RectTransformationCalculator in pixels: shift along the rotated y axis, square on the long side, scale."""
    cx -= h * shift_y * math.sin(rot)
    cy += h * shift_y * math.cos(rot)
    side = max(w, h) * scale
    return np.array([cx, cy, side, side, rot])


def _warp_matrix(roi: np.ndarray, out: int) -> np.ndarray:
    """The 2x3 affine from the frame to an ``out`` x ``out`` tensor of the rotated region ``roi``,
    as ImageToTensorCalculator's OpenCV converter maps the region's corners onto the tensor's."""
    cx, cy, w, h, rot = roi
    c, s = math.cos(rot), math.sin(rot)
    a = np.array([[c, s], [-s, c]]) * np.array([[out / w], [out / h]])  # diag(out/w, out/h) @ R(-rot)
    return np.hstack([a, (0.5 * out - a @ np.array([cx, cy]))[:, None]])


def _iou_axis_aligned(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two regions' unrotated boxes (centre, size), as MediaPipe's association compares them."""
    ix = min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2)
    iy = min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2)
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@dataclass
class _Detection:
    score: float
    box: np.ndarray  # (4,) xmin, ymin, w, h [px]
    keypoints: np.ndarray  # (7, 2) [px]


@dataclass
class _Track:
    track_id: int
    side: Side
    p_right: float  # smoothed handedness
    roi: np.ndarray | None  # for the next frame (None once lost)
    last_roi: np.ndarray  # the last region it was seen in
    last_t: float
    image_px: np.ndarray = field(default_factory=lambda: np.zeros((21, 2)))


class _Model:
    """One LiteRT interpreter with its input buffer preallocated."""

    def __init__(self, name: str, threads: int, outputs: tuple[tuple[int, ...], ...]) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from drivers.camera_hands.models import model_path

        path = model_path(name)
        try:
            self.interp = Interpreter(model_path=str(path), num_threads=threads)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise DeviceError(f"hand model {name} ({path}) does not load in LiteRT: {exc}; "
                              "run `teleop models fetch` to replace it") from exc
        inp = self.interp.get_input_details()[0]
        self.input_index = inp["index"]
        self.size = int(inp["shape"][1])
        self.input = np.zeros(tuple(inp["shape"]), np.float32)
        self.pixels = np.zeros((self.size, self.size, 3), np.uint8)  # the warp's output
        # MediaPipe takes the outputs in the model's order: Identity, Identity_1, ...
        self.outputs = sorted(self.interp.get_output_details(), key=lambda d: (len(d["name"]), d["name"]))
        shapes = tuple(tuple(int(v) for v in d["shape"]) for d in self.outputs)
        if tuple(inp["shape"]) != (1, self.size, self.size, 3) or shapes != outputs:
            raise DeviceError(f"hand model {name} ({path}) has inputs {tuple(inp['shape'])} and outputs {shapes}, "
                              f"not those of MediaPipe's {name} ({outputs}); run `teleop models fetch`")

    def run(self) -> list[np.ndarray]:
        np.multiply(self.pixels, np.float32(1.0 / 255.0), out=self.input[0], casting="unsafe")
        self.interp.set_tensor(self.input_index, self.input)
        self.interp.invoke()
        return [self.interp.get_tensor(d["index"]) for d in self.outputs]


class HandTracker:
    """Frames (RGB uint8, un-mirrored) -> the hands in them, tracked from frame to frame."""

    def __init__(self, max_hands: int = 2, track: bool = True, min_detection: float = 0.5, min_presence: float = 0.5,
                 threads: int = 1, detect_every: int = 1) -> None:
        for name, value, low, high in (("max_hands", max_hands, 1, 4), ("threads", threads, 1, 64),
                                       ("detect_every", detect_every, 1, 1000)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"HandTracker {name}={value!r}: give a whole number in {low}..{high}")
        for name, value in (("min_detection", min_detection), ("min_presence", min_presence)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"HandTracker {name}={value!r}: give a score in 0..1")
        self.max_hands = max_hands
        self.track = bool(track)
        self.min_detection = float(min_detection)
        self.min_presence = float(min_presence)
        self.detect_every = detect_every
        self._palm = _Model("palm_detection_full", threads, ((1, _N_ANCHORS, 18), (1, _N_ANCHORS, 1)))
        self._landmark = _Model("hand_landmark_full", threads, ((1, 63), (1, 1), (1, 1), (1, 63)))
        self._anchors = ssd_anchors(self._palm.size)  # (2016, 2), once
        self._min_logit = self._logit(self.min_detection)
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._since_detection = 0
        self._t_last = -math.inf
        self._stats = {"frames": 0, "detections_run": 0, "frames_tracked": 0, "landmark_runs": 0, "hands": 0}

    @staticmethod
    def _logit(p: float) -> float:
        if p <= 0.0:
            return -math.inf
        if p >= 1.0:
            return math.inf
        return math.log(p / (1.0 - p))

    @property
    def stats(self) -> dict:
        """Counters since construction: frames, palm detections run, frames that tracked at least one
        hand from the previous frame, landmark model runs, hands reported."""
        return dict(self._stats)

    def reset(self) -> None:
        """Forget every hand: the next frame starts with palm detection, sides afresh."""
        self._tracks.clear()
        self._since_detection = 0
        self._t_last = -math.inf

    # -- the pipeline ----------------------------------------------------------------------------

    def process(self, rgb: np.ndarray, t_s: float) -> list[TrackedHand]:
        """The hands in ``rgb`` (H, W, 3) uint8 RGB, taken at ``t_s`` [s] (any monotonic clock)."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            what = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise DeviceError(f"hand tracker: a frame must be an RGB uint8 array (H, W, 3); got {what}")
        if rgb.shape[0] < 16 or rgb.shape[1] < 16:
            raise DeviceError(f"hand tracker: a {rgb.shape[1]}x{rgb.shape[0]} frame is too small (16x16 at least)")
        t_s = float(t_s)
        if not math.isfinite(t_s):
            raise DeviceError(f"hand tracker: frame time {t_s!r} is not a finite number of seconds")
        if t_s < self._t_last:  # a clock that went back (a looped video): what was tracked is stale
            self.reset()
        self._t_last = t_s
        self._stats["frames"] += 1
        for tr in self._tracks:
            if tr.last_t < t_s - _FORGET_S:
                tr.roi = None
        self._tracks = [tr for tr in self._tracks if tr.last_t >= t_s - _FORGET_S]

        # regions: tracked hands first (MediaPipe's association lets them win), then new detections
        tracked = [tr for tr in self._tracks if tr.roi is not None] if self.track else []
        regions: list[tuple[np.ndarray, _Track | None]] = [(tr.roi, tr) for tr in tracked]
        if tracked:
            self._stats["frames_tracked"] += 1
        need = self.max_hands - len(tracked)
        self._since_detection += 1
        if need > 0 and (not tracked or self._since_detection >= self.detect_every):
            self._since_detection = 0
            for det in self._detect(rgb):
                if need == 0:
                    break
                roi = self._detection_roi(det)
                if any(self._same_hand(roi, det, tr) for tr in tracked):
                    continue
                regions.append((roi, None))
                need -= 1

        results = []
        for roi, tr in regions:
            got = self._landmarks(rgb, roi)
            if got is not None:
                results.append((got, tr, roi))
        for tr in tracked:
            tr.roi = None  # set again below when the hand is still there
        return self._update(self._dedupe(results), t_s)

    def _same_hand(self, roi: np.ndarray, det: _Detection, tr: _Track) -> bool:
        if _iou_axis_aligned(roi, tr.roi) > _ASSOCIATION_IOU:
            return True
        # MediaPipe keeps a detection whose (bigger) region overlaps a tracked one less than that: the
        # same hand twice. Its palm centre inside the tracked hand's landmarks says it is that hand.
        palm = det.box[:2] + det.box[2:] / 2
        lo, hi = tr.image_px.min(axis=0), tr.image_px.max(axis=0)
        return bool(np.all(palm >= lo) and np.all(palm <= hi))

    def _detect(self, rgb: np.ndarray) -> list[_Detection]:
        """Palm detections in frame pixels, best first (at most ``max_hands``)."""
        import cv2

        h, w = rgb.shape[:2]
        side = float(max(w, h))  # letterbox: the frame centred in a square, zero border
        letterbox = np.array([w / 2, h / 2, side, side, 0.0])
        n = self._palm.size
        cv2.warpAffine(rgb, _warp_matrix(letterbox, n), (n, n), dst=self._palm.pixels, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        raw_boxes, raw_scores = self._palm.run()
        self._stats["detections_run"] += 1
        logits = raw_scores[0, :, 0]
        keep = np.flatnonzero(logits >= self._min_logit)  # sigmoid is monotonic: threshold the logit
        if len(keep) == 0:
            return []
        raw = raw_boxes[0, keep].astype(np.float64) / n
        anchors = self._anchors[keep]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep].astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP)))
        centre = raw[:, 0:2] + anchors
        size = raw[:, 2:4]
        keypoints = raw[:, 4:].reshape(-1, 7, 2) + anchors[:, None, :]
        ok = (size >= 0).all(axis=1) & (scores >= self.min_detection)
        boxes = np.concatenate([centre - size / 2, size], axis=1)[ok]  # xmin, ymin, w, h in [0, 1] of the square
        scores, keypoints = scores[ok], keypoints[ok]
        out = []
        for score, box, kp in self._weighted_nms(scores, boxes, keypoints)[: self.max_hands]:
            # the letterboxed square -> frame pixels (DetectionLetterboxRemovalCalculator, times the size)
            box_px = np.array([box[0] * side - (side - w) / 2, box[1] * side - (side - h) / 2,
                               box[2] * side, box[3] * side])
            kp_px = kp * side - np.array([(side - w) / 2, (side - h) / 2])
            out.append(_Detection(float(score), box_px, kp_px))
        return out

    @staticmethod
    def _weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray) -> list:
        """NonMaxSuppressionCalculator, WEIGHTED: the best box and every box overlapping it (IoU > 0.3)
        become one, their coordinates averaged by score; the best box's score is kept."""
        order = np.argsort(-scores, kind="stable")
        scores, boxes, keypoints = scores[order], boxes[order], keypoints[order]
        x0, y0 = boxes[:, 0], boxes[:, 1]
        x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
        area = boxes[:, 2] * boxes[:, 3]
        remaining = np.arange(len(scores))
        out = []
        while len(remaining):
            top = remaining[0]
            iw = np.minimum(x1[remaining], x1[top]) - np.maximum(x0[remaining], x0[top])
            ih = np.minimum(y1[remaining], y1[top]) - np.maximum(y0[remaining], y0[top])
            inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
            union = area[remaining] + area[top] - inter
            iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            merged = iou > _NMS_IOU
            merged[0] = True  # the best box itself, even when degenerate
            group = remaining[merged]
            wgt = scores[group] / scores[group].sum()
            corners = np.stack([x0[group], y0[group], x1[group], y1[group]], axis=1).T @ wgt
            box = np.array([corners[0], corners[1], corners[2] - corners[0], corners[3] - corners[1]])
            out.append((scores[top], box, np.tensordot(wgt, keypoints[group], axes=1)))
            remaining = remaining[~merged]
        return out

    @staticmethod
    def _detection_roi(det: _Detection) -> np.ndarray:
        """palm_detection_detection_to_roi: the palm box turned wrist-up, moved toward the fingers, enlarged."""
        x0, y0 = det.keypoints[0]
        x1, y1 = det.keypoints[2]
        rot = _rotation_up(x0, y0, x1, y1)
        xmin, ymin, w, h = det.box
        return _transform_rect(xmin + w / 2, ymin + h / 2, w, h, rot, _DET_SCALE, _DET_SHIFT_Y)

    def _landmarks(self, rgb: np.ndarray, roi: np.ndarray):
        """The landmark model on region ``roi``: (image_px, world_m, presence, handedness, next roi), or
        None when no hand is there."""
        import cv2

        if not (np.all(np.isfinite(roi)) and roi[2] >= _MIN_ROI_PX and roi[3] >= _MIN_ROI_PX):
            return None
        n = self._landmark.size
        cv2.warpAffine(rgb, _warp_matrix(roi, n), (n, n), dst=self._landmark.pixels, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
        lm, presence, handedness, world = self._landmark.run()
        self._stats["landmark_runs"] += 1
        presence = float(presence.reshape(-1)[0])
        if not presence >= self.min_presence:  # NaN is no hand either
            return None
        cx, cy, w, h, rot = roi
        c, s = math.cos(rot), math.sin(rot)
        turn = np.array([[c, -s], [s, c]])
        local = lm.reshape(21, 3)[:, :2].astype(np.float64) / n - 0.5  # LandmarkProjectionCalculator
        image_px = (local * np.array([w, h])) @ turn.T + np.array([cx, cy])
        world_m = world.reshape(21, 3).astype(np.float64)  # WorldLandmarkProjectionCalculator: turn x, y
        world_m[:, :2] = world_m[:, :2] @ turn.T
        if not (np.all(np.isfinite(image_px)) and np.all(np.isfinite(world_m))):
            return None
        return image_px, world_m, presence, float(handedness.reshape(-1)[0]), self._landmarks_roi(image_px)

    @staticmethod
    def _landmarks_roi(image_px: np.ndarray) -> np.ndarray:
        """hand_landmark_landmarks_to_roi: the region the hand will be in next frame."""
        p = image_px[_PARTIAL]
        x1, y1 = (0.5 * (p[4] + p[8]) + p[6]) / 2  # partial 4, 6, 8 = index, middle, ring MCP
        rot = _rotation_up(p[0, 0], p[0, 1], x1, y1)
        centre = (p.min(axis=0) + p.max(axis=0)) / 2
        c, s = math.cos(rot), math.sin(rot)
        turned = (p - centre) @ np.array([[c, -s], [s, c]])  # R(-rot) applied to each row
        lo, hi = turned.min(axis=0), turned.max(axis=0)
        mid = (lo + hi) / 2
        cx = mid[0] * c - mid[1] * s + centre[0]
        cy = mid[0] * s + mid[1] * c + centre[1]
        w, h = hi - lo
        return _transform_rect(cx, cy, w, h, rot, _TRACK_SCALE, _TRACK_SHIFT_Y)

    @staticmethod
    def _dedupe(results: list) -> list:
        """Two results on one hand (their next regions overlap > 0.5) are one: a tracked hand wins, then presence."""
        ranked = sorted(results, key=lambda r: (r[1] is None, -r[0][2]))
        kept: list = []
        for r in ranked:
            if all(_iou_axis_aligned(r[0][4], k[0][4]) <= _ASSOCIATION_IOU for k in kept):
                kept.append(r)
        return kept

    # -- identities and sides ----------------------------------------------------------------------

    def _update(self, results: list, t_s: float) -> list[TrackedHand]:
        seen: set[int] = set()
        hands: list[tuple[_Track, tuple, np.ndarray, bool]] = []
        for got, tr, roi in results:
            detected = tr is None
            if detected:
                tr = self._remembered(roi, seen)
            if tr is None:
                tr = _Track(self._next_id, "right" if got[3] >= 0.5 else "left", got[3], None, roi, t_s)
                self._next_id += 1
                self._tracks.append(tr)
            else:
                tr.p_right += _HANDEDNESS_EMA * (got[3] - tr.p_right)
            seen.add(tr.track_id)
            tr.roi = got[4] if self.track else None
            tr.last_roi, tr.last_t, tr.image_px = roi, t_s, got[0]
            hands.append((tr, got, roi, detected))
        self._assign_sides([h[0] for h in hands])
        out = []
        hands.sort(key=lambda h: h[0].track_id)
        for tr, (image_px, world_m, presence, handedness, _), roi, detected in hands:
            out.append(TrackedHand(tr.side, presence, handedness, image_px, world_m, np.full(21, presence),
                                   tuple(float(v) for v in roi), tr.track_id, detected))
        self._stats["hands"] += len(out)
        return out

    def _remembered(self, roi: np.ndarray, seen: set[int]) -> _Track | None:
        """A hand lost a moment ago (or, without tracking, last frame's) where this new one is."""
        best, best_iou = None, _REMEMBER_IOU
        for tr in self._tracks:
            if tr.track_id in seen or tr.roi is not None:
                continue
            iou = _iou_axis_aligned(roi, tr.last_roi)
            if iou > best_iou:
                best, best_iou = tr, iou
        return best

    @staticmethod
    def _assign_sides(tracks: list[_Track]) -> None:
        """Hysteresis per hand; two hands in a frame never share a side (the more certain one keeps it)."""
        for tr in tracks:
            if tr.side == "right" and tr.p_right < 0.5 - _SIDE_FLIP_MARGIN:
                tr.side = "left"
            elif tr.side == "left" and tr.p_right > 0.5 + _SIDE_FLIP_MARGIN:
                tr.side = "right"
        if len(tracks) == 2 and tracks[0].side == tracks[1].side:
            a, b = tracks
            right, left = (a, b) if a.p_right >= b.p_right else (b, a)
            right.side, left.side = "right", "left"
