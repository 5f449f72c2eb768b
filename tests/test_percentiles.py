"""Our percentiles and medians are numpy's (linear method), without numpy.ma."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pipeline.errors import InvalidParameterError
from pipeline.stages.percentiles import median, percentiles


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 4099])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_percentiles_are_numpys_linear_ones(size, dtype) -> None:
    rng = np.random.default_rng(size)
    values = (rng.gamma(2.0, 100.0, size=size)).astype(dtype)
    q = [0.0, 0.1, 1.0, 25.0, 50.0, 99.0, 99.5, 100.0]
    np.testing.assert_allclose(percentiles(values, q), np.percentile(values, q), rtol=1e-6)
    assert median(values.reshape(-1, 1)) == pytest.approx(float(np.median(values)), rel=1e-6)


def test_percentiles_refuse_no_values_and_percentages_out_of_range() -> None:
    with pytest.raises(InvalidParameterError, match="no values"):
        percentiles(np.array([]), 50.0)
    with pytest.raises(InvalidParameterError, match="0..100"):
        percentiles(np.arange(4.0), [50.0, 101.0])


def test_a_develop_on_the_compiled_kernels_imports_no_numpy_ma(raw_data) -> None:
    # np.percentile's first call imports numpy.ma: 7-12 ms of a fresh process (numba's
    # typeof imports it too, so this holds where the kernels were compiled ahead of time).
    script = """
import sys
from pipeline.compiled_kernels import use_compiled_kernels
if not use_compiled_kernels():
    print("not built")
    sys.exit()
from pipeline.develop import develop
from pipeline.formats.dng_reader import read_dng
develop(read_dng(sys.argv[1]))  # no NoiseProfile: the noise model is fitted too
print("numpy.ma" in sys.modules)
"""
    source = raw_data / "pi_minimal_640x480" / "test.dng"
    result = subprocess.run([sys.executable, "-c", script, str(source)], capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    if result.stdout.strip() == "not built":
        pytest.skip("set-up did not compile the kernels (or the sources changed since)")
    assert result.stdout.split()[-1] == "False"
