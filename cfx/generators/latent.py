"""Latent-space search with a VAE: REVISE (Joshi et al. 2019), CLUE (Antorán et al. 2021), and
any gradient generator's objective searched in a VAE's latent space (:func:`in_latent_space`).

All search z in the latent space of a VAE and read the counterfactual x' = g(z) through its
decoder; every term sees the decoded x'. Mutability cannot act on z, so the decoded point is
projected onto the constraints (immutable features restored from the factual) before every
term sees it. ``fit`` trains the VAE on the data (warm-started from the one it holds, so a
refit after retraining — a recourse-dynamics round — reuses the compiled search).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cfx import _deprecated
from cfx.generators.base import Generator, fitted, generator_class, numpy_rng, static
from cfx.generators.generic import distance_penalty
from cfx.models.vae import VAE, VAENet, fit_vae


@generator_class
class VAESpace(Generator):
    """The search space of a VAE: z with x' = g(z), the VAE fitted by :meth:`fit` (then the
    generator's own fit, on the same data). No objective of its own: a base that adds the
    latent space to a generator (REVISE, CLUE, :func:`in_latent_space`).

    The VAE of CE.jl (encoder d → 32 → (μ, log σ²), ``latent_dim`` 2, decoder mirrored, Adam
    1e-3, ``vae_epochs`` 100, MSE + KL). Pass ``vae=cfx.models.fit_vae(train, ...)`` to bring your
    own. ``vae_activations`` (encoder, decoder), ``vae_decoder_l2`` and ``vae_batch_size`` go to
    :func:`cfx.models.fit_vae` (defaults relu/relu, 0, 64; CE.jl's VAE: relu/relu, 0.01, 50).
    ``latent_start="sample"``: z_0 ~ q(z|x) = μ(x) + σ(x)⊙ε, one ε per factual and counterfactual (CE.jl
    0.1.5's ``GenerativeModels.rand``); the draw's key is the refit's key folded with the
    factual's coordinates and k, so it is fixed per factual and round. Default: z_0 = μ(x).
    ``resample=True``: CE.jl 0.1.31's ``update!``: after every step x̃ = the projected g(z + Δz)
    (the decoded, clamped counterfactual), then z ← a new draw from q(z | x̃)
    (``apply_domain_constraints!`` → ``encode_state`` → ``rand(encoder, x′)``). The next gradient
    is taken at g(z) of the new draw, but the counterfactual — what convergence and validity are
    checked on and what the search returns — is x̃, the point *before* the redraw (CE.jl's
    ``counterfactual(ce) = ce.x′``). The iterate then carries both, ``[z, x̃]`` (latent_dim + d;
    :meth:`readout` gives x̃). Default False: z moves by the gradient only.
    """

    latent = True

    vae: Any = fitted()
    latent_dim: int = static(2)
    vae_hidden: tuple = static((32,))
    vae_epochs: int = static(100)
    vae_activations: tuple = static(("relu", "relu"))
    vae_decoder_l2: float = static(0.0)
    vae_batch_size: int = static(64)
    latent_start: str = static("mean")
    start_key: Any = fitted()  # latent_start="sample": uint32 key data, drawn by fit
    resample: bool = static(False)

    @staticmethod
    def old_keywords(kwargs: dict) -> dict:
        """``start="mean"`` / ``"sample"`` (this field's name before cfx 0.2, now ``latent_start``;
        ``start`` is the start rule every generator has) still work, with a warning."""
        if kwargs.get("start") in ("mean", "sample"):
            _deprecated.warn(
                f"start={kwargs['start']!r} on a latent generator",
                f"write latent_start={kwargs['start']!r} (start is the start rule every generator has)",
                stacklevel=4,
            )
            kwargs["latent_start"] = kwargs.pop("start")
        return kwargs

    def __post_init__(self):
        # YAML gives lists; a static field must be hashable.
        object.__setattr__(self, "vae_activations", tuple(self.vae_activations))
        object.__setattr__(self, "vae_hidden", tuple(self.vae_hidden))
        super().__post_init__()

    def fit(self, classifier, data, *, key):
        """Train the VAE on ``data`` (warm-started from the one held when it fits), then the
        generator's own fit (a data summary in input space: Gravitational's bank, ...)."""
        seed = int(numpy_rng(key).integers(2**31)) if key is not None else 0
        same = (
            isinstance(self.vae, VAE)
            and self.vae.latent_dim == self.latent_dim
            and tuple(self.vae.net.hidden) == tuple(self.vae_hidden)
            and self.vae.n_features == np.shape(data.X)[-1]
            and tuple(self.vae.net.activations) == tuple(self.vae_activations)
        )
        vae = fit_vae(
            data,
            latent_dim=self.latent_dim,
            hidden=self.vae_hidden,
            epochs=self.vae_epochs,
            seed=seed,
            init=self.vae if same else None,
            activations=tuple(self.vae_activations),
            decoder_l2=float(self.vae_decoder_l2),
            batch_size=int(self.vae_batch_size),
        )
        start_key = None
        if self.latent_start == "sample":
            start_key = (numpy_rng(key) if key is not None else np.random.default_rng(0)).integers(
                0, 2**32, size=2, dtype=np.uint32
            )
        own = super().fit(classifier, data, key=None if key is None else jax.random.fold_in(key, 0x1A7E))
        return own.replace(vae=vae, start_key=start_key)

    def validate(self, num_counterfactuals, n_features, n_classes):
        name = type(self).__name__
        if self.space != "input":
            raise ValueError(f"{name} searches its VAE's latent space; space={self.space!r} does not apply")
        if self.latent_start not in ("mean", "sample"):
            raise ValueError(f"{name}.latent_start must be 'mean' or 'sample'; got {self.latent_start!r}")
        if self.latent_start == "sample" and self.start_key is None:
            raise ValueError(f"{name}: latent_start='sample' needs the key fit draws; fit the generator")
        super().validate(num_counterfactuals, n_features, n_classes)
        if not isinstance(self.vae, VAE):
            raise ValueError(
                f"{name}.vae is missing: latent search needs a fitted VAE; fit the generator "
                f"({name}().fit(classifier, train, key=key)) or pass vae=cfx.models.fit_vae(train)"
            )
        if self.vae.n_features != n_features:
            raise ValueError(
                f"{name}.vae decodes {self.vae.n_features} features; the classifier expects "
                f"{n_features} (fit the VAE on the classifier's training data)"
            )

    def encode(self, x):
        z = self._start_draw(x)
        if self.resample:  # the iterate carries the counterfactual read out (CE.jl's initial x′ = g(z₀))
            return jnp.concatenate([z, self.vae.decode(z).astype(z.dtype)], axis=-1)
        return z

    def _latent(self, z):
        """The latent part of the iterate (all of it unless ``resample``)."""
        return z[..., : self.latent_dim] if self.resample else z

    def readout(self, z):
        """``resample``: x̃, the decoded and projected point before the last redraw; else None."""
        return z[..., self.latent_dim :] if self.resample else None

    def _start_draw(self, x):
        if self.latent_start == "mean":
            return self.vae.encode(x)
        mean, log_var = self.vae.net.apply(self.vae.params, x, method=VAENet.encode)
        key = jax.random.wrap_key_data(jnp.asarray(self.start_key, jnp.uint32))
        bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
        seeds = jnp.sum(bits * (jnp.arange(x.shape[-1], dtype=jnp.uint32) * 2 + 1) * jnp.uint32(2654435761), -1)
        if x.ndim == 3:  # (n, K, d): the K copies of a factual draw apart
            seeds = seeds + jnp.arange(x.shape[1], dtype=jnp.uint32)[None, :] * jnp.uint32(0x9E3779B9)
        flat = seeds.reshape(-1)
        eps = jax.vmap(lambda s: jax.random.normal(jax.random.fold_in(key, s), mean.shape[-1:]))(flat)
        return mean + jnp.exp(0.5 * log_var) * eps.reshape(mean.shape)

    def decode(self, z):
        return self.vae.decode(self._latent(z))

    def update(self, grad, state, z, ctx):
        z_next, state = super().update(grad, state, z, ctx)
        if not self.resample:
            return z_next, state
        x_cf = ctx.constraints.project(self.decode(z_next), ctx.x[:, None, :])
        mean, log_var = self.vae.net.apply(self.vae.params, x_cf, method=VAENet.encode)
        eps = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0x52455653), mean.shape[1:]))(ctx.key)
        z_new = mean + jnp.exp(0.5 * log_var) * eps.astype(mean.dtype)
        return jnp.concatenate([z_new, x_cf.astype(z_new.dtype)], axis=-1), state


@functools.cache
def in_latent_space(cls: type) -> type:
    """``cls``'s objective searched in a VAE's latent space: a generator class with the fields
    of both (``cls``'s weights and options, :class:`VAESpace`'s VAE and start), every term of
    ``cls`` evaluated at the decoded x' = g(z), its convergence rule (τ, ``step_tolerance`` on
    the step in z, ``stop_rule``) unchanged. CE.jl 0.1.5's ``latent_space = true`` for any
    gradient generator (the SaTML 2023 latent mitigation figure)::

        LatentClaPROAR = cfx.generators.in_latent_space(cfx.generators.ClaPROAR)
        gen = LatentClaPROAR(variant="0.1.5", latent_start="sample").fit(clf, train, key=key)

    The same class for the same ``cls`` (so its programs are compiled once). ``fit`` trains the
    VAE, then ``cls.fit`` on the same data. Refused: a generator that does not follow the
    gradient, or one that is already latent.
    """
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise TypeError(f"in_latent_space needs a Generator subclass; got {cls!r}")
    if not cls.uses_gradient:
        raise ValueError(
            f"in_latent_space: {cls.__name__} does not follow the gradient; a latent space needs a gradient search"
        )
    if issubclass(cls, VAESpace) or isinstance(inspect.getattr_static(cls, "latent"), bool):
        raise ValueError(f"in_latent_space: {cls.__name__} already searches a latent space of its own")
    attrs = {
        "name": f"latent_{cls.name}",
        "description": f"{cls.description or cls.__name__}, searched in a VAE's latent space",
        "__module__": __name__,
        "__qualname__": f"Latent{cls.__name__}",
        "__doc__": f"{cls.__name__}'s objective in a VAE's latent space (:func:`in_latent_space`).",
    }
    return generator_class(type(f"Latent{cls.__name__}", (VAESpace, cls), attrs))


#: the options :class:`VAESpace` adds to a generator (the VAE and the start)
VAE_OPTIONS = (
    "latent_dim",
    "vae_hidden",
    "vae_epochs",
    "vae_activations",
    "vae_decoder_l2",
    "vae_batch_size",
    "latent_start",
    "resample",
)


def latent_space(gen: Generator, **options) -> Generator:
    """``gen`` (unfitted settings kept) as its :func:`in_latent_space` class, with ``options``
    (:data:`VAE_OPTIONS`) for the VAE and the start; fit it before searching. ``gen`` must search
    the input space (a standardised-space generator: build it without ``space``)."""
    if not isinstance(gen, Generator):
        raise TypeError(f"latent_space needs a generator instance; got {type(gen).__name__}")
    unknown = sorted(set(options) - set(VAE_OPTIONS))
    if unknown:
        raise ValueError(f"latent_space: unknown option {unknown[0]!r}; the options are {', '.join(VAE_OPTIONS)}")
    if gen.space != "input":
        raise ValueError(
            f"latent_space: {type(gen).__name__} searches space={gen.space!r}; a latent search replaces "
            "the search space, build the generator with space='input'"
        )
    cls = in_latent_space(type(gen))
    own = {f.name: getattr(gen, f.name) for f in dataclasses.fields(gen) if f.init and not f.metadata.get("fitted")}
    return cls(**own, **options)


@generator_class
class REVISE(VAESpace):
    """min_z  yloss(f(g(z)), y+) + cost · ‖g(z) − x‖₁,  z_0 = μ(x)  (Joshi et al. 2019).

    Defaults: cost 0.1 (0.01 in the ECCCo experiments), plain gradient descent η = 0.1; the
    VAE and the start as :class:`VAESpace`. ``distance`` as :class:`Generic`'s (``"frobenius"``:
    CE.jl 0.1.5's set term).
    """

    name = "revise"
    description = "Joshi et al. 2019: gradient search in a VAE's latent space, L1 cost in input space"

    cost: float = 0.1
    distance: str = static("l1")

    def penalties(self):
        return (distance_penalty(self.cost, self.distance),)


@generator_class
class CLUE(REVISE):
    """min_z  H(p(y | g(z))) + cost · ‖g(z) − x‖₁  (Antorán et al. 2021): the counterfactual
    the model is most certain about near x. Untargeted by nature (the predictive entropy
    ignores the target; call ``cfx.generate(..., target=None)``); runs every step by default
    (``convergence="max_steps"``), or set ``convergence="gradient"`` to stop when flat.
    """

    name = "clue"
    description = "Antoran et al. 2021: minimise predictive entropy in a VAE's latent space + L1 cost"
    regression_refusal = (
        "it minimises the predictive entropy over classes (untargeted): on an interval that "
        "drives p(inside) to 0 or 1, whichever is nearer"
    )

    yloss: Any = static("entropy")
    convergence: str = static("max_steps")
