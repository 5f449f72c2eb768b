"""The develop stages, one module each, in the order :mod:`pipeline.develop` runs them."""
