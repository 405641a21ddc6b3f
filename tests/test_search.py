"""The batched search: closed forms, invariants, constraints, recompilation and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts
from flax import struct

import cfx
from cfx import generators as G
from cfx.search import search

KEY = jax.random.key(0)


def linear(w, b):
    """A binary logit-BCE model with one output column: p(1|x) = sigmoid(w·x + b)."""
    return cfx.Classifier(
        lambda p, x: x @ p["w"][:, None] + p["b"], {"w": jnp.asarray(w), "b": jnp.asarray(b)}, n_features=len(w)
    )


@pytest.fixture(scope="module")
def factuals():
    return np.random.default_rng(0).uniform(-1.5, 0.0, size=(8, 2)).astype(np.float32)


def all_generators(data, classifier):
    """Every registered generator, fitted; those that need q̂ get the classifier calibrated on ``data``."""
    from cfx.models.conformal import calibrate

    calibrated = calibrate(classifier, data, alpha=0.05)
    return [G.make(name, data=data, classifier=calibrated) for name in G.REGISTRY]


# ------------------------------------------------------------------------------ closed form
@pytest.mark.parametrize("tau", [0.5, 0.8])
def test_l2_search_lands_on_projection_onto_shifted_boundary(tau):
    """For p = sigmoid(w·x + b) the minimum-L2 x' with p >= τ is x + (logit τ − w·x − b)/||w||² · w."""
    w, b = np.array([1.5, -0.5], np.float32), np.float32(0.2)
    clf = linear(w, b)
    x = np.array([[-1.0, 0.5], [-2.0, -1.0], [0.0, 1.5]], np.float32)
    res = cfx.generate(
        G.Generic(distance="l2", cost=0.01, learning_rate=0.01).replace(threshold=tau),
        clf,
        x,
        1,
        key=KEY,
        max_steps=5000,
    )
    logit_tau = np.log(tau / (1 - tau))
    expected = x + ((logit_tau - x @ w - b) / (w @ w))[:, None] * w
    assert bool(res.converged.all())
    np.testing.assert_allclose(res.counterfactuals[:, 0], expected, atol=0.02)
    # and it stops at the boundary: p just above τ
    assert np.all(res.target_probs >= tau) and np.all(res.target_probs < tau + 0.01)


# ------------------------------------------------------------------------------ invariants
def test_batched_search_equals_per_factual_loop(linear_classifier, factuals, moons_split):
    train, _ = moons_split
    for gen, k in [(G.Generic(), 1), (G.make("wachter", data=train), 1), (G.DiCE(), 3), (G.Greedy(), 1)]:
        batch = cfx.generate(
            gen.replace(num_counterfactuals=k, start="identity"), linear_classifier, factuals, 1, key=KEY
        )
        for i in range(3):
            one = cfx.generate(
                gen.replace(num_counterfactuals=k, start="identity"), linear_classifier, factuals[i], 1, key=KEY
            )
            np.testing.assert_allclose(one.counterfactuals[0], batch.counterfactuals[i], atol=1e-5)
            assert one.steps[0].tolist() == batch.steps[i].tolist()


def test_jit_equals_eager(linear_classifier, factuals):
    gen = G.DiCE()
    res = cfx.generate(gen.replace(num_counterfactuals=2), linear_classifier, factuals, 1, key=KEY, max_steps=6)
    with jax.disable_jit():
        eager = search(
            gen.replace(num_counterfactuals=2),
            linear_classifier,
            jnp.asarray(factuals),
            jnp.ones(8, jnp.int32),
            key=KEY,
            max_steps=6,
        )
    np.testing.assert_allclose(res.counterfactuals, eager.counterfactuals, atol=1e-5)
    np.testing.assert_array_equal(res.steps, eager.steps)


