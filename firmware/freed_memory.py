"""Whether freed memory stays with the process or goes back to the system (glibc's malloc).

By default glibc gives each large block (a 12 MP frame's planes) a mapping of its own and
hands it back to the system when it is freed; the next block of that size is then
faulted in and zeroed page by page by the kernel, about 10 000 page faults and 0.05-0.1 s
of system time per 12 MP develop. A process that develops frame after frame can keep
that memory instead (:func:`reuse_freed_memory`) and, when it goes idle, give back what
it is not using (:func:`release_freed_memory`). Elsewhere than glibc both do nothing.

A process that develops also asks for its memory in ordinary pages
(:func:`fault_in_small_pages`): numpy asks Linux for huge pages, and when the kernel has
none free it compacts memory inside the page fault: on the development machine, 0.3-0.6 s
more for one 12 MP develop in two in some series, one in eight in others.
"""

from __future__ import annotations

import ctypes
import os
import sys

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


def fault_in_small_pages() -> bool:
    """Have numpy map its arrays in ordinary 4 KB pages, not transparent huge pages
    (``NUMPY_MADVISE_HUGEPAGE=0``, unless the environment already says), for this process
    and the ones it starts. Must run before numpy is imported; returns whether it did.

    With huge pages, a fault that finds no free 2 MB page compacts memory then and there
    (the kernel's ``defrag`` setting ``madvise``, the usual default), for as long as it
    takes. Measured on the development machine, ``obscura develop`` of a 12 MP DNG: one
    series of 8 runs each way, system time 0.06-0.08 s or 0.37-0.57 s (half the runs) with
    huge pages, 0.13-0.18 s every time with small pages (wall-clock median 0.86 s against
    0.665 s); another, alternating with LibRaw, one stall in 8 (0.69 s of system time),
    medians 0.785 s against 0.755 s, and 0.03-0.05 s to the huge pages when none stalls.
    A stall of 0.3-0.6 s now and then outweighs that.
    """
    if "numpy" in sys.modules:
        return False
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    return True
