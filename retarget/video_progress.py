"""Two progress bars for a video batch: videos done, and frames tracked across every worker.

On a terminal (or when asked) they are tqdm bars on stderr; elsewhere (a log, CI) nothing is
drawn and each video's outcome line is all there is. ``say`` prints a line without tearing the
bars.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["BatchProgress", "say"]


class BatchProgress:
    def __init__(self, n_videos: int, n_frames: int, enabled: bool | None = None) -> None:
        from tqdm import tqdm

        on = sys.stderr.isatty() if enabled is None else enabled
        self.videos = tqdm(total=n_videos, desc="videos", unit="video", position=0, disable=not on, file=sys.stderr,
                           dynamic_ncols=True)
        self.frame_bar = tqdm(total=n_frames, desc="frames", unit="frame", position=1, disable=not on,
                              file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        self.seen: dict[int, int] = {}  # video index -> frames counted so far

    def frames(self, index: int, done: int) -> None:
        """Video ``index`` has tracked ``done`` frames (cumulative, as workers report them)."""
        delta = done - self.seen.get(index, 0)
        if delta > 0:
            self.seen[index] = done
            self._grow(delta)
            self.frame_bar.update(delta)

    def finished(self, index: int, result: dict[str, Any], declared: int | None) -> None:
        """Video ``index`` is done. ``declared`` is what its container said (None: a video the
        frames bar never counted, one skipped before the start); the bar settles on the frames
        it really had (a damaged file has fewer, a failed one none), its total with it."""
        if declared is not None:
            actual = int(result.get("frames") or 0) if result.get("status") != "skipped" else 0
            seen = self.seen.pop(index, 0)
            self.frame_bar.total = max(self.frame_bar.n, (self.frame_bar.total or 0) + actual - declared)
            self.frame_bar.update(max(0, actual - seen))
            self.frame_bar.refresh()
        self.videos.update(1)

    def _grow(self, delta: int) -> None:
        if self.frame_bar.total is not None and self.frame_bar.n + delta > self.frame_bar.total:
            self.frame_bar.total = self.frame_bar.n + delta  # the container said fewer than there are
            self.frame_bar.refresh()

    def close(self) -> None:
        self.frame_bar.close()
        self.videos.close()


def say(text: str) -> None:
    """Print a line on stdout, above the bars when they are drawn."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)