def test_no_recompilation_for_new_params_weights_targets_threshold(linear_classifier, factuals):
    gen = G.Generic(cost=0.1)
    cfx.generate(gen, linear_classifier, factuals, 1, key=KEY)
    before = compile_counts.search()
    new_clf = linear_classifier.replace(jax.tree_util.tree_map(lambda p: p * 1.5, linear_classifier.params))
    # python floats, ints and strong float32 weights; new targets, thresholds and raw or typed keys
    for cost, target, tau, key in [
        (0.5, 1, 0.6, jax.random.key(3)),
        (1, 0, 0.5, jax.random.PRNGKey(0)),
        (jnp.float32(0.3), np.arange(8) % 2, 0.9, KEY),
    ]:
        res = cfx.generate(
            G.Generic(cost=cost, learning_rate=0.05).replace(threshold=tau), new_clf, factuals, target, key=key
        )
        assert res.compile_s == 0.0
    assert compile_counts.search() == before
    # a structural change (another distance) is a new program
    cfx.generate(G.Generic(distance="l2"), new_clf, factuals, 1, key=KEY)
    assert compile_counts.search() == before + 1


def test_path_starts_at_factual_and_ends_at_counterfactual(linear_classifier, factuals):
    res = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, max_steps=30, return_path=True)
    assert res.path.shape == (8, 1, 31, 2)
    np.testing.assert_array_equal(res.path[:, 0, 0], factuals)
    np.testing.assert_allclose(res.path[:, 0, -1], res.counterfactuals[:, 0], atol=1e-6)
    loop = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, max_steps=30)
    np.testing.assert_allclose(loop.counterfactuals, res.counterfactuals, atol=1e-6)


def test_converged_rows_are_frozen_and_report_consistent_losses(linear_classifier, factuals):
    res = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY)
    assert bool(res.converged.all())
    assert np.all(res.target_probs >= 0.5)
    # steps differ per row: frozen rows stop early
    assert len(set(res.steps.ravel().tolist())) > 1
    total = res.terms["yloss"] + 0.1 * res.terms["distance"]
    np.testing.assert_allclose(res.terms["total"], total, rtol=1e-5)
    np.testing.assert_allclose(
        res.terms["distance"], np.abs(res.counterfactuals - factuals[:, None]).sum(-1), rtol=1e-5
    )


def test_unreachable_target_is_a_value_not_an_error(linear_classifier, factuals):
    bounds = cfx.Constraints(lower=-2.0, upper=0.1)  # x0 + x1 <= 0.2 < 1: class 1 is out of reach
    res = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, constraints=bounds, max_steps=50)
    assert not bool(res.converged.any())
    assert np.isfinite(np.asarray(res.counterfactuals)).all()
    assert int(res.steps.max()) == 50


def test_multiclass_targets_per_factual():
    centres = jnp.array([[0.0, 2.0], [2.0, 0.0], [0.0, -2.0], [-2.0, 0.0]])
    clf = cfx.Classifier(lambda p, x: -jnp.sum((x[:, None, :] - p) ** 2, -1), centres, n_features=2)
    x = np.zeros((4, 2), np.float32) + np.array([0.1, 0.3], np.float32)
    target = np.array([0, 1, 2, 3])
    res = cfx.generate(G.Generic(cost=0.01), clf, x, target, key=KEY, max_steps=300)
    assert bool(res.converged.all())
    np.testing.assert_array_equal(clf.predict(res.counterfactuals[:, 0]), target)


# ------------------------------------------------------------------------------ generators
def test_wachter_uses_mad_weights_for_a_single_counterfactual(moons_split, linear_classifier):
    train, _ = moons_split
    gen = G.Wachter.from_data(train)
    mad = np.median(np.abs(train.X - np.median(train.X, 0)), 0)
    np.testing.assert_allclose(gen.mad, mad, rtol=1e-5)
    x = np.array([[0.0, 0.0]], np.float32)
    res = cfx.generate(gen.replace(num_counterfactuals=1), linear_classifier, x, 1, key=KEY)
    np.testing.assert_allclose(res.terms["distance"][0, 0], np.sum(np.abs(res.counterfactuals[0, 0]) / mad), rtol=1e-5)
    # the cheaper feature (larger MAD) moves further
    moved = np.abs(res.counterfactuals[0, 0])
    assert moved[np.argmax(mad)] > moved[np.argmin(mad)]


