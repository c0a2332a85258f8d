"""``teleop calibrate camera | camera-pose | hand-eye | board``: the camera calibration commands
(docs/calibration.md). ``teleop.cli.cmd_calibrate`` hands them the options it did not parse;
each command has its own parser here. Every number is checked (finite, in range); a problem with
the input is a ``TeleopError`` saying what to do, never a traceback."""

from __future__ import annotations

import argparse
import math
import re
import shlex
import struct
import textwrap
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from teleop.cli_types import finite_float, int_in
from teleop.errors import ConfigError
from teleop.vision.boards import BOARD_FORMS, parse_board
from teleop.vision.calibration import Detections, calibrate_intrinsics, camera_pose_from_board, find_boards
from teleop.vision.errors import CalibrationError
from teleop.vision.extrinsics import MAX_POS_M
from teleop.vision.handeye import HAND_EYE_MODES, calibrate_hand_eye, load_wrist_poses
from teleop.vision.images import is_video, read_frames
from teleop.vision.intrinsics import Intrinsics
from teleop.vision.tomlfile import write_atomic
from teleop.vision.transforms import make_transform, rpy_deg_to_matrix

__all__ = ["COMMANDS", "build_parser", "run_command", "usage_lines"]

COMMANDS = ("camera", "camera-pose", "hand-eye", "board")
#: Options that take a value which may start with a minus sign (``--board-pos -0.2,0,0``).
_SIGNED = ("--board-pos", "--board-rpy-deg")
_NUMBER_LIKE = re.compile(r"^-[\d.]")
#: What an office printer prints of an A4 sheet, landscape [mm].
A4_PRINTABLE_MM = (277, 190)


