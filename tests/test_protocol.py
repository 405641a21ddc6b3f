"""The generator protocol and the traceable core: yloss as a term, search defaults on the
generator, fit, step-rule inputs, leaf types, outcome codes, tracks, search under jit/vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx import generators as G
from cfx.search import CONVERGED, MAX_STEPS, NONFINITE, NOT_REACHED, UNCHANGED
from cfx.search import search

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def factuals():
    return np.random.default_rng(0).uniform(-1.5, 0.0, size=(8, 2)).astype(np.float32)


# ------------------------------------------------------------------------------ yloss is a term
def test_yloss_is_an_ordinary_term_callable_or_switched_off(linear_classifier, factuals):
    named = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY)
    own = cfx.generate(
        G.Generic(yloss=lambda logits, t: -jax.nn.log_softmax(logits)[t]), linear_classifier, factuals, 1, key=KEY
    )
    np.testing.assert_allclose(own.counterfactuals, named.counterfactuals, atol=1e-6)
    # no yloss: only the distance pulls, so nothing moves from the factual and nothing converges
    off = cfx.generate(G.Generic(yloss=None), linear_classifier, factuals, 1, key=KEY, max_steps=20)
    assert "yloss" not in off.terms
    np.testing.assert_allclose(off.counterfactuals[:, 0], factuals, atol=1e-6)
    assert np.all(np.asarray(off.outcome) == UNCHANGED)  # not converged, and x' is the factual: said so
    with pytest.raises(ValueError, match="yloss must be one of"):
        G.Generic(yloss="crossentropy")


def test_untargeted_search_leaves_the_factual_class(linear_classifier, factuals):
    # the default cross-entropy aims at the runner-up class: away from the factual's prediction
    res = cfx.generate(G.Generic(cost=0.01), linear_classifier, factuals, None, key=KEY)
    assert np.all(np.asarray(res.target) == -1)
    assert bool(res.converged.all())
    np.testing.assert_array_equal(linear_classifier.predict(res.counterfactuals[:, 0]), 1)
    np.testing.assert_allclose(
        res.target_probs[:, 0], linear_classifier.probs(res.counterfactuals[:, 0])[:, 1], rtol=1e-6
    )
    # three classes with logits (x, 0.5, -x - 1) at x = 1: the runner-up class 1 is the one aimed at
    params = (jnp.array([1.0, 0.0, -1.0]), jnp.array([0.0, 0.5, -1.0]))
    three = cfx.Classifier(lambda p, x: x[..., :1] * p[0] + p[1], params, n_features=1)
    res = cfx.generate(G.Generic(cost=0.0), three, np.ones((1, 1), np.float32), None, key=KEY)
    assert bool(res.converged.all()) and int(three.predict(res.counterfactuals[0, 0])) == 1


# ------------------------------------------------------------------------------ search defaults
def test_search_defaults_live_on_the_generator_and_keywords_override(linear_classifier, factuals):
    gen = G.Generic(threshold=0.8, num_counterfactuals=2)
    res = cfx.generate(gen, linear_classifier, factuals, 1, key=KEY)
    assert res.counterfactuals.shape == (8, 2, 2) and float(res.threshold) == pytest.approx(0.8)
    assert np.all(np.asarray(res.target_probs) >= 0.8)
    lower = cfx.generate(gen.replace(threshold=0.6, num_counterfactuals=1), linear_classifier, factuals, 1, key=KEY)
    assert lower.counterfactuals.shape == (8, 1, 2) and float(lower.threshold) == pytest.approx(0.6)
    assert int(lower.steps.sum()) < int(res.steps.sum()) / 2
    # the threshold is a leaf: sweeping it on the generator reuses the program
    before = compile_counts.search()
    cfx.generate(gen.replace(threshold=0.7), linear_classifier, factuals, 1, key=KEY)
    assert compile_counts.search() == before


def test_min_steps_keeps_an_adaptive_optimiser_from_stopping_after_one_step(moons_split, moons_mlp):
    _, test = moons_split
    x = test.X[np.asarray(moons_mlp.predict(test.X)) == 0][:10]
    adam = G.Generic(optimizer="adam", learning_rate=0.1)
    quick = cfx.generate(adam, moons_mlp, x, 1, key=KEY)
    held = cfx.generate(adam.replace(min_steps=5), moons_mlp, x, 1, key=KEY)
    assert int(held.steps.min()) >= 5 and int(held.steps.min()) > int(quick.steps.min())


def test_starts_identity_noise_uniform_and_your_own(linear_classifier, factuals):
    immutable = cfx.Constraints(mutability=["none", "both"])
    for rule, scale in (("noise", 0.1), ("uniform", 0.3)):
        res = cfx.generate(
            G.Generic(start=rule, start_scale=scale, threshold=1.0),
            linear_classifier,
            factuals,
            1,
            key=KEY,
            max_steps=1,
            constraints=immutable,
            return_path=True,
        )
        moved = np.asarray(res.path[:, 0, 0]) - factuals
        assert np.all(moved[:, 0] == 0.0) and np.any(moved[:, 1] != 0.0)
        if rule == "uniform":
            assert np.all(np.abs(moved) <= scale + 1e-6)
    start = factuals + np.array([0.0, 0.5], np.float32)
    res = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, start=start, return_path=True, max_steps=3)
    np.testing.assert_allclose(res.path[:, 0, 0], start)
    with pytest.raises(ValueError, match=r"start must have shape \(8, 2\) or \(8, 1, 2\)"):
        cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, start=np.zeros((3, 2)))


# ------------------------------------------------------------------------------ fit
def test_fit_builds_data_dependent_leaves_and_from_data_is_a_shortcut(moons_split, moons_mlp):
    train, _ = moons_split
    fitted = G.Wachter(cost=0.2).fit(moons_mlp, train, key=KEY)
    np.testing.assert_allclose(fitted.mad, cfx.data.median_absolute_deviation(train.X))
    np.testing.assert_array_equal(G.Wachter.from_data(train, cost=0.2).mad, fitted.mad)
    assert G.make("wachter", data=train).mad is not None and G.make("wachter").mad is None
    bank = G.Gravitational().fit(None, train, key=jax.random.key(3)).bank
    assert bank.shape == (2, 1000, 2)
    np.testing.assert_array_equal(bank, G.Gravitational.from_data(train, seed=3).bank)
    # fitting on new data (a retrained model's world) reuses the compiled search
    gen = G.Wachter().fit(moons_mlp, train, key=KEY)
    x = train.X[:4]
    cfx.generate(gen, moons_mlp, x, 1, key=KEY)
    before = compile_counts.search()
    cfx.generate(gen.fit(moons_mlp, train.subset(np.arange(100)), key=KEY), moons_mlp, x, 1, key=KEY)
    assert compile_counts.search() == before


def test_hyperparameters_list_the_settable_keys():
    keys = G.hyperparameters("conservative")
    assert keys["threshold"] == 0.9 and keys["cost"] == 0.1
    assert {"num_counterfactuals", "start", "convergence", "min_steps", "learning_rate"} <= set(keys)
    assert "mad" not in G.hyperparameters("wachter")  # computed by fit, not set
    assert G.hyperparameters("dice")["num_counterfactuals"] == 3


# ------------------------------------------------------------------------------ step rule and leaves
@G.generator_class
class _RandomWalk(G.Generator):
    """A gradient-free rule: z += scale·N(0, I) (per-row step keys) + drift·(t + 1) + ∇ (∇ = 0)."""

    uses_gradient = False
    scale: float = 0.05
    drift: float = 0.0

    def init_update(self, z, ctx):
        return ()

    def update(self, grad, state, z, ctx):
        noise = jax.vmap(lambda k: jax.random.normal(k, z.shape[1:]))(ctx.key)
        return z + self.scale * noise + self.drift * (ctx.step + 1) + grad, state


def test_a_step_rule_gets_per_row_keys_the_step_number_and_no_gradient(linear_classifier, factuals):
    gen = _RandomWalk(yloss=None, convergence="max_steps")
    res = cfx.generate(gen, linear_classifier, factuals, 1, key=KEY, max_steps=7)
    assert np.all(np.asarray(res.steps) == 7)
    moves = np.asarray(res.counterfactuals[:, 0]) - factuals
    assert len(np.unique(np.round(moves, 6), axis=0)) == 8  # every row its own noise
    # per-row keys: a row's walk does not depend on how the batch is chunked
    chunked = cfx.generate(gen, linear_classifier, factuals, 1, key=KEY, max_steps=7, batch_size=3)
    np.testing.assert_allclose(chunked.counterfactuals, res.counterfactuals, atol=1e-6)
    # the step number reaches the rule, and a gradient-free rule gets ∇ = 0 even with a yloss
    drift = _RandomWalk(scale=0.0, drift=0.01, convergence="max_steps")
    path = cfx.generate(drift, linear_classifier, factuals, 1, key=KEY, max_steps=4, return_path=True).path
    np.testing.assert_allclose(
        np.diff(path[:, 0], axis=1), np.broadcast_to(0.01 * np.arange(1, 5)[None, :, None], (8, 4, 2)), atol=1e-6
    )


def test_only_float_leaves_are_cast(linear_classifier, factuals):
    from cfx.search._checks import canonical_leaves

    gen = canonical_leaves(G.Generic(cost=1, min_steps=2))
    assert gen.cost.dtype == jnp.float32 and gen.min_steps.dtype == jnp.int32
    assert gen.threshold.dtype == jnp.float32


# ------------------------------------------------------------------------------ outcomes
def test_outcome_codes(linear_classifier, factuals):
    res = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY)
    assert np.all(np.asarray(res.outcome) == CONVERGED)
    bounded = cfx.generate(
        G.Generic(),
        linear_classifier,
        factuals,
        1,
        key=KEY,
        max_steps=20,
        constraints=cfx.Constraints(lower=-2.0, upper=0.1),
    )
    assert np.all(np.asarray(bounded.outcome) == MAX_STEPS)
    # a model that overflows to NaN away from the start: the step is refused, the row reports it
    blowup = cfx.Classifier(
        lambda p, x: jnp.stack([jnp.zeros(x.shape[0]), jnp.where(x[:, 0] > p, jnp.nan * x[:, 0], x[:, 0])], -1),
        jnp.float32(-0.5),
        n_features=2,
    )
    nan = cfx.generate(G.Generic(cost=0.0, learning_rate=1.0), blowup, factuals[:3], 1, key=KEY, max_steps=5)
    assert np.all(np.asarray(nan.outcome) == NONFINITE) and np.isfinite(np.asarray(nan.counterfactuals)).all()


def test_rows_that_take_a_non_finite_step_are_searched_again_checked():
    # generate steps without the per-row finiteness test (a non-finite entry is kept, so the final
    # point shows it) and searches the rows that took such a step again, checked: the result is
    # the checked core's, row for row, and only those rows cost a second (checked) program
    def logits(p, x):  # finite below x_0 = p; above it the logit and its gradient are NaN
        return jnp.stack(
            [jnp.zeros(x.shape[0]), x[:, 0] * jax.lax.stop_gradient(jnp.where(x[:, 0] > p, jnp.nan, 1.0))], -1
        )

    model = cfx.Classifier(logits, jnp.float32(-0.5), n_features=2)
    x = np.array([[-1.4, 0.0], [-1.2, 0.3], [-0.8, 0.0], [-0.6, -0.2], [-1.0, 0.1]], np.float32)
    gen = G.Generic(cost=0.0, learning_rate=0.1)
    before = compile_counts.search()
    res = cfx.generate(gen, model, x, 1, key=KEY, max_steps=6)
    assert compile_counts.search() - before == 2  # the unchecked program, then the checked one for 2 rows
    checked = jax.jit(lambda x: search(gen, model, x, jnp.ones(5, jnp.int32), key=KEY, max_steps=6))(x)
    np.testing.assert_array_equal(
        np.asarray(res.outcome)[:, 0], [MAX_STEPS, MAX_STEPS, NONFINITE, NONFINITE, MAX_STEPS]
    )
    assert np.isfinite(np.asarray(res.counterfactuals)).all()
    res = res.replace(runtime_s=checked.runtime_s, compile_s=checked.compile_s)  # the timings differ
    for got, want in zip(jax.tree_util.tree_leaves(res), jax.tree_util.tree_leaves(checked)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
    before = compile_counts.search()
    cfx.generate(gen, model, x, 1, key=KEY, max_steps=6)
    assert compile_counts.search() == before
    # a step that overflows to inf where the model saturates (finite, even valid logits at inf):
    # the point must not come back as converged, and the checked search refuses the step
    saturating = cfx.Classifier(
        lambda p, x: jnp.stack([jnp.zeros(x.shape[0]), 5 * jnp.tanh(p * x[:, 0])], -1), jnp.float32(1.0), n_features=2
    )
    huge = G.Generic(cost=0.0, learning_rate=3e38)
    res = cfx.generate(huge, saturating, x[2:4], 1, key=KEY, max_steps=3)  # |η·gradient| > 3.4e38 here
    checked = jax.jit(lambda x: search(huge, saturating, x, jnp.ones(2, jnp.int32), key=KEY, max_steps=3))(x[2:4])
    np.testing.assert_array_equal(np.asarray(res.outcome), NONFINITE)
    np.testing.assert_array_equal(np.asarray(res.counterfactuals), np.asarray(checked.counterfactuals))
    np.testing.assert_array_equal(np.asarray(res.counterfactuals)[:, 0], x[2:4])


def test_a_generator_that_gives_up_stops_its_rows_as_not_reached(linear_classifier, factuals):
    @G.generator_class
    class _Patient(G.Generic):
        def init_update(self, z, ctx):
            return jnp.zeros(z.shape[:2], jnp.int32)

        def update(self, grad, count, z, ctx):
            return z, count + 1  # never moves

        def gave_up(self, count):
            return count >= 3

    # the same fields as Generic (an equal PyTreeDef): the program must still be _Patient's own
    cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, max_steps=50)
    res = cfx.generate(_Patient(), linear_classifier, factuals, 1, key=KEY, max_steps=50)
    assert np.all(np.asarray(res.outcome) == NOT_REACHED) and int(res.steps.max()) == 3


# ------------------------------------------------------------------------------ tracks
def test_track_last_within_a_ball_matches_the_path(linear_classifier, factuals):
    ball = cfx.track_last_within(0.3)
    assert cfx.track_last_within(0.3) is ball  # built once: reused, no recompilation
    res = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY, track=ball, return_path=True)
    last, _ = res.track
    path = np.asarray(res.path[:, 0])  # (n, T + 1, d)
    inside = np.max(np.abs(path - factuals[:, None]), axis=-1) <= 0.3
    for i in range(len(factuals)):
        expected = path[i, np.flatnonzero(inside[i])[-1]]
        np.testing.assert_allclose(last[i, 0], expected, atol=1e-6)
    assert np.all(np.max(np.abs(np.asarray(last[:, 0]) - factuals), -1) <= 0.3 + 1e-6)


# ------------------------------------------------------------------------------ traceable core
def test_search_runs_inside_jit_and_vmap_and_results_do_not_retrace(linear_classifier, factuals):
    gen = G.Generic()
    x, t = jnp.asarray(factuals), jnp.ones(8, jnp.int32)
    ref = cfx.generate(gen, linear_classifier, factuals, 1, key=KEY)
    jitted = jax.jit(lambda g, c, x, t: search(g, c, x, t, key=KEY).counterfactuals)(gen, linear_classifier, x, t)
    np.testing.assert_allclose(jitted, ref.counterfactuals, atol=1e-6)
    # vmap over two parameter sets of the model: one search per model
    params = jax.tree_util.tree_map(lambda p: jnp.stack([p, 2 * p]), linear_classifier.params)
    both = jax.vmap(lambda p: search(gen, linear_classifier.replace(p), x, t, key=KEY).counterfactuals)(params)
    assert both.shape == (2, 8, 1, 2)
    np.testing.assert_allclose(both[0], ref.counterfactuals, atol=1e-6)
    # a jitted consumer of results traces once, whatever runtime_s or compile_s say
    traces = []

    @jax.jit
    def mean_prob(result):
        traces.append(1)
        return jnp.mean(result.target_probs)

    mean_prob(ref)
    mean_prob(cfx.generate(gen.replace(cost=0.3), linear_classifier, factuals, 1, key=KEY))
    assert len(traces) == 1


def test_scan_loop_is_differentiable_and_equals_the_while_loop(linear_classifier, factuals):
    gen = G.Generic(convergence="max_steps")
    x, t = jnp.asarray(factuals), jnp.ones(8, jnp.int32)
    loop = cfx.generate(gen, linear_classifier, factuals, 1, key=KEY, max_steps=10)
    scan = cfx.generate(gen, linear_classifier, factuals, 1, key=KEY, max_steps=10, loop="scan")
    np.testing.assert_allclose(scan.counterfactuals, loop.counterfactuals, atol=1e-6)

    def final_cost(cost):
        res = search(gen.replace(cost=cost), linear_classifier, x, t, key=KEY, max_steps=10, loop="scan")
        return jnp.sum(jnp.abs(res.counterfactuals[:, 0] - x))

    assert float(jax.grad(final_cost)(0.1)) < 0.0  # a higher cost moves the counterfactuals less


# ------------------------------------------------------------------------------ friction
def test_a_softmax_head_wraps_in_one_line(linear_classifier, factuals):
    probs = cfx.Classifier.from_probs(
        lambda p, x: jax.nn.softmax(x @ p["W"] + p["b"]), linear_classifier.params, n_features=2
    )
    np.testing.assert_allclose(probs.probs(factuals), linear_classifier.probs(factuals), rtol=1e-5)
    a = cfx.generate(G.Generic(), probs, factuals, 1, key=KEY)
    b = cfx.generate(G.Generic(), linear_classifier, factuals, 1, key=KEY)
    np.testing.assert_allclose(a.counterfactuals, b.counterfactuals, atol=1e-4)
    binary = cfx.Classifier.from_probs(lambda p, x: jax.nn.sigmoid(x @ p)[:, None], jnp.ones(2), n_features=2)
    np.testing.assert_allclose(binary.probs(factuals)[:, 1], jax.nn.sigmoid(factuals.sum(-1)), rtol=1e-5)


def test_squared_distances():
    a, b = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 0.0, 3.0])
    assert float(cfx.terms.l2(a, b)) == pytest.approx(np.sqrt(5.0), rel=1e-6)
    assert float(cfx.terms.squared_l2(a, b)) == pytest.approx(5.0)
    assert float(cfx.terms.mse(a, b)) == pytest.approx(5.0 / 3)
    G.Generic(distance="mse")  # accepted by name
