"""Encoders: developed images and metadata to file bytes (no file I/O here)."""
