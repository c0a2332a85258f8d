"""The bundled "dexhumanoid": a fixed-torso humanoid with two 7-DoF arms and two 20-joint hands
(16 actuated each), built from primitive geoms. ``generate.py`` writes ``dexhumanoid.xml`` and
``scene.xml``; ``dexhumanoid.toml`` is its robot description. Joint conventions and the wrist
frame are documented in ``generate.py``."""
