"""What the LED matrix shows: the layers above the device (indicators, notifications, the app loop,
the base frame), the font every character is drawn with, icons and draw primitives."""
