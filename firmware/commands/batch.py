"""``obscura batch IN... -o OUTDIR``: develop many raw files to JPEG, on every core.

Inputs are raw files, or folders searched recursively for raw files (DNG, CR2, NEF,
ARW...). Each becomes OUTDIR/NAME.jpg (NAME-2.jpg, NAME-3.jpg... when inputs in
different folders share a name); ``--lens NAME`` develops them as shot through a lens of
the library, as ``obscura develop`` does. ``--jobs`` worker processes develop one file
each at a time, each fast after its first. A file that fails gets a one-line error and the batch
goes on; the exit status is 1 if any failed. Outputs are written atomically (never
half-written, even on Ctrl-C) and never over an input.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from firmware.commands.develop import DEFAULT_JPEG_QUALITY, add_lens_options, lens_of
from pipeline.errors import CompiledKernelMismatch, InvalidParameterError, ObscuraError

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from firmware.lens_profiles import LensInUse
    from firmware.progress import Progress
# multiprocessing and concurrent.futures are imported where used: every obscura command
# imports this module to build its parser.

#: Suffixes of the raw files a folder is searched for (any file named on the command
#: line is tried, whatever its name: a DNG is known by its content).
RAW_SUFFIXES = frozenset({
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf",
    ".orf", ".rw2", ".rwl", ".pef", ".srw", ".erf", ".kdc", ".dcr", ".mos", ".mrw",
    ".3fr", ".fff", ".iiq", ".x3f",
})  # fmt: skip


@dataclass
class FileResult:
    """What a worker reports for one file: the error, if it failed, the log records
    (warnings) it wrote, each formatted as one line, and whether it needs numba (a kernel
    compiled ahead of time could not take it: :mod:`pipeline.compiled_kernels`)."""

    error: str | None = None
    log_lines: list[str] = field(default_factory=list)
    needs_numba: bool = False


def find_raw_files(inputs: Iterable[Path]) -> list[Path]:
    """The files to develop: each input file as given, and the raw files (by suffix) under
    each input folder, recursively, in name order; a file named twice is developed once.

    Raises
    ------
    InvalidParameterError
        An input that does not exist, naming it.
    """
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            for folder, subfolders, names in os.walk(path):
                subfolders.sort()
                found.extend(Path(folder) / name for name in sorted(names)
                             if Path(name).suffix.lower() in RAW_SUFFIXES)  # fmt: skip
        elif path.exists():
            found.append(path)
        else:
            raise InvalidParameterError(f"{path}: no such file or folder")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def output_paths(sources: Sequence[Path], out_dir: Path) -> list[Path]:
    """OUTDIR/NAME.jpg for each source, in order; a name already taken by an earlier
    source, or by a source in OUTDIR, gets -2, -3... appended. Names are compared
    ignoring case, as on a memory card's or a Mac's file system."""
    folder = out_dir.resolve()
    taken = {s.name.lower() for s in sources if s.resolve().parent == folder}
    outputs = []
    for source in sources:
        name, number = f"{source.stem}.jpg", 1
        while name.lower() in taken:
            number += 1
            name = f"{source.stem}-{number}.jpg"
        taken.add(name.lower())
        outputs.append(out_dir / name)
    return outputs


class _LogLines(logging.Handler):
    """Keeps the log records of the file being developed, formatted as the CLI does."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


_worker_log = _LogLines()


def _start_worker(numba_threads: int, log_levels: dict[str, int]) -> None:
    """Set up a worker process: Ctrl-C is the batch's to handle (a worker finishes the
    file it is writing), its kernels share the cores with the other workers, it keeps
    one file's memory for the next (:func:`firmware.freed_memory.reuse_freed_memory`), its
    garbage collector skips what it inherited, and its log records (at the batch's
    ``log_levels``, by logger name) go back with each result. Its kernels are numba's,
    or the ones compiled ahead of time that the batch's process chose
    (:mod:`pipeline.compiled_kernels`, whose stand-in takes ``set_num_threads`` too)."""
    import gc

    from firmware.freed_memory import reuse_freed_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reuse_freed_memory()
    # File after file: the collector on, but never again over what the worker inherited
    # (numba and the pipeline, loaded once).
    gc.enable()
    gc.freeze()
    import numba

    numba.set_num_threads(numba_threads)
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.addHandler(_worker_log)
    for name, level in log_levels.items():
        logging.getLogger(name or None).setLevel(level)


def develop_one(source: Path, destination: Path, look: str, jpeg_quality: int,
                lens: LensInUse | None = None) -> FileResult:
    """Develop ``source`` (as shot through ``lens``, if given) to the JPEG ``destination``;
    any failure is returned as one line naming the file, not raised."""
    from firmware.develop_file import develop_file
    from pipeline.develop import DevelopParams

    _worker_log.lines = []
    result = FileResult(log_lines=_worker_log.lines)
    try:
        develop_file(source, destination, DevelopParams(look=look), jpeg_quality=jpeg_quality,
                     lens=lens)
    except CompiledKernelMismatch as exc:  # nothing was written: outputs are written whole
        result.needs_numba = True
        result.error = str(exc)
    except (ObscuraError, OSError) as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug on one file must not end the batch
        result.error = f"{type(exc).__name__}: {exc}"
    if result.error is not None and source.name not in result.error:
        result.error = f"{source}: {result.error}"
    return result


