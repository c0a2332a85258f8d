"""An example teleop driver plugin (docs/adding-a-driver.md in the teleop repository)."""

from teleop_driver_example.my_glove import MyGloveConfig, MyGloveDriver

__all__ = ["MyGloveConfig", "MyGloveDriver"]
