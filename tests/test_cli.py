"""The `obscura` command: develop real DNGs, and fail cleanly on bad input."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from firmware.cli import main

IMAGE1 = "pi_arducam_pivariety_1920x1200/image1.dng"


def test_develop_real_dng_to_jpeg_with_exif(raw_data, tmp_path) -> None:
    out = tmp_path / "photo.jpg"
    assert main(["develop", str(raw_data / IMAGE1), "-o", str(out), "--quality", "90"]) == 0
    with Image.open(out) as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (1920, 1200)
        assert jpeg.getexif()[0x010F] == "RaspberryPi"
        pixels = np.asarray(jpeg)
    assert 60 < pixels.mean() < 200


def test_develop_neutral_to_16_bit_tiff(raw_data, tmp_path) -> None:
    out = tmp_path / "photo.tif"
    source = raw_data / "pi_minimal_640x480/test.dng"
    assert main(["develop", str(source), "-o", str(out), "--look", "neutral"]) == 0
    image = tifffile.imread(out)
    assert image.dtype == np.uint16 and image.shape == (480, 640, 3)
    assert image.max() > 256  # real 16-bit values, not 8-bit ones widened


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_truncated_dng_is_a_one_line_error(raw_data, tmp_path, capsys) -> None:
    broken = tmp_path / "broken.dng"
    broken.write_bytes((raw_data / IMAGE1).read_bytes()[:100_000])
    assert main(["develop", str(broken), "-o", str(tmp_path / "x.jpg")]) == 1
    assert "broken.dng" in _one_line_error(capsys)
    assert not (tmp_path / "x.jpg").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["develop", "{tmp}/missing.dng", "-o", "{tmp}/x.jpg"], "missing.dng"),
        (["develop", "{raw}", "-o", "{tmp}/x.png"], "x.png"),
        (["develop", "{raw}", "-o", "{tmp}/x.jpg", "--look", "sepia-dream"], "sepia-dream"),
        (["develop", "{raw}", "-o", "{tmp}/x.jpg", "--quality", "0"], "quality=0"),
        (["develop", "{raw}", "-o", "{tmp}/no-such-dir/x.jpg"], "no-such-dir"),
    ],
)
def test_bad_arguments_are_one_line_errors(raw_data, tmp_path, capsys, args, expected) -> None:
    argv = [a.format(tmp=tmp_path, raw=raw_data / IMAGE1) for a in args]
    assert main(argv) == 1
    assert expected in _one_line_error(capsys)


def test_console_script_never_prints_a_traceback(tmp_path) -> None:
    garbage = tmp_path / "garbage.dng"
    garbage.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    result = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "develop", str(garbage), "-o", str(tmp_path / "o.jpg")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("obscura: error: ") and "garbage.dng" in result.stderr
    assert "Traceback" not in result.stderr


def test_looks_lists_every_builtin_look(capsys) -> None:
    assert main(["looks"]) == 0
    out = capsys.readouterr().out
    assert "neutral" in out and "standard" in out


@pytest.fixture(scope="module")
def simulated_dng(tmp_path_factory):
    """A small DNG written by `obscura simulate`: what a bare clone has to try things on."""
    path = tmp_path_factory.mktemp("sim") / "scene.dng"
    assert main(["simulate", "-o", str(path), "--size", "256x192"]) == 0
    return path


def test_simulate_writes_a_dng_that_develops(simulated_dng, tmp_path) -> None:
    from pipeline.formats.dng_reader import read_dng

    frame = read_dng(simulated_dng)
    assert frame.shape == (192, 256) and frame.metadata.model
    out = tmp_path / "photo.jpg"
    assert main(["develop", str(simulated_dng), "-o", str(out)]) == 0
    with Image.open(out) as jpeg:
        assert jpeg.size == (256, 192)


def test_simulate_writes_a_numbered_burst(tmp_path, capsys) -> None:
    out = tmp_path / "burst.dng"
    assert main(["simulate", "-o", str(out), "--frames", "3", "--size", "64x48",
                 "--motion-px", "2"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["burst_01.dng", "burst_02.dng", "burst_03.dng"]
    assert capsys.readouterr().out.split() == [str(tmp_path / n) for n in names]
    assert main(["simulate", "-o", str(out), "--gain", "64"]) == 1
    assert "--gain 64" in _one_line_error(capsys)


@pytest.mark.parametrize("link", ["same name", "symlink", "hard link"])
def test_develop_refuses_to_overwrite_its_input(simulated_dng, tmp_path, capsys, link) -> None:
    source = tmp_path / "in.tif"  # a raw file that happens to carry an image's suffix
    source.write_bytes(simulated_dng.read_bytes())
    output = source if link == "same name" else tmp_path / "out.tif"
    if link == "symlink":
        output.symlink_to(source)
    elif link == "hard link":
        output.hardlink_to(source)
    assert main(["develop", str(source), "-o", str(output)]) == 1
    assert f"{output}: is the input {source}" in _one_line_error(capsys)
    assert source.read_bytes() == simulated_dng.read_bytes()


def test_output_problems_are_found_before_reading(tmp_path, capsys) -> None:
    missing = str(tmp_path / "missing.dng")  # would be the error if the input were read first
    (tmp_path / "folder.jpg").mkdir()
    for output, expected in [
        (tmp_path / "no-dir" / "x.jpg", "no folder"),
        (tmp_path / "folder.jpg", "is a folder"),
        (Path("/proc/self/x.jpg"), "cannot write in /proc/self"),
        (tmp_path / "x.webp", "unknown output type '.webp'"),
    ]:
        for command in ("develop", "contact-sheet"):
            assert main([command, missing, "-o", str(output)]) == 1
            assert expected in _one_line_error(capsys)


def test_quality_for_a_tiff_and_ev_beyond_the_camera_are_refused(simulated_dng, tmp_path, capsys) -> None:
    out = tmp_path / "x.tif"
    assert main(["develop", str(simulated_dng), "-o", str(out), "--quality", "90"]) == 1
    assert "--quality 90 is for JPEG" in _one_line_error(capsys)
    assert main(["develop", str(simulated_dng), "-o", str(out), "--ev", "5"]) == 1
    assert "-4.0..4.0" in _one_line_error(capsys)  # capture.exposure_compensation_ev's range
    assert not out.exists()


def test_contact_sheet_tile_width_is_bounded(simulated_dng, tmp_path, capsys) -> None:
    out = tmp_path / "sheet.jpg"
    assert main(["contact-sheet", str(simulated_dng), "-o", str(out), "--tile-width", "100000"]) == 1
    assert "tile_width_px=100000: expected 16..4056" in _one_line_error(capsys)
    assert main(["contact-sheet", str(simulated_dng), "-o", str(out), "--columns", "0"]) == 1
    assert "columns=0" in _one_line_error(capsys)


def test_ls_of_a_missing_storage_folder_fails(tmp_path, capsys) -> None:
    assert main(["ls", "--storage", str(tmp_path / "nonexistent")]) == 1
    assert "nonexistent: no such folder" in _one_line_error(capsys)


def test_version(capsys) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"obscura {metadata.version('obscura')}"


def _all_parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_help_is_plain_text_with_defaults() -> None:
    from firmware.cli import build_parser

    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) > 20
    for parser in parsers:
        text = parser.format_help()
        assert "``" not in text and ":func:" not in text and ":class:" not in text, parser.prog
        assert "(default: None)" not in text and "(default: False)" not in text, parser.prog
    develop = next(p for p in parsers if p.prog == "obscura develop")
    text = " ".join(develop.format_help().split())
    assert "(default: 92; JPEG only)" in text and "(default: 0.0)" in text
    assert "(default: standard)" in text and "-o OUT.jpg|OUT.tif: develop a raw file" in text


def test_closed_stdout_pipe_ends_quietly(tmp_path) -> None:
    photos = tmp_path / "DCIM"
    photos.mkdir()
    for i in range(2000):  # about 200 kB of JSON: more than a pipe holds
        (photos / f"OBS_{i:04d}.JPG").write_bytes(b"")
    command = [sys.executable, "-m", "firmware.cli", "ls", "--storage", str(tmp_path),
               "--json", "-n", "2000"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout.readline().strip() == b"["
        child.stdout.close()  # as `| head -1` does
        stderr = child.stderr.read()
        assert child.wait(timeout=120) == 141
    assert stderr == b""


def test_broken_pipe_in_process_is_status_141(monkeypatch, capsys) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["looks"]) == 141
    assert capsys.readouterr().err == ""


def test_progress_shows_steps_on_a_terminal_only() -> None:
    from firmware.progress import Progress

    shown = io.StringIO()
    with Progress("merging 4 frames", stream=shown, is_shown=True) as progress:
        with progress("align"):
            pass
        with progress("align"):
            pass
    text = shown.getvalue()
    assert "\r\x1b[Kmerging 4 frames: align (0 s)" in text and "align #2" in text
    assert text.endswith("\r\x1b[K")  # the line is erased at the end
    quiet = io.StringIO()  # not a terminal
    with Progress("merging", stream=quiet) as progress:
        progress.step("reading")
    assert quiet.getvalue() == ""


def test_demo_into_an_unusable_folder_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "DCIM").write_bytes(b"")  # a file where the photo folder must go
    assert main(["demo", "--out", str(tmp_path)]) == 1
    assert "cannot create folders" in _one_line_error(capsys)
    assert main(["demo", "--out", str(tmp_path / "DCIM" / "x")]) == 1
    assert "--out" in _one_line_error(capsys)


def test_demo_takes_a_relative_card_folder(tmp_path, monkeypatch) -> None:
    """`obscura demo --out card` (the config's storage path must be absolute)."""
    from firmware.commands import demo

    runs = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "run_demo", lambda out, *args: runs.append(out) or {})
    monkeypatch.setattr(demo, "print_table", lambda *args: None)
    assert main(["demo", "--out", "card"]) == 0
    assert runs == [tmp_path / "card"] and (tmp_path / "card").is_dir()


