"""The ``ard-2023`` reference semantics: the recourse-dynamics experiments of Altmeyer et al.
(SaTML 2023) as AlgorithmicRecourseDynamics.jl 0.1.2 with CounterfactualExplanations.jl 0.1.5
ran them (the companion repository's Manifest at the commits that wrote ``paper/www``).

Everything here is built from general cfx options; this module only names the values.

- Models (:class:`ReferenceTrainer`): one logit f(x) (binary logit-BCE, shown to cfx as the
  two-class logits [0, f]): ``linear`` = Dense(d, 1); ``mlp`` = d → 32 ReLU → 1 (``widths``);
  ``ensemble`` = 5 such MLPs, probabilities the mean of the members' σ (``combine``), the
  search's loss on the mean logit; optional Flux-style dropout (active only under gradients). Flux's initialisation (Glorot-uniform
  weights, zero biases). Training: logit-BCE, Adam(1e-3, β = (0.9, 0.999), ε = 1e-8), **batch
  size 1** (``batch_size``; the real-data script: 500 for the initial fit, retraining always
  batch 1: ``retrain_batch_size``) over
  the rows in their fixed order, a fresh optimiser state on every call; 100 epochs at the
  start, 10 warm-started epochs per round. One compiled ``lax.scan`` over epochs × rows (the
  members of an ensemble vmapped: they are trained one after another, independently).
- Generators (:func:`generator_options`): the search of CE.jl 0.1.5 — the standardised space
  s = (x − μ)/σ (μ, σ of the initial data, fixed), plain descent η = 0.01 with the step
  multiplied by K, the objective the mean over K of the logit-BCE plus λ·‖X' − x‖_F, the start
  s + 0.1·N(0, I) per counterfactual, T = 100, all K stop together once p ≥ τ; ClaPROAR and
  Gravitational (``decision_threshold = nothing``) also need every |step| < 1e-3.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cfx.classifier import Classifier

__all__ = [
    "ReferenceTrainer",
    "OneLogitNet",
    "retrain_many",
    "REFERENCE_MODELS",
    "REFERENCE_OPTIONS",
    "gradient_dropout",
    "generator_options",
    "latent_generator_options",
    "REFERENCE_GENERATORS",
    "LATENT",
    "expand_config",
    "PresetConflict",
]

REFERENCE_MODELS = ("linear", "mlp", "ensemble")
#: the reference trainer's keys a config passes through a model's options
REFERENCE_OPTIONS = ("n_members", "retrain_batch_size", "combine", "dropout")
_SEARCH = dict(
    space="standardized",
    k_terms="mean",
    step_scale="k",
    stop_rule="all",
    optimizer="sgd",
    learning_rate=0.01,
    start="noise",
    start_scale=0.1,
    num_counterfactuals=5,
)
#: registry name -> the hyperparameters of its CE.jl 0.1.5 counterpart as the paper's scripts built it
REFERENCE_GENERATORS = {
    "generic": dict(_SEARCH, cost=0.1, distance="frobenius", yloss="member_logit_bce"),
    "conservative": dict(_SEARCH, cost=0.1, distance="frobenius", yloss="member_logit_bce", threshold=0.9),
    "dice": dict(_SEARCH, cost=0.1, diversity=1.0, distance="frobenius", yloss="member_logit_bce", stop="set"),
    "claproar": dict(
        _SEARCH, cost=0.1, loss_weight=5.0, variant="0.1.5", yloss="member_logit_bce", step_tolerance=1e-3
    ),
    "gravitational": dict(
        _SEARCH, cost=0.1, gravity=5.0, variant="0.1.5", n_neighbours=50, yloss="member_logit_bce", step_tolerance=1e-3
    ),
    # Greedy: step 0.1 in s on the most salient feature, not multiplied by K; its change cap never
    # binds in 0.1.5 (every feature counts as changed every step), so a cap above T
    "greedy": dict(
        space="standardized",
        stop_rule="all",
        step_size=0.1,
        max_changes=1000,
        num_counterfactuals=5,
        yloss="member_logit_bce",
        start="noise",
        start_scale=0.1,
    ),
}
#: CE.jl 0.1.5's latent search (REVISE, or any generator with ``latent_space = true``): the VAE's
#: latent space replaces the standardised one, the start is z ~ q(z|x) with no added noise
#: (``initialize_state`` returns a latent start as drawn), the VAE as ``VAEParams`` trains it
LATENT = dict(latent_start="sample", vae_batch_size=50, vae_decoder_l2=0.01)
_NOT_LATENT = ("space", "start", "start_scale")
# REVISE: the VAE's latent space (not standardised), the same descent and objective
REFERENCE_GENERATORS["revise"] = dict(
    {k: v for k, v in REFERENCE_GENERATORS["generic"].items() if k not in _NOT_LATENT}, **LATENT
)


def latent_generator_options(name: str) -> tuple[dict, dict]:
    """(hyperparameters, latent-space options) of registry generator ``name`` searched in a VAE's
    latent space as CE.jl 0.1.5 does with ``latent_space = true`` (the latent mitigation figure):
    its reference options without the standardised space and the noisy start, and the VAE of
    :data:`LATENT`."""
    opts = generator_options(name)
    return {k: v for k, v in opts.items() if k not in _NOT_LATENT}, dict(LATENT)


def generator_options(name: str) -> dict:
    """The hyperparameters that make registry generator ``name`` the CE.jl 0.1.5 one."""
    if name not in REFERENCE_GENERATORS:
        raise ValueError(
            f"the ard-2023 preset has no reference generator {name!r}; it has {', '.join(sorted(REFERENCE_GENERATORS))}"
        )
    return dict(REFERENCE_GENERATORS[name])


SYNTHETIC_FLIPPED = ("circles",)  # MLJ's make_circles labels the inner ring 0 (paper/www/synthetic_data.png)
#: MLJBase 0.21.3's generators where cfx's defaults differ: make_moons(n) has yshift = 0.3
#: (label 1 = (1 + cos θ, 0.3 − sin θ)); scikit-learn's, cfx's default, 0.5
SYNTHETIC_OPTIONS = {"moons": {"yshift": 0.3}}
#: ARD.jl 0.1.2 retrains every round with ``Models.train(M, data)``: the package's own batch-1
#: loader whatever the initial fit used; CE.jl 0.1.5's ensemble ``probs`` average the members' σ
MODEL_SETTINGS = {
    "trainer": "reference",
    "learning_rate": 1e-3,
    "epochs": 100,
    "retrain_epochs": 10,
    "retrain_batch_size": 1,
    "combine": "probabilities",
}
#: filled where a config leaves them unset (the synthetic scripts used the package's defaults;
#: the real-data script passed its own data loader and network)
MODEL_DEFAULTS = {"batch_size": 1}


class PresetConflict(ValueError):
    """A config item sets a value the preset fixes otherwise (``path``: where)."""

    def __init__(self, message: str, path: str):
        super().__init__(f"{path}: {message}")
        self.message, self.path = message, path


def _fill(item: dict, fixed: dict, path: str) -> dict:
    """``item`` with every key of ``fixed`` set; a different value already there is refused."""
    out = dict(item)
    for k, v in fixed.items():
        if out.get(k) is not None and out[k] != v and not (isinstance(v, float) and out[k] == float(v)):
            raise PresetConflict(
                f"preset 'ard-2023' fixes {k!r} to {v!r}, but the config sets {out[k]!r}; remove "
                f"the key to follow the preset, or remove 'preset'",
                f"{path}.{k}",
            )
        out[k] = v
    return out


def expand_config(raw: dict) -> dict:
    """A dynamics config (raw mapping) with the ard-2023 values filled into its lists: the
    reference trainer for every model, the CE.jl 0.1.5 hyperparameters for every generator, raw
    coordinates and a stratified 80/20 split for the synthetic data (circles labelled as MLJ's)."""
    import cfx.data

    def items(key):
        v = raw.get(key) or []
        return [{"name": x} if isinstance(x, str) else dict(x) for x in ([v] if isinstance(v, (str, dict)) else v)]

    data = []
    for i, d in enumerate(items("data")):
        name = d.get("name")
        if name in cfx.data.list_datasets() and cfx.data.info(name).kind == "synthetic":
            d = _fill(
                d,
                {"standardize": False, "flip_labels": name in SYNTHETIC_FLIPPED, **SYNTHETIC_OPTIONS.get(name, {})},
                f"data[{i}]",
            )
        data.append(_fill(d, {"test_size": 0.2}, f"data[{i}]"))
    models = []
    for i, m in enumerate(items("models")):
        if m.get("name", "linear") not in REFERENCE_MODELS:
            raise PresetConflict(
                f"preset 'ard-2023' has the reference models {', '.join(REFERENCE_MODELS)}; got {m.get('name')!r}",
                f"models[{i}].name",
            )
        models.append(_fill({**MODEL_DEFAULTS, **m}, MODEL_SETTINGS, f"models[{i}]"))
    gens = []
    for i, g in enumerate(items("generators")):
        latent = g.get("latent_space", False)
        try:
            fixed, vae = (
                latent_generator_options(g.get("name"))
                if latent not in (False, None)
                else (generator_options(g.get("name")), None)
            )
        except ValueError as e:
            raise PresetConflict(str(e), f"generators[{i}].name") from None
        g = _fill(g, fixed, f"generators[{i}]")
        if vae is not None:
            g["latent_space"] = _fill({} if latent is True else dict(latent), vae, f"generators[{i}].latent_space")
        gens.append(g)
    return {**raw, "data": data, "models": models, "generators": gens}


COMBINE = ("logits", "probabilities")


def _mix32(v):
    """murmur3's 32-bit finaliser: a well-mixed uint32 from any uint32."""
    v = v ^ (v >> 16)
    v = v * jnp.uint32(0x85EBCA6B)
    v = v ^ (v >> 13)
    v = v * jnp.uint32(0xC2B2AE35)
    return v ^ (v >> 16)


def _keep_mask(h, rate: float):
    """A Bernoulli(1 − rate) mask for the activations h (..., w), scaled by 1/(1 − rate).

    A pure function of h's bits: the row's seed mixes every unit's bits, so a new input or
    new parameters draw a new mask (a fresh mask per forward pass, as Flux draws one per call)
    without a PRNG key in the model's signature."""
    bits = jax.lax.bitcast_convert_type(h.astype(jnp.float32), jnp.uint32)
    w = h.shape[-1]
    seed = jnp.sum(_mix32(bits + jnp.arange(w, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)), axis=-1, keepdims=True)
    u = _mix32(seed ^ _mix32(jnp.arange(w, dtype=jnp.uint32) + jnp.uint32(0x632BE5AB)))
    keep = (u >> 8).astype(jnp.float32) / float(1 << 24) >= rate
    return keep.astype(h.dtype) / (1.0 - rate)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def gradient_dropout(h, rate: float):
    """Flux 0.13's ``Dropout`` with ``active = nothing``: the identity in a plain forward pass
    (``istraining() = false``), a dropout layer inside a gradient computation (its rrule makes
    ``istraining()`` true under Zygote). JAX runs ``fwd`` only under differentiation, so
    training steps and the counterfactual search's gradients see a random network, while
    predictions, labels, thresholds and metrics see the deterministic one."""
    return h


def _dropout_fwd(h, rate):
    m = _keep_mask(h, rate)
    return h * m, m


def _dropout_bwd(rate, m, g):
    return (g * m,)


gradient_dropout.defvjp(_dropout_fwd, _dropout_bwd)


@dataclasses.dataclass(frozen=True)
class OneLogitNet:
    """``apply(params, x) -> (n, 1)`` logits of a reference model (hashable: static in jit):
    ``widths`` ReLU hidden layers (linear: none) and one output logit.

    An ensemble (``n_members``) combines its members as CE.jl 0.1.5's ``FluxEnsemble``:
    ``combine="probabilities"``: p = mean_m σ(f_m) (its ``probs``: labels, thresholds, the pool,
    every metric), returned as the logit log p − log(1 − p); ``"logits"``: σ(mean_m f_m). The
    search's prediction loss uses the averaged logit either way (CE.jl's ``logits``; the
    ``member_logit_bce`` yloss). ``dropout`` > 0: a :func:`gradient_dropout` layer after every
    hidden layer (ARD.jl's ``build_mlp(dropout=true)``), active only under differentiation.

    ``member_logits(params, x)`` (one example x (d,)) gives each ensemble member's two-class
    logits (M, 2), which ClaPROAR's model-loss term averages over (as CE.jl 0.1.5 does)."""

    kind: str
    n_members: int = 5
    widths: tuple = (32,)
    combine: str = "logits"
    dropout: float = 0.0

    @property
    def stochastic_under_grad(self) -> bool:
        """Whether a gradient's forward pass differs from a plain one (dropout): the search then
        judges convergence on a plain forward pass, as CE.jl calls ``probs`` outside Zygote."""
        return self.dropout > 0 and bool(self.layers)

    @property
    def stacked_members(self) -> bool:
        """Whether the parameters hold M stacked members (an ensemble)."""
        return self.kind == "ensemble"

    @property
    def layers(self) -> tuple:
        """Hidden widths (none for the linear model)."""
        return () if self.kind == "linear" else tuple(self.widths)

    def one(self, p, x):
        """One member's logit f(x) (n, 1): ReLU hidden layers (gradient dropout if set), a linear output."""
        for i in range(len(self.layers)):
            x = jax.nn.relu(x @ p[f"w{i}"] + p[f"b{i}"])
            if self.dropout > 0:
                x = gradient_dropout(x, float(self.dropout))
        n = len(self.layers)
        return x @ p[f"w{n}"] + p[f"b{n}"]

    def __call__(self, params, x):
        if self.kind != "ensemble":
            return self.one(params, x)
        f = jax.vmap(self.one, (0, None))(params, x)  # (M, n, 1)
        if self.combine == "logits":
            return jnp.mean(f, axis=0)
        # logit of mean_m σ(f_m): log mean σ(f) − log mean σ(−f), both by logsumexp (stable)
        return jax.nn.logsumexp(jax.nn.log_sigmoid(f), axis=0) - jax.nn.logsumexp(jax.nn.log_sigmoid(-f), axis=0)

    def member_logits(self, params, x):
        """Per-member two-class logits (M, 2) = [0, f_m(x)] of one row x."""
        if self.kind != "ensemble":
            f = self.one(params, x[None])[0]
            return jnp.concatenate([jnp.zeros_like(f), f])[None]
        f = jax.vmap(self.one, (0, None))(params, x[None])[:, 0]  # (M, 1)
        return jnp.concatenate([jnp.zeros_like(f), f], axis=-1)

    def init(self, key, d: int):
        """Parameters for d features, Glorot-uniform weights and zero biases as Flux's (M stacked for an ensemble)."""

        def glorot(k, n_in, n_out):  # Flux.glorot_uniform
            limit = math.sqrt(6.0 / (n_in + n_out))
            return jax.random.uniform(k, (n_in, n_out), jnp.float32, -limit, limit)

        sizes = (d, *self.layers, 1)

        def one(k):
            keys = jax.random.split(k, max(2, len(sizes) - 1))
            out = {}
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                out[f"w{i}"], out[f"b{i}"] = glorot(keys[i], n_in, n_out), jnp.zeros((n_out,), jnp.float32)
            return out

        if self.kind == "ensemble":
            return jax.vmap(one)(jax.random.split(key, self.n_members))
        return one(key)


@functools.partial(jax.jit, static_argnames=("net", "learning_rate", "batch_size"))
def _train(net: OneLogitNet, params, X, y, epochs, *, learning_rate: float, batch_size: int = 1):
    """``epochs`` passes of Adam over the rows of (X, y) in their order, in batches of
    ``batch_size`` (the last one partial: Flux's DataLoader without shuffling), mean logit-BCE
    per batch, a fresh Adam state (``epochs`` traced: the initial fit and every refit share one
    compiled program)."""
    opt = optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)
    target = y.astype(jnp.float32)
    n = X.shape[0]
    pad = -n % batch_size
    Xb = jnp.concatenate([X, jnp.zeros((pad, X.shape[1]), X.dtype)]).reshape(-1, batch_size, X.shape[1])
    tb = jnp.concatenate([target, jnp.zeros(pad)]).reshape(-1, batch_size)
    wb = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)]).reshape(-1, batch_size)

    def loss(p, x, t, w):  # mean logit-BCE of one batch: softplus(f) − t·f
        f = net.one(p, x)[:, 0]
        return jnp.sum(w * (jax.nn.softplus(f) - t * f)) / jnp.sum(w)

    def fit_one(p):
        def step(carry, batch):
            p, s = carry
            g = jax.grad(loss)(p, *batch)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        def epoch(_, carry):
            return jax.lax.scan(step, carry, (Xb, tb, wb), unroll=4)[0]

        return jax.lax.fori_loop(0, epochs, epoch, (p, opt.init(p)))[0]

    return jax.vmap(fit_one)(params) if net.kind == "ensemble" else fit_one(params)