def test_dice_counterfactuals_are_diverse_and_need_k_above_one(linear_classifier, factuals):
    res = cfx.generate(G.DiCE().replace(num_counterfactuals=4), linear_classifier, factuals, 1, key=KEY)
    plain = cfx.generate(G.DiCE(diversity=0.0).replace(num_counterfactuals=4), linear_classifier, factuals, 1, key=KEY)
    spread = lambda r: np.mean(np.linalg.norm(r.counterfactuals[:, :, None] - r.counterfactuals[:, None], axis=-1))
    assert spread(res) > spread(plain)
    assert res.converged.mean() >= 0.9
    with pytest.raises(ValueError, match="num_counterfactuals > 1"):
        cfx.generate(G.DiCE().replace(num_counterfactuals=1), linear_classifier, factuals, 1, key=KEY)


def test_dice_set_stopping_freezes_a_factuals_counterfactuals_together(linear_classifier, factuals):
    each = cfx.generate(G.DiCE().replace(num_counterfactuals=3), linear_classifier, factuals, 1, key=KEY, max_steps=300)
    together = cfx.generate(
        G.DiCE(stop="set").replace(num_counterfactuals=3), linear_classifier, factuals, 1, key=KEY, max_steps=300
    )
    steps = np.asarray(together.steps)
    assert np.all(steps == steps[:, :1]) and not np.all(np.asarray(each.steps) == np.asarray(each.steps)[:, :1])
    done = np.asarray(together.converged).all(axis=1)
    assert done.all() and np.all(np.asarray(together.target_probs) >= 0.5)
    with pytest.raises(ValueError, match="DiCE.stop"):
        cfx.generate(G.DiCE(stop="all"), linear_classifier, factuals, 1, key=KEY)


def test_greedy_moves_one_feature_per_step_at_most_n_times(linear_classifier):
    x = np.array([[-3.0, -3.0]], np.float32)
    gen = G.Greedy(step_size=0.1, max_changes=5)
    res = cfx.generate(gen, linear_classifier, x, 1, key=KEY, return_path=True, max_steps=40)
    moves = np.abs(np.diff(res.path[0, 0], axis=0))
    assert np.all((moves > 1e-6).sum(-1) <= 1)  # one feature at a time
    assert np.all((moves > 1e-6).sum(0) <= 5)  # each at most max_changes times
    assert not bool(res.converged[0, 0])  # 2 × 5 × 0.1 cannot cross x0 + x1 = 1 from (-3, -3)


def test_gravitational_pulls_towards_target_class(moons_split, moons_mlp):
    train, test = moons_split
    x = test.X[np.asarray(moons_mlp.predict(test.X)) == 0][:20]
    centre = train.X[train.y == 1].mean(0)
    plain = cfx.generate(G.Generic(), moons_mlp, x, 1, key=KEY)
    pulled = cfx.generate(G.make("gravitational", data=train), moons_mlp, x, 1, key=KEY)
    dist = lambda r: np.linalg.norm(r.counterfactuals[:, 0] - centre, axis=-1).mean()
    assert dist(pulled) < dist(plain)
    paper = G.make("gravitational", data=train, variant="paper")
    assert paper.gravity == 1.0 and paper.bank.shape[1] == 50


def test_claproar_goes_deeper_into_the_target_class(moons_split, moons_mlp):
    _, test = moons_split
    x = test.X[np.asarray(moons_mlp.predict(test.X)) == 0][:20]
    plain = cfx.generate(G.Generic(), moons_mlp, x, 1, key=KEY)
    deep = cfx.generate(G.ClaPROAR(), moons_mlp, x, 1, key=KEY)
    assert float(deep.target_probs.mean()) > float(plain.target_probs.mean())


