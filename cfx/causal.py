"""Structural causal models with additive noise, for causal recourse (MINT, Karimi et al. 2021).

A DAG over the d features (``parents[j]``: the features feature j is a function of) with
structural equations

    x_j = f_j(pa_j) + u_j,        f_j(pa_j) = w_j · pa_j + b_j   (linear)
                                  f_j(pa_j) = w_j · pa_j + b_j + v_j · tanh(A_j pa_j + c_j)   (mlp)

Abduction recovers the noise of a factual, u = x − f(x) (f reads each feature's parents only).
An action δ propagates through the graph in topological order:

    additive:  x'_j = f_j(pa'_j) + u_j + δ_j          (δ_j = 0: j is not acted on)
    hard:      x'_j = x_j + δ_j          for j in the acted set I
               x'_j = f_j(pa'_j) + u_j   otherwise

(both are CE.jl's x_SCF formula x'_j = x_j + f_j(pa'_j) − f_j(pa_j) for the features not acted
on). Everything after construction is pure jnp (linear: one solve; MLP: one fixed-length
``lax.fori_loop`` over the topological order), so it jits and vmaps, and the weights are PyTree
leaves (new weights never recompile).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

INTERVENTIONS = ("additive", "hard")


def _feature_index(value, names: Sequence[str] | None, d: int, where: str) -> int:
    """A feature given by index or name -> its index; an unknown one raises naming it."""
    if isinstance(value, str):
        if names is None or value not in names:
            raise ValueError(
                f"{where}: unknown feature {value!r}"
                + (f"; known: {list(names)}" if names is not None else " (no feature_names given)")
            )
        return list(names).index(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < d:
        raise ValueError(
            f"{where}: unknown feature {value!r} (features are 0..{d - 1}"
            + (f" or one of {list(names)})" if names is not None else ")")
        )
    return int(value)


def _label(j: int, names) -> str:
    return repr(names[j]) if names is not None else f"{j}"


def resolve_parents(
    parents, n_features: int | None = None, feature_names: Sequence[str] | None = None
) -> tuple[tuple[int, ...], ...]:
    """Normalise a graph to a tuple of sorted parent-index tuples, one per feature.

    ``parents``: a sequence with one parent list per feature (indices or names), or a mapping
    feature -> parent list (features absent from the mapping are roots). Raises ValueError naming
    the feature for an unknown feature, a list of the wrong length, or a cycle.
    """
    names = None if feature_names is None else tuple(feature_names)
    if isinstance(parents, Mapping):
        d = n_features if n_features is not None else (len(names) if names is not None else None)
        if d is None:
            raise ValueError("parents: a mapping needs n_features or feature_names")
        rows: list[Sequence] = [() for _ in range(d)]
        for key, pa in parents.items():
            rows[_feature_index(key, names, d, "parents")] = pa
    else:
        rows = list(parents)
        d = len(rows)
        if n_features is not None and d != n_features:
            missing = min(d, n_features)
            raise ValueError(
                f"parents has {d} entries for {n_features} features: feature "
                f"{_label(missing, names) if names is not None and missing < len(names) else missing} "
                f"{'has no parent list' if d < n_features else 'does not exist'}"
            )
        if names is not None and len(names) != d:
            raise ValueError(f"parents has {d} entries but feature_names has {len(names)}")
    out = []
    for j, pa in enumerate(rows):
        if isinstance(pa, (str, int, np.integer)):
            pa = (pa,)
        idx = sorted({_feature_index(p, names, d, f"parents of feature {_label(j, names)}") for p in pa})
        out.append(tuple(idx))
    topological_order(out, names)  # raises on a cycle
    return tuple(out)


def topological_order(parents: Sequence[Sequence[int]], feature_names=None) -> tuple[int, ...]:
    """Kahn's order (parents before children; ties by index); a cycle raises naming a feature on it."""
    d = len(parents)
    indegree = [len(set(p)) for p in parents]
    children: list[list[int]] = [[] for _ in range(d)]
    for j, pa in enumerate(parents):
        for p in set(pa):
            children[p].append(j)
    ready = sorted(j for j in range(d) if indegree[j] == 0)
    order = []
    while ready:
        j = ready.pop(0)
        order.append(j)
        for c in children[j]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
        ready.sort()
    if len(order) < d:
        stuck = min(j for j in range(d) if j not in order)
        raise ValueError(f"the causal graph has a cycle through feature {_label(stuck, feature_names)}")
    return tuple(order)


