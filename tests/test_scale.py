"""Scale: early-exit compaction, chunks gathered to the host, the per-call fast path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx import generators as G
from cfx.search import _runtime as R
from cfx.search import _core as S

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def uneven(moons_split, moons_mlp):
    """Factuals whose convergence is uneven: Generic with the gradient test ('generator
    conditions') stops some rows after a few steps and runs others to max_steps."""
    train, _ = moons_split
    x = np.asarray(train.X[:200])
    target = 1 - np.asarray(moons_mlp.predict(x))
    options = dict(key=KEY, max_steps=120)
    return x, target, options


def _uneven(gen):
    """The generator as the uneven problem searches it: the gradient test, a noisy start."""
    return gen.replace(convergence="generator_conditions", start="noise")


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a.steps), np.asarray(b.steps))
    np.testing.assert_array_equal(np.asarray(a.outcome), np.asarray(b.outcome))
    np.testing.assert_allclose(np.asarray(a.counterfactuals), np.asarray(b.counterfactuals), atol=1e-5)
    np.testing.assert_allclose(np.asarray(a.target_probs), np.asarray(b.target_probs), atol=1e-5)


def test_compaction_returns_the_plain_search(moons_mlp, uneven):
    x, target, options = uneven
    plain = cfx.generate(_uneven(G.Generic()), moons_mlp, x, target, **options)
    steps = np.asarray(plain.steps)
    assert steps.min() < 60 and steps.max() == 120  # the case compaction is for: uneven convergence
    before = compile_counts.search()
    compacted = cfx.generate(_uneven(G.Generic()), moons_mlp, x, target, compact=8, **options)
    _same(compacted, plain)
    cfx.generate(_uneven(G.Generic(cost=0.3)), moons_mlp, x, target, compact=8, **options)  # a new λ
    # both calls together: start + finish + one round program per bucket size (200 rows: 200,
    # 128, 64, 32), whatever λ does to convergence
    assert compile_counts.search() - before <= 6


def test_compaction_keeps_paths_k_and_constraints(moons_mlp, uneven):
    x, target, options = uneven
    constraints = cfx.Constraints(mutability=["both", "none"])
    kw = dict(options, return_path=True, constraints=constraints)
    dice = _uneven(G.DiCE(num_counterfactuals=2))
    plain = cfx.generate(dice, moons_mlp, x[:40], target[:40], **kw)
    compacted = cfx.generate(dice, moons_mlp, x[:40], target[:40], compact=5, **kw)
    _same(compacted, plain)
    np.testing.assert_allclose(np.asarray(compacted.path), np.asarray(plain.path), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(compacted.counterfactuals)[..., 1], np.repeat(x[:40, None, 1], 2, axis=1))


@pytest.mark.parametrize(
    "compact, message",
    [(0, "compact must be"), (-3, "compact must be"), (2.5, "compact must be"), (True, "compact must be")],
)
def test_bad_compaction_round_length_names_the_argument(linear_classifier, compact, message):
    with pytest.raises(ValueError, match=message):
        cfx.generate(G.Generic(), linear_classifier, np.zeros((2, 2), np.float32), 1, key=KEY, compact=compact)


def test_compaction_needs_the_while_loop(linear_classifier):
    with pytest.raises(ValueError, match="loop='while'"):
        cfx.generate(G.Generic(), linear_classifier, np.zeros((2, 2), np.float32), 1, key=KEY, compact=4, loop="scan")


def test_bucket_sizes_are_powers_of_two_within_the_chunk():
    assert [R.bucket(n, 1000, 1) for n in (1, 31, 33, 500, 513, 1000)] == [32, 32, 64, 512, 1000, 1000]
    assert R.bucket(5, 1000, 3) == 33  # a multiple of the device count


def test_chunks_are_gathered_to_the_host_and_equal_one_call(moons_mlp, uneven):
    x, target, options = uneven
    whole = cfx.generate(_uneven(G.Generic()), moons_mlp, x, target, **options)
    chunked = cfx.generate(_uneven(G.Generic()), moons_mlp, x, target, batch_size=64, **options)
    assert isinstance(chunked.counterfactuals, np.ndarray) and chunked.counterfactuals.shape == (200, 1, 2)
    _same(chunked, whole)


def test_default_chunk_bounds_the_rows_of_one_program(monkeypatch, linear_classifier):
    monkeypatch.setitem(R.DEFAULT_BATCH_ROWS, "cpu", 16)
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    res = cfx.generate(G.Generic(), linear_classifier, x, 1, key=KEY, max_steps=5)
    assert isinstance(res.counterfactuals, np.ndarray)  # four chunks of 16, gathered one by one
    whole = cfx.generate(G.Generic(), linear_classifier, x, 1, key=KEY, max_steps=5, batch_size=50)
    _same(res, whole)


def test_repeated_calls_reuse_the_placed_model_and_constraints(linear_classifier):
    x = np.zeros((3, 2), np.float32)
    gen, constraints = G.Generic(), cfx.Constraints(lower=(-5.0, -5.0), upper=(5.0, 5.0))
    first = cfx.generate(gen.replace(threshold=0.7), linear_classifier, x, 1, key=KEY, constraints=constraints)
    placed = len(R.PLACED)
    second = cfx.generate(gen.replace(threshold=0.7), linear_classifier, x, 1, key=KEY, constraints=constraints)
    assert len(R.PLACED) == placed  # found again by identity
    np.testing.assert_array_equal(np.asarray(first.counterfactuals), np.asarray(second.counterfactuals))
    # a different threshold is a different placed generator, and it is used
    loose = cfx.generate(gen.replace(threshold=0.51), linear_classifier, x, 1, key=KEY, constraints=constraints)
    assert float(np.asarray(loose.target_probs).max()) < float(np.asarray(first.target_probs).min())


