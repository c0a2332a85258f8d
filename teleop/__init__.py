"""Real-time bimanual teleoperation runtime for dexterous humanoid robots."""

import os as _os

__version__ = "0.1.0"
__distribution__ = "dexteleop"  # what pip calls us; PyPI's "teleop" is another project (teleop/provenance.py)

# MuJoCo picks its OpenGL backend when it is first imported. Without a display, default to EGL
# (headless, works on CPU through Mesa); MUJOCO_GL=osmesa is the fallback (`teleop doctor`).
if not _os.environ.get("DISPLAY") and not _os.environ.get("WAYLAND_DISPLAY"):
    _os.environ.setdefault("MUJOCO_GL", "egl")
