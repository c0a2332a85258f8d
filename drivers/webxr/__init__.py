"""An XR headset's browser as the input device: the ``webxr`` driver (docs/web.md)."""

from drivers.webxr.config_webxr import WebXRConfig
from drivers.webxr.webxr import WebXRDriver

__all__ = ["WebXRConfig", "WebXRDriver"]
