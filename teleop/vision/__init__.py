"""Camera input shared by drivers and robot-side trackers: devices, frame sources, intrinsics."""
