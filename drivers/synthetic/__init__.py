"""Deterministic scripted bimanual hands and wrists: the embedded default input."""

from drivers.synthetic.config_synthetic import SyntheticConfig
from drivers.synthetic.script import SCRIPTS, BimanualScript
from drivers.synthetic.synthetic import SyntheticDriver

__all__ = ["SyntheticConfig", "SyntheticDriver", "BimanualScript", "SCRIPTS"]
