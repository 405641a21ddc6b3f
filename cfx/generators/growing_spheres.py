"""Growing Spheres (Laugel et al. 2017): a gradient-free baseline, batched with early exit."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cfx.generators.base import Generator, check_positive, generator_class, static


def _sample_shell(key, centre, inner, outer, n_samples):
    """``n_samples`` points uniform in the L2 shell inner <= ‖p − centre‖ <= outer around one
    centre (d,): a Gaussian direction and radius r = (a^d + u·(b^d − a^d))^(1/d)."""
    d = centre.shape[-1]
    k_dir, k_rad = jax.random.split(key)
    direction = jax.random.normal(k_dir, (n_samples, d), jnp.float32).astype(centre.dtype)  # float32 draws: x64 agrees
    direction = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
    u = jax.random.uniform(k_rad, (n_samples, 1), jnp.float32).astype(centre.dtype)
    radius = (inner**d + u * (outer**d - inner**d)) ** (1.0 / d)
    return centre + radius * direction


@generator_class
class GrowingSpheres(Generator):
    """Sample in growing L2 shells around x until the decision flips, then sparsify.

    Step t samples ``n_samples`` points in the shell [t·η, (t + 1)·η] around each factual
    (η = ``step_size``), projected onto the constraints (immutable features kept, one-hot
    groups snapped). The first valid sample (p(y⁺|x') >= τ) closest to x becomes the
    counterfactual; it is then sparsified: features are reverted to the factual one at a time,
    smallest |Δ_j| first, keeping each reversion after which it stays valid (Laugel et al.'s
    feature selection). The row is then converged and stops; a row whose shells reach no
    valid point runs until ``max_steps``. No gradient of the model is used. Defaults follow
    CARLA's implementation: η = 0.2 (its ``step``), 1000 samples per shell.
    """

    name = "growing_spheres"
    description = "Laugel et al. 2017: gradient-free sampling in growing L2 shells, then sparsify"
    uses_gradient = False

    yloss: object = static(None)
    step_size: float = 0.2
    n_samples: int = static(1000)

    def validate(self, num_counterfactuals, n_features, n_classes):
        super().validate(num_counterfactuals, n_features, n_classes)
        check_positive("GrowingSpheres.step_size", self.step_size)
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ValueError(f"GrowingSpheres.n_samples must be an int >= 1; got {self.n_samples!r}")

    def init_update(self, z, ctx):
        return ()

    def update(self, grad, state, z, ctx):
        n, K, d = z.shape
        x = jnp.broadcast_to(ctx.x[:, None, :], (n, K, d))
        inner, outer = ctx.step * self.step_size, (ctx.step + 1) * self.step_size
        # one key per factual, split over its K counterfactuals: independent of chunking
        keys = jax.vmap(lambda k: jax.random.split(k, K))(ctx.key)  # (n, K)
        samples = jax.vmap(jax.vmap(lambda k, c: _sample_shell(k, c, inner, outer, self.n_samples)))(keys, x)
        samples = ctx.constraints.project(samples, x[:, :, None, :], one_hot=True)  # (n, K, S, d)
        valid = self._valid(ctx, samples.reshape(n, K * self.n_samples, d)).reshape(n, K, self.n_samples)
        dist = jnp.where(valid, jnp.linalg.norm(samples - x[:, :, None, :], axis=-1), jnp.inf)
        best = jnp.take_along_axis(samples, jnp.argmin(dist, axis=-1)[..., None, None], axis=2)[:, :, 0]
        found = jnp.any(valid, axis=-1)
        return jnp.where(found[..., None], self._sparsify(ctx, best, x), z), state

    def _valid(self, ctx, points):
        """(n, m) p(y⁺ | point) >= τ for points (n, m, d) of each factual."""
        n, m, d = points.shape
        probs = jax.nn.softmax(ctx.classifier.raw_logits(points.reshape(n * m, d)), axis=-1).reshape(n, m, -1)
        target = jnp.broadcast_to(ctx.target[:, None, None], (n, m, 1))
        return jnp.take_along_axis(probs, target, axis=-1)[..., 0] >= self.threshold

    def _sparsify(self, ctx, cf, x):
        """Revert features to the factual one at a time, smallest |Δ_j| first, while valid."""
        n, K, d = cf.shape
        order = jnp.argsort(jnp.abs(cf - x), axis=-1)

        def revert(i, current):
            column = jax.nn.one_hot(order[..., i], d, dtype=bool)
            trial = ctx.constraints.project(jnp.where(column, x, current), x, one_hot=True)
            keep = self._valid(ctx, trial.reshape(n, K, d))
            return jnp.where(keep[..., None], trial, current)

        return jax.lax.fori_loop(0, d, revert, cf)
