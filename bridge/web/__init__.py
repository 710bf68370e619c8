"""The live LED web view: the 8×8 matrix as the device shows it, sensor readings and connection state."""

from bridge.web.options import WebOptions
from bridge.web.view import WebView, start_web_view

__all__ = ["WebOptions", "WebView", "start_web_view"]