def test_conservative_threshold(moons_split, moons_mlp):
    _, test = moons_split
    x = test.X[np.asarray(moons_mlp.predict(test.X)) == 0][:20]
    plain = cfx.generate(G.make("generic", learning_rate=0.01), moons_mlp, x, 1, key=KEY)
    conservative = cfx.generate(G.make("conservative", learning_rate=0.01), moons_mlp, x, 1, key=KEY)
    assert G.make("conservative") == G.Generic(threshold=0.9)  # the registry entry is only a default
    assert conservative.threshold == np.float32(0.9) and conservative.converged.mean() >= 0.9
    assert np.all(
        np.asarray(moons_mlp.probs(conservative.counterfactuals[:, 0]))[conservative.converged[:, 0], 1] >= 0.9
    )
    assert int(conservative.steps.sum()) > int(plain.steps.sum())  # it keeps going past tau = 0.5
    assert float(conservative.target_probs.mean()) > float(plain.target_probs.mean())


def test_generic_validity_on_moons(moons_split, moons_mlp):
    _, test = moons_split
    x = test.X[np.asarray(moons_mlp.predict(test.X)) == 0]
    res = cfx.generate(G.Generic(), moons_mlp, x, 1, key=KEY)
    validity = np.asarray(moons_mlp.probs(res.counterfactuals[:, 0])[:, 1] >= 0.5).mean()
    assert validity >= 0.95


def test_generator_conditions_require_small_gradients(linear_classifier, factuals):
    res = cfx.generate(
        G.Generic(cost=0.01).replace(convergence="generator_conditions"),
        linear_classifier,
        factuals,
        1,
        key=KEY,
        max_steps=60,
    )
    # with a linear model the yloss gradient never vanishes near the boundary: not converged
    assert not bool(res.converged.any()) and int(res.steps.min()) == 60
    assert np.all(res.target_probs > 0.5)


# ------------------------------------------------------------------------------ constraints
def test_every_generator_keeps_immutable_features_bit_identical(moons_split, moons_mlp):
    train, test = moons_split
    x = test.X[:10]
    constraints = cfx.Constraints(mutability=["none", "both"])
    for gen in all_generators(train, moons_mlp):
        res = cfx.generate(
            gen.replace(start="noise", num_counterfactuals=3),
            moons_mlp,
            x,
            1 - np.asarray(moons_mlp.predict(x)),
            key=KEY,
            constraints=constraints,
        )
        cf = np.asarray(res.counterfactuals)
        assert np.array_equal(cf[..., 0], np.broadcast_to(x[:, None, 0], cf.shape[:2])), type(gen).__name__


def test_bounds_monotonicity_and_one_hot_hold_for_every_counterfactual():
    # features: 0 increase-only, 1 decrease-only, 2-4 one one-hot group, 5 binary, 6 bounded
    w = jnp.array([-1.0, 1.0, 0.5, -2.0, 1.5, 1.0, 3.0])
    clf = linear(w, jnp.float32(-1.0))
    x = np.array([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.5, -0.5, 0.0, 1.0, 0.0, 1.0, 0.1]], np.float32)
    constraints = cfx.Constraints(
        mutability=["increase", "decrease", "both", "both", "both", "both", "both"],
        lower=[-5, -5, 0, 0, 0, 0, -0.2],
        upper=[5, 5, 1, 1, 1, 1, 0.3],
        categorical_groups=[[2, 3, 4], [5]],
    )
    for gen in (G.Generic(), G.DiCE(), G.Greedy(), G.ClaPROAR()):
        res = cfx.generate(
            gen.replace(num_counterfactuals=3, start="noise"), clf, x, 1, key=KEY, constraints=constraints
        )
        cf = np.asarray(res.counterfactuals)
        assert np.all(cf[..., 0] >= x[:, None, 0]) and np.all(cf[..., 1] <= x[:, None, 1])
        assert np.all(cf[..., 6] >= -0.2) and np.all(cf[..., 6] <= 0.3)
        group = cf[..., 2:5]
        assert np.all(np.isin(group, [0.0, 1.0])) and np.all(group.sum(-1) == 1.0)
        assert np.all(np.isin(cf[..., 5], [0.0, 1.0]))


