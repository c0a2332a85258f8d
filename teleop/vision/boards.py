"""Calibration boards: what is printed, and finding it in a picture.

A board is named by a spec string:

- ``checker:COLSxROWS:SQUARE_M``: a checkerboard with COLS x ROWS *inner* corners (the points where
  four squares meet; a board of 10 x 7 squares has 9 x 6), squares SQUARE_M metres wide.
- ``charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT]``: a ChArUco board of COLS x ROWS *squares* with
  ArUco markers MARKER_M metres wide in the white squares, from the dictionary DICT (default
  ``4x4_50``). Each corner is identified by the markers around it, so part of the board is enough
  and its orientation is never in doubt.

The board frame (the pose ``cv2.solvePnP`` gives): origin at the top-left corner of the squares as
printed (the image from ``generate_image``, seen from the front), x to the right along the top
edge, y down the left edge, z into the board (x cross y) [m]. A checkerboard whose inner corner
counts are one odd and one even (9x6) has a known orientation (its top-left square is black and its
bottom-right one white); one with two odd or two even counts (9x7, 8x6) looks the same turned half
a turn, so it serves for intrinsics only, not for poses."""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from teleop.errors import ConfigError
from teleop.vision.devices import load_cv2

__all__ = ["Board", "CheckerBoard", "CharucoBoard", "BoardView", "NotFound", "parse_board", "aruco_dictionaries",
           "BOARD_FORMS", "DEFAULT_DICT"]

BOARD_FORMS = "checker:COLSxROWS:SQUARE_M (inner corners) or charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT] (squares)"
DEFAULT_DICT = "4x4_50"
#: Fewest ChArUco corners one picture must show to count (and they must not lie on one line).
MIN_CHARUCO_CORNERS = 6
#: Squares this small in a picture [px] give no usable corners.
MIN_SQUARE_PX = 6.0


class BoardView(NamedTuple):
    """The board found in one picture: corner ``image_points`` [px] (N, 2), the same corners'
    ``object_points`` in the board frame [m] (N, 3), and their ``ids`` (N,) (index into the board's
    corners, row by row from the top-left)."""

    image_points: npt.NDArray[np.float32]
    object_points: npt.NDArray[np.float64]
    ids: npt.NDArray[np.int32]


class NotFound(NamedTuple):
    """No usable board in a picture, and why."""

    reason: str


