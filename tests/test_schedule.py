"""``cfx.models.fit_scheduled``: the batch order, bagged members, sequential members handing on the
loss state, and the loss's end-of-epoch pass (the ECCCo reference's training schedule)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import cfx
from cfx.data import Dataset, FeatureSchema
from cfx.models import ReferenceJEMLoss, fit_scheduled, member_rows
from cfx.models.losses import cross_entropy


@dataclasses.dataclass(frozen=True)
class _Recorder:
    """Cross-entropy that writes each step's row ids (x[:, 0], -1 for padded slots) into ``extra``."""

    def __call__(self, params, batch, key, *, apply, extra):
        loss, (_, aux) = cross_entropy(params, batch, key, apply=apply, extra=None)
        step, log = extra
        ids = jnp.where(batch.w > 0, batch.x[:, 0], -1.0)
        return loss, ((step + 1, log.at[step].set(ids)), aux)


def _ids(n=10):
    X = np.stack([np.arange(n, dtype=np.float32), np.linspace(-1, 1, n, dtype=np.float32)], 1)
    return Dataset(X, (np.arange(n) % 2).astype(np.int32), FeatureSchema.default(2))


def _log(data, epochs, batch_size, **kw):
    steps = epochs * -(-len(data) // batch_size)
    extra = (jnp.int32(0), jnp.zeros((steps, batch_size), jnp.float32))
    _, state = fit_scheduled(
        data,
        "mlp",
        loss=_Recorder(),
        extra=extra,
        epochs=epochs,
        batch_size=batch_size,
        widths=(4,),
        seed=3,
        return_state=True,
        **kw,
    )
    return np.asarray(state.extra[1]).reshape(epochs, -1, batch_size)


def test_fixed_order_repeats_the_same_batches_every_epoch_and_shuffle_does_not():
    data = _ids(10)
    fixed, shuffled = _log(data, 3, 4, batch_order="fixed"), _log(data, 3, 4)
    for log in (fixed, shuffled):  # every row once per epoch; the ragged batch (2 real rows) last
        for e in range(3):
            assert sorted(log[e][log[e] >= 0].astype(int)) == list(range(10))
            assert (log[e, -1] >= 0).sum() == 2
    assert np.array_equal(fixed[0], fixed[1]) and np.array_equal(fixed[1], fixed[2])
    assert not np.array_equal(shuffled[0], shuffled[1])


def test_bagging_draws_distinct_rows_per_member_without_replacement():
    import jax

    rows = np.asarray(member_rows(jax.random.key(0), 50, 4, 0.8))
    assert rows.shape == (4, 40)
    assert all(len(set(r)) == 40 and r.min() >= 0 and r.max() < 50 for r in rows)
    assert len({tuple(sorted(r)) for r in rows}) == 4
    assert np.array_equal(np.asarray(member_rows(jax.random.key(0), 7, 2, 1.0)), np.tile(np.arange(7), (2, 1)))


def test_sequential_members_hand_the_loss_state_on():
    data = _ids(12)

    @dataclasses.dataclass(frozen=True)
    class Count:
        def __call__(self, params, batch, key, *, apply, extra):
            loss, (_, aux) = cross_entropy(params, batch, key, apply=apply, extra=None)
            return loss, (extra + 1, aux)

    kw = dict(loss=Count(), epochs=2, batch_size=4, widths=(4,), n_members=3, return_state=True)
    _, seq = fit_scheduled(data, "ensemble", members="sequential", extra=jnp.int32(0), **kw)
    _, par = fit_scheduled(data, "ensemble", extra=jnp.zeros(3, jnp.int32), **kw)
    assert int(seq.extra) == 3 * 2 * 3 and np.array_equal(np.asarray(par.extra), [6, 6, 6])


def test_epoch_pass_runs_the_reference_sampler_once_per_batch_after_each_epoch():
    data = cfx.data.load("linearly_separable", n=50, seed=0)  # 50 rows, batch 20: 3 batches
    loss = ReferenceJEMLoss(sgld_steps=1, sampler_batch=5)
    clf, state = fit_scheduled(
        data, "jem", loss=loss, epochs=1, batch_size=20, widths=(8,), epoch_pass=True, return_state=True
    )
    assert int(state.extra.filled) == 5 + (3 + 3) * 5
    assert np.all(np.isfinite(np.asarray(clf.logits(data.X))))


def test_bad_schedule_options_are_refused_by_name():
    data = _ids(10)
    with pytest.raises(ValueError, match="batch_order"):
        fit_scheduled(data, "mlp", batch_order="random", epochs=1)
    with pytest.raises(ValueError, match="bagging"):
        fit_scheduled(data, "ensemble", bagging=0.0, epochs=1)
    with pytest.raises(ValueError, match="members"):
        fit_scheduled(data, "ensemble", members="serial", epochs=1)
    with pytest.raises(ValueError, match="epoch_pass"):
        fit_scheduled(data, "mlp", epoch_pass=True, epochs=1)


def test_revise_resample_redraws_z_and_reads_out_the_point_before_the_draw():
    """CE.jl 0.1.31's update!: x̃ = clamp(g(z + Δz)), then z ~ q(z | x̃); the counterfactual is x̃."""
    import jax

    from cfx.constraints import Constraints
    from cfx.generators.base import StepContext
    from cfx.generators.latent import REVISE
    from cfx.models.vae import VAENet

    data = cfx.data.load("linearly_separable", n=60, seed=0)
    clf = cfx.models.init(data, "mlp", widths=(4,))
    gen = REVISE(vae_epochs=2, resample=True, learning_rate=0.5).fit(clf, data, key=jax.random.key(0))
    n = 4000
    z0 = gen.encode(jnp.zeros((n, 1, 2)))  # the iterate carries [z, x̃]: latent 2 + d 2
    assert z0.shape == (n, 1, 4)
    np.testing.assert_allclose(np.asarray(gen.readout(z0)), np.asarray(gen.decode(z0)), atol=1e-6)
    z = jnp.concatenate([jnp.full((n, 1, 2), 0.3), jnp.full((n, 1, 2), 9.0)], axis=-1)
    grad = jnp.concatenate([jnp.full((n, 1, 2), -0.2), jnp.zeros((n, 1, 2))], axis=-1)  # the step lands at z + 0.1
    ctx = StepContext(
        key=jax.random.split(jax.random.key(1), n),
        step=jnp.int32(0),
        x=jnp.zeros((n, 2)),
        target=jnp.zeros(n, jnp.int32),
        classifier=clf,
        constraints=Constraints().resolve(2),
    )
    state = gen.init_update(z, ctx)
    out, _ = gen.update(grad, state, z, ctx)
    x_tilde = gen.vae.decode(jnp.full((1, 1, 2), 0.4))
    np.testing.assert_allclose(np.asarray(gen.readout(out)), np.broadcast_to(x_tilde, (n, 1, 2)), atol=1e-5)
    mean, log_var = gen.vae.net.apply(gen.vae.params, x_tilde, method=VAENet.encode)
    latent = np.asarray(out)[..., :2]
    np.testing.assert_allclose(latent.mean((0, 1)), np.asarray(mean)[0, 0], atol=0.05)
    np.testing.assert_allclose(latent.std((0, 1)), np.exp(0.5 * np.asarray(log_var))[0, 0], rtol=0.05)
    plain = gen.replace(resample=False)
    assert plain.readout(z[..., :2]) is None
    np.testing.assert_allclose(np.asarray(plain.update(grad[..., :2], state, z[..., :2], ctx)[0]), 0.4, atol=1e-6)


def test_the_search_checks_and_returns_the_generators_readout():
    """Generator.readout: the point convergence is checked on and the search returns."""
    import jax

    from cfx.generators.base import generator_class
    from cfx.generators.latent import REVISE

    @generator_class
    class Fixed(REVISE):
        def readout(self, z):
            return jnp.full(z.shape[:-1] + (2,), 0.123, z.dtype)

    data = cfx.data.load("linearly_separable", n=60, seed=0)
    clf = cfx.models.init(data, "mlp", widths=(4,))
    gen = Fixed(vae_epochs=2, resample=True).fit(clf, data, key=jax.random.key(0))
    res = cfx.generate(gen, clf, data.X[:3], jnp.ones(3, jnp.int32), key=jax.random.key(1), max_steps=3)
    np.testing.assert_allclose(np.asarray(res.counterfactuals), 0.123, atol=1e-6)
