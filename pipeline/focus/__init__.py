"""Focus assist: the focus measure and the focus-peaking preview."""