def test_looks_creates_the_user_looks_folder(tmp_path, monkeypatch, capsys) -> None:
    folder = tmp_path / "config" / "obscura" / "looks"
    monkeypatch.setenv("OBSCURA_LOOKS_DIR", str(folder))
    assert main(["looks"]) == 0
    assert folder.is_dir() and str(folder) in capsys.readouterr().out


def test_commands_that_need_no_kernel_do_not_load_numba(tmp_path: Path) -> None:
    """`obscura config check` over SSH starts in a fraction of a second: the ISP's
    numba is loaded by the first kernel module, not by `import pipeline`; and numba
    still starts without SciPy when it is loaded."""
    (tmp_path / "c.toml").write_text('capture.mode = "single"\n')
    code = (
        "import sys\n"
        "from firmware.cli import main\n"
        f"assert main(['config', 'check', {str(tmp_path / 'c.toml')!r}]) == 0\n"
        "print('numba' in sys.modules)\n"
        "from pipeline import demosaic\n"
        "print('numba' in sys.modules, 'scipy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], check=True)
    assert result.stdout.split()[-3:] == ["False", "True", "False"], result.stdout


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2,
                    reason="counts the process's threads in Linux's /proc on a multi-core machine")
@pytest.mark.parametrize(("preset", "threads"), [(None, 1), ("2", 2)])
def test_obscura_imports_numpy_with_one_blas_thread_unless_told(preset, threads) -> None:
    """NumPy's OpenBLAS would start a spinning thread per core for every `obscura`
    process; the package asks for one, and a user's OPENBLAS_NUM_THREADS still wins."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    code = "import firmware.cli, numpy, os; print(len(os.listdir('/proc/self/task')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], env=env, check=True)
    assert int(result.stdout) == threads


_COLLECTOR_AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("collector", "on" if gc.isenabled() else "off"))
sys.argv = ["obscura", *sys.argv[1:]]
from firmware.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize(("command", "collector"), [
    ("develop", "off"), ("merge", "off"), ("batch", "off"), ("status", "on"), ("run", "on"),
])  # fmt: skip
def test_the_one_shot_commands_run_without_the_cyclic_garbage_collector(command, collector) -> None:
    # develop, merge and batch load numba's hundreds of thousands of objects and exit; the
    # daemon (run) lives on and keeps the collector.
    out = subprocess.run([sys.executable, "-c", _COLLECTOR_AT_EXIT, command, "--help"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == f"collector {collector}"


def _subcommand_names(parser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_a_command_line_builds_the_parser_of_its_own_subcommand_alone() -> None:
    from firmware.cli import COMMAND_MODULES, build_parser

    # Every subcommand's module is in the table, under each name it registers.
    assert _subcommand_names(build_parser()) == set(COMMAND_MODULES)
    for name, module in COMMAND_MODULES.items():
        names = _subcommand_names(build_parser(name))
        assert name in names
        assert {COMMAND_MODULES[n] for n in names} == {module}
    assert _subcommand_names(build_parser("dvelop")) == set(COMMAND_MODULES)  # all choices
