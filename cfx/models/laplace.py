"""Last-layer Laplace approximation (MacKay 1992; Daxberger et al., "Laplace Redux", NeurIPS 2021).

A trained network is ``f(x) = W̃ᵀ φ̃(x)`` with ``φ̃ = [φ(x), 1]`` (the last hidden layer and a
one) and ``W̃ = [W; b] ∈ R^{(h+1)×C}`` its output layer. The last layer's weights
``θ = vec(W̃)`` (row-major, index (a, c)) get a Gaussian posterior around the trained ones:

    p(θ | D) ≈ N(θ_MAP, Σ),   Σ⁻¹ = H + δ I,   H = Σ_i J_iᵀ Λ_i J_i                 (GGN)

with ``J_i = ∂f(x_i)/∂θ = I_C ⊗ φ̃_iᵀ`` and ``Λ_i = ∂²NLL/∂f²``: ``diag(p_i) − p_i p_iᵀ``
(softmax) or ``p_i (1 − p_i)`` (one logit). Since f is linear in θ the GGN is the exact Hessian
of the summed negative log-likelihood ``H[(a,c),(b,d)] = Σ_i φ̃_ia φ̃_ib Λ_i[c,d]``. Structures:
``"full"`` (P × P, P = (h+1)·C), ``"diag"`` (its diagonal), ``"kfac"`` (``A ⊗ G`` with
``A = Σ_i φ̃_i φ̃_iᵀ``, ``G = (1/n) Σ_i Λ_i``; the prior is added exactly in the Kronecker eigenbasis).

The prior precision δ maximises the Laplace evidence (over log δ, Adam, optax)

    log p(D | δ) ≈ log p(D | θ_MAP) − δ/2 ‖θ_MAP‖² + P/2 log δ − ½ Σ_k log(λ_k + δ)

with λ_k the eigenvalues of H's approximation (full: ``eigvalsh(H)``; diag: H's diagonal; kfac:
``s_A ⊗ s_G``).

Predictives, both pure functions of (params, x), so new parameters never recompile:

  - ``"probit"`` (MacKay): logits ``f_c(x) κ_c(x)``, ``κ_c = (1 + π/8 · v_c(x))^{-1/2}``,
    ``v_c = Var[f_c] = φ̃ᵀ Σ_cc φ̃``. Binary models (one logit, or two) use the variance of
    the one logit that matters, ``s² = Var[f_1 − f_0]``: ``p(y=1|x) ≈ σ(m κ)``, m = f_1 − f_0, so
    the decision boundary (m = 0) is unchanged and every other probability moves towards ½.
  - ``"mc"``: ``log (1/S) Σ_s softmax(φ̃ᵀ W̃_s)`` over S draws ``W̃_s ~ N(W̃_MAP, Σ)`` made once
    (fixed, so the predictive is smooth and deterministic for a search).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cfx._validate import as_real
from cfx.classifier import Classifier, two_class_logits
from cfx.models.ensemble import average_probability_logits
from cfx.models.mlp import ModuleApply

HESSIANS = ("full", "diag", "kfac")
PREDICTIVES = ("probit", "mc")

_REQUIRED = (
    "Laplace needs a recognisable last layer: a classifier whose apply_fn is a flax module "
    "(cfx.models.fit's 'mlp' or 'linear', or cfx.models.ModuleApply(your_module)) whose logits are "
    "the output of an nn.Dense submodule named {layer!r} (pass last_layer='<name>' for another "
    "name), applied last with nothing after it"
)


@dataclasses.dataclass(frozen=True)
class LastLayer:
    """The split ``f(x) = φ(x) W + b`` of a flax module: ``features(variables, x) -> φ (n, h)``.

    φ is the input of the module's top-level ``nn.Dense`` named ``layer``, captured with a flax
    method interceptor (so any module qualifies, not only cfx's MLP). Hashable."""

    module: nn.Module
    layer: str = "logits"

    def features(self, variables: Any, x: jax.Array) -> jax.Array:
        """The inputs of the last Dense layer φ(x) for x, captured by a flax interceptor."""
        captured = []

        def grab(next_fun, args, kwargs, context):
            mod = context.module
            if (
                context.method_name == "__call__"
                and isinstance(mod, nn.Dense)
                and mod.name == self.layer
                and mod.scope is not None
                and tuple(mod.scope.path) == (self.layer,)
            ):
                captured.append(args[0])
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(grab):
            self.module.apply(variables, x)  # the module's own output is unused: XLA drops it
        if len(captured) != 1:
            raise ValueError(
                _REQUIRED.format(layer=self.layer)
                + f" (the layer was called {len(captured)} times in one forward pass)"
            )
        return captured[0]

    def weights(self, variables: Any) -> jax.Array:
        """W̃ = [kernel; bias] (h+1, C)."""
        dense = variables["params"][self.layer]
        return jnp.concatenate([dense["kernel"], dense["bias"][None]], axis=0)


def _with_one(phi: jax.Array) -> jax.Array:
    return jnp.concatenate([phi, jnp.ones(phi.shape[:-1] + (1,), phi.dtype)], axis=-1)


@dataclasses.dataclass(frozen=True)
class LaplaceApply:
    """``apply_fn`` of a Laplace classifier (hashable; ``predictive`` is static).

    params: ``{"model": the network's variables, "blocks": (K, h+1, h+1) covariance of the K
    logit directions (binary: K = 1, the logit difference; else the C logits), "samples": (S, h+1,
    C) last-layer draws (``"mc"`` only), "prior_precision": δ, "log_marginal_likelihood": scalar}``."""

    last_layer: LastLayer
    predictive: str = "probit"

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        phi = _with_one(self.last_layer.features(params["model"], x))  # (n, h+1)
        if self.predictive == "mc":
            member = jnp.einsum("na,sac->snc", phi, params["samples"])
            return average_probability_logits(two_class_logits(member))
        f = phi @ self.last_layer.weights(params["model"])  # (n, C): the MAP logits
        blocks = params["blocks"]
        if blocks.shape[0] == 1:  # binary: one (n, a) @ (a, a) product, no (n, K, a) intermediate
            v = jnp.sum((phi @ blocks[0]) * phi, axis=-1, keepdims=True)
        else:  # (n, K) predictive variances of the C logits
            v = jnp.sum(jnp.einsum("na,kab->nkb", phi, blocks) * phi[:, None, :], axis=-1)
        return f * jax.lax.rsqrt(1.0 + (math.pi / 8.0) * jnp.maximum(v, 0.0))


# ----------------------------------------------------------------------------------
# the GGN and its posterior
# ----------------------------------------------------------------------------------


def _output_hessian(logits: jax.Array) -> jax.Array:
    """Λ_i = ∂²(−log p(y_i | f))/∂f² (n, C, C): diag(p) − p pᵀ; one logit: σ(f)(1 − σ(f))."""
    if logits.shape[-1] == 1:
        p = jax.nn.sigmoid(logits)
        return (p * (1.0 - p))[..., None]
    p = jax.nn.softmax(logits, axis=-1)
    return jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :]


