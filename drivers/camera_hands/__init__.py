"""Hands from a camera or a video: the ``camera_hands`` driver (docs/camera-hands.md)."""