@struct.dataclass
class SCM:
    """A linear additive-noise SCM: x_j = W[j] · x + b_j + u_j, W[j, i] ≠ 0 only for i in pa_j.

    Build with :func:`linear_scm` (given weights) or :func:`fit_linear_scm` (least squares);
    :func:`fit_mlp_scm` adds a one-hidden-layer term per equation, v_j · tanh(A_j pa_j + c_j)
    (``mlp``: {"A": (d, d, h), "c": (d, h), "v": (d, h)}, A_j masked to the parents).
    ``weights`` (d, d), ``intercept`` (d,) and ``mlp`` are leaves; the graph is static.
    """

    weights: jax.Array
    intercept: jax.Array
    parents: tuple = struct.field(pytree_node=False, default=())
    order: tuple = struct.field(pytree_node=False, default=())
    feature_names: Any = struct.field(pytree_node=False, default=None)
    mlp: Any = None

    @property
    def n_features(self) -> int:
        """The number of variables d (one per node of the graph)."""
        return len(self.parents)

    @property
    def adjacency(self) -> np.ndarray:
        """(d, d) bool: M[j, i] = i is a parent of j."""
        M = np.zeros((self.n_features,) * 2, bool)
        for j, p in enumerate(self.parents):
            M[j, list(p)] = True
        return M

    def mean(self, x: jax.Array) -> jax.Array:
        """f(pa(x)) for every feature at once (..., d)."""
        out = x @ self.weights.T.astype(x.dtype) + self.intercept.astype(x.dtype)
        if self.mlp is not None:
            A = self.mlp["A"] * jnp.asarray(self.adjacency, x.dtype)[:, :, None]  # only parents feed f_j
            hidden = jnp.tanh(jnp.einsum("...i,jik->...jk", x, A) + self.mlp["c"])
            out = out + jnp.einsum("...jk,jk->...j", hidden, self.mlp["v"])
        return out

    def abduct(self, x: jax.Array) -> jax.Array:
        """The noise of factual(s) x (..., d): u = x − f(pa(x))."""
        return x - self.mean(x)

    def intervene(self, x: jax.Array, delta: jax.Array, acted: jax.Array | None = None) -> jax.Array:
        """The counterfactual of x (..., d) under action δ (..., d), propagated to descendants.

        ``acted=None``: additive intervention x'_j = f_j(pa'_j) + u_j + δ_j. A (d,) bool mask:
        hard intervention do(x_I = x_I + δ_I) on the masked features, the rest follow their
        equations with the factual's noise.

        Linear equations in closed form: the change Δ = x' − x solves Δ = (1 − m) ⊙ (W Δ) + δ'
        (m the acted mask, 0 for additive; δ' = δ, or m ⊙ δ for hard), so
        Δ = (I − diag(1 − m) W)⁻¹ δ' (unit triangular in the topological order: always
        invertible). MLP equations: one fixed-length ``lax.fori_loop`` over the topological
        order, evaluating only feature j's equation at its turn.
        """
        x = jnp.asarray(x)
        delta = jnp.broadcast_to(jnp.asarray(delta, x.dtype), x.shape)
        d = self.n_features
        w = self.weights.astype(x.dtype)
        hard = None if acted is None else jnp.asarray(acted, bool)
        if self.mlp is None:
            free = jnp.ones(d, x.dtype) if hard is None else (~hard).astype(x.dtype)
            step = delta if hard is None else jnp.where(hard, delta, 0.0)
            propagate = jnp.linalg.inv(jnp.eye(d, dtype=x.dtype) - free[:, None] * w)
            return x + step @ propagate.T
        u = self.abduct(x)
        order = jnp.asarray(self.order, jnp.int32)
        b = self.intercept.astype(x.dtype)
        A = self.mlp["A"].astype(x.dtype) * jnp.asarray(self.adjacency, x.dtype)[:, :, None]
        c, v = self.mlp["c"].astype(x.dtype), self.mlp["v"].astype(x.dtype)

        def body(i, xp):
            j = order[i]
            # parents precede j in the order: already final
            value = xp @ w[j] + b[j] + jnp.tanh(xp @ A[j] + c[j]) @ v[j] + u[..., j]
            value = value + delta[..., j] if hard is None else jnp.where(hard[j], x[..., j] + delta[..., j], value)
            return xp.at[..., j].set(value)

        return jax.lax.fori_loop(0, len(self.order), body, x)

    def action(self, x: jax.Array, x_cf: jax.Array) -> jax.Array:
        """The additive action that leads from x to x_cf: δ = u(x_cf) − u(x) (its inverse)."""
        return self.abduct(x_cf) - self.abduct(x)

    def residual(self, x: jax.Array, x_cf: jax.Array, acted: jax.Array) -> jax.Array:
        """How far x_cf is from the SCM's propagation on the features not in ``acted`` (…, d):
        u_j(x_cf) − u_j(x); zero there means x_cf is consistent with acting on ``acted`` only."""
        return jnp.where(jnp.asarray(acted, bool), 0.0, self.action(x, x_cf))