def _nll(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Summed negative log-likelihood (softmax; one logit: Bernoulli)."""
    if logits.shape[-1] == 1:
        f = logits[:, 0]
        return jnp.sum(jax.nn.softplus(f) - y * f)
    return -jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(logits, -1), y[:, None], axis=-1))


def _directions(n_out: int) -> jax.Array:
    """(K, C) logit combinations whose variance the probit uses: binary two logits -> f_1 − f_0."""
    if n_out == 2:
        return jnp.array([[-1.0, 1.0]], jnp.float32)
    return jnp.eye(n_out, dtype=jnp.float32)


@jax.jit
def _ggn_full(phi: jax.Array, logits: jax.Array) -> jax.Array:
    lam = _output_hessian(logits)
    a, c = phi.shape[1], lam.shape[1]
    return jnp.einsum("na,ncd,nb->acbd", phi, lam, phi).reshape(a * c, a * c)


def last_layer_ggn(classifier: Classifier, X, y=None, *, hessian: str = "full", last_layer: str = "logits"):
    """The last layer's GGN of the summed NLL at the trained weights, with θ = vec(W̃) row-major.

    ``"full"``: (P, P); ``"diag"``: (h+1, C); ``"kfac"``: the factors ``(A (h+1, h+1), G (C, C))``.
    (``y`` is not needed: the GGN of a softmax/Bernoulli likelihood does not depend on it.)"""
    split = _last_layer(classifier, last_layer)
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}; got {hessian!r}")
    phi, logits = _features_and_logits(split, classifier.params, np.asarray(X, np.float32))
    return jax.jit(_ggn, static_argnums=0)(hessian, phi, logits)


def _ggn(hessian: str, phi, logits):
    if hessian == "full":
        return _ggn_full(phi, logits)
    lam = _output_hessian(logits)
    if hessian == "diag":
        return jnp.einsum("na,ncc->ac", phi * phi, lam)
    return phi.T @ phi, jnp.mean(lam, axis=0)


def _posterior(hessian: str, H, theta: jax.Array, delta, dirs: jax.Array, n_samples: int, key):
    """(blocks (K, a, a), samples (S, a, C)) for the structure's posterior with prior precision δ."""
    a, c = theta.shape
    if hessian == "full":
        cov = jnp.linalg.inv(H + delta * jnp.eye(a * c))
        cov = 0.5 * (cov + cov.T)
        blocks = jnp.einsum("kc,acbd,kd->kab", dirs, cov.reshape(a, c, a, c), dirs)
        if n_samples:
            chol = jnp.linalg.cholesky(cov)
            eps = jax.random.normal(key, (n_samples, a * c))
            samples = theta[None] + (eps @ chol.T).reshape(n_samples, a, c)
    elif hessian == "diag":
        var = 1.0 / (H + delta)  # (a, c)
        blocks = jax.vmap(jnp.diag)((dirs**2) @ var.T)
        if n_samples:
            samples = theta[None] + jnp.sqrt(var)[None] * jax.random.normal(key, (n_samples, a, c))
    else:
        (s_a, u_a), (s_g, u_g) = (jnp.linalg.eigh(m) for m in H)
        inv = 1.0 / (jnp.outer(jnp.maximum(s_a, 0.0), jnp.maximum(s_g, 0.0)) + delta)  # (a, c) eigenbasis
        proj = (dirs @ u_g) ** 2  # (K, c): the directions in G's eigenbasis
        blocks = jnp.einsum("ai,ki,bi->kab", u_a, proj @ inv.T, u_a)
        if n_samples:
            z = jax.random.normal(key, (n_samples, a, c)) * jnp.sqrt(inv)[None]
            samples = theta[None] + jnp.einsum("ai,sij,cj->sac", u_a, z, u_g)
    return blocks, (samples if n_samples else None)


def _eigenvalues(hessian: str, H) -> jax.Array:
    if hessian == "full":
        return jnp.maximum(jnp.linalg.eigvalsh(H), 0.0)
    if hessian == "diag":
        return H.ravel()
    s_a, s_g = (jnp.maximum(jnp.linalg.eigvalsh(m), 0.0) for m in H)
    return jnp.outer(s_a, s_g).ravel()


def log_evidence(log_delta, eigenvalues, theta_sq, nll):
    """Laplace evidence at δ = exp(log_delta): −NLL − δ/2‖θ‖² + P/2 log δ − ½ Σ log(λ_k + δ)."""
    delta = jnp.exp(log_delta)
    return (
        -nll - 0.5 * delta * theta_sq + 0.5 * eigenvalues.size * log_delta - 0.5 * jnp.sum(jnp.log(eigenvalues + delta))
    )


def _optimise_prior(eigenvalues, theta_sq, nll, steps: int, learning_rate):
    """argmax_δ of :func:`log_evidence` by Adam on log δ from δ = 1 (Laplace Redux's recipe)."""
    tx = optax.adam(learning_rate)
    loss = lambda r: -log_evidence(r, eigenvalues, theta_sq, nll)

    def step(carry, _):
        r, opt = carry
        g = jax.grad(loss)(r)
        upd, opt = tx.update(g, opt, r)
        return (optax.apply_updates(r, upd), opt), None

    r0 = jnp.zeros((), jnp.float32)
    (r, _), _ = jax.lax.scan(step, (r0, tx.init(r0)), None, length=steps)
    return jnp.exp(r)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _fit(split: LastLayer, hessian: str, n_samples: int, steps: int, variables, phi, logits, y, fixed, lr, key):
    """Everything after the features, as one compiled program per (structure, shapes): the GGN,
    δ (``fixed`` > 0, else the evidence's maximiser), the posterior blocks / draws, the evidence."""
    H = _ggn(hessian, phi, logits)
    theta = split.weights(variables)
    nll = _nll(logits, y)
    eig = _eigenvalues(hessian, H)
    theta_sq = jnp.sum(theta**2)
    delta = jnp.where(fixed > 0, fixed, _optimise_prior(eig, theta_sq, nll, steps, lr))
    blocks, samples = _posterior(hessian, H, theta, delta, _directions(logits.shape[-1]), n_samples, key)
    return blocks, samples, delta, log_evidence(jnp.log(delta), eig, theta_sq, nll)


# ----------------------------------------------------------------------------------
# the user-facing call
# ----------------------------------------------------------------------------------


def _last_layer(classifier, layer: str) -> LastLayer:
    """The classifier's :class:`LastLayer`, or the error that says what Laplace requires."""
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier must be a cfx.Classifier; got {type(classifier).__name__}")
    if not isinstance(layer, str):
        raise TypeError(f"last_layer must be the name of an nn.Dense submodule; got {layer!r}")
    apply = classifier.apply_fn
    if isinstance(apply, LaplaceApply):
        raise ValueError("classifier is already a Laplace classifier; pass the trained (MAP) classifier")
    if not isinstance(apply, ModuleApply):
        kind = (
            "an ensemble (one last layer per member)"
            if hasattr(apply, "member_logits")
            else f"apply_fn {getattr(apply, '__qualname__', type(apply).__name__)}"
        )
        raise ValueError(_REQUIRED.format(layer=layer) + f"; got {kind}")
    params = classifier.params.get("params", {}) if isinstance(classifier.params, dict) else {}
    dense = params.get(layer) if hasattr(params, "get") else None
    if not (hasattr(dense, "get") and np.ndim(dense.get("kernel")) == 2 and np.ndim(dense.get("bias")) == 1):
        found = sorted(params) if hasattr(params, "keys") else []
        raise ValueError(_REQUIRED.format(layer=layer) + f"; the model's top-level layers are {found}")
    return LastLayer(apply.module, layer)


@functools.partial(jax.jit, static_argnums=0)
def _features_and_logits(split: LastLayer, variables, X):
    phi = _with_one(split.features(variables, X))
    return phi, phi @ split.weights(variables)


def _check_data(train, d: int):
    X, y = (train.X, train.y) if hasattr(train, "X") else train
    X, y = np.asarray(X, np.float32), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] < 1:
        raise ValueError(f"train.X must have shape (n, {d}) with n >= 1; got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"train.y must have shape ({X.shape[0]},); got {y.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("train.X contains NaN or inf values")
    return X, y.astype(np.int32)


def laplace(
    classifier: Classifier,
    train,
    *,
    hessian: str = "full",
    prior_precision: float | None = None,
    predictive: str = "probit",
    n_samples: int = 100,
    key: jax.Array | None = None,
    last_layer: str = "logits",
    marglik_steps: int = 300,
    marglik_learning_rate: float = 0.1,
) -> Classifier:
    """A last-layer Laplace approximation of a trained ``classifier``, as a :class:`cfx.Classifier`.

    The posterior is ``N(θ_MAP, (H + δI)⁻¹)`` over the output layer (module docstring for the
    formulas); the returned classifier's logits are the predictive's (softmax gives p(y | x)), so
    it serves everywhere a Classifier does: ``cfx.generate`` (Schut's ``greedy``), ``cfx.evaluate``,
    ``cfx.models.calibrate``. Its ``params`` hold the network's variables, the posterior blocks and
    ``prior_precision`` / ``log_marginal_likelihood``; equal shapes never recompile.

    Args:
      classifier: the trained (MAP) model, from ``cfx.models.fit(..., "mlp" | "linear")`` or any
        ``ModuleApply`` of a flax module whose output layer is an ``nn.Dense`` named ``last_layer``.
      train: the training data (a Dataset or a pair (X (n, d), y (n,))) for the GGN and the evidence.
      hessian: ``"full"`` (default; P = (h+1)·C parameters, fine for heads up to a few thousand),
        ``"diag"`` or ``"kfac"``.
      prior_precision: δ > 0; None (default) maximises the evidence over δ.
      predictive: ``"probit"`` (default) or ``"mc"`` (``n_samples`` fixed draws; needs ``key``).
      marglik_steps, marglik_learning_rate: Adam on log δ, from δ = 1.

    Example::

        clf = cfx.models.fit(train, "mlp", epochs=100)
        bayes = cfx.models.laplace(clf, train)             # probit, full GGN, δ by evidence
        bayes.probs(x)                                     # less confident away from the data
        float(bayes.params["prior_precision"])
    """
    split = _last_layer(classifier, last_layer)
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}; got {hessian!r}")
    if predictive not in PREDICTIVES:
        raise ValueError(f"predictive must be one of {PREDICTIVES}; got {predictive!r}")
    for name, value in (("n_samples", n_samples), ("marglik_steps", marglik_steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    lr = as_real("marglik_learning_rate", marglik_learning_rate)
    if not (lr.shape == () and np.isfinite(lr) and lr > 0):
        raise ValueError(f"marglik_learning_rate must be a finite number > 0; got {marglik_learning_rate!r}")
    if prior_precision is not None:
        p = as_real("prior_precision", prior_precision)
        if not (p.shape == () and np.isfinite(p) and p > 0):
            raise ValueError(f"prior_precision must be a finite number > 0 or None; got {prior_precision!r}")
    if predictive == "mc" and key is None:
        raise ValueError("predictive='mc' needs key= (a jax.random.key) for its posterior draws")
    X, y = _check_data(train, classifier.n_features)
    variables = classifier.params
    try:
        phi, logits = _features_and_logits(split, variables, X)
    except Exception as err:  # the interceptor's count check, or a module that fails the split
        raise ValueError(_REQUIRED.format(layer=last_layer) + f": {err}") from err
    direct = np.asarray(classifier.apply_fn(variables, X[:64]))
    if direct.shape != np.shape(logits[:64]) or not np.allclose(direct, np.asarray(logits[:64]), rtol=1e-4, atol=1e-4):
        raise ValueError(
            _REQUIRED.format(layer=last_layer)
            + f"; the model's logits differ from φ·W + b of layer {last_layer!r} (something follows it)"
        )
    n_out = logits.shape[-1]
    if int(y.min()) < 0 or int(y.max()) >= max(n_out, 2):
        raise ValueError(f"train.y must hold labels 0..{max(n_out, 2) - 1}; got {int(y.min())}..{int(y.max())}")

    fixed = jnp.float32(0.0 if prior_precision is None else prior_precision)
    blocks, samples, delta, evidence = _fit(
        split,
        hessian,
        int(n_samples) if predictive == "mc" else 0,
        int(marglik_steps),
        variables,
        phi,
        logits,
        jnp.asarray(y),
        fixed,
        jnp.float32(lr),
        key if key is not None else jax.random.key(0),
    )
    params = {"model": variables, "blocks": blocks, "prior_precision": delta, "log_marginal_likelihood": evidence}
    if samples is not None:
        params["samples"] = samples
    return Classifier(
        LaplaceApply(split, predictive), params, n_features=classifier.n_features, n_classes=classifier.n_classes
    )


#: the keyword options of :func:`laplace` a config may set (``model: laplace``), besides the base model's
LAPLACE_OPTIONS = (
    "hessian",
    "prior_precision",
    "predictive",
    "n_samples",
    "last_layer",
    "marglik_steps",
    "marglik_learning_rate",
)
BASES = ("mlp", "linear")


def check_laplace_options(base: str = "mlp", **options) -> None:
    """Raise ValueError naming the option when a ``model: laplace`` setting cannot work
    (before anything is trained): ``base`` in :data:`BASES`, ``hessian`` / ``predictive`` names."""
    if base not in BASES:
        raise ValueError(f"base must be one of {BASES} (a model with one last nn.Dense layer); got {base!r}")
    if options.get("hessian", "full") not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}; got {options['hessian']!r}")
    if options.get("predictive", "probit") not in PREDICTIVES:
        raise ValueError(f"predictive must be one of {PREDICTIVES}; got {options['predictive']!r}")
    unknown = sorted(set(options) - set(LAPLACE_OPTIONS))
    if unknown:
        raise ValueError(f"unknown Laplace option {unknown[0]!r}; known: {', '.join(LAPLACE_OPTIONS)}")


def fit_entry(
    dataset,
    *,
    train_base,
    init_only: bool = False,
    base: str = "mlp",
    seed: int = 0,
    hessian: str = "full",
    prior_precision=None,
    predictive: str = "probit",
    n_samples: int = 100,
    last_layer: str = "logits",
    marglik_steps: int = 300,
    marglik_learning_rate: float = 0.1,
    interval=None,
    values=None,
    **fit_options,
) -> Classifier:
    """The registered model ``laplace``'s own training (``ModelEntry.fit``): the :func:`laplace`
    approximation of ``train_base(dataset, base, seed=seed, **fit_options)``, where ``train_base``
    is ``cfx.models.fit`` (a trained base) or, with ``init_only``, ``cfx.models.init`` (the untrained
    base, whose parameters have the trained one's structure, to load saved ones). The caller passes
    its trainer in, so this layer never imports the one that trains. The MC predictive's draws use
    ``jax.random.key(seed)``: same seed, same classifier. ``interval`` / ``values`` (the
    regressor's) do not apply."""
    check_laplace_options(base, hessian=hessian, predictive=predictive)
    clf = train_base(dataset, base, seed=seed, **fit_options)
    return laplace(
        clf,
        dataset,
        hessian=hessian,
        prior_precision=prior_precision,
        predictive=predictive,
        n_samples=n_samples,
        key=jax.random.key(int(seed)),
        last_layer=last_layer,
        marglik_steps=marglik_steps,
        marglik_learning_rate=marglik_learning_rate,
    )


def expected_calibration_error(probs, y, n_bins: int = 10) -> float:
    """ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)| over ``n_bins`` equal-width bins of the
    confidence max_c p(c | x); acc(B) is the share of rows whose argmax equals y."""
    probs, y = np.asarray(probs, np.float64), np.asarray(y)
    conf, pred = probs.max(-1), probs.argmax(-1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.mean() * abs(np.mean(pred[m] == y[m]) - conf[m].mean())
    return float(total)
