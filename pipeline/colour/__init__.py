"""Colour science: colour transforms, camera matrices, the sRGB output transform, metrics."""
