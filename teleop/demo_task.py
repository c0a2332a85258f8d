"""Did the demo's scripted task happen? Follows the scene's objects through the run, stage by stage.

``pick_handover`` (``sim_demo``): the right hand lifts the bottle, stands it at the hand-over spot,
the left hand lifts it again and sets it down farther left, where it must end standing, with
nothing else knocked off the table. Any other script: some object lifted by 5 cm. Judged from the
object poses the robot server reports (``RobotState.body_pose``: x y z, then w x y z), so it holds
for any run, cold or warm, without knowing the session's timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["TaskJudge", "TaskVerdict", "task_judge"]

LIFT_M = 0.05  # "lifted": the object's centre this far above where it rested at the start
REST_TOL_M = 0.01  # "standing on the table": back within this of its resting height
TILT_MAX_DEG = 10.0
LEFT_SHIFT_M = 0.12  # the set-down spot is at least this far left (+y) of where the bottle started


@dataclass
class TaskVerdict:
    task: str
    complete: bool
    stages: list[tuple[str, float | None]]  # (what, seconds into the run it happened, or None)
    problem: str = ""  # the first thing that did not happen, in words
    lift_cm: dict[str, float] = field(default_factory=dict)


def _tilt_deg(quat_wxyz: np.ndarray) -> float:
    w, x, y, _z = quat_wxyz / np.linalg.norm(quat_wxyz)
    up_z = 1.0 - 2.0 * (x * x + y * y)  # the body's z axis, its world-z component
    return float(np.degrees(np.arccos(np.clip(up_z, -1.0, 1.0))))


class TaskJudge:
    """``update(t_s, body_pose)`` at the robot-state rate; ``verdict(final_pose)`` at the end."""

    task = "lift an object"
    stages: tuple[str, ...] = ("an object is lifted 5 cm",)

    def __init__(self, body_names: tuple[str, ...]) -> None:
        self.body_names = tuple(body_names)
        self.rest: np.ndarray | None = None  # (n, 3) where each object started
        self.peak = np.full(len(body_names), -np.inf)
        self.reached: list[float | None] = [None] * len(self.stages)

    def update(self, t_s: float, body_pose: np.ndarray) -> None:
        if self.rest is None:
            self.rest = body_pose[:, :3].copy()
        self.peak = np.maximum(self.peak, body_pose[:, 2])
        self._advance(t_s, body_pose)

    def _advance(self, t_s: float, body_pose: np.ndarray) -> None:
        if self.reached[0] is None and np.any(body_pose[:, 2] - self.rest[:, 2] >= LIFT_M):
            self.reached[0] = t_s

    def lift_cm(self) -> dict[str, float]:
        if self.rest is None:
            return {}
        return {b: round(float(self.peak[i] - self.rest[i, 2]) * 100, 1) for i, b in enumerate(self.body_names)}

    def verdict(self, final_pose: np.ndarray | None) -> TaskVerdict:
        stages = list(zip(self.stages, self.reached, strict=True))
        missing = next((name for name, t in stages if t is None), "")
        problem = f"did not happen: {missing}" if missing else self._final_problem(final_pose)
        return TaskVerdict(self.task, not problem, stages, problem, self.lift_cm())

    def _final_problem(self, final_pose: np.ndarray | None) -> str:
        return ""


class HandoverJudge(TaskJudge):
    """The ``pick_handover`` script on the bundled scene (a bottle, a cube, a mug on a table)."""

    task = "pick_handover"
    stages = (
        "the right hand lifts the bottle",
        "it stands the bottle at the hand-over spot",
        "the left hand lifts it",
        "the left hand sets it down",
    )

    def __init__(self, body_names: tuple[str, ...]) -> None:
        super().__init__(body_names)
        self.bottle = self.body_names.index("bottle")

    def _advance(self, t_s: float, body_pose: np.ndarray) -> None:
        i, rest = self.bottle, self.rest[self.bottle]
        z = body_pose[i, 2] - rest[2]
        standing = abs(z) <= REST_TOL_M and _tilt_deg(body_pose[i, 3:7]) <= TILT_MAX_DEG
        step = next((k for k, t in enumerate(self.reached) if t is None), len(self.reached))
        if step in (0, 2):
            done = z >= LIFT_M
        elif step == 1:
            done = standing
        elif step == 3:
            done = standing and body_pose[i, 1] - rest[1] >= LEFT_SHIFT_M
        else:
            return
        if done:
            self.reached[step] = t_s

    def _final_problem(self, final_pose: np.ndarray | None) -> str:
        if final_pose is None:
            return "no final robot state"
        i, rest = self.bottle, self.rest
        if abs(final_pose[i, 2] - rest[i, 2]) > REST_TOL_M or _tilt_deg(final_pose[i, 3:7]) > TILT_MAX_DEG:
            return (f"the bottle did not stay standing: it ends {100 * (final_pose[i, 2] - rest[i, 2]):+.1f} cm from "
                    f"its resting height, tilted {_tilt_deg(final_pose[i, 3:7]):.0f} deg")
        fallen = [b for k, b in enumerate(self.body_names) if final_pose[k, 2] < rest[k, 2] - 0.05]
        if fallen:
            return f"knocked off the table: {', '.join(fallen)}"
        return ""


def task_judge(script: str | None, body_names: tuple[str, ...]) -> TaskJudge:
    """The judge for a synthetic script on a scene (the generic lift check when it has no bottle)."""
    if script == "pick_handover" and "bottle" in body_names:
        return HandoverJudge(body_names)
    return TaskJudge(body_names)
