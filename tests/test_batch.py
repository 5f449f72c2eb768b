"""`obscura batch`: many raw files in worker processes; one error line per failed file;
and the start-up of a command-line develop (no SciPy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from firmware.cli import main
from firmware.commands import batch
from firmware.commands.batch import find_raw_files, output_paths
from pipeline.formats.encoders.dng import encode_dng
from tests.conftest import mosaic_frame

REPO = Path(__file__).resolve().parents[1]


def _write_dng(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scene = rng.uniform(0.05, 0.8, size=(48, 64, 3))
    frame = mosaic_frame(scene, "RGGB", neutral=(0.5, 1.0, 0.7))
    path.write_bytes(encode_dng(frame))


@pytest.fixture
def raw_folder(tmp_path) -> Path:
    """in/a.dng, in/broken.dng (truncated), in/notes.txt, in/nested/a.dng, in/nested/b.DNG."""
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    _write_dng(folder / "a.dng", seed=1)
    _write_dng(folder / "nested" / "a.dng", seed=2)
    _write_dng(folder / "nested" / "b.DNG", seed=3)
    good = (folder / "a.dng").read_bytes()
    (folder / "broken.dng").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("not a raw file")
    return folder


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as jpeg:
        return np.asarray(jpeg)


def test_batch_goes_on_past_a_corrupt_file_and_reports_it(raw_folder, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["batch", str(raw_folder), "-o", str(out), "--jobs", "2"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("obscura: error:")]
    assert len(errors) == 1 and "broken.dng" in errors[0], captured.err
    assert "Traceback" not in captured.err
    assert "developed 3, failed 1" in captured.out
    # Same names from different folders get -2; nothing else (no temp file) is left.
    assert sorted(p.name for p in out.iterdir()) == ["a-2.jpg", "a.jpg", "b.jpg"]
    for jpeg in out.iterdir():
        pixels = _pixels(jpeg)  # decodes to the end: complete
        assert pixels.shape == (48, 64, 3) and 10 < pixels.mean() < 245
    assert not np.array_equal(_pixels(out / "a.jpg"), _pixels(out / "a-2.jpg"))


_DEVELOP_ONE = batch.develop_one


def _die_on_broken(source: Path, destination: Path, look: str, jpeg_quality: int, lens=None):
    """A worker that crashes (as a segfault or the out-of-memory killer would) on one file."""
    if source.name == "broken.dng":
        os._exit(70)
    return _DEVELOP_ONE(source, destination, look, jpeg_quality, lens)


def test_a_worker_that_dies_costs_only_its_file(raw_folder, tmp_path, capsys,
                                                monkeypatch) -> None:  # fmt: skip
    monkeypatch.setattr(batch, "develop_one", _die_on_broken)
    out = tmp_path / "out"
    assert main(["batch", str(raw_folder), "-o", str(out), "--jobs", "2"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("obscura: error:")]
    assert len(errors) == 1 and "broken.dng" in errors[0] and "died" in errors[0], captured.err
    assert "developed 3, failed 1" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["a-2.jpg", "a.jpg", "b.jpg"]


def test_jobs_1_and_2_develop_identical_images(raw_folder, tmp_path, capsys) -> None:
    (raw_folder / "broken.dng").unlink()
    outputs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        assert main(["batch", str(raw_folder), "-o", str(out), "--jobs", str(jobs)]) == 0
        outputs[jobs] = {p.name: _pixels(p) for p in sorted(out.iterdir())}
    assert list(outputs[1]) == ["a-2.jpg", "a.jpg", "b.jpg"]
    assert outputs[1].keys() == outputs[2].keys()
    for name, pixels in outputs[1].items():
        np.testing.assert_array_equal(pixels, outputs[2][name], err_msg=name)


def test_batch_output_is_the_single_develop_output(raw_folder, tmp_path) -> None:
    single = tmp_path / "single.jpg"
    assert main(["develop", str(raw_folder / "nested" / "b.DNG"), "-o", str(single)]) == 0
    assert main(["batch", str(raw_folder / "nested" / "b.DNG"), "-o", str(tmp_path / "out")]) == 0
    np.testing.assert_array_equal(_pixels(tmp_path / "out" / "b.jpg"), _pixels(single))


def test_output_names_resolve_collisions_and_never_name_an_input(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    in_out_dir = out / "x.jpg"  # an input that lives where outputs go
    in_out_dir.write_bytes(b"")
    sources = [tmp_path / "a" / "x.dng", tmp_path / "b" / "X.dng", in_out_dir]
    assert [p.name for p in output_paths(sources, out)] == ["x-2.jpg", "X-3.jpg", "x-4.jpg"]


def test_folders_are_searched_for_raw_files_and_each_file_is_taken_once(raw_folder) -> None:
    found = find_raw_files([raw_folder, raw_folder / "a.dng"])
    assert [p.relative_to(raw_folder).as_posix() for p in found] == [
        "a.dng", "broken.dng", "nested/a.dng", "nested/b.DNG",
    ]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["{tmp}/missing"], "missing"),
        (["{tmp}/empty"], "no raw files"),
        (["{in}", "--jobs", "0"], "--jobs 0"),
        (["{in}", "--quality", "101"], "--quality 101"),
        (["{in}", "--look", "sepia-dream"], "sepia-dream"),
    ],
)
def test_bad_arguments_are_one_line_errors_before_any_work(
    raw_folder, tmp_path, capsys, extra, expected
) -> None:
    (tmp_path / "empty").mkdir()
    args = [a.format(tmp=tmp_path, **{"in": raw_folder}) for a in extra]
    assert main(["batch", *args, "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_command_line_develop_imports_neither_scipy_nor_the_burst_kernels(
    raw_folder, tmp_path
) -> None:
    """Start-up: numba starts without SciPy; one frame needs no burst pipeline."""
    pytest.importorskip("scipy")  # else trivially true
    code = (
        "import sys\n"
        "from firmware.cli import main\n"
        f"assert main(['develop', {str(raw_folder / 'a.dng')!r}, '-o', "
        f"{str(tmp_path / 'a.jpg')!r}]) == 0\n"
        "print('scipy' in sys.modules, 'pipeline.burst.burst' in sys.modules)\n"
        "import scipy.linalg\n"  # hidden only while numba started
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == "False False"


def test_start_numba_lets_idle_openmp_threads_sleep_unless_the_user_chose(monkeypatch) -> None:
    from pipeline.numba_runtime import start_numba

    monkeypatch.setenv("OMP_WAIT_POLICY", "active")  # restored after the test
    start_numba()
    assert os.environ["OMP_WAIT_POLICY"] == "active"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    start_numba()
    assert os.environ["OMP_WAIT_POLICY"] == "passive"



def test_a_worker_collects_only_what_it_creates() -> None:
    # A worker is forked from a batch whose collector is off: it turns it back on (file
    # after file, cycles would pile up), over only what it did not inherit.
    script = (
        "import gc; gc.disable()\n"
        "from firmware.commands.batch import _start_worker\n"
        "_start_worker(1, {})\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    assert out.stdout.split() == ["True", "True"]


def _needs_numba_once(source: Path, destination: Path, look: str, jpeg_quality: int,
                      lens=None):
    """A worker on kernels compiled ahead of time, which none of takes a file the first time
    (the second, the batch's numba workers develop it)."""
    marker = destination.with_suffix(".tried")
    if not marker.exists():
        marker.write_text("")
        return batch.FileResult(error=f"{source}: kernel: no compiled variant takes uint8[2d]",
                                needs_numba=True)  # fmt: skip
    marker.unlink()
    return _DEVELOP_ONE(source, destination, look, jpeg_quality, lens)


def test_a_file_no_compiled_kernel_takes_is_developed_again_by_numba_workers(
    raw_folder, tmp_path, capsys, monkeypatch
) -> None:
    (raw_folder / "broken.dng").unlink()
    pools = []
    make_pool = batch._pool

    def recorded_pool(jobs: int, with_numba: bool):
        pools.append(with_numba)
        return make_pool(jobs, with_numba)

    monkeypatch.setattr(batch, "develop_one", _needs_numba_once)
    monkeypatch.setattr(batch, "_pool", recorded_pool)
    out = tmp_path / "out"
    assert main(["batch", str(raw_folder), "-o", str(out), "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "obscura: error" not in captured.err, captured.err
    assert "developed 3, failed 0" in captured.out
    assert pools == [False, True]  # the first workers, then numba's for the three files
    assert sorted(p.name for p in out.iterdir()) == ["a-2.jpg", "a.jpg", "b.jpg"]