@functools.partial(jax.jit, static_argnames=("net", "learning_rate", "batch_size"))
def _train_stacked(net: OneLogitNet, params, X, y, owner, epochs, *, learning_rate: float, batch_size: int = 1):
    """:func:`_train` for S single-logit members at once: ``params`` leaves (S, ...), X (G, n, d)
    and y (G, n) the data of G systems, ``owner`` (S,) each member's system. One ``lax.scan``
    over the row batches with the S members vmapped inside; Adam is elementwise and every
    member has its own loss, so this equals S separate :func:`_train` calls (one program for
    every model × generator system of a round instead of one per system)."""
    opt = optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)
    G, n, d = X.shape
    pad = -n % batch_size
    Xb = jnp.concatenate([X, jnp.zeros((G, pad, d), X.dtype)], 1).reshape(G, -1, batch_size, d).transpose(1, 0, 2, 3)
    tb = jnp.concatenate([y.astype(jnp.float32), jnp.zeros((G, pad))], 1).reshape(G, -1, batch_size).transpose(1, 0, 2)
    wb = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)]).reshape(-1, batch_size)

    def loss(p, x, t, w):  # one member's mean logit-BCE of one batch
        f = net.one(p, x)[:, 0]
        return jnp.sum(w * (jax.nn.softplus(f) - t * f)) / jnp.sum(w)

    grads = jax.vmap(jax.grad(loss), (0, 0, 0, None))

    def step(carry, batch):
        p, s = carry
        x, t, w = batch
        u, s = opt.update(grads(p, x[owner], t[owner], w), s, p)
        return (optax.apply_updates(p, u), s), None

    def epoch(_, carry):
        return jax.lax.scan(step, carry, (Xb, tb, wb), unroll=4)[0]

    return jax.lax.fori_loop(0, epochs, epoch, (params, opt.init(params)))[0]