def linear_scm(
    parents, weights=None, intercept=None, *, n_features: int | None = None, feature_names: Sequence[str] | None = None
) -> SCM:
    """An SCM from a graph and its coefficients.

    ``weights``: (d, d) with W[j, i] the coefficient of parent i in feature j's equation, or a
    per-feature sequence of coefficient lists aligned with ``parents[j]``; entries off the graph
    must be zero. ``intercept``: (d,) (default 0).
    """
    pa = resolve_parents(parents, n_features, feature_names)
    d = len(pa)
    W = np.zeros((d, d), np.float32)
    if weights is not None:
        if isinstance(weights, (list, tuple)) and len(weights) == d and not np.asarray(weights, object).shape == (d, d):
            for j, row in enumerate(weights):
                row = np.atleast_1d(np.asarray(row, np.float32))
                if row.shape != (len(pa[j]),):
                    raise ValueError(
                        f"weights of feature {_label(j, feature_names)}: {row.shape[0]} coefficients "
                        f"for {len(pa[j])} parents"
                    )
                W[j, list(pa[j])] = row
        else:
            W = np.asarray(weights, np.float32)
            if W.shape != (d, d):
                raise ValueError(f"weights must be ({d}, {d}); got {W.shape}")
            mask = np.zeros((d, d), bool)
            for j, p in enumerate(pa):
                mask[j, list(p)] = True
            off = np.argwhere((W != 0) & ~mask)
            if len(off):
                j, i = off[0]
                raise ValueError(
                    f"weights: feature {_label(int(j), feature_names)} has a nonzero weight on "
                    f"{_label(int(i), feature_names)}, which is not one of its parents"
                )
    if not np.all(np.isfinite(W)):
        raise ValueError("weights must be finite")
    b = np.zeros(d, np.float32) if intercept is None else np.asarray(intercept, np.float32).reshape(-1)
    if b.shape != (d,) or not np.all(np.isfinite(b)):
        raise ValueError(f"intercept must be {d} finite numbers; got {intercept!r}")
    names = None if feature_names is None else tuple(feature_names)
    return SCM(jnp.asarray(W), jnp.asarray(b), pa, topological_order(pa, names), names)


def fit_linear_scm(X, parents, *, feature_names: Sequence[str] | None = None) -> SCM:
    """Least-squares structural equations for the graph ``parents`` from data X (n, d) (a
    Dataset's ``.X`` is read too): x_j ≈ W[j, pa_j] · x_{pa_j} + b_j; roots get b_j = mean."""
    X = np.asarray(getattr(X, "X", X), np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array; got shape {X.shape}")
    pa = resolve_parents(parents, X.shape[1], feature_names)
    W, b = np.zeros((X.shape[1],) * 2), np.zeros(X.shape[1])
    for j, p in enumerate(pa):
        A = np.column_stack([X[:, list(p)], np.ones(len(X))])
        coef = np.linalg.lstsq(A, X[:, j], rcond=None)[0]
        W[j, list(p)], b[j] = coef[:-1], coef[-1]
    return linear_scm(pa, W, b, feature_names=feature_names)


def fit_mlp_scm(
    X,
    parents,
    *,
    hidden: int = 16,
    epochs: int = 2000,
    learning_rate: float = 1e-2,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
) -> SCM:
    """Nonlinear additive-noise equations x_j ≈ w_j·pa_j + b_j + v_j·tanh(A_j pa_j + c_j): the
    least-squares linear SCM, then full-batch Adam on Σ_j mean (x_j − f_j(pa_j))² (one
    ``lax.scan``; the MLP starts small, so it begins at the linear fit)."""
    linear = fit_linear_scm(X, parents, feature_names=feature_names)
    X = jnp.asarray(np.asarray(getattr(X, "X", X), np.float32))
    if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
        raise ValueError(f"hidden must be an int >= 1; got {hidden!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1; got {epochs!r}")
    d = X.shape[1]
    k1, k2 = jax.random.split(jax.random.key(seed))
    mlp = {
        "A": jax.random.normal(k1, (d, d, hidden)) / np.sqrt(max(1, d)),
        "c": jnp.zeros((d, hidden)),
        "v": 0.01 * jax.random.normal(k2, (d, hidden)),
    }
    params = {"weights": linear.weights, "intercept": linear.intercept, "mlp": mlp}
    mask = jnp.asarray(linear.adjacency, jnp.float32)
    opt = optax.adam(learning_rate)

    def loss(p):
        scm = linear.replace(weights=p["weights"] * mask, intercept=p["intercept"], mlp=p["mlp"])
        return jnp.mean(jnp.sum((X - scm.mean(X)) ** 2, -1))

    def step(carry, _):
        p, state = carry
        grad = jax.grad(loss)(p)
        updates, state = opt.update(grad, state, p)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=epochs))(params)
    return linear.replace(weights=params["weights"] * mask, intercept=params["intercept"], mlp=params["mlp"])


def check_actions(actions, immutable: Sequence[int], feature_names=None, n_features: int | None = None) -> tuple:
    """Indices of the features to act on; one that is immutable raises naming it."""
    d = n_features if n_features is not None else len(feature_names)
    idx = tuple(sorted({_feature_index(a, feature_names, d, "actions") for a in actions}))
    bad = [j for j in idx if j in set(immutable)]
    if bad:
        raise ValueError(f"actions: feature {_label(bad[0], feature_names)} is immutable and cannot be acted on")
    return idx
