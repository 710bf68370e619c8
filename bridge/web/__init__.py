"""The live LED web view: the 8×8 matrix as the device shows it, sensor readings and connection state."""

from bridge.web.view import WebView, start_web_view

__all__ = ["WebView", "start_web_view"]
