"""Real-time bimanual teleoperation runtime for dexterous humanoid robots."""

__version__ = "0.1.0"