def test_rows_are_done_only_when_their_snapped_one_hot_point_is_valid():
    """x0 moves 4x faster than the group (1, 2): the relaxed point crosses the boundary while the
    group's argmax is still the factual's category, so snapping alone would undo validity."""
    clf = cfx.Classifier(lambda p, x: x @ p[:, None] - 0.5, jnp.array([2.0, -0.5, 0.5]), n_features=3)
    x = np.array([[-1.0, 1.0, 0.0]], np.float32)
    constraints = cfx.Constraints(categorical_groups=[[1, 2]])
    res = cfx.generate(G.Generic(cost=0.0), clf, x, 1, key=KEY, constraints=constraints)
    cf = np.asarray(res.counterfactuals[0, 0])
    assert bool(res.converged[0, 0]) and set(cf[1:].tolist()) == {0.0, 1.0}
    assert float(clf.probs(cf)[1]) >= 0.5
    np.testing.assert_allclose(res.target_probs[0, 0], clf.probs(cf)[1], rtol=1e-6)


def test_snapping_each_step_keeps_every_iterate_one_hot():
    clf = cfx.Classifier(lambda p, x: x @ p[:, None] - 0.5, jnp.array([2.0, -0.5, 0.5]), n_features=3)
    x = np.array([[-1.0, 1.0, 0.0]], np.float32)
    constraints = cfx.Constraints(categorical_groups=[[1, 2]], snap_each_step=True)
    res = cfx.generate(G.Generic(cost=0.0), clf, x, 1, key=KEY, constraints=constraints, return_path=True)
    group = np.asarray(res.path[0, 0, :, 1:])
    assert np.all(np.isin(group, [0.0, 1.0])) and np.all(group.sum(-1) == 1.0)
    assert bool(res.converged[0, 0])


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(x=np.zeros((3, 5))), ValueError, "x has 5 features.*n_features=2"),
        (dict(x=np.array([[0.0, np.nan]])), ValueError, "NaN or inf.*factual 0, feature 1"),
        (dict(target=2), ValueError, r"target 2 .*\[0, 2\)"),
        (dict(target=[1, 0]), ValueError, "length n=3"),
        (dict(target=0.5), TypeError, "target must be an int"),
        (dict(target=np.array([True, False, True])), TypeError, "target must be an int.*got dtype bool"),
        (dict(x=np.array([[0.0, 1.0], [np.inf, 0.0]])), ValueError, "NaN or inf.*factual 1, feature 0"),
        (dict(constraints=cfx.Constraints(mutability=["both"])), ValueError, "mutability has 1 entries.*\\(2\\)"),
        (
            dict(constraints=cfx.Constraints(lower=[1.0, 0.0], upper=[0.0, 1.0])),
            ValueError,
            "lower > upper for feature 0",
        ),
        (
            dict(constraints=cfx.Constraints(lower=-1.0, upper=[1.0, -0.5])),
            ValueError,
            "factual 0 violates .* feature 1",
        ),
        (dict(constraints=cfx.Constraints(lower=np.nan)), ValueError, "constraints.lower contains NaN"),
        (dict(generator=G.Generic(cost=-1.0)), ValueError, "weight of 'distance' must be finite and >= 0"),
        (dict(generator=G.Generic(cost=np.nan)), ValueError, "weight of 'distance' must be finite"),
        (dict(generator=G.Generic(learning_rate=-0.1)), ValueError, "learning_rate must be finite and > 0"),
        (
            dict(generator=G.Wachter(mad=jnp.ones(3))),
            ValueError,
            "Wachter.mad has 3 features; the classifier expects 2",
        ),
        (dict(generator=G.Generic(threshold=1.5)), ValueError, r"threshold must be a probability in \(0, 1\]"),
        (dict(max_steps=0), ValueError, "max_steps"),
        (dict(key=0), TypeError, "key must be a single PRNG key"),
        (dict(generator="generic"), TypeError, "generator must be"),
    ],
)
def test_bad_input_is_rejected_before_compiling(linear_classifier, kwargs, error, match):
    call = dict(generator=G.Generic(), x=np.zeros((3, 2), np.float32), target=1, key=KEY)
    call.update(kwargs)
    before = compile_counts.search()
    with pytest.raises(error, match=match):
        cfx.generate(call.pop("generator"), linear_classifier, call.pop("x"), call.pop("target"), **call)
    assert compile_counts.search() == before


