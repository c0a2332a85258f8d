"""Hand keypoint and wrist pose streams over ZeroMQ, from VR apps, mocap bridges or trackers."""

from drivers.network.config_network import NetworkConfig
from drivers.network.conventions import KEYPOINT_LAYOUTS, axes_matrix, convert_pose, to_mediapipe
from drivers.network.network import NetworkDriver

__all__ = ["NetworkConfig", "NetworkDriver", "KEYPOINT_LAYOUTS", "axes_matrix", "convert_pose", "to_mediapipe"]
