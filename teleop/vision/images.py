"""The pictures a calibration reads: a folder of images, a glob pattern, or a video (every Nth
frame), as 8-bit grey frames, one at a time (a long video is never held in memory)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from teleop.errors import ConfigError
from teleop.vision.devices import load_cv2

__all__ = ["Frame", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "is_video", "image_paths", "read_frames"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


class Frame(NamedTuple):
    """One picture: its ``name`` (the file name, or ``VIDEO#N`` for frame N of a video) and the
    8-bit grey image (H, W), or None when the file cannot be decoded."""

    name: str
    gray: npt.NDArray[np.uint8] | None


def is_video(images: str) -> bool:
    p = Path(images).expanduser()
    return p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES


def image_paths(images: str) -> list[Path]:
    """The image files of a folder (sorted by name) or of a glob pattern; ConfigError if none, or
    if two share a file name (the name is what a poses file and a report call them)."""
    p = Path(images).expanduser()
    if p.is_dir():
        paths = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ConfigError(f"--images {images}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return paths
    if p.is_file():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return [p]
        raise ConfigError(f"--images {images}: neither an image nor a video file (by its name); give a folder of "
                          "images, a glob such as 'shots/*.png', or a video (.mp4, .avi, .mov, ...)")
    if not glob.has_magic(images):
        raise ConfigError(f"--images {images}: no such folder or file")
    paths = sorted(Path(q) for q in glob.glob(str(p)) if Path(q).is_file() and Path(q).suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConfigError(f"--images {images}: the pattern matches no image files")
    seen: dict[str, Path] = {}
    for q in paths:
        if q.name in seen:
            raise ConfigError(f"--images {images}: two images are named {q.name} ({seen[q.name]} and {q}); "
                              "rename one, or give one folder")
        seen[q.name] = q
    return paths


def read_frames(images: str, every: int = 1) -> Iterator[Frame]:
    """Frames of a folder, a glob or a video (``every``-th frame of a video: 1 is all of them).
    ConfigError up front for a source that holds nothing or a video OpenCV cannot read."""
    if not (isinstance(every, int) and every >= 1):
        raise ConfigError(f"--every must be a whole number >= 1, got {every!r}")
    cv2 = load_cv2()
    if is_video(images):
        cap = cv2.VideoCapture(str(Path(images).expanduser()))
        ok, bgr = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            cap.release()
            raise ConfigError(f"--images {images}: OpenCV cannot read this video (corrupt, or a codec it lacks); "
                              "convert it (`ffmpeg -i IN -c:v libx264 OUT.mp4`) or extract images")
        return _video_frames(cap, bgr, Path(images).name, every)
    if every != 1:
        raise ConfigError(f"--every picks frames of a video; {images} is not one (give the pictures to use)")
    return _image_frames(image_paths(images))


def _image_frames(paths: list[Path]) -> Iterator[Frame]:
    cv2 = load_cv2()
    for p in paths:
        yield Frame(p.name, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))


def _video_frames(cap, first, name: str, every: int) -> Iterator[Frame]:
    cv2 = load_cv2()
    try:
        index, bgr = 0, first
        while bgr is not None:
            if index % every == 0:
                yield Frame(f"{name}#{index}", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr)
            ok, bgr = cap.read()
            bgr = bgr if ok else None
            index += 1
    finally:
        cap.release()
