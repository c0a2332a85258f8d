"""The headless view: what the session, the robot and the devices do, drawn by rerun.

A consumer like the recorder, in its own process: it subscribes to the session tap and the
robot server's state and camera topics (``live``), or reads a recorded episode (``episode``),
and logs thinned streams to rerun (``rerun_log``): cameras, commanded vs measured joints, the
robot and the operator's hand keypoints in 3D, object poses, fingertip forces, session states
and faults. ``sink`` opens where the view goes (a native viewer, a web viewer on loopback, or an
``.rrd`` file), ``blueprint`` lays the panels out, ``scene`` turns the robot's model into lines
and shapes, ``child`` starts the view alongside ``teleop run`` and ``teleop demo``.
"""
