"""File formats: raw files (DNG, LibRaw), picamera2 and PiSP buffers, journal frames, encoders."""
