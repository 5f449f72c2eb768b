"""Peak memory of the running benchmark process, for the scripts in ``bench/``."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """VmHWM of this process, MB (NaN where /proc has none)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakAnonymousMemory:
    """Samples this process's anonymous memory (RssAnon: what cannot be paged out without
    swap, so what the OOM killer weighs; VmHWM also counts the mapped code of LLVM and
    the libraries, which the kernel can drop and read again) every ``interval_s`` in a
    thread, keeping the peak. A context manager; :attr:`peak_mb` after."""

    def __init__(self, interval_s: float = 0.01) -> None:
        import threading

        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_mb = 0.0

    @staticmethod
    def now_mb() -> float:
        """RssAnon of this process now, MB."""
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.now_mb())
            self._stop.wait(self._interval_s)

    def __enter__(self) -> PeakAnonymousMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.now_mb())
