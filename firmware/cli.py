"""obscura: camera firmware for the Raspberry Pi HQ Camera, and its raw developer.

Errors are one line on stderr (exit 1); `obscura COMMAND --help` describes each command.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import select
import sys
from pathlib import Path
from types import ModuleType

from firmware import warm_developer
from pipeline.errors import CompiledKernelMismatch, ObscuraError

logger = logging.getLogger("obscura")


#: The module of ``firmware/commands`` that registers each subcommand, by its name.
COMMAND_MODULES = {
    "batch": "batch", "config": "config", "contact-sheet": "contact_sheet", "demo": "demo",
    "develop": "develop", "focus": "focus", "lens": "lens", "calibrate": "lens",
    "logs": "logs", "looks": "looks", "ls": "ls", "merge": "merge", "run": "run",
    "shoot": "shoot", "simulate": "simulate", "status": "status", "warm-cache": "warm_cache",
}  # fmt: skip


def subcommands(command: str | None = None) -> list[ModuleType]:
    """The modules of ``command``'s subcommand alone when it is one (importing every
    command's module costs each command about 10 ms), else of every subcommand (for
    ``obscura --help`` and for a misspelt command's list of choices). Not called for a
    command the warm developer runs, so that its client starts without numpy."""
    import importlib

    names = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMAND_MODULES.values()
    return [importlib.import_module(f"firmware.commands.{name}") for name in dict.fromkeys(names)]


#: Exit status of a command whose output pipe was closed (128 + SIGPIPE, as a shell shows).
BROKEN_PIPE_STATUS = 141


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; each option's help ends with its default, when it has one
    worth showing (not None, False, or one the help already states)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            not action.option_strings
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
            or "default" in text
        ):
            return action.help
        return f"{text} (default: %(default)s)".strip()


class ArgumentParser(argparse.ArgumentParser):
    """argparse with :class:`HelpFormatter`, for the tool and every subcommand under it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def plain_text(docstring: str | None) -> str | None:
    """A docstring as help text: RST literals and roles (````x````, ``:func:`x```) made plain."""
    if not docstring:
        return None
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", docstring)
    return text.replace("``", "").strip()


def version() -> str:
    """The installed package's version, else the source tree's (pyproject.toml)."""
    import tomllib
    from importlib import metadata

    try:
        return metadata.version("obscura")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


class VersionAction(argparse.Action):
    """``--version``: prints :func:`version` and exits; looked up only when asked for
    (reading the package's metadata costs every command 15 ms of imports)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and exit")  # fmt: skip

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``command``'s subcommand, or of every subcommand when that
    is not one (:func:`subcommands`); each is described by its module's docstring."""
    parser = ArgumentParser(prog="obscura", description=plain_text(__doc__))
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in subcommands(command):
        before = set(subparsers.choices)
        module.register(subparsers)
        for name in set(subparsers.choices) - before:
            command = subparsers.choices[name]
            command.description = command.description or plain_text(module.__doc__)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The subcommand of a command line: its first word that is not an option of
    ``obscura`` itself (``-v``, ``--verbose``), if any."""
    words = [word for word in argv if word not in ("-v", "--verbose")]
    return words[0] if words and not words[0].startswith("-") else None


def _quiet_broken_stdout() -> None:
    """After a reader closed our stdout (``| head``): point it at /dev/null, so the
    interpreter's last flush does not print "Broken pipe" either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a real file descriptor (a test's captured stdout)


def _is_stdout_broken() -> bool:
    """Whether stdout's reader has gone: its buffer cannot be flushed, or the pipe reports
    an error (poll's POLLERR on a pipe whose read end is closed)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; errors are one line on stderr, never a traceback.

    Output to a closed pipe (``obscura ls --json | head``) ends any command quietly with
    status 141, as SIGPIPE would (the daemon itself must not die of SIGPIPE, so the
    signal keeps Python's default of raising BrokenPipeError).

    ``obscura develop`` from the command line (``argv`` None) goes to the warm developer
    when one runs (:mod:`firmware.warm_developer`), and starts one when none does.
    """
    warm = argv is None and warm_developer.serves(sys.argv[1:])
    if warm:
        status = warm_developer.run_remotely(sys.argv[1:])
        if status is not None:
            return status
    if argv is None and sys.argv[1:2] in (["develop"], ["merge"], ["batch"]):
        from firmware.freed_memory import fault_in_small_pages, reuse_freed_memory

        fault_in_small_pages()  # before numpy: no page fault that stops to compact memory
        from pipeline.compiled_kernels import use_compiled_kernels
        from pipeline.numba_runtime import collect_garbage_only_while_compiling

        use_compiled_kernels()  # when built: no numba to start
        collect_garbage_only_while_compiling()  # a process that develops and exits
        reuse_freed_memory()  # and whose stages' arrays can serve the next ones
    try:
        return _main(argv)
    except CompiledKernelMismatch as exc:
        _run_again_with_numba(exc)
    except BrokenPipeError:
        _quiet_broken_stdout()
        return BROKEN_PIPE_STATUS
    finally:
        if warm:  # for the next run, started once this one is done with the cores
            warm_developer.start_server()


def _run_again_with_numba(reason: Exception) -> None:
    """Replace this process with the same command line run with numba: a kernel compiled
    ahead of time could not take what it was given (:mod:`pipeline.compiled_kernels`).
    Nothing was written yet: outputs are written whole at the end."""
    from pipeline.compiled_kernels import ENVIRONMENT_SWITCH

    logger.debug("running again with numba: %s", reason)
    sys.stdout.flush()
    sys.stderr.flush()
    environment = {**os.environ, ENVIRONMENT_SWITCH: "0"}
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)


def _main(argv: list[str] | None) -> int:
    args = build_parser(_command_named(sys.argv[1:] if argv is None else argv)).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # tifffile warns about every oddity it meets; our reader turns real problems into errors.
        logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        return args.run(args)
    except BrokenPipeError as exc:
        if _is_stdout_broken():
            raise  # main() ends quietly
        print(f"obscura: error: {exc}", file=sys.stderr)  # a socket's, not stdout's
        return 1
    except (ObscuraError, OSError) as exc:
        print(f"obscura: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
