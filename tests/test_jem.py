"""JEM training (cfx.models.jem) through cfx.models.fit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import compile_counts

import cfx
from cfx import models, sampling

OPTS = dict(widths=(16, 16), learning_rate=3e-2, batch_size=32)
LOSS = models.JEMLoss(sgld_steps=10, buffer_size=200)


@pytest.fixture(scope="module")
def moons300():
    return cfx.data.load("moons", n=300, seed=0)


def test_jem_trains_updates_buffer_and_warm_start_does_not_retrace(moons300):
    assert {"jem", "jem_ensemble"} <= set(models.list_models())
    clf, state = models.fit(moons300, "jem", epochs=2, loss=LOSS, return_state=True, **OPTS)
    assert models.accuracy(clf, moons300) > 0.75
    buf = state.extra
    assert isinstance(buf, sampling.ReplayBuffer) and buf.x.shape == (200, 2)
    assert bool(jnp.all(jnp.isfinite(buf.x)))
    assert bool(jnp.all((buf.x >= buf.lower) & (buf.x <= buf.upper)))

    # one more epoch from that buffer: the chains move
    before = compile_counts.fit()
    _, state2 = models.fit(moons300, "jem", epochs=1, loss=LOSS, init_params=clf, extra=buf, return_state=True, **OPTS)
    assert not np.array_equal(np.asarray(state2.extra.x), np.asarray(buf.x))
    # warm start with a fresh buffer: same shapes, no retrace
    clf3 = models.fit(moons300, "jem", epochs=1, loss=LOSS, init_params=clf.params, **OPTS)
    assert compile_counts.fit() == before
    assert models.accuracy(clf3, moons300) > 0.75


def test_jem_default_loss_and_ensemble(moons300):
    clf, state = models.fit(moons300, "jem_ensemble", epochs=1, n_members=2, loss=LOSS, return_state=True, **OPTS)
    assert state.extra.x.shape == (2, 200, 2)
    assert not np.array_equal(np.asarray(state.extra.x[0]), np.asarray(state.extra.x[1]))
    assert clf.apply_fn.member_logits(clf.params, moons300.X[:3]).shape == (2, 3, 2)
    assert models.accuracy(clf, moons300) > 0.6
    # "jem" with no loss given: JEMLoss() and a 10,000-slot buffer over μ ± 3σ of X
    _, st = models.fit(moons300, "jem", epochs=1, widths=(16, 16), batch_size=300, return_state=True)
    lo, hi = sampling.bounds(moons300.X)
    assert st.extra.x.shape == (10_000, 2)
    np.testing.assert_allclose(st.extra.lower, lo, rtol=1e-5)
    np.testing.assert_allclose(st.extra.upper, hi, rtol=1e-5)


def test_jem_loss_gradient_skips_the_sampler():
    loss = models.JEMLoss(sgld_steps=3, buffer_size=10_000)
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    buf = loss.init_buffer(X, 2, jax.random.key(0))
    apply = lambda p, x, k: x @ p
    w = jnp.array([[1.0, -1.0], [0.5, 0.2]])
    batch = models.Batch(jnp.asarray(X[:8]), jnp.array([0, 1] * 4), jnp.ones(8))
    key = jax.random.key(1)
    (val, (new, aux)), g = jax.value_and_grad(lambda p: loss(p, batch, key, apply=apply, extra=buf), has_aux=True)(w)
    assert set(aux) == {"ce", "energy_data", "energy_sample", "sgld_reset_share"}
    # with x̂ fixed, the loss is the closed form in w; its gradient must match
    x0, idx = sampling.sample(buf, jax.random.split(key, 4)[0], 8, batch.y)
    assert np.unique(np.asarray(idx)).size == 8  # no slot drawn twice: new.x[idx] is x̂
    x_hat = new.x[idx]

    def closed(p):
        e_d = -jnp.take_along_axis(batch.x @ p, batch.y[:, None], 1)[:, 0]
        e_h = -jnp.take_along_axis(x_hat @ p, batch.y[:, None], 1)[:, 0]
        ce = jnp.mean(-jax.nn.log_softmax(batch.x @ p)[jnp.arange(8), batch.y])
        return ce + jnp.mean(e_d - e_h) + 0.1 * jnp.mean(e_d**2 + e_h**2)

    np.testing.assert_allclose(val, closed(w), rtol=1e-5)
    np.testing.assert_allclose(g, jax.grad(closed)(w), rtol=1e-4, atol=1e-6)
