"""The JEM training loss as JointEnergyModels.jl 0.1.3 computes it (ECCCo's reference models).

:class:`ReferenceJEMLoss` is a :class:`cfx.models.JEMLoss` (so ``fit`` sets it up the same
way) whose sampler and energy terms follow the reference code rather than cfx's per-row JEM:

- **sampler, per iteration**: one class y_s ~ U{0..C−1} for all ``sampler_batch`` chains (50 on
  linearly separable data, 10 elsewhere); each chain starts fresh from U(lb, ub)^d with
  probability ``reinit_prob`` (0.05), else at a uniformly drawn buffer entry; ``sgld_steps``
  improper-SGLD steps on the batch-mean energy (1/B) Σ_j −f_{y_s}(x_j) (each chain's gradient
  divided by B before the ±``grad_clip`` clip), unbounded, then one clamp to [lb, ub]; the
  chains are written to the buffer as its newest entries. [lb, ub] is one interval for all
  features (:func:`cfx.sampling.scalar_bounds`); the buffer starts with B uniform points.
- **energy terms**: the class is that of the batch's first item, y₁; the samples are the
  N newest buffer entries, N = min(batch rows, buffer fill) (the data rows are cut to N too);
  with Ē = mean_i −f_{y₁}(x_i) over the N rows and Ē_s the same over the samples,

      L = α1·CE + α2·(Ē − Ē_s) + α3·(Ē² + Ē_s²)

  (squares of the means, as the reference squares its already-averaged energies).

``sampler_calls`` (default 1) runs the sampler that many times per iteration, each call writing
its chains to the buffer. The reference's training loop (JointEnergyModels.jl 0.1.3
``train_model``) evaluates the loss on every training batch after each epoch, and that
evaluation calls the sampler too, so its buffer advances twice per batch and epoch:
``sampler_calls=2`` gives the buffer the same number of sampler calls (all with the current
parameters, where the reference's second call uses the epoch's final ones).

The buffer (:class:`ReferenceBuffer`) is a ring of ``buffer_size`` slots in ``TrainState.extra``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from cfx import sampling
from cfx.classifier import two_class_logits
from cfx.models.jem import JEMLoss
from cfx.models.losses import weighted_cross_entropy
from cfx.models.step import Batch, TrainApply
from cfx._reductions import pick_last

__all__ = ["ReferenceJEMLoss", "ReferenceBuffer"]


@struct.dataclass
class ReferenceBuffer:
    """Unconditional SGLD buffer: ``x`` (K, d) ring, ``head`` the next slot to write, ``filled``
    the number of valid entries; ``lower``/``upper`` the scalar sampling box."""

    x: jax.Array
    head: jax.Array
    filled: jax.Array
    lower: jax.Array
    upper: jax.Array


@dataclasses.dataclass(frozen=True)
class _BatchMeanEnergy:
    """−f_y(x_j) / B for every chain j (hashable): the batch-mean energy's per-chain share."""

    apply: TrainApply

    def __call__(self, x, params, y, n):
        return -pick_last(two_class_logits(self.apply(params, x, None)), y) / n


