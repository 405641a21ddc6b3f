"""The replay of the ECCCo reference's synthetic points (cfx.data.julia_eccco2024) and the eccco
kind's ``realisation: eccco-2024``."""

from __future__ import annotations

import numpy as np
import pytest

from cfx.data.julia_eccco2024 import N_FIT, eccco2024_points, eccco2024_split, julia_rand_range
from cfx.data.julia_rng import Xoshiro
from cfx.experiments import ConfigError, parse_config


def test_nearly_divisionless_range_takes_the_top_bits_for_a_power_of_two():
    a, b = Xoshiro(5), Xoshiro(5)
    for _ in range(50):  # s = 2^k: m = x·2^k never falls below the threshold 0, value = x >> (64 − k)
        assert julia_rand_range(a, 1, 1024) == 1 + (b.next_u64() >> 54)
    v = [julia_rand_range(a, 3, 9) for _ in range(3000)]
    assert set(v) == set(range(3, 10)) and abs(np.mean(v) - 6) < 0.15


def _box(X):
    """ECCCo's ``prior_sampling_space``: [min(mean − 3 sd), max(mean + 3 sd)] over the features."""
    X = X.astype(np.float64)
    m, s = X.mean(0), X.std(0, ddof=1)
    return (m - 3 * s).min(), (m + 3 * s).max()


def test_the_replay_puts_the_reference_models_sampler_box_where_its_buffer_is_clamped():
    # the extrema of the JEM training buffers in ECCCo.jl's models/<data>_models.jls (Float32)
    lo, hi = _box(eccco2024_split("linearly_separable")[0].X)
    assert abs(lo - -0.5639408) < 3e-7 and abs(hi - 0.9334993) < 3e-7
    assert abs(_box(eccco2024_split("circles")[0].X)[0] - -1.6623206) < 3e-7
    X, y, train = eccco2024_points("linearly_separable")
    assert abs(_box(X)[0] - -0.5639408) > 1e-4  # all 1250 rows give another box: the split matters


@pytest.mark.parametrize("name,rows,fit", [("linearly_separable", 1000, 500), ("moons", 2501, 1250)])
def test_the_reference_split_sizes_and_classes(name, rows, fit):
    train, test = eccco2024_split(name)
    assert len(train) == rows and len(test) == len(eccco2024_points(name)[1]) - rows and N_FIT[name] == fit
    assert np.all(np.diff(train.ids) > 0)  # setdiff(1:N, test): the rows keep their order
    assert abs(np.bincount(test.y)[0] - np.bincount(test.y)[1]) == 0  # floor(0.2·round(N/2)) per class


def test_realisation_config_uses_the_rows_and_the_unshuffled_half_and_refuses_changes():
    from cfx.experiments.kinds.eccco.runner import check

    base = {"kind": "eccco", "name": "t", "preset": "eccco-2024", "runs": 1}
    cfg = parse_config({**base, "data": [{"name": "linearly_separable", "realisation": "eccco-2024"}]})
    fit, cal, train, _ = check(cfg)[("linearly_separable", 0)]
    np.testing.assert_array_equal(fit.X, train.X[:500])
    np.testing.assert_array_equal(cal.X, train.X[500:])
    for item, key in (
        ({"name": "linearly_separable", "n": 80}, "n"),
        ({"name": "linearly_separable", "std": 0.3}, "std"),
        ({"name": "linearly_separable", "centers": [[0.0, 0.0], [0.5, 0.5]]}, "centers"),
        ({"name": "gmsc"}, "realisation"),
        ({"name": "moons", "realisation": "ard-2023"}, "realisation"),
    ):
        with pytest.raises(ConfigError, match=key):
            parse_config({**base, "data": [{"realisation": "eccco-2024", **item}]})


def test_a_split_outside_the_replayed_sampling_branch_is_refused():
    from cfx.data.julia_eccco2024 import _sample_without_replacement
    from cfx.data.julia_rng import Xoshiro

    with pytest.raises(ValueError, match="Fisher-Yates branch only"):
        _sample_without_replacement(Xoshiro(42), list(range(100)), 2)
