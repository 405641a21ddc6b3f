"""``realisation: ct-2026``: CounterfactualTraining.jl's synthetic points replayed (cfx.data.julia_ct2026)."""

import numpy as np
import pytest

from cfx.data.julia_ct2026 import N_TEST, ct2026_points, ct2026_split
from cfx.data.julia_mljbase import JuliaRandom
from cfx.experiments.kinds.ct.reference import REFERENCE_CENTRES


def test_julia_1_11_documented_randperm_and_seeding():
    # Julia 1.11's stdlib docstrings (jldoctest): randperm(Xoshiro(123), 4) and rand(Xoshiro(1234), 2)
    assert (JuliaRandom(123).randperm(4) + 1).tolist() == [1, 4, 2, 3]
    assert JuliaRandom(1234).uniform() == 0.32597672886359486


def test_ls_points_have_the_reference_centres_and_split_sizes():
    X, y = ct2026_points("linearly_separable")
    assert X.shape == (100_000, 2) and X.dtype == np.float32 and set(np.unique(y)) == {0, 1}
    # make_blobs' first draw is the centres (the preset's REFERENCE_CENTRES); std 0.5 around them
    for c in (0, 1):
        assert np.abs(X[y == c].mean(0) - REFERENCE_CENTRES[c]).max() < 0.01
        assert abs(float(X[y == c].std(0).mean()) - 0.5) < 0.01
    # pinned: the first point after randperm(Xoshiro(2025), 100000) (regression value of this replay)
    np.testing.assert_allclose(X[0], [-0.664617657661438, 4.253714561462402], rtol=1e-6)
    assert y[:5].tolist() == [1, 0, 0, 1, 1]
    train, test = ct2026_split("linearly_separable", seed=0)
    share = np.bincount(y[:3600]) / 3600
    held = np.floor(600 / 3600 * share * 3600).astype(int)  # CE.jl's per-class hold-out
    assert np.bincount(train.y).tolist() == (np.bincount(y[:3600]) - held).tolist()
    np.testing.assert_array_equal(test.X, X[-N_TEST:])
    other, test2 = ct2026_split("linearly_separable", seed=1)
    np.testing.assert_array_equal(test2.X, test.X)  # the seed moves only the hold-out
    assert len(other.y) == len(train.y) and not np.array_equal(other.X, train.X)


def test_unknown_set_is_refused():
    with pytest.raises(ValueError, match="realisation ct-2026"):
        ct2026_points("adult")


@pytest.mark.parametrize(
    "override, match",
    [("data[0].realisation=ard-2023", "realisation"), ("data[0].name=adult", r"data\[0\].realisation")],
)
def test_a_ct_config_refuses_a_realisation_it_has_not(override, match):
    from pathlib import Path

    import cfx.experiments
    from cfx.experiments import ConfigError, load_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    with pytest.raises(ConfigError, match=match):
        cfg = load_config(configs / "ct_smoke.yaml", ["data[0].realisation=ct-2026", override])
        cfx.experiments.get_kind("ct").check(cfg)


def test_the_preset_replays_the_reference_points_unless_the_config_draws_its_own(tmp_path):
    from cfx.experiments import load_config

    path = tmp_path / "c.yaml"
    path.write_text(
        "kind: ct\nname: x\npreset: ct-2026\ndata: [linearly_separable, {name: moons, n: 500},"
        " {name: circles, realisation: cfx}, {name: adult, protected: age}]\n"
    )
    ls, moons, circles, adult = load_config(path).data
    assert ls.realisation == "ct-2026" and moons.realisation is None and circles.realisation == "cfx"
    assert adult.realisation is None
