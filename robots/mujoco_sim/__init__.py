"""MuJoCo simulation behind the robot bridge contract."""

from robots.mujoco_sim.model import SimModel, load_sim_model
from robots.mujoco_sim.server import SimConfig, SimServer

__all__ = ["SimModel", "load_sim_model", "SimConfig", "SimServer"]
