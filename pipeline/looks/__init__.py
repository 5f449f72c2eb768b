"""Looks: the built-in looks' TOML files, and the code that loads and applies them."""
