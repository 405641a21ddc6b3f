"""Variational autoencoders for latent-space search (REVISE, CLUE), trained with the one
train step of :mod:`cfx.models.step` and the ELBO as its loss.

Default architecture (CounterfactualExplanations.jl): encoder d → 32 → (μ, log σ²), latent 2
(synthetic) / 5–8 (tabular), decoder mirrored; Adam 1e-3, 100 epochs, MSE + KL.

    vae = cfx.models.fit_vae(train, latent_dim=2)
    z = vae.encode(x)          # the posterior mean μ(x), (n, m)
    x_hat = vae.decode(z)      # (n, d)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cfx._validate import integer, real
from cfx.models.losses import weighted_mean
from cfx.models.step import Batch, TrainState, train_epoch


class VAENet(nn.Module):
    """Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)) and deterministic decoder g(z)."""

    n_features: int
    latent_dim: int = 2
    hidden: Sequence[int] = (32,)
    #: hidden activations of the encoder and the decoder (CE.jl's VAE: sigmoid and tanh)
    activations: tuple[str, str] = ("relu", "relu")

    def setup(self):
        self.encoder = [nn.Dense(int(w), name=f"enc_{i}") for i, w in enumerate(self.hidden)]
        self.mean = nn.Dense(self.latent_dim, name="mean")
        self.log_var = nn.Dense(self.latent_dim, name="log_var")
        self.decoder = [nn.Dense(int(w), name=f"dec_{i}") for i, w in enumerate(reversed(tuple(self.hidden)))]
        self.out = nn.Dense(self.n_features, name="out")

    def encode(self, x):
        """(μ(x), log σ²(x)) of q(z|x)."""
        h, act = x, getattr(nn, self.activations[0])
        for layer in self.encoder:
            h = act(layer(h))
        return self.mean(h), self.log_var(h)

    def decode(self, z):
        """g(z): the reconstruction of latent z."""
        h, act = z, getattr(nn, self.activations[1])
        for layer in self.decoder:
            h = act(layer(h))
        return self.out(h)

    def __call__(self, x, key):
        """(x̂, μ, log σ²) with z = μ + σ·ε, ε ~ N(0, I) (the reparameterisation trick)."""
        mean, log_var = self.encode(x)
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        return self.decode(z), mean, log_var


@jax.tree_util.register_pytree_node_class
class VAE:
    """A trained VAE: the module (static) and its parameters (the only leaves), so a VAE
    refitted on new data (recourse dynamics) never recompiles a search that holds it."""

    def __init__(self, net: VAENet, params: Any):
        self.net = net
        self.params = params

    def tree_flatten(self):
        """PyTree protocol: ``params`` is the only child; the network is static."""
        return (self.params,), self.net

    @classmethod
    def tree_unflatten(cls, net, children):
        """PyTree protocol: rebuild from the network and ``(params,)``."""
        return cls(net, children[0])

    @property
    def n_features(self) -> int:
        """The data's number of features d."""
        return self.net.n_features

    @property
    def latent_dim(self) -> int:
        """The latent dimension."""
        return self.net.latent_dim

    def encode(self, x: jax.Array) -> jax.Array:
        """The posterior mean μ(x): (..., d) -> (..., m). Traceable."""
        return self.net.apply(self.params, x, method=VAENet.encode)[0]

    def decode(self, z: jax.Array) -> jax.Array:
        """g(z): (..., m) -> (..., d). Traceable."""
        return self.net.apply(self.params, z, method=VAENet.decode)

    def __repr__(self) -> str:
        return f"VAE(n_features={self.n_features}, latent_dim={self.latent_dim}, hidden={tuple(self.net.hidden)})"


@dataclasses.dataclass(frozen=True)
class ELBO:
    """Negative ELBO per example, weighted over the batch:

        ℓ_i = Σ_j (x̂_ij − x_ij)² + β · KL(q(z|x_i) ‖ N(0, I)),
        KL = −½ Σ_k (1 + log σ²_k − μ_k² − σ²_k),

    plus, once per batch, ``decoder_l2`` · Σ w² over the decoder's weights and biases (CE.jl's
    VAE: 0.01). A loss of :func:`cfx.models.train_step` (labels are ignored); aux:
    reconstruction and KL.
    """

    beta: float = 1.0
    decoder_l2: float = 0.0

    def __call__(self, params, batch: Batch, key, *, apply, extra):
        x_hat, mean, log_var = apply(params, batch.x, key)
        reconstruction = jnp.sum((x_hat - batch.x) ** 2, axis=-1)
        kl = -0.5 * jnp.sum(1.0 + log_var - mean**2 - jnp.exp(log_var), axis=-1)
        aux = {"reconstruction": weighted_mean(reconstruction, batch.w), "kl": weighted_mean(kl, batch.w)}
        loss = weighted_mean(reconstruction + self.beta * kl, batch.w)
        if self.decoder_l2:
            inner = params["params"]
            decoder = [inner[k] for k in inner if k.startswith("dec_") or k == "out"]
            loss = loss + self.decoder_l2 * sum(jnp.sum(w**2) for w in jax.tree_util.tree_leaves(decoder))
        return loss, (extra, aux)