def retrain_many(jobs) -> list:
    """``[(ReferenceTrainer, Classifier, data)] -> [Classifier]``: each model retrained as its
    trainer's :meth:`ReferenceTrainer.retrain` would, the members of every model whose training
    is the same program (hidden layers, dropout, η, batch size, epochs) in one
    :func:`_train_stacked` call; the shapes are the same every round, so it compiles once."""
    groups: dict = {}
    for i, (t, _, _) in enumerate(jobs):
        groups.setdefault(t.signature, []).append(i)
    out = [None] * len(jobs)
    for (layers, dropout, lr, batch, epochs), idx in groups.items():
        member = OneLogitNet("mlp" if layers else "linear", widths=layers or (32,), dropout=dropout)
        stacked = [jobs[i][0].net.stacked_members for i in idx]
        trees = [
            jobs[i][1].params if st else jax.tree_util.tree_map(lambda a: a[None], jobs[i][1].params)
            for i, st in zip(idx, stacked)
        ]
        sizes = [jax.tree_util.tree_leaves(tr)[0].shape[0] for tr in trees]
        params = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *trees)
        owner = jnp.asarray(np.repeat(np.arange(len(idx)), sizes), jnp.int32)
        X = jnp.stack([jnp.asarray(jobs[i][2].X, jnp.float32) for i in idx])
        y = jnp.stack([jnp.asarray(jobs[i][2].y, jnp.int32) for i in idx])
        new = _train_stacked(member, params, X, y, owner, jnp.int32(epochs), learning_rate=lr, batch_size=batch)
        ends = np.cumsum(sizes)
        for i, st, end, size in zip(idx, stacked, ends, sizes):
            p = jax.tree_util.tree_map(lambda a: a[end - size : end] if st else a[end - size], new)
            out[i] = jobs[i][1].replace(p)
    return out


