"""Cases: investigations worked by security and operations together, with their clocks and metrics."""
