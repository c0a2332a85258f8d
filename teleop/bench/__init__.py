"""``teleop bench ...``: benchmarks that print JSON with a reference measured in the same run."""
