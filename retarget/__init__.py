"""retarget package."""
