"""Camera input shared by drivers and robot-side trackers: devices, frame sources, intrinsics; and
camera calibration (boards, intrinsics from pictures, a camera's pose, hand-eye: docs/calibration.md)."""