class _Parser(argparse.ArgumentParser):
    """Usage errors become ConfigErrors (``teleop: error: ...``, exit code 2), not a SystemExit."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message} (`{self.prog} --help` lists the options)")


def _triple(limit: float, unit: str) -> Callable[[str], tuple[float, float, float]]:
    def parse(text: str) -> tuple[float, float, float]:
        parts = text.replace(" ", "").split(",")
        values = []
        for part in parts:
            try:
                values.append(float(part))
            except ValueError:
                values.append(math.nan)
        if len(values) != 3 or not all(math.isfinite(v) and abs(v) <= limit for v in values):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: give three finite numbers x,y,z, each within "
                                             f"+-{limit:g} {unit}, separated by commas")
        return (values[0], values[1], values[2])

    parse.__name__ = "x,y,z"
    return parse


def build_parser(command: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"teleop calibrate {command}", description=_DESCRIPTIONS[command], allow_abbrev=False)
    if command == "board":
        p.add_argument("spec", metavar="SPEC", help=f"the board: {BOARD_FORMS}")
        p.add_argument("--px-per-square", type=int_in(4, 2000), metavar="N",
                       help="pixels per square (default: the square's size at --dpi, so the image prints at the right "
                       "size)")
        p.add_argument("--dpi", type=int_in(50, 2400), default=300, metavar="DPI",
                       help="print resolution written into the PNG (default %(default)s)")
        p.add_argument("--margin-squares", type=finite_float(0, 10), default=1.0, metavar="M",
                       help="white margin all round, in squares (default %(default)s)")
    else:
        p.add_argument("--images", required=True, metavar="DIR|GLOB|VIDEO",
                       help="a folder of pictures, a quoted glob ('shots/*.png') or a video"
                       + (" (not a video: each picture needs its wrist pose)" if command == "hand-eye" else ""))
        p.add_argument("--board", required=True, metavar="SPEC", help=f"the board: {BOARD_FORMS}")
        if command != "hand-eye":
            p.add_argument("--every", type=int_in(1, 100000), default=1, metavar="N",
                           help="with a video: use every Nth frame (default %(default)s)")
        if command != "camera":
            p.add_argument("--intrinsics", required=True, metavar="CAMERA.toml",
                           help="the camera's intrinsics (`teleop calibrate camera` writes them)")
    if command == "camera":
        p.add_argument("--k3", action="store_true", help="also fit the third radial distortion term (wide-angle "
                       "lenses; overfits with few pictures)")
    if command == "camera-pose":
        p.add_argument("--board-pos", type=_triple(MAX_POS_M, "m"), required=True, metavar="X,Y,Z",
                       help="the board frame's origin (the top-left corner of its squares) in the base frame [m]")
        p.add_argument("--board-rpy-deg", type=_triple(360.0, "deg"), required=True, metavar="R,P,Y",
                       help="the board frame's roll, pitch, yaw in the base frame [deg], fixed axes x, y, z (URDF rpy)")
    if command == "hand-eye":
        p.add_argument("--poses", required=True, metavar="POSES.json",
                       help='wrist pose per picture: [{"image": NAME, "pos": [x, y, z], "quat": [w, x, y, z]}, ...]')
        p.add_argument("--mode", required=True, choices=HAND_EYE_MODES,
                       help="eye-in-hand: camera on the wrist (writes T_wrist_camera); eye-to-hand: fixed camera, "
                       "board in the gripper (writes T_base_camera)")
    out = "FILE.png" if command == "board" else "FILE.toml"
    p.add_argument("--out", metavar=out, help="where to write it (required)")
    p.usage = p.format_usage().strip().removeprefix("usage: ").replace(f"[--out {out}]", f"--out {out}")
    return p


_DESCRIPTIONS = {
    "camera": "Intrinsics (focal lengths, centre, distortion) from 15-30 pictures of a board; writes the TOML "
              "file the camera inputs and the object tracker load.",
    "camera-pose": "A fixed camera's pose in the robot's base frame, from pictures of a board lying at a known pose "
                   "in that frame.",
    "hand-eye": "Hand-eye calibration: the camera on a wrist (eye-in-hand) or a fixed camera seeing a board in the "
                "gripper (eye-to-hand), from pictures and the wrist pose at each.",
    "board": "Write a board image to print (or to use in a simulation).",
}


def usage_lines() -> list[str]:
    """One usage line per command, for ``teleop calibrate --help``."""
    return [" ".join(build_parser(c).format_usage().removeprefix("usage: ").split()) for c in COMMANDS]


def _join_signed(extra: Sequence[str]) -> list[str]:
    """``--board-pos -0.2,0,0`` -> ``--board-pos=-0.2,0,0`` (argparse takes a leading minus for an option)."""
    out: list[str] = []
    i = 0
    while i < len(extra):
        if extra[i] in _SIGNED and i + 1 < len(extra) and _NUMBER_LIKE.match(extra[i + 1]):
            out.append(f"{extra[i]}={extra[i + 1]}")
            i += 2
        else:
            out.append(extra[i])
            i += 1
    return out


def run_command(command: str, extra: Sequence[str], out: str | None = None) -> int:
    """Parse ``extra`` for ``command`` and run it; ``out`` is ``--out`` when the caller parsed it."""
    parser = build_parser(command)
    try:
        args = parser.parse_args(_join_signed(extra))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    args.out = out or args.out
    if not args.out:
        raise ConfigError(f"teleop calibrate {command}: give --out "
                          f"{'FILE.png' if command == 'board' else 'FILE.toml'}: where to write the result")
    suffix = ".png" if command == "board" else ".toml"
    if Path(args.out).suffix.lower() != suffix:
        raise ConfigError(f"teleop calibrate {command}: --out {args.out}: give a {suffix} file")
    made_by = f"made by: teleop calibrate {command} {shlex.join(extra)} --out {args.out}".replace("  ", " ")
    made_by += time.strftime(" (%Y-%m-%d %H:%M %Z)")
    return _RUN[command](args, made_by)


def _frames(args: argparse.Namespace, board) -> Detections:
    return find_boards(read_frames(args.images, getattr(args, "every", 1)), board)


def _listing(found: Detections, used: Sequence[str]) -> list[str]:
    lines = textwrap.wrap(f"pictures used ({len(used)}): {', '.join(used)}", 110, subsequent_indent="  ")
    if found.rejected:
        left = "; ".join(f"{r.name}: {r.reason}" for r in found.rejected)
        lines += textwrap.wrap(f"left out ({len(found.rejected)}): {left}", 110, subsequent_indent="  ")
    return lines


def _say(lines: Sequence[str], out: Path, found: Detections) -> None:
    for line in lines:
        print(line)
    for r in found.rejected[:20]:
        print(f"left out {r.name}: {r.reason}")
    if len(found.rejected) > 20:
        print(f"... and {len(found.rejected) - 20} more left out (all of them are listed in {out})")
    print(f"written to {out}")


def _run_camera(args: argparse.Namespace, made_by: str) -> int:
    board = parse_board(args.board)
    found = _frames(args, board)
    result = calibrate_intrinsics(found, fix_k3=not args.k3)
    lines = result.report_lines()
    comments = [made_by, f"board {board.spec}; {len(result.used)} of {found.total} pictures used", *lines,
                *_listing(found, result.used)]
    out = result.intrinsics.save(args.out, comments)
    _say([*lines, f"{len(result.used)} of {found.total} pictures used"], out, found)
    return 0


def _run_camera_pose(args: argparse.Namespace, made_by: str) -> int:
    board = parse_board(args.board)
    intrinsics = Intrinsics.load(args.intrinsics)
    found = _frames(args, board)
    t_base_board = make_transform(rpy_deg_to_matrix(args.board_rpy_deg), args.board_pos)
    result = camera_pose_from_board(found, intrinsics, t_base_board)
    lines = result.report_lines()
    comments = [made_by, f"board {board.spec} at pos {list(args.board_pos)} m, rpy_deg {list(args.board_rpy_deg)} "
                f"in the base frame; intrinsics {args.intrinsics}", *lines, *_listing(found, result.used)]
    out = result.pose.save(args.out, comments)
    _say(lines, out, found)
    return 0


def _run_hand_eye(args: argparse.Namespace, made_by: str) -> int:
    if is_video(args.images):
        raise ConfigError(f"--images {args.images}: hand-eye needs one picture per wrist pose; give a folder of "
                          "pictures or a glob, named as in the poses file")
    board = parse_board(args.board)
    intrinsics = Intrinsics.load(args.intrinsics)
    poses = load_wrist_poses(args.poses)
    found = _frames(args, board)
    result = calibrate_hand_eye(found, intrinsics, poses, args.mode)
    lines = result.report_lines()
    what = ("the camera's pose on the wrist (T_wrist_camera)" if args.mode == "eye-in-hand"
            else "the camera's pose in the base frame (T_base_camera)")
    comments = [made_by, f"{args.mode}: {what}; board {board.spec}; intrinsics {args.intrinsics}; poses {args.poses}",
                *lines, *_listing(found, result.used)]
    out = result.camera_pose().save(args.out, comments)
    _say(lines, out, found)
    return 0


def _run_board(args: argparse.Namespace, made_by: str) -> int:
    del made_by  # a PNG carries no comments
    board = parse_board(args.spec)
    px = args.px_per_square or max(4, round(board.square_m / 0.0254 * args.dpi))
    img = board.generate_image(px, margin_squares=args.margin_squares)
    if max(img.shape) > 30000:
        raise ConfigError(f"teleop calibrate board: the image would be {img.shape[1]}x{img.shape[0]} px; "
                          "give a smaller --px-per-square or --dpi")
    from teleop.vision.devices import load_cv2

    ok, png = load_cv2().imencode(".png", img)
    if not ok:
        raise CalibrationError("OpenCV could not encode the board as PNG")
    dpi = px * 0.0254 / board.square_m  # what makes the squares print at their size
    out = write_atomic(args.out, _with_dpi(png.tobytes(), dpi))
    w_m, h_m = img.shape[1] / px * board.square_m, img.shape[0] / px * board.square_m
    print(f"{board.spec}: {img.shape[1]}x{img.shape[0]} px, {px} px per square; printed at {dpi:.0f} dpi (100%, no "
          f"'fit to page') it is {w_m * 1000:.0f} x {h_m * 1000:.0f} mm with {board.square_m * 1000:g} mm squares. "
          "Measure a square after printing and use the measured size in --board.")
    long_mm, short_mm = max(w_m, h_m) * 1000, min(w_m, h_m) * 1000
    if long_mm > A4_PRINTABLE_MM[0] or short_mm > A4_PRINTABLE_MM[1]:
        print(f"it does not fit on A4 ({A4_PRINTABLE_MM[0]} x {A4_PRINTABLE_MM[1]} mm printable): print on A3, or "
              "take smaller squares or fewer of them (or --margin-squares 0.5)")
    print(f"written to {out}")
    return 0


def _with_dpi(png: bytes, dpi: float) -> bytes:
    """The PNG with a pHYs chunk (pixels per metre) after IHDR, so printing at 100% keeps the size."""
    ppm = int(round(dpi / 0.0254))
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    end_of_ihdr = 8 + 4 + 4 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


_RUN = {"camera": _run_camera, "camera-pose": _run_camera_pose, "hand-eye": _run_hand_eye, "board": _run_board}