def test_bad_generator_configuration():
    for k in (0, True):
        with pytest.raises(ValueError, match="num_counterfactuals must be an int >= 1"):
            G.Generic(num_counterfactuals=k)
    with pytest.raises(ValueError, match="start must be one of"):
        G.Generic(start="zeros")
    with pytest.raises(ValueError, match="distance must be one of"):
        G.Generic(distance="l3")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        G.Generic(optimizer="lbfgs2")
    with pytest.raises(ValueError, match="Wachter.from_data"):
        cfx.generate(G.Wachter(), linear(np.ones(2, np.float32), 0.0), np.zeros(2), 1, key=KEY)
    with pytest.raises(ValueError, match="max_changes must be an int >= 1"):
        G.Greedy(max_changes=0)
    four_classes = cfx.Classifier(lambda p, x: x @ p, jnp.ones((2, 4)), n_features=2)
    bank = G.Gravitational(bank=jnp.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="bank holds samples of 2 classes; the classifier has 4"):
        cfx.generate(bank, four_classes, np.zeros(2), 3, key=KEY)
    with pytest.raises(ValueError, match="did you mean 'wachter'"):
        G.make("wachtr")
    with pytest.raises(ValueError, match="mutability entries must be one of"):
        cfx.Constraints(mutability=["both", "frozen"])


# ------------------------------------------------------------------------------ chunks and devices
def test_chunked_search_equals_one_batch(linear_classifier, factuals):
    whole = cfx.generate(G.DiCE().replace(num_counterfactuals=3), linear_classifier, factuals[:7], 1, key=KEY)
    chunked = cfx.generate(
        G.DiCE().replace(num_counterfactuals=3), linear_classifier, factuals[:7], 1, key=KEY, batch_size=3
    )
    np.testing.assert_array_equal(whole.counterfactuals, chunked.counterfactuals)
    np.testing.assert_array_equal(whole.steps, chunked.steps)
    assert chunked.counterfactuals.shape == (7, 3, 2)


SHARDING_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np, cfx
assert jax.device_count() == 4, jax.devices()
clf = cfx.Classifier(lambda p, x: x @ p["W"] + p["b"],
                     {"W": jnp.array([[-0.5, 0.5], [-0.5, 0.5]]), "b": jnp.array([0.5, -0.5])}, n_features=2)
