"""The view's layout (a rerun blueprint): what the operator sees without arranging anything.

Left, large: the robot in 3D (measured pose solid, commanded pose as a thin orange ghost, the
operator's hand keypoints drawn on the robot's wrists, the objects, fingertip forces as arrows),
under it the cameras, tactile images and the operator's hands where the trackers put them.
Right: commanded vs measured joints, one plot per joint group; fingertip and tactile forces;
the session and robot states over time; the event log (state changes, faults, episodes).
"""

from __future__ import annotations

from collections.abc import Iterable

import rerun.blueprint as rrb

__all__ = ["build_blueprint"]


def build_blueprint(groups: Iterable[str], cameras: Iterable[str], tactile: Iterable[str]) -> rrb.Blueprint:
    images = [rrb.Spatial2DView(origin=f"cameras/{c}", name=f"camera {c}") for c in cameras]
    images += [rrb.Spatial2DView(origin=f"tactile/{d}/image", name=f"tactile {d}") for d in tactile]
    lower = rrb.Horizontal(
        *images,
        rrb.Spatial3DView(origin="operator", name="operator hands (tracker frame)", line_grid=False),
    )
    robot = rrb.Spatial3DView(
        origin="world", name="robot: measured (grey), commanded (orange), operator hands, forces",
        # from the front left, above the table: both hands, the objects and the robot's face
        eye_controls=rrb.EyeControls3D(position=[1.2, -0.8, 1.45], look_target=[0.4, 0.0, 1.0],
                                       eye_up=[0.0, 0.0, 1.0]),
    )
    # no legends: 16 joint names would cover a hand's plot; hovering a line names it
    quiet = rrb.PlotLegend(visible=False)
    joints = [rrb.TimeSeriesView(origin=f"joints/{g}", name=f"{g}: commanded (light) vs measured [rad]",
                                 plot_legend=quiet) for g in groups]
    right = rrb.Vertical(
        rrb.Grid(*joints, grid_columns=2),
        rrb.Horizontal(
            rrb.TimeSeriesView(origin="forces", name="fingertip contact force [N]", plot_legend=quiet),
            *([rrb.TimeSeriesView(origin="tactile", contents="$origin/*/force", name="tactile force [N]",
                                  plot_legend=quiet)]
              if tactile else []),
        ),
        rrb.StateTimelineView(origin="states", name="session and robot state"),
        rrb.TextLogView(origin="log", name="events and faults"),
        row_shares=[4, 2, 1.5, 1.5],
    )
    return rrb.Blueprint(
        rrb.Horizontal(rrb.Vertical(robot, lower, row_shares=[3, 2]), right, column_shares=[3, 2]),
        rrb.BlueprintPanel(state="collapsed"),
        rrb.SelectionPanel(state="collapsed"),
        # the newest data, live; the end of a recording. Compact: a time bar without the stream list
        rrb.TimePanel(play_state="following", state="collapsed"),
    )
