"""Whether freed memory stays with the process or goes back to the system (glibc's malloc).

By default glibc gives each large block (a 12 MP frame's planes) a mapping of its own and
hands it back to the system when it is freed; the next block of that size is then
faulted in and zeroed page by page by the kernel, about 10 000 page faults and 0.05-0.1 s
of system time per 12 MP develop. A process that develops frame after frame can keep
that memory instead (:func:`reuse_freed_memory`) and, when it goes idle, give back what
it is not using (:func:`release_freed_memory`). Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes

#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc's, or AttributeError
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    return libc


def reuse_freed_memory() -> bool:
    """Make the C library keep freed memory for the next allocation: every block from
    its heap (``M_MMAP_MAX`` 0: no block of its own mapping) and none returned to the
    system (``M_TRIM_THRESHOLD`` at its largest). The process then keeps its peak (for a
    12 MP develop about 30 MB above its usual one). Returns whether the C library took it.
    """
    libc = _libc()
    if libc is None:
        return False
    return libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1


def release_freed_memory() -> None:
    """Give the system back the freed memory the heap holds (``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