@dataclasses.dataclass(frozen=True)
class ReferenceJEMLoss(JEMLoss):
    """JointEnergyModels.jl 0.1.3's JEM loss (module docstring). ``sampler_batch``: chains per
    iteration (50 linearly separable, 10 others); the other fields as :class:`JEMLoss`."""

    sampler_batch: int = 50
    sampler_calls: int = 1

    def __post_init__(self):
        super().__post_init__()
        v = self.sampler_batch
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= self.buffer_size:
            raise ValueError(f"sampler_batch must be an int in [1, buffer_size={self.buffer_size}]; got {v!r}")
        c = self.sampler_calls
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise ValueError(f"sampler_calls must be an int >= 1; got {c!r}")

    def init_buffer(self, X, n_classes: int, key: jax.Array) -> ReferenceBuffer:
        lo, hi = sampling.scalar_bounds(X)
        d = np.asarray(X).shape[1]
        x = jnp.zeros((self.buffer_size, d), jnp.float32)
        x = x.at[: self.sampler_batch].set(jax.random.uniform(key, (self.sampler_batch, d), jnp.float32, lo, hi))
        return ReferenceBuffer(
            x=x,
            head=jnp.int32(self.sampler_batch % self.buffer_size),
            filled=jnp.int32(self.sampler_batch),
            lower=jnp.float32(lo),
            upper=jnp.float32(hi),
        )

    def _sampler_call(self, buf: ReferenceBuffer, params, key, *, apply: TrainApply, n_classes: int):
        """One call of the reference's sampler: one random class, 95 % of the starts from the
        buffer, batch-mean energy, unbounded then clamped; the chains become the newest entries."""
        k_cls, k_idx, k_fresh, k_u, k_sgld = jax.random.split(key, 5)
        B = self.sampler_batch
        cap, d = buf.x.shape
        y_s = jnp.full((B,), jax.random.randint(k_cls, (), 0, n_classes), jnp.int32)
        idx = jax.random.randint(k_idx, (B,), 0, jnp.maximum(buf.filled, 1))
        idx = (buf.head - 1 - idx) % cap  # the filled slots, counted back from the newest
        fresh = jax.random.uniform(k_fresh, (B, 1)) < self.reinit_prob
        x0 = jnp.where(fresh, jax.random.uniform(k_u, (B, d), jnp.float32, buf.lower, buf.upper), buf.x[idx])
        x_new, info = sampling.sgld(
            _BatchMeanEnergy(apply),
            x0,
            k_sgld,
            steps=self.sgld_steps,
            rule="improper",
            grad_clip=self.grad_clip,
            noise_scale=self.noise_scale,
            args=(params, y_s, jnp.float32(B)),
        )
        x_new = jnp.clip(x_new, buf.lower, buf.upper)
        slots = (buf.head + jnp.arange(B)) % cap
        return buf.replace(
            x=buf.x.at[slots].set(x_new), head=(buf.head + B) % cap, filled=jnp.minimum(buf.filled + B, cap)
        ), info

    def epoch_pass(
        self, params: Any, extra: ReferenceBuffer, key: jax.Array, *, apply: TrainApply, n_calls: int
    ) -> ReferenceBuffer:
        """``n_calls`` sampler calls with fixed ``params``, each writing its chains to the buffer:
        JointEnergyModels.jl 0.1.3's ``train_model`` evaluates the loss (so runs the sampler) on every
        training batch after each epoch, with that epoch's final parameters (used by
        :func:`cfx.models.fit_scheduled` with ``epoch_pass=True``; then ``sampler_calls=1``)."""
        frozen = jax.lax.stop_gradient(params)
        n_classes = two_class_logits(apply(frozen, extra.x[:1], None)).shape[-1]

        def body(buf, k):
            return self._sampler_call(buf, frozen, k, apply=apply, n_classes=n_classes)[0], None

        return jax.lax.scan(body, extra, jax.random.split(key, n_calls))[0]

    def __call__(
        self, params: Any, batch: Batch, key: jax.Array, *, apply: TrainApply, extra: ReferenceBuffer
    ) -> tuple:
        if not isinstance(extra, ReferenceBuffer):
            raise TypeError(f"ReferenceJEMLoss needs a ReferenceBuffer as extra; got {type(extra).__name__}")
        k_call, k_data, k_hat = jax.random.split(key, 3)
        buf = extra
        cap = buf.x.shape[0]
        logits = two_class_logits(apply(params, batch.x, k_data))
        n_classes = logits.shape[-1]
        frozen = jax.lax.stop_gradient(params)
        for k in jax.random.split(k_call, self.sampler_calls):  # a static count (1 or 2)
            buf, info = self._sampler_call(buf, frozen, k, apply=apply, n_classes=n_classes)
        # the energy terms: class of the first (real) batch item, the N newest samples
        n_rows = batch.x.shape[0]
        real = batch.w > 0
        first = jnp.argmax(real)
        y1 = batch.y[first]
        rank = jnp.cumsum(real) - 1  # position among the real rows
        n_used = jnp.minimum(jnp.sum(real), buf.filled)
        use_data = real & (rank < n_used)
        x_hat = jax.lax.stop_gradient(buf.x[(buf.head - 1 - jnp.arange(n_rows)) % cap])
        use_hat = jnp.arange(n_rows) < n_used
        denom = jnp.maximum(n_used, 1).astype(jnp.float32)
        e_data = jnp.sum(jnp.where(use_data, -pick_last(logits, jnp.full((n_rows,), y1)), 0.0)) / denom
        logits_hat = two_class_logits(apply(params, x_hat, k_hat))
        e_hat = jnp.sum(jnp.where(use_hat, -pick_last(logits_hat, jnp.full((n_rows,), y1)), 0.0)) / denom
        ce = weighted_cross_entropy(logits, batch.y, batch.w)
        a1, a2, a3 = self.alpha
        loss = a1 * ce + a2 * (e_data - e_hat) + a3 * (e_data**2 + e_hat**2)
        aux = {"ce": ce, "energy_data": e_data, "energy_sample": e_hat, "sgld_reset_share": info.reset_share}
        return loss, (buf, aux)