def _start_method(with_numba: bool) -> str | None:
    """How to start workers: on Linux, forked from this process, which has imported the
    pipeline and either loaded the kernels compiled ahead of time or set up numba's
    compiler (a worker starts warm but for loading numba's compiled kernels), unless
    this process has started the kernels' threads: OpenMP's threads do not survive a
    fork, so then from a fork server. Workers ``with_numba`` when this process runs the
    compiled kernels are started afresh (spawned), which imports numba. Elsewhere, the
    default."""
    from pipeline import compiled_kernels

    if compiled_kernels.in_use():
        if with_numba:
            return "spawn"
        threads_started = compiled_kernels.threads_started()
    else:
        from numba.np.ufunc import parallel

        threads_started = getattr(parallel, "_is_initialized", True)
    if sys.platform != "linux":
        return None
    return "forkserver" if threads_started else "fork"


def _pool(jobs: int, with_numba: bool) -> ProcessPoolExecutor:
    """``jobs`` worker processes that split the cores between their kernels: numba's,
    if ``with_numba``, else this process's (:func:`_start_method`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // jobs)
    log_levels = {name: logging.getLogger(name or None).level for name in ("", "tifffile")}
    return ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context(_start_method(with_numba)),
        initializer=_start_worker, initargs=(threads, log_levels),
    )  # fmt: skip


def _report(source: Path, result: FileResult, progress: Progress) -> bool:
    """Print a file's log lines and error (erasing the progress line); whether it failed."""
    if result.log_lines or result.error:
        progress.close()
    for line in result.log_lines:
        print(line if source.name in line else f"{source}: {line}", file=sys.stderr)
    if result.error:
        print(f"obscura: error: {result.error}", file=sys.stderr)
    return result.error is not None


def develop_all(work: Sequence[tuple[Path, Path]], jobs: int, look: str, jpeg_quality: int,
                progress: Progress, lens: LensInUse | None = None) -> int:  # fmt: skip
    """Develop each (source, destination) of ``work`` in ``jobs`` worker processes,
    reporting each file as it is done; the number of files that failed.

    A worker that dies (a crash, or out of memory) breaks the pool: the files left
    unfinished are developed again one at a time, so that a second death names its file.
    A file that a kernel compiled ahead of time could not take is developed again, once
    the others are done, by workers that run numba.
    """
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    done = failed = 0
    pending, for_numba = list(range(len(work))), []
    with_numba = False
    while pending:
        unfinished = []
        with _pool(jobs, with_numba) as pool:
            futures = {pool.submit(develop_one, *work[i], look, jpeg_quality, lens): i
                       for i in pending}
            try:
                for future in as_completed(futures):
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        unfinished.append(futures[future])
                        continue
                    if result.needs_numba and not with_numba:
                        for_numba.append(futures[future])
                        continue
                    failed += _report(work[futures[future]][0], result, progress)
                    done += 1
                    progress.step(f"{done} of {len(work)}" + (f", {failed} failed" if failed else ""))
            except KeyboardInterrupt:
                progress.close()
                print("obscura: interrupted: finishing the files being written", file=sys.stderr)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        if unfinished and jobs == 1:  # one at a time: the first unfinished killed it
            culprit = min(unfinished)
            unfinished.remove(culprit)
            source = work[culprit][0]
            failed += _report(source, FileResult(f"{source}: the worker developing it died "
                                                 "(a crash, or out of memory)"), progress)  # fmt: skip
            done += 1
        elif unfinished:
            progress.close()
            print("obscura: a worker died: developing the rest one file at a time",
                  file=sys.stderr)  # fmt: skip
            jobs = 1
        pending = sorted(unfinished)
        if not pending and for_numba:  # the rest done: now those that need numba
            pending, for_numba, with_numba = sorted(for_numba), [], True
    return failed


def run(args: argparse.Namespace) -> int:
    """Develop every raw file of ``args.inputs`` into ``args.output``."""
    from firmware.develop_file import IMAGE_SUFFIXES, check_output
    from firmware.progress import Progress
    from pipeline.develop import DevelopParams
    from pipeline.numba_runtime import start_numba

    if args.jobs < 1:
        raise InvalidParameterError(f"--jobs {args.jobs}: expected at least 1")
    if not 1 <= args.quality <= 100:
        raise InvalidParameterError(f"--quality {args.quality}: expected 1..100")
    DevelopParams(look=args.look)  # an unknown look, before any work
    lens = lens_of(args)  # and an unknown lens
    sources = find_raw_files(Path(p) for p in args.inputs)
    if not sources:
        raise InvalidParameterError(f"no raw files in {', '.join(args.inputs)}")
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    destinations = output_paths(sources, out_dir)
    check_output(destinations[0], IMAGE_SUFFIXES)  # a folder we cannot write in
    start_numba()  # once, before the workers are forked

    started = time.monotonic()
    with Progress(f"developing {len(sources)} files") as progress:
        progress.step(f"0 of {len(sources)}")
        failed = develop_all(list(zip(sources, destinations)), min(args.jobs, len(sources)),
                             args.look, args.quality, progress, lens)  # fmt: skip
    elapsed_s = time.monotonic() - started
    print(f"developed {len(sources) - failed}, failed {failed}, {elapsed_s:.1f} s, "
          f"{elapsed_s / len(sources):.2f} s per file")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``batch`` subcommand."""
    parser = subparsers.add_parser(
        "batch", help="develop many raw files (or folders of them) to JPEG, on every core"
    )
    parser.add_argument("inputs", nargs="+", metavar="input",
                        help="raw files, or folders searched recursively for raw files")
    parser.add_argument("-o", "--output", required=True, help="OUTDIR for the JPEGs")
    parser.add_argument("--look", default="standard", help="see `obscura looks`")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="files developed at once (default: one per core)")
    parser.add_argument("--quality", type=int, default=DEFAULT_JPEG_QUALITY,
                        help="JPEG quality 1-100")
    add_lens_options(parser)
    parser.set_defaults(run=run)