def test_mutable_numpy_parameters_are_never_served_stale():
    params = {"w": np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)}
    clf = cfx.Classifier(lambda p, x: x @ p["w"], params, n_features=2)
    x = np.zeros((1, 2), np.float32)
    before = cfx.generate(G.Generic().replace(threshold=0.9), clf, x, 1, key=KEY, max_steps=3).counterfactuals
    params["w"][:] = [[0.0, -1.0], [0.0, -1.0]]  # changed in place: the next call must see it
    after = cfx.generate(G.Generic().replace(threshold=0.9), clf, x, 1, key=KEY, max_steps=3).counterfactuals
    assert float(np.asarray(after).sum()) < 0 < float(np.asarray(before).sum())


@pytest.mark.parametrize("name", ["wachter", "dice", "greedy", "growing_spheres", "gravitational", "claproar", "probe"])
def test_every_kind_of_step_rule_compacts_to_the_plain_result(name, moons_split, moons_mlp, uneven):
    """Each generator's carry (optimiser state, gradient-free radii, greedy budgets) is split
    into per-row and shared leaves correctly: compacted == plain."""
    train, _ = moons_split
    gen = G.make(name, data=train, classifier=moons_mlp)
    x, target, _ = uneven
    options = dict(key=KEY, max_steps=60)
    gen = gen.replace(threshold=0.97)
    plain = cfx.generate(gen, moons_mlp, x[:24], target[:24], compact=None, **options)
    compacted = cfx.generate(gen, moons_mlp, x[:24], target[:24], compact=3, **options)
    _same(compacted, plain)


def test_auto_compaction_is_on_for_long_searches_only():
    from cfx.search._checks import check_compact

    assert check_compact("auto", "while", False, 1000) == 50
    assert check_compact("auto", "while", False, 100) is None
    assert check_compact("auto", "scan", False, 1000) is None
    assert check_compact("auto", "while", True, 1000) is None


def test_a_replaced_parameter_entry_is_never_served_stale():
    params = [{"w": jnp.array([[0.0, 1.0], [0.0, 1.0]])}]  # a list of layers, as many apply_fns take
    clf = cfx.Classifier(lambda p, x: x @ p[0]["w"], params, n_features=2)
    x = np.zeros((1, 2), np.float32)
    before = cfx.generate(G.Generic().replace(threshold=0.9), clf, x, 1, key=KEY, max_steps=3).counterfactuals
    params[0]["w"] = -params[0]["w"]  # the container changed in place; the classifier object is the same
    after = cfx.generate(G.Generic().replace(threshold=0.9), clf, x, 1, key=KEY, max_steps=3).counterfactuals
    assert float(np.asarray(after).sum()) < 0 < float(np.asarray(before).sum())


def _traced_search(gen, clf, x, target, constraints=None, **kw):
    run = jax.jit(lambda g, c, x, t: S.search(g, c, x, t, key=KEY, constraints=constraints, **kw))
    return run(gen, clf, jnp.asarray(x), jnp.asarray(target))


@pytest.mark.parametrize("name", ["generic", "dice", "growing_spheres", "greedy"])
def test_in_program_shrinking_returns_the_plain_search(name, monkeypatch, moons_split, moons_mlp, uneven):
    """search(shrink=F) gathers the running rows into buckets of n/F, n/F² inside one program
    (both levels engage here) and gives the plain search's result, tracks included."""
    train, _ = moons_split
    x, target, options = uneven
    gen = G.make(name, data=train, classifier=moons_mlp).replace(
        convergence="generator_conditions" if name == "generic" else "threshold",
        start="noise",
        num_counterfactuals=2 if name == "dice" else 1,
    )
    kw = dict(max_steps=80, track=cfx.track_last_within(0.3), constraints=cfx.Constraints(mutability=["both", "none"]))
    levels = []
    shrunk = S._continue_shrunk
    monkeypatch.setattr(
        S,
        "_continue_shrunk",
        lambda carry, on_rows, bucket, advance: levels.append(bucket) or shrunk(carry, on_rows, bucket, advance),
    )
    plain = _traced_search(gen, moons_mlp, x, target, **kw)
    small = _traced_search(gen, moons_mlp, x, target, shrink=2, **kw)
    assert levels == [100, 50]
    _same(small, plain)
    assert np.asarray(plain.steps).min() < np.asarray(plain.steps).max()  # rows finish at different steps
    np.testing.assert_allclose(np.asarray(small.track[0]), np.asarray(plain.track[0]), atol=1e-5)


@pytest.mark.parametrize("shrink", [1, 0, 2.0, True])
def test_bad_shrink_factor_names_the_argument(linear_classifier, shrink):
    with pytest.raises(ValueError, match="shrink must be an int >= 2"):
        S.search(G.Generic(), linear_classifier, jnp.zeros((4, 2)), jnp.ones(4, jnp.int32), key=KEY, shrink=shrink)
