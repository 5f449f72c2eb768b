"""Exceptions raised by the pipeline.

Every exception derives from :class:`ObscuraError` *and* the matching built-in, so callers
can catch either (the convention of gpiozero's ``GPIOZeroError``).
"""


class ObscuraError(Exception):
    """Root of every error Obscura raises on purpose."""


class RawFormatError(ObscuraError, ValueError):
    """A raw file or buffer is corrupt, truncated or of a layout we do not read."""


class InvalidParameterError(ObscuraError, ValueError):
    """A parameter has a value outside its domain; the message names both."""


class CompiledKernelMismatch(Exception):
    """A kernel compiled ahead of time was called with argument types none of its
    compiled variants takes (:mod:`pipeline.compiled_kernels`). Not an error to report:
    the command runs again with numba."""
