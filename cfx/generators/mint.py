"""MINT: recourse through minimal interventions (Karimi, Schölkopf & Valera 2021).

The search variable is the action δ (d,), not the point: the counterfactual is the structural
counterfactual of the factual under δ, x' = SCM.intervene(x, δ), so acting on a feature moves
its descendants. Expressed as a latent search: z = (x, δ) with x' = decode(z); the factual half
is held by a stop-gradient (its gradient is zero, so no optimiser moves it).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from cfx.causal import INTERVENTIONS, SCM, check_actions, fit_linear_scm, fit_mlp_scm
from cfx.generators.base import Generator, Term, generator_class, numpy_rng, static


class _Graph(tuple):
    """A mapping feature -> parents frozen as its items (a static field must be hashable)."""


@generator_class
class MINT(Generator):
    """min_δ  yloss(f(x'), y+) + cost · ‖δ‖,  x' = SCM.intervene(x, δ),  δ_j = 0 off the actions.

    ``scm``: a :class:`cfx.causal.SCM` (a leaf: new weights never recompile), or None with
    ``parents`` given (a parent list per feature or a mapping feature -> parents, names or indices): ``fit`` fits the SCM on the training data (``equations="linear"``: least
    squares; ``"mlp"``: :func:`cfx.causal.fit_mlp_scm` with ``equation_hidden`` units and
    ``equation_epochs`` full-batch Adam steps)
    (neither: a graph without edges, x_j = u_j, where MINT is an L1 search over the actionable
    features). ``actions``: the features that may be acted on (indices or names; default: every
    feature the data's schema lets move); an immutable one raises, naming it. ``intervention``:
    ``"additive"`` (x'_j = f_j(pa'_j) + u_j + δ_j; default) or ``"hard"`` (do(x_I = x_I + δ_I)
    on the action set I). ``distance``: ``"l1"`` or ``"l2"`` of δ, counted on acted-on features
    only: the cost reads δ back from the returned point (additive: δ = u(x') − u(x)), so
    a point the constraints' projection changed pays for what it changed. ``start="noise"`` /
    ``"uniform"`` start from a random action (start_scale·noise on δ, never on the factual);
    a start point passed as ``start=`` to :func:`cfx.generate` is not supported (it would be
    read as the factual).
    """

    name = "mint"
    description = "Karimi et al. 2021: search over interventions on an SCM; the cost counts acted-on features only"
    latent = True

    cost: float = 0.1
    scm: Any = None
    parents: Any = static(None)
    actions: Any = static(None)
    intervention: str = static("additive")
    distance: str = static("l1")
    equations: str = static("linear")
    equation_hidden: int = static(16)
    equation_epochs: int = static(2000)

    def __post_init__(self):
        if isinstance(self.parents, Mapping) and not isinstance(self.parents, _Graph):  # hashable: static
            object.__setattr__(
                self,
                "parents",
                _Graph((k, tuple(v) if isinstance(v, (list, tuple)) else (v,)) for k, v in self.parents.items()),
            )
        elif isinstance(self.parents, (list, tuple)):  # YAML gives lists; a static field must be hashable
            object.__setattr__(
                self, "parents", tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in self.parents)
            )
        if isinstance(self.actions, (list, tuple)):
            object.__setattr__(self, "actions", tuple(self.actions))
        super().__post_init__()
        name = type(self).__name__
        if self.intervention not in INTERVENTIONS:
            raise ValueError(f"{name}.intervention must be one of {INTERVENTIONS}; got {self.intervention!r}")
        if self.equations not in ("linear", "mlp"):
            raise ValueError(f"{name}.equations must be 'linear' or 'mlp'; got {self.equations!r}")
        if self.distance not in ("l1", "l2"):
            raise ValueError(f"{name}.distance must be 'l1' or 'l2'; got {self.distance!r}")
        if self.scm is not None and not isinstance(self.scm, SCM):
            raise TypeError(f"{name}.scm must be a cfx.causal.SCM; got {type(self.scm).__name__}")
        if self.scm is not None and isinstance(self.start_scale, (int, float, np.number)):
            # the search adds start_scale·noise to all of z = (x, δ): a noisy start perturbs δ only
            d = self.scm.n_features
            scale = np.concatenate([np.zeros(d), np.full(d, float(self.start_scale))]).astype(np.float32)
            object.__setattr__(self, "start_scale", scale)

    def fit(self, classifier, data, *, key):
        """Fit the SCM on ``data`` when only ``parents`` is given (no graph: one without edges), and
        resolve ``actions`` against the data's schema (an immutable feature raises, naming it)."""
        schema = data.schema
        scm = self.scm
        if scm is None:
            parents = self.parents if self.parents is not None else tuple(() for _ in range(schema.n_features))
            parents = dict(parents) if isinstance(parents, _Graph) else parents
            if self.equations == "mlp":
                seed = int(numpy_rng(key).integers(2**31)) if key is not None else 0
                scm = fit_mlp_scm(
                    data.X,
                    parents,
                    hidden=self.equation_hidden,
                    epochs=self.equation_epochs,
                    seed=seed,
                    feature_names=schema.names,
                )
            else:
                scm = fit_linear_scm(data.X, parents, feature_names=schema.names)
        immutable = [j for j, m in enumerate(schema.mutability) if m == "none"]
        actions = self.actions
        if actions is None:
            actions = tuple(j for j in range(schema.n_features) if j not in immutable)
        actions = check_actions(actions, immutable, schema.names, schema.n_features)
        return self.replace(scm=scm, actions=actions)

    # ------------------------------------------------------------------ the search variable
    def _action_mask(self, d: int) -> jax.Array:
        if self.actions is None:
            return jnp.ones(d, bool)
        names = self.scm.feature_names
        idx = check_actions(self.actions, (), names, d)
        return jnp.zeros(d, bool).at[jnp.asarray(idx, jnp.int32)].set(True) if idx else jnp.zeros(d, bool)

    def encode(self, x):
        """z_0 = (x, δ = 0)."""
        return jnp.concatenate([x, jnp.zeros_like(x)], axis=-1)

    def decode(self, z):
        """x' = SCM.intervene(x, δ ⊙ actionable); x is held (no gradient reaches it)."""
        d = z.shape[-1] // 2
        x, delta = jax.lax.stop_gradient(z[..., :d]), z[..., d:]
        mask = self._action_mask(d)
        delta = jnp.where(mask, delta, 0.0)
        return self.scm.intervene(x, delta, acted=mask if self.intervention == "hard" else None)

    def action_of(self, x_cf, x):
        """The action δ (…, d) that leads from x to x_cf under this generator's intervention."""
        mask = self._action_mask(x.shape[-1])
        if self.intervention == "hard":
            return jnp.where(mask, x_cf - x, 0.0)
        return self.scm.action(x, x_cf)

    def update(self, grad, state, z, ctx):
        # the run's constraints may fix more features than the schema fit saw: never act on those
        d = z.shape[-1] // 2
        immutable = ctx.constraints.immutable
        z_next, state = super().update(
            jnp.where(jnp.concatenate([jnp.ones(d, bool), immutable]), 0.0, grad), state, z, ctx
        )
        # the factual half is held exactly; a noisy start may have acted on a run-time immutable
        # feature: that action is taken back (from step 1 on)
        return jnp.concatenate([z[..., :d], jnp.where(immutable, 0.0, z_next[..., d:])], axis=-1), state

    def penalties(self):
        def action_cost(x_cf, x, ctx):
            delta = self.action_of(x_cf, x)
            return jnp.sum(jnp.abs(delta)) if self.distance == "l1" else jnp.sqrt(jnp.sum(delta**2) + 1e-12)

        return (Term("action", self.cost, action_cost),)

    def validate(self, num_counterfactuals, n_features, n_classes):
        name = type(self).__name__
        if self.space != "input":
            raise ValueError(f"{name} searches over interventions; space={self.space!r} does not apply")
        if self.scm is None:
            raise ValueError(
                f"{name}.scm is missing: pass scm=cfx.causal.fit_linear_scm(train.X, parents) or "
                f"fit the generator ({name}(parents=...).fit(classifier, train, key=key))"
            )
        if self.scm.n_features != n_features:
            missing = min(self.scm.n_features, n_features)
            raise ValueError(
                f"{name}.scm covers {self.scm.n_features} features; the classifier expects "
                f"{n_features} (feature {missing} is "
                f"{'missing from the SCM' if missing == self.scm.n_features else 'not an input'})"
            )
        if np.shape(self.start_scale) != (2 * n_features,):
            raise ValueError(f"{name}.start_scale must be a number (it perturbs the start action δ = 0)")
        if self.actions is not None:
            check_actions(self.actions, (), self.scm.feature_names, n_features)
        super().validate(num_counterfactuals, n_features, n_classes)
        if not np.all(np.isfinite(np.asarray(self.scm.weights))):
            raise ValueError(f"{name}.scm has non-finite weights")
