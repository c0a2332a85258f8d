"""Task vectors of vector and DexPilot retargeting: which robot frames span each vector and
which human keypoints (MediaPipe order) it follows; parsed from configs (``retarget.config``),
solved by ``retarget.hand``."""

from __future__ import annotations

from dataclasses import dataclass

from teleop.errors import ConfigError

__all__ = ["VectorSpec"]


@dataclass(frozen=True, kw_only=True)
class VectorSpec:
    """Task vectors: robot frame names and the human keypoint indices they follow."""

    origin_frames: tuple[str, ...]
    task_frames: tuple[str, ...]
    human_origin: tuple[int, ...]
    human_task: tuple[int, ...]
    weights: tuple[float, ...] = ()
    pinch: tuple[bool, ...] = ()  # default: thumb tip (4) -> another fingertip

    def __post_init__(self) -> None:
        m = len(self.origin_frames)
        if not (len(self.task_frames) == len(self.human_origin) == len(self.human_task) == m) or m == 0:
            raise ConfigError(
                f"task vectors: {len(self.origin_frames)} origin frames, {len(self.task_frames)} task frames, "
                f"{len(self.human_origin)}/{len(self.human_task)} human indices; they must be equal and > 0"
            )
        if self.weights and len(self.weights) != m:
            raise ConfigError(f"weights has {len(self.weights)} entries for {m} task vectors")
        if any(w < 0 for w in self.weights):
            raise ConfigError("weights must be >= 0")
        bad = [i for i in self.human_origin + self.human_task if not 0 <= i <= 20]
        if bad:
            raise ConfigError(f"human keypoint indices must be within 0..20 (MediaPipe order), got {bad}")
        if self.pinch and len(self.pinch) != m:
            raise ConfigError(f"pinch has {len(self.pinch)} entries for {m} task vectors")

    @property
    def n(self) -> int:
        return len(self.origin_frames)

    def pinch_flags(self) -> tuple[bool, ...]:
        if self.pinch:
            return self.pinch
        return tuple(o == 4 and t in (8, 12, 16, 20) for o, t in zip(self.human_origin, self.human_task, strict=True))
