"""The one-pass render equals its stages run one after the other."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.colour.transforms import apply_matrix
from pipeline.errors import InvalidParameterError
from pipeline.stages import black_point, display_pass, local_tone_mapping, tone_curve


@pytest.mark.parametrize("black", [0.0, 0.004])
def test_render_matches_the_stages_in_sequence(black: float) -> None:
    rng = np.random.default_rng(21)
    scene = np.exp(rng.normal(-2.0, 2.0, size=(48, 40, 1))).astype(np.float32)
    rgb = (scene * rng.uniform(0.5, 1.5, size=(48, 40, 3))).astype(np.float32)
    rgb[0, 0] = [-0.01, 0.0, 0.002]  # below black
    matrix = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]]) * 1.7
    tone_map = local_tone_mapping.fit(rgb[::4, ::4, 1].copy(), strength=1.0)
    assert not tone_map.is_identity
    curve = tone_curve.FilmicCurve(contrast=1.5, white=tone_map.mapped(4.0))

    expected = apply_matrix(rgb.copy(), matrix)
    black_point.remove_glare(expected, black)
    local_tone_mapping.apply(expected, tone_map)
    tone_curve.apply(expected, curve)
    rendered = display_pass.render(rgb.copy(), matrix, black, tone_map, curve)
    np.testing.assert_allclose(rendered, expected, atol=2e-6)


def test_a_matrix_of_the_wrong_shape_is_rejected() -> None:
    tone_map = local_tone_mapping.fit(np.full((8, 8), 0.18, np.float32), strength=1.0)
    with pytest.raises(InvalidParameterError, match="matrix"):
        display_pass.render(np.zeros((4, 4, 3), np.float32), np.eye(2), 0.0, tone_map,
                            tone_curve.FilmicCurve())