@dataclasses.dataclass(frozen=True)
class ReferenceTrainer:
    """Trains a reference model (see the module docstring) for :func:`cfx.dynamics.simulate`.
    ``batch_size`` and ``widths`` default to the synthetic experiments' (1, one layer of 32);
    the real-data script passed batches of 500 and two layers of 64 with dropout 0.1 to the
    initial fit only: ARD.jl 0.1.2 retrains with ``Models.train(M, data)``, i.e. its default
    loader (batch 1) — ``retrain_batch_size`` (default: ``batch_size``). ``combine`` and
    ``dropout``: see :class:`OneLogitNet`."""

    kind: str = "linear"
    initial_epochs: int = 100
    retrain_epochs: int = 10
    learning_rate: float = 1e-3
    widths: tuple = (32,)
    n_members: int = 5
    batch_size: int = 1
    retrain_batch_size: int | None = None
    combine: str = "logits"
    dropout: float = 0.0
    family = "ard-2023"

    def __post_init__(self):
        if self.kind not in REFERENCE_MODELS:
            raise ValueError(f"model: the ard-2023 reference models are {REFERENCE_MODELS}; got {self.kind!r}")
        if self.combine not in COMBINE:
            raise ValueError(f"model.combine must be one of {COMBINE}; got {self.combine!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout must be a rate in [0, 1); got {self.dropout!r}")
        rb = self.retrain_batch_size
        if rb is not None and (isinstance(rb, bool) or not isinstance(rb, int) or rb < 1):
            raise ValueError(f"model.retrain_batch_size must be None or an int >= 1; got {rb!r}")

    @property
    def net(self) -> OneLogitNet:
        """The network this trainer trains (kind, members, widths, combination, dropout)."""
        return OneLogitNet(self.kind, self.n_members, tuple(self.widths), self.combine, float(self.dropout))

    def initial(self, train, *, seed: int) -> Classifier:
        """Train a fresh network on ``train`` for ``initial_epochs`` (seeded)."""
        X = np.asarray(train.X, np.float32)
        params = self.net.init(jax.random.key(seed), X.shape[1])
        return self._fit(params, X, train.y, self.initial_epochs, self.batch_size)

    def retrain(self, clf: Classifier, data, *, seed: int) -> Classifier:
        """Continue training ``clf``'s parameters on ``data`` for ``retrain_epochs``."""
        batch = self.batch_size if self.retrain_batch_size is None else self.retrain_batch_size
        return self._fit(clf.params, data.X, data.y, self.retrain_epochs, batch)

    @property
    def signature(self) -> tuple:
        """What the retraining program depends on: models with equal signatures are retrained
        together by :func:`retrain_many`."""
        batch = self.batch_size if self.retrain_batch_size is None else self.retrain_batch_size
        return (self.net.layers, float(self.dropout), float(self.learning_rate), int(batch), int(self.retrain_epochs))

    retrain_many = staticmethod(retrain_many)

    def _fit(self, params, X, y, epochs, batch_size) -> Classifier:
        X = jnp.asarray(X, jnp.float32)
        params = _train(
            self.net,
            params,
            X,
            jnp.asarray(y, jnp.int32),
            jnp.int32(epochs),
            learning_rate=float(self.learning_rate),
            batch_size=int(batch_size),
        )
        return Classifier(self.net, params, n_features=X.shape[1], n_classes=2)
