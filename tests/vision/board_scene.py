"""A calibration board and a camera in MuJoCo, rendered for the calibration tests.

The board is ``Board.generate_image`` as a 2D texture on a mesh quad with explicit texture
coordinates (texcoord (0, 0) is the image's top-left pixel, checked by ``test_scene_matches_
projection``), laid out in the board frame (x right, y down the printed image, z into the board),
so the quad's body frame *is* the board frame. The camera is a MuJoCo pinhole with a known
``fovy``: fx = fy = (h / 2) / tan(fovy / 2) and, in OpenCV's pixel convention (pixel centres at
whole numbers), cx = (w - 1) / 2, cy = (h - 1) / 2.

One of the two sits on a "wrist" (a mocap body) at a fixed offset, the other in the world (= the
robot's base frame): ``camera_on_wrist`` for eye-in-hand (and for moving the camera round a still
board), otherwise the wrist holds the board (eye-to-hand)."""

from __future__ import annotations

import math
import re

import cv2
import mujoco
import numpy as np

from teleop.vision.boards import Board
from teleop.vision.intrinsics import Intrinsics
from teleop.vision.transforms import invert_transform, make_transform, matrix_to_quat, rpy_deg_to_matrix

#: OpenCV camera axes (x right, y down, z forward) to MuJoCo's (x right, y up, looking along -z).
CV_TO_MJ = np.diag([1.0, -1.0, -1.0])


def transform(pos, rpy_deg) -> np.ndarray:
    return make_transform(rpy_deg_to_matrix(rpy_deg), pos)


def _attr(v) -> str:
    return " ".join(f"{x:.10g}" for x in np.asarray(v).ravel())


class BoardScene:
    def __init__(self, board: Board, *, camera_on_wrist: bool = True,
                 T_wrist_camera: np.ndarray | None = None, T_world_board: np.ndarray | None = None,  # noqa: N803
                 T_wrist_board: np.ndarray | None = None, T_world_camera: np.ndarray | None = None,  # noqa: N803
                 width: int = 640, height: int = 480, fovy_deg: float = 50.0, px_per_square: int = 80) -> None:
        self.board, self.width, self.height, self.camera_on_wrist = board, width, height, camera_on_wrist
        eye = np.eye(4)
        self.T_wrist_camera = eye if T_wrist_camera is None else T_wrist_camera
        self.T_world_board = eye if T_world_board is None else T_world_board
        self.T_wrist_board = eye if T_wrist_board is None else T_wrist_board
        self.T_world_camera = eye if T_world_camera is None else T_world_camera
        f = (height / 2) / math.tan(math.radians(fovy_deg) / 2)
        self.intrinsics = Intrinsics(f, f, (width - 1) / 2, (height - 1) / 2, width=width, height=height,
                                     source="MuJoCo pinhole")
        # an in-memory asset named after the board: MuJoCo caches textures by name within a process
        texture = re.sub(r"[^A-Za-z0-9_.]", "_", f"{board.spec}_{px_per_square}") + ".png"
        png = cv2.imencode(".png", cv2.cvtColor(board.generate_image(px_per_square), cv2.COLOR_GRAY2BGR))[1]
        m = 1.0 * board.square_m  # generate_image's default margin, one square
        (w, h) = board.size_m
        x0, y0, x1, y1 = -m, -m, w + m, h + m
        quad = (f'<mesh name="board" inertia="shell" vertex="{x0} {y0} 0  {x1} {y0} 0  {x1} {y1} 0  {x0} {y1} 0" '
                'face="0 2 1  0 3 2" texcoord="0 0  1 0  1 1  0 1"/>')  # faces wound to face -z, the front
        board_geom = '<geom type="mesh" mesh="board" material="board" contype="0" conaffinity="0"/>'

        def cam(t: np.ndarray) -> str:
            return (f'<camera name="cam" fovy="{fovy_deg}" pos="{_attr(t[:3, 3])}" '
                    f'quat="{_attr(matrix_to_quat(t[:3, :3] @ CV_TO_MJ))}"/>')

        def body(name: str, t: np.ndarray, inner: str, mocap: bool = False) -> str:
            return (f'<body name="{name}" pos="{_attr(t[:3, 3])}" quat="{_attr(matrix_to_quat(t[:3, :3]))}"'
                    f'{" mocap=" + chr(34) + "true" + chr(34) if mocap else ""}>{inner}</body>')

        if camera_on_wrist:
            world = body("board", self.T_world_board, board_geom) + body("wrist", eye, cam(self.T_wrist_camera), True)
        else:
            world = cam(self.T_world_camera) + body("wrist", eye, body("board", self.T_wrist_board, board_geom), True)
        xml = f"""<mujoco>
  <visual><headlight ambient="1 1 1" diffuse="0 0 0" specular="0 0 0"/>
    <global offwidth="{width}" offheight="{height}"/></visual>
  <asset><texture name="board" type="2d" file="{texture}"/>
    <material name="board" texture="board" specular="0" shininess="0" reflectance="0"/>{quad}</asset>
  <worldbody>{world}</worldbody>
</mujoco>"""
        self.model = mujoco.MjModel.from_xml_string(xml, assets={texture: png.tobytes()})
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, height, width)

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> BoardScene:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wrist_for(self, T_camera_board: np.ndarray) -> np.ndarray:  # noqa: N803
        """``T_world_wrist`` that puts the board at ``T_camera_board`` in front of the camera."""
        if self.camera_on_wrist:  # world_board = world_wrist wrist_camera camera_board
            return self.T_world_board @ invert_transform(T_camera_board) @ invert_transform(self.T_wrist_camera)
        return self.T_world_camera @ T_camera_board @ invert_transform(self.T_wrist_board)

    def render(self, T_world_wrist: np.ndarray) -> np.ndarray:  # noqa: N803
        """RGB (h, w, 3) with the wrist at ``T_world_wrist``."""
        self.data.mocap_pos[0] = T_world_wrist[:3, 3]
        self.data.mocap_quat[0] = matrix_to_quat(T_world_wrist[:3, :3])
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera="cam")
        return self.renderer.render().copy()

    def views(self, n: int, seed: int = 0, distance_m: tuple[float, float] = (0.45, 0.7),
              tilt_deg: tuple[float, float] = (15.0, 40.0), shift: float = 0.35) -> list[np.ndarray]:
        """``n`` board poses in front of the camera (``T_camera_board``): the board's centre at
        ``distance_m``, moved sideways up to ``shift`` of the half field of view, tilted
        ``tilt_deg`` about a random axis in its plane and turned up to 30 deg about its normal."""
        rng = np.random.default_rng(seed)
        centre_b = np.array([*self.board.size_m, 0.0]) / 2
        half_x = (self.width / 2) / self.intrinsics.fx
        half_y = (self.height / 2) / self.intrinsics.fy
        out = []
        for _ in range(n):
            d = rng.uniform(*distance_m)
            centre_c = np.array([rng.uniform(-shift, shift) * half_x * d, rng.uniform(-shift, shift) * half_y * d, d])
            phi = rng.uniform(0, 2 * math.pi)
            tilt = rpy_deg_to_matrix([0, 0, math.degrees(phi)]) @ rpy_deg_to_matrix(
                [rng.uniform(*tilt_deg), 0, 0]) @ rpy_deg_to_matrix([0, 0, -math.degrees(phi)])
            rot = tilt @ rpy_deg_to_matrix([0, 0, rng.uniform(-30, 30)])
            out.append(make_transform(rot, centre_c - rot @ centre_b))
        return out