class Board(ABC):
    """A printed calibration target. Subclasses give the corners and the detector."""

    square_m: float

    @property
    @abstractmethod
    def spec(self) -> str:
        """The spec string this board parses from."""

    @property
    @abstractmethod
    def squares(self) -> tuple[int, int]:
        """Number of squares across and down."""

    @property
    @abstractmethod
    def orientation_known(self) -> bool:
        """Whether a detection always numbers the corners from the same physical corner (needed for poses)."""

    @abstractmethod
    def corners_m(self) -> npt.NDArray[np.float64]:
        """All corners in the board frame, row by row from the top-left [m]. Shape (N, 3)."""

    @abstractmethod
    def _pattern(self, px_per_square: int) -> npt.NDArray[np.uint8]:
        """The squares alone, ``squares * px_per_square`` pixels, 8-bit grey."""

    @abstractmethod
    def detect(self, gray: npt.NDArray[np.uint8]) -> BoardView | NotFound:
        """Find the board in an 8-bit grey picture (H, W)."""

    @property
    def size_m(self) -> tuple[float, float]:
        """Width and height of the squares [m] (the margin not counted)."""
        return (self.squares[0] * self.square_m, self.squares[1] * self.square_m)

    def generate_image(self, px_per_square: int, margin_squares: float = 1.0,
                       label: bool = True) -> npt.NDArray[np.uint8]:
        """The board to print (or to put on a simulated plane): 8-bit grey, the squares with a white
        margin of ``margin_squares`` squares all round (a checkerboard needs one to be found), the
        spec written small in the bottom margin when ``label``. Shape
        ``(rows_of_squares + 2 m) * px, (cols_of_squares + 2 m) * px``."""
        cv2 = load_cv2()
        if not (isinstance(px_per_square, int) and 4 <= px_per_square <= 2000):
            raise ConfigError(f"board image: px_per_square must be a whole number in 4..2000, got {px_per_square!r}")
        if not (math.isfinite(margin_squares) and 0 <= margin_squares <= 10):
            raise ConfigError(f"board image: margin_squares must be in 0..10, got {margin_squares!r}")
        margin = int(round(margin_squares * px_per_square))
        img = cv2.copyMakeBorder(self._pattern(px_per_square), margin, margin, margin, margin,
                                 cv2.BORDER_CONSTANT, value=255)
        if label and margin >= 16:
            text = f"{self.spec}  origin top-left, x right, y down  print at 100%"
            font = cv2.FONT_HERSHEY_SIMPLEX
            (w, h), _ = cv2.getTextSize(text, font, 1.0, 1)
            scale = min(0.9 * img.shape[1] / w, 0.35 * margin / h)
            thick = max(1, int(scale * 1.5))
            (w, h), _ = cv2.getTextSize(text, font, scale, thick)
            org = ((img.shape[1] - w) // 2, img.shape[0] - margin + (margin + h) // 2)
            cv2.putText(img, text, org, font, scale, 128, thick, cv2.LINE_AA)
        return img


# -- checkerboard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckerBoard(Board):
    cols: int  # inner corners across
    rows: int  # inner corners down
    square_m: float

    @property
    def spec(self) -> str:
        return f"checker:{self.cols}x{self.rows}:{self.square_m:g}"

    @property
    def squares(self) -> tuple[int, int]:
        return (self.cols + 1, self.rows + 1)

    @property
    def orientation_known(self) -> bool:
        return (self.cols + self.rows) % 2 == 1

    def corners_m(self) -> npt.NDArray[np.float64]:
        c, r = np.meshgrid(np.arange(1, self.cols + 1), np.arange(1, self.rows + 1))
        return np.stack([c.ravel(), r.ravel(), np.zeros(c.size)], axis=1).astype(np.float64) * self.square_m

    def _pattern(self, px_per_square: int) -> npt.NDArray[np.uint8]:
        nx, ny = self.squares
        i, j = np.meshgrid(np.arange(nx), np.arange(ny))
        cells = np.where((i + j) % 2 == 0, 0, 255).astype(np.uint8)  # top-left square black
        return np.kron(cells, np.ones((px_per_square, px_per_square), dtype=np.uint8))

    def detect(self, gray: npt.NDArray[np.uint8]) -> BoardView | NotFound:
        cv2 = load_cv2()
        flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
        found, corners = cv2.findChessboardCorners(gray, (self.cols, self.rows), flags=flags)
        if not found:
            return NotFound("the whole checkerboard is not in view (or it is blurred, too small or too far turned)")
        grid = corners.reshape(self.rows, self.cols, 2).astype(np.float64)
        a, b = grid[0, 1] - grid[0, 0], grid[1, 0] - grid[0, 0]
        if a[0] * b[1] - a[1] * b[0] < 0:  # numbered as if seen from behind: the rows the other way round
            grid = grid[::-1].copy()
        spacing = min(np.linalg.norm(np.diff(grid, axis=0), axis=2).min(),
                      np.linalg.norm(np.diff(grid, axis=1), axis=2).min())
        if spacing < MIN_SQUARE_PX:
            return NotFound(f"the squares are only {spacing:.1f} px in the picture; come closer")
        if self.orientation_known:
            flip = _checker_turned(gray, grid, self.cols, self.rows)
            if flip is None:
                return NotFound("cannot tell the board's orientation; keep its white border in view")
            if flip:
                grid = grid[::-1, ::-1].copy()
        win = int(max(2, min(11, spacing * 0.4)))
        pts = grid.reshape(-1, 1, 2).astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
        pts = cv2.cornerSubPix(gray, pts, (win, win), (-1, -1), criteria)
        return BoardView(pts.reshape(-1, 2), self.corners_m(), np.arange(self.cols * self.rows, dtype=np.int32))


def _checker_turned(gray: npt.NDArray[np.uint8], grid: npt.NDArray[np.float64], cols: int, rows: int) -> bool | None:
    """Whether the corners are numbered from the bottom-right (the board turned half a turn), from
    the colour of the squares diagonally outside the four outermost corners (top-left is black as
    printed); None when none of them is in the picture."""
    cv2 = load_cv2()
    h, w = gray.shape[:2]
    votes = 0.0
    for r, c, dr, dc in ((0, 0, 1, 1), (0, cols - 1, 1, -1), (rows - 1, 0, -1, 1), (rows - 1, cols - 1, -1, -1)):
        p = grid[r, c] - 0.5 * (grid[r + dr, c] - grid[r, c]) - 0.5 * (grid[r, c + dc] - grid[r, c])
        if not (2 <= p[0] < w - 2 and 2 <= p[1] < h - 2):
            continue
        square_c, square_r = (0 if dc > 0 else cols), (0 if dr > 0 else rows)  # that square's column and row
        black = (square_c + square_r) % 2 == 0
        level = float(cv2.getRectSubPix(gray, (3, 3), (float(p[0]), float(p[1]))).mean()) / 255.0 - 0.5
        votes += level if black else -level  # > 0: the expected colour is the other one
    if votes == 0.0:
        return None
    return votes > 0


# -- ChArUco ----------------------------------------------------------------------------------------


def aruco_dictionaries() -> dict[str, int]:
    """OpenCV's predefined ArUco/AprilTag dictionaries by our names (``4x4_50``, ``apriltag_36h11``)."""
    cv2 = load_cv2()
    return {name[5:].lower(): getattr(cv2.aruco, name) for name in dir(cv2.aruco) if name.startswith("DICT_")}


@dataclass(frozen=True)
class CharucoBoard(Board):
    cols: int  # squares across
    rows: int  # squares down
    square_m: float
    marker_m: float
    dictionary: str = DEFAULT_DICT

    def __post_init__(self) -> None:
        dicts = aruco_dictionaries()
        if self.dictionary not in dicts:
            raise ConfigError(f"board {self.spec!r}: unknown marker dictionary {self.dictionary!r}; "
                              f"known: {', '.join(sorted(dicts))}")
        have = load_cv2().aruco.getPredefinedDictionary(dicts[self.dictionary]).bytesList.shape[0]
        need = self.cols * self.rows // 2
        if need > have:
            raise ConfigError(f"board {self.spec!r} has {need} markers but dictionary {self.dictionary} only {have}; "
                              "use a larger one (e.g. 4x4_100, 4x4_250) or fewer squares")

    @property
    def spec(self) -> str:
        return f"charuco:{self.cols}x{self.rows}:{self.square_m:g}:{self.marker_m:g}:{self.dictionary}"

    @property
    def squares(self) -> tuple[int, int]:
        return (self.cols, self.rows)

    @property
    def orientation_known(self) -> bool:
        return True

    @cached_property
    def _cv(self) -> Any:
        cv2 = load_cv2()
        d = cv2.aruco.getPredefinedDictionary(aruco_dictionaries()[self.dictionary])
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_m, self.marker_m, d)

    @cached_property
    def _detector(self) -> Any:
        return load_cv2().aruco.CharucoDetector(self._cv)

    def corners_m(self) -> npt.NDArray[np.float64]:
        return np.asarray(self._cv.getChessboardCorners(), dtype=np.float64).reshape(-1, 3)

    def _pattern(self, px_per_square: int) -> npt.NDArray[np.uint8]:
        return self._cv.generateImage((self.cols * px_per_square, self.rows * px_per_square), marginSize=0,
                                      borderBits=1)

    def detect(self, gray: npt.NDArray[np.uint8]) -> BoardView | NotFound:
        corners, ids, _, marker_ids = self._detector.detectBoard(gray)
        total = (self.cols - 1) * (self.rows - 1)
        if ids is None or len(ids) == 0:
            markers = 0 if marker_ids is None else len(marker_ids)
            return NotFound(f"no ChArUco corners found ({markers} markers seen); is it this board ({self.spec})?")
        ids = ids.reshape(-1).astype(np.int32)
        obj = self.corners_m()[ids]
        if len(ids) < MIN_CHARUCO_CORNERS:
            return NotFound(f"only {len(ids)} of {total} corners seen; at least {MIN_CHARUCO_CORNERS} are needed")
        spread = np.linalg.svd(obj[:, :2] - obj[:, :2].mean(axis=0), compute_uv=False)
        if spread[1] < 0.25 * self.square_m * math.sqrt(len(ids)):
            return NotFound(f"the {len(ids)} corners seen lie on one line; show more of the board")
        return BoardView(corners.reshape(-1, 2).astype(np.float32), obj, ids)