x = np.random.default_rng(0).uniform(-1.5, 0.0, size=(12, 2)).astype(np.float32)
gen = cfx.generators.DiCE(num_counterfactuals=3)
sharded = cfx.generate(gen, clf, x, 1, key=jax.random.key(0))
assert len(sharded.counterfactuals.sharding.device_set) == 4, sharded.counterfactuals.sharding
single = cfx.generate(gen, clf, x, 1, key=jax.random.key(0), devices=jax.devices()[:1])
assert len(single.counterfactuals.sharding.device_set) == 1
np.testing.assert_allclose(sharded.counterfactuals, single.counterfactuals, atol=1e-6)
ragged = cfx.generate(gen, clf, x[:10], 1, key=jax.random.key(0), batch_size=3)
np.testing.assert_allclose(ragged.counterfactuals, single.counterfactuals[:10], atol=1e-6)
print("sharded ok")
"""


def test_search_shards_over_devices():
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SHARDING_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "sharded ok" in out.stdout


# ------------------------------------------------------------------------------ latent search
@struct.dataclass(kw_only=True)
class _LinearLatent(G.Generic):
    """A latent generator over a fixed linear decoder x' = z A (m = 1 latent dimension)."""

    latent = True
    basis: jnp.ndarray = None  # (1, d)

    def encode(self, x):
        return x @ self.basis.T / jnp.sum(self.basis**2)

    def decode(self, z):
        return z @ self.basis


def test_latent_search_decodes_and_restores_immutable_features(linear_classifier):
    gen = _LinearLatent(basis=jnp.array([[1.0, 1.0, 1.0]]), cost=0.0)
    clf = cfx.Classifier(lambda p, x: x @ p, jnp.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]), n_features=3)
    x = np.array([[-1.0, -1.0, -1.0], [-2.0, -2.0, -0.5]], np.float32)
    res = cfx.generate(
        gen,
        clf,
        x,
        1,
        key=KEY,
        constraints=cfx.Constraints(mutability=["both", "both", "none"]),
        return_path=True,
        max_steps=200,
    )
    cf = np.asarray(res.counterfactuals[:, 0])
    assert bool(res.converged.all())
    np.testing.assert_array_equal(cf[:, 2], x[:, 2])  # immutable, restored after decoding
    np.testing.assert_allclose(cf[:, 0], cf[:, 1], atol=1e-6)  # on the decoder's line elsewhere
    assert res.path.shape == (2, 1, 201, 3)


def test_claproar_averages_the_member_losses_of_an_ensemble(moons_split, moons_ensemble):
    from cfx.models import member_logits

    _, test = moons_split
    x = test.X[:6]
    res = cfx.generate(G.ClaPROAR(), moons_ensemble, x, 1, key=KEY, max_steps=5)
    members = member_logits(moons_ensemble, res.counterfactuals[:, 0])  # (M, n, C)
    expected = -jax.nn.log_softmax(members, axis=-1)[..., 1].mean(0)
    np.testing.assert_allclose(res.terms["model_loss"][:, 0], expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(res.terms["model_loss"], res.terms["yloss"])


@pytest.mark.parametrize("n_classes", [1, 2, 5, cfx._reductions.UNROLLED + 3])
def test_last_axis_reductions_equal_numpy_and_their_gradients(n_classes):
    """The unrolled sums (and the plain reductions above UNROLLED) give jnp's values,
    logsumexp's gradient is the softmax, an all −inf row stays −inf, and the norms are jnp's."""
    logits = jax.random.normal(jax.random.key(n_classes), (4, 3, n_classes)) * 5.0
    np.testing.assert_allclose(cfx._reductions.sum_last(logits), jnp.sum(logits, -1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(cfx._reductions.max_last(logits), jnp.max(logits, -1))
    np.testing.assert_allclose(cfx._reductions.logsumexp_last(logits), jax.nn.logsumexp(logits, -1), rtol=1e-6)
    grad = jax.grad(lambda f: jnp.sum(cfx._reductions.logsumexp_last(f)))(logits)
    np.testing.assert_allclose(grad, jax.nn.softmax(logits), rtol=1e-5, atol=1e-7)
    assert cfx._reductions.logsumexp_last(jnp.full((2, n_classes), -jnp.inf)).tolist() == [-jnp.inf, -jnp.inf]
    for ord in (1, 2, jnp.inf, 3):
        np.testing.assert_allclose(
            cfx._reductions.norm_last(logits, ord), jnp.linalg.norm(logits, ord=ord, axis=-1), rtol=1e-5
        )
