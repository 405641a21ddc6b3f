"""The replay of MLJBase 0.21.3's synthetic sets under Julia 1.8's default stream
(cfx.data.julia_mljbase) and the dynamics configs' ``realisation: ard-2023``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cfx.data.julia_mljbase import JuliaRandom, ard2023_synthetic, make_blobs
from cfx.data.julia_rng import Xoshiro, mljbase_blob_centers


def test_ziggurat_draws_are_standard_normal_and_the_tail_is_reached():
    rng = JuliaRandom(7)
    z = np.array([rng.randn() for _ in range(20000)])
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.02
    assert abs(np.mean(np.abs(z) > 1.96) - 0.05) < 0.006
    assert np.max(np.abs(z)) > 3.6  # beyond the ziggurat's base layer r = 3.654: the tail branch


def test_bulk_rand_forks_eight_lanes_from_32_draws_and_small_arrays_are_scalar():
    a, b = JuliaRandom(3), Xoshiro(3)
    np.testing.assert_array_equal(a.rand_array(7), b.rand(7))  # 56 bytes < 64: the scalar stream
    big = a.rand_array(1000)
    for _ in range(32):
        b.next_u64()
    assert a.next_u64() == b.next_u64()  # the parent moved by the 32 forked words only
    assert big.shape == (1000,) and 0 <= big.min() and big.max() < 1 and abs(big.mean() - 0.5) < 0.03


def test_randperm_is_a_permutation_and_blobs_match_the_known_centres():
    perm = JuliaRandom(1).randperm(1000)
    np.testing.assert_array_equal(np.sort(perm), np.arange(1000))
    X, y, c = make_blobs(JuliaRandom(42), 1000, 2, centers=2, cluster_std=0.1, center_box=(-2.0, 2.0))
    np.testing.assert_allclose(c, mljbase_blob_centers(42, 2, 2, (-2.0, 2.0)))
    assert np.bincount(y)[1:].tolist() == [500, 500]
    for k in (1, 2):
        assert np.linalg.norm(X[y == k].mean(0) - c[k - 1]) < 0.02


def test_the_papers_overlapping_draw_has_the_outliers_of_its_scatter_plot():
    """paper/www/synthetic_data.png (overlapping panel): class 0 has a point near (−0.3, 1.47),
    class 1 one near (2.95, −0.9); the centres are (0.445, −0.288) and (1.978, 0.143)."""
    X, y = ard2023_synthetic("overlapping")
    assert X.shape == (1000, 2) and np.bincount(y).tolist() == [500, 500]
    for point, label in (((-0.3, 1.47), 0), ((2.95, -0.9), 1)):
        i = np.argmin(np.linalg.norm(X - point, axis=1))
        assert np.linalg.norm(X[i] - point) < 0.05 and y[i] == label
    np.testing.assert_allclose(X[:2], [[0.52924987, -0.14387388], [1.9933748, 0.20883899]], atol=1e-7)
    Xm, ym = ard2023_synthetic("moons")
    assert ym[np.argmin(np.linalg.norm(Xm - (0.95, -0.97), axis=1))] == 1  # the lowest point of the lower moon
    with pytest.raises(ValueError, match="name must be one of"):
        ard2023_synthetic("blobs")


def _config(tmp_path, data):
    import yaml

    from cfx.experiments import load_config

    path = tmp_path / "c.yaml"
    raw = {"kind": "dynamics", "preset": "ard-2023", "models": ["linear"], "generators": ["generic"], "data": data}
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_a_dynamics_config_selects_the_papers_realisation_and_refuses_what_contradicts_it(tmp_path):
    from cfx.experiments.config import ConfigError
    from cfx.experiments.kinds.dynamics import _split

    cfg = _config(
        tmp_path, [{"name": "overlapping", "realisation": "ard-2023"}, {"name": "circles", "realisation": "ard-2023"}]
    )
    X, y = ard2023_synthetic("circles")
    train, test = _split(cfg.data[1], cfg)
    assert len(train.y) == 800 and len(test.y) == 200
    rows = {tuple(r) for r in np.round(X, 5)}
    assert all(tuple(r) in rows for r in np.round(np.asarray(train.X, float), 5)[:50])
    inner = np.linalg.norm(np.asarray(train.X), axis=1) < 0.5
    assert (np.asarray(train.y)[inner] == 0).all()  # MLJ's labels, not flipped a second time
    for bad, where in (
        ({"centers": [[0, 0], [1, 1]]}, "centers"),
        ({"n": 500}, "data[0].n"),
        ({"name": "adult"}, "realisation"),
    ):
        with pytest.raises(ConfigError, match=re.escape(where)):
            _config(tmp_path, [{"name": "overlapping", "realisation": "ard-2023", **bad}])


def test_a_saved_config_without_a_realisation_reads_back(tmp_path):
    """The resolved config a run saves writes ``realisation: null``; reading it back must work."""
    import yaml

    from cfx.experiments import load_config

    cfg = _config(tmp_path, [{"name": "overlapping", "n": 40}, {"name": "moons", "realisation": "ard-2023"}])
    path = tmp_path / "saved.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    again = load_config(path)
    assert [d.realisation for d in again.data] == [None, "ard-2023"]
