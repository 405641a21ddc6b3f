"""cfx.models train step: purity, the loss protocol, extra threading, no retrace with custom losses."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import compile_counts

import cfx.models as models
from cfx.classifier import two_class_logits
from cfx.data.dataset import Dataset, FeatureSchema

# 11 rows with batch 4: three batches per epoch, the last one padded with one zero-weight slot.
_X = np.array([[-1.0, 0.0]] * 5 + [[1.0, 0.0]] * 5 + [[1.2, 0.1]], np.float32)
_Y = np.array([0] * 5 + [1] * 6, np.int32)


@pytest.fixture(scope="module")
def tiny():
    return Dataset(_X, _Y, FeatureSchema.default(2))


def _linear():
    member = models.ModuleApply(models.MLP(widths=(), n_classes=2))
    return member, member.init(jax.random.key(0), 2)


def _trees_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def counting_ce(params, batch, key, *, apply, extra):
    """Cross-entropy that counts steps and (weighted) examples seen in ``extra``."""
    loss, (_, aux) = models.cross_entropy(params, batch, key, apply=apply, extra=None)
    new = {"steps": extra["steps"] + 1, "seen": extra["seen"] + jnp.sum(batch.w)}
    return loss, (new, {**aux, "seen_in_batch": jnp.sum(batch.w)})


def step_counter(params, batch, key, *, apply, extra):
    """Cross-entropy whose ``extra`` is a plain step counter (its own function: its own compile)."""
    loss, _ = models.cross_entropy(params, batch, key, apply=apply, extra=None)
    return loss, (extra + 1, {})


@dataclasses.dataclass(frozen=True)
class AlwaysClass:
    """A loss with a setting (hashable): ignores the labels, pushes every prediction to ``target``."""

    target: int = 1

    def __call__(self, params, batch, key, *, apply, extra):
        logp = jax.nn.log_softmax(two_class_logits(apply(params, batch.x, key)), axis=-1)
        return models.weighted_mean(-logp[:, self.target], batch.w), (extra, {})


# --- the pure step and epoch ------------------------------------------------------------


def test_train_step_is_pure():
    member, params = _linear()
    tx = optax.adam(1e-2)
    state = models.TrainState.create(params, tx, extra={"steps": jnp.int32(0), "seen": jnp.float32(0)})
    batch = models.Batch(jnp.asarray(_X[:4]), jnp.asarray(_Y[:4]), jnp.array([1.0, 1.0, 1.0, 0.0]))
    step = jax.jit(lambda s, b, k: models.train_step(s, b, k, apply=member.train_logits, loss_fn=counting_ce, tx=tx))
    key = jax.random.key(3)
    a, ma = step(state, batch, key)
    b, mb = step(state, batch, key)
    assert _trees_equal(a, b) and _trees_equal(ma, mb)
    assert _trees_equal(state.params, params) and int(state.step) == 0  # input untouched
    assert int(a.step) == 1 and int(a.extra["steps"]) == 1 and float(a.extra["seen"]) == 3.0
    assert not _trees_equal(a.params, params)
    # metrics are the loss at the old params (plus the loss's aux), and jit equals eager
    expected = models.batch_loss(member, params, batch.x, batch.y, batch.w, None)
    np.testing.assert_allclose(ma["loss"], expected, rtol=1e-6)
    assert float(ma["seen_in_batch"]) == 3.0
    e, me = models.train_step(state, batch, key, apply=member.train_logits, loss_fn=counting_ce, tx=tx)
    np.testing.assert_allclose(me["loss"], ma["loss"], rtol=1e-6)
    for p, q in zip(jax.tree_util.tree_leaves(e.params), jax.tree_util.tree_leaves(a.params)):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)


def test_epoch_counts_every_example_once_and_averages_metrics():
    member, params = _linear()
    tx = optax.sgd(0.0)  # params stay put, so the epoch loss has a closed form
    state = models.TrainState.create(params, tx, extra={"steps": jnp.int32(0), "seen": jnp.float32(0)})
    X, y = jnp.asarray(_X), jnp.asarray(_Y)
    epoch = jax.jit(
        lambda s, k: models.train_epoch(s, X, y, k, apply=member.train_logits, loss_fn=counting_ce, tx=tx, batch_size=4)
    )
    state, metrics = epoch(state, jax.random.key(0))
    assert int(state.step) == 3 and int(state.extra["steps"]) == 3
    assert float(state.extra["seen"]) == 11.0  # pads carry weight 0
    full = models.batch_loss(member, params, X, y, jnp.ones(11), None)
    np.testing.assert_allclose(metrics["loss"], full, rtol=1e-5)  # Σ_b W_b L_b / n
    np.testing.assert_allclose(metrics["seen_in_batch"], (4 * 4 + 4 * 4 + 3 * 3) / 11, rtol=1e-6)
    idx, w = models.shuffled_batches(jax.random.key(1), 11, 4)
    assert idx.shape == w.shape == (3, 4) and float(w.sum()) == 11.0
    assert sorted(np.asarray(idx)[np.asarray(w) > 0].tolist()) == list(range(11))


# --- fit with a loss ----------------------------------------------------------------------


def test_fit_uses_the_given_loss(tiny):
    clf = models.fit(tiny, "linear", epochs=20, batch_size=4, learning_rate=5e-2, loss=AlwaysClass(target=1))
    assert np.all(np.asarray(clf.predict(_X)) == 1)  # the labels were ignored
    # cross-entropy is the default loss, bit for bit
    a = models.fit(tiny, "linear", epochs=2, batch_size=4)
    b = models.fit(tiny, "linear", epochs=2, batch_size=4, loss=models.cross_entropy)
    assert _trees_equal(a.params, b.params)


def test_extra_is_threaded_through_steps_and_epochs_without_retrace(tiny):
    before = compile_counts.fit()
    clf, state = models.fit(
        tiny, "linear", epochs=3, batch_size=4, loss=step_counter, extra=jnp.int32(0), return_state=True
    )
    assert compile_counts.fit() == before + 1  # three epochs, one compilation
    assert int(state.extra) == 9 == int(state.step)  # 3 epochs x 3 batches
    assert _trees_equal(clf.params, state.params)
    # warm start from the state with a new seed and learning rate: the same compiled epoch
    clf2, state2 = models.fit(
        tiny,
        "linear",
        epochs=2,
        batch_size=4,
        loss=step_counter,
        seed=5,
        learning_rate=1e-4,
        init_params=state,
        extra=state.extra,
        return_state=True,
    )
    assert compile_counts.fit() == before + 1
    assert int(state2.extra) == 15 and int(state2.step) == 6
    assert not _trees_equal(clf2.params, clf.params)


def test_ensemble_members_have_own_params_and_extra(tiny):
    kw = dict(widths=(8,), n_members=3, epochs=2, batch_size=4, loss=step_counter, return_state=True)
    ens, state = models.fit(tiny, "ensemble", extra=jnp.zeros(3, jnp.int32), **kw)
    np.testing.assert_array_equal(state.extra, [6, 6, 6])
    assert state.step.shape == () and int(state.step) == 6
    kernels = state.params["params"]["hidden_0"]["kernel"]
    assert kernels.shape == (3, 2, 8) and not np.allclose(kernels[0], kernels[1])
    before = compile_counts.fit()
    _, state2 = models.fit(tiny, "ensemble", init_params=ens, extra=state.extra, seed=2, **kw)
    assert compile_counts.fit() == before
    np.testing.assert_array_equal(state2.extra, [12, 12, 12])


# --- bad losses and extras --------------------------------------------------------------


@dataclasses.dataclass  # not frozen: unhashable
class _Unhashable:
    def __call__(self, params, batch, key, *, apply, extra):
        return 0.0, (extra, {})


def _bare_scalar(params, batch, key, *, apply, extra):
    return models.weighted_cross_entropy(apply(params, batch.x, key), batch.y, batch.w)


def test_bad_loss_and_extra(tiny):
    with pytest.raises(TypeError, match="loss must be a function"):
        models.fit(tiny, "linear", loss="ce")
    with pytest.raises(TypeError, match="hashable"):
        models.fit(tiny, "linear", loss=_Unhashable())
    with pytest.raises(TypeError, match=r"loss_fn must return \(loss, \(new_extra, aux_metrics\)\)"):
        models.fit(tiny, "linear", epochs=1, loss=_bare_scalar)
    with pytest.raises(ValueError, match="leading member axis of size 3"):
        models.fit(tiny, "ensemble", n_members=3, loss=step_counter, extra=jnp.int32(0))


def test_init_is_the_untrained_model_fit_starts_from(moons_split):
    from cfx.models import fit, init

    train, _ = moons_split
    fresh = init(train, "ensemble", widths=(8,), n_members=3, seed=4, epochs=7)  # training options ignored
    trained = fit(train, "ensemble", widths=(8,), n_members=3, seed=4, epochs=1)
    shapes = lambda c: jax.tree_util.tree_map(lambda a: a.shape, c.params)
    assert shapes(fresh) == shapes(trained) and fresh.apply_fn == trained.apply_fn
    assert fresh.n_classes == trained.n_classes == 2
    # the same start: one epoch at a vanishing learning rate stays at init's parameters
    still = fit(train, "ensemble", widths=(8,), n_members=3, seed=4, epochs=1, learning_rate=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(fresh.params), jax.tree_util.tree_leaves(still.params)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(TypeError, match="unexpected keyword"):
        init(train, "mlp", epoch=3)