# -- specs ------------------------------------------------------------------------------------------

_SIZE = re.compile(r"^(\d+)x(\d+)$")
_FORMS = {"checker": ("checker:COLSxROWS:SQUARE_M", "checker:9x6:0.025", "inner corners"),
          "charuco": ("charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT]", "charuco:7x5:0.04:0.03", "squares")}


def parse_board(spec: str) -> Board:
    """A board from its spec string (module docstring); ConfigError naming the part that is wrong."""
    parts = spec.strip().split(":")
    kind = parts[0].lower()
    where = f"board {spec!r}"
    if kind not in ("checker", "charuco"):
        raise ConfigError(f"{where}: unknown kind {parts[0]!r}; give {BOARD_FORMS}")
    form, example, counts = _FORMS[kind]
    if not (2 if kind == "checker" else 3) <= len(parts) - 1 <= (2 if kind == "checker" else 4):
        raise ConfigError(f"{where}: {kind} takes {form} (e.g. {example})")
    m = _SIZE.match(parts[1].lower())
    if not m or not all(3 <= int(g) <= 100 for g in m.groups()):
        raise ConfigError(f"{where}: size {parts[1]!r} must be COLSxROWS {counts}, each 3..100")
    cols, rows = int(m.group(1)), int(m.group(2))
    square = _length(parts[2], "SQUARE_M", where)
    if kind == "checker":
        return CheckerBoard(cols, rows, square)
    marker = _length(parts[3], "MARKER_M", where)
    if marker >= square:
        raise ConfigError(f"{where}: the marker ({marker:g} m) must be smaller than the square ({square:g} m); "
                          "about 0.7 to 0.8 of it")
    dictionary = parts[4].lower() if len(parts) > 4 else DEFAULT_DICT
    return CharucoBoard(cols, rows, square, marker, dictionary)


def _length(text: str, name: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.001 <= value <= 1.0):
        raise ConfigError(f"{where}: {name} {text!r} must be a length in metres, 0.001..1 (25 mm is 0.025)")
    return value