@dataclasses.dataclass(frozen=True)
class _Forward:
    """The training forward pass ``(params, x, key) -> (x̂, μ, log σ²)``; hashable."""

    net: VAENet

    def __call__(self, params, x, key):
        return self.net.apply(params, x, key)


@functools.partial(jax.jit, static_argnames=("forward", "loss", "tx", "batch_size"))
def _epoch(state, X, key, epoch, *, forward, loss, tx, batch_size):
    y = jnp.zeros(X.shape[0], jnp.int32)  # unused by the ELBO
    key = jax.random.fold_in(key, epoch)  # in the program: an eager fold_in costs ~0.2 ms per epoch
    return train_epoch(state, X, y, key, apply=forward, loss_fn=loss, tx=tx, batch_size=batch_size)


def fit_vae(
    dataset,
    *,
    latent_dim: int = 2,
    hidden: Sequence[int] = (32,),
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    beta: float = 1.0,
    seed: int = 0,
    init: VAE | None = None,
    activations: Sequence[str] = ("relu", "relu"),
    decoder_l2: float = 0.0,
) -> VAE:
    """Train a VAE on ``dataset.X`` (or an (n, d) array) with Adam on the negative ELBO.

    ``activations``: the encoder's and the decoder's hidden activation (flax.linen names);
    ``decoder_l2``: weight of Σ w² over the decoder's parameters, added once per batch.
    CounterfactualExplanations.jl's VAE is ``activations=("sigmoid", "tanh")``,
    ``decoder_l2=0.01``, ``batch_size=50`` (on small-variance data its decoder collapses to
    the data mean, which bounds what a latent search can reach).

    ``init`` warm-starts from a VAE of the same architecture (no recompilation for the same
    data shape): the generative model of a recourse-dynamics round.
    """
    X = np.asarray(getattr(dataset, "X", dataset), np.float32)
    if X.ndim != 2 or X.shape[0] < 1 or not np.all(np.isfinite(X)):
        raise ValueError(f"fit_vae needs finite data of shape (n, d) with n >= 1; got shape {X.shape}")
    for name, value in (("latent_dim", latent_dim), ("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    learning_rate = real("learning_rate", learning_rate, low=0.0, open_low=True)
    beta = real("beta", beta, low=0.0)
    seed = integer("seed", seed)
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"hidden must be a sequence of layer widths (ints >= 1); got {hidden!r}")
    hidden = tuple(integer("hidden[]", h, low=1) for h in hidden)
    activations = tuple(str(a) for a in activations)
    if len(activations) != 2 or not all(callable(getattr(nn, a, None)) for a in activations):
        raise ValueError(f"activations must be two flax.linen activation names (encoder, decoder); got {activations!r}")
    decoder_l2 = real("decoder_l2", decoder_l2, low=0.0)
    net = VAENet(n_features=X.shape[1], latent_dim=int(latent_dim), hidden=hidden, activations=activations)
    key_init, key_train = jax.random.split(jax.random.key(int(seed)))
    if init is None:
        params = net.init(key_init, jnp.zeros((1, X.shape[1])), key_init)
    elif not isinstance(init, VAE) or init.net != net:
        raise ValueError(f"init must be a VAE with the same architecture ({net}); got {init!r}")
    else:
        params = init.params
    Xj = jnp.asarray(X)
    options = dict(
        forward=_Forward(net),
        loss=ELBO(float(beta), float(decoder_l2)),
        tx=_adam(float(learning_rate)),
        batch_size=min(int(batch_size), X.shape[0]),
    )
    state = TrainState.create(params, options["tx"])
    pending = None
    for epoch in range(int(epochs)):
        state, metrics = _epoch(state, Xj, key_train, epoch, **options)
        if pending is not None:  # the previous epoch's loss, read while this one runs (no stall)
            _check_finite(*pending)
        pending = (epoch, metrics)
    _check_finite(*pending)
    return VAE(net, state.params)


def _check_finite(epoch: int, metrics) -> None:
    """Stop a diverged VAE training with the epoch it diverged at, not NaN weights."""
    if not all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree_util.tree_leaves(metrics)):
        raise FloatingPointError(
            f"fit_vae: the training loss became non-finite at epoch {epoch}: lower "
            "learning_rate or standardise the features"
        )


@functools.lru_cache(maxsize=None)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    """One optimiser object per learning rate, so the compiled epoch is reused."""
    return optax.adam(learning_rate)
