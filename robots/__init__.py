"""Robot descriptions, the MuJoCo robot server, the robot client and the bridge contract."""

import teleop  # noqa: F401  (chooses a headless MuJoCo render backend before mujoco is imported)
