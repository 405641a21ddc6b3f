"""The recourse loop of SPEC §6 (AlgorithmicRecourseDynamics.jl): :func:`simulate`.

One *recourse system* per generator, all starting from the same training data (X₀, y₀) and
the same initial model M₀. Every round t = 1..T:

1. the pool: training points predicted non-target (y⁺) by the current model of **every**
   system (``pool="label"``: whose current label is non-target); with several models
   (``model={label: ...}``) the systems are every model × generator pair, so the pool is
   intersected over all of them (AlgorithmicRecourseDynamics.jl); n_t = max(1, round(μ·|pool|))
   of them (``draw="round"``: round(μ·|pool|), and n_t = 0 skips the round) are drawn at
   random, the same for every system;
2. each system makes one batched :func:`cfx.generate` call for them (K counterfactuals per
   individual, one of the K picked at random);
3. the chosen individuals move to their counterfactual and are relabelled by the current
   model's prediction there;
4. the model is retrained warm-started for a few epochs (``cfx.models.fit(init_params=)``),
   and the generator is refitted (``Generator.fit``: REVISE's VAE, Gravitational's bank);
5. every ``eval_every`` rounds (and at t = 0 and t = T) the shift metrics of
   :mod:`cfx.dynamics.metrics` are computed; recourse validity and cost every round.

Shapes never change: the chosen batch is padded to ⌈μ·N⌉ rows (padding rows are searched
but never moved), the data keep N rows, so the search, the training epoch, the VAE epoch
and the metrics compile once and are reused in every round. Keys are derived from
(seed, repetition, round, system), so a run is reproducible and a resumed run equals an
uninterrupted one: with ``checkpoint`` (a :class:`cfx.experiments.Store` or anything with
its ``save / done / load / load_arrays``) every round's state and metrics are saved under
``prefix + ("rep000", "r001")`` and a rerun continues after the last saved round.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from cfx.dynamics._checkpoint import _resume, _round_path, _state_arrays
from cfx.dynamics._checks import _LABEL_RE, DRAWS, POOLS, _check, _check_run
from cfx.dynamics.metrics import MetricOptions, evaluate_state, feature_grid
from cfx.generators.base import Generator
from cfx.search import CONVERGED

__all__ = ["simulate", "SimulationResult", "POOLS", "DRAWS", "CfxTrainer"]


@dataclasses.dataclass
class SimulationResult:
    """What :func:`simulate` returns.

    Attributes:
      history: one dict per (repetition, round, generator): ``pool`` (its size), ``chosen``,
        recourse ``validity`` / ``converged`` / ``cost_l1`` / ``cost_l2`` / ``redundancy``
        (rounds >= 1) and, in
        evaluated rounds, every metric of :mod:`cfx.dynamics.metrics` with its p-values.
      stopped: one dict per repetition whose pool ran empty: repetition, round, reason.
      final: repetition -> generator label -> ``{"data", "classifier", "generator"}``.
    """

    history: list[dict]
    stopped: list[dict]
    final: dict


@dataclasses.dataclass(frozen=True)
class CfxTrainer:
    """A model trained with :func:`cfx.models.fit`: ``initial_epochs`` from scratch, then
    ``retrain_epochs`` warm-started per round."""

    model: Any = "linear"
    fit_options: Any = None
    initial_epochs: int = 100
    retrain_epochs: int = 10
    family = "cfx"

    def initial(self, train, *, seed: int):
        """``cfx.models.fit`` of the model on ``train`` for ``initial_epochs`` (seeded)."""
        import cfx.models

        return cfx.models.fit(train, self.model, epochs=self.initial_epochs, seed=seed, **dict(self.fit_options or {}))

    def retrain(self, clf, data, *, seed: int):
        """``cfx.models.fit`` on ``data`` for ``retrain_epochs``, warm-started from ``clf``'s parameters."""
        import cfx.models

        return cfx.models.fit(
            data,
            self.model,
            epochs=self.retrain_epochs,
            init_params=clf.params,
            seed=seed,
            **dict(self.fit_options or {}),
        )


# ------------------------------------------------------------------------------ jitted round steps
@functools.partial(jax.jit, static_argnames=("size", "use_labels", "at_least_one"))
def _draw(clfs, Xs, ys, key, mu, target, *, size: int, use_labels: bool, at_least_one: bool = True):
    """The shared pool (non-target for every system), a random draw of n = max(1, round(μ·|pool|))
    (``at_least_one=False``: round(μ·|pool|), half to even as Julia's ``round``) of it padded
    to ``size`` indices (the first n valid), and every system's factuals."""
    candidates = jnp.ones(Xs[0].shape[0], bool)
    for clf, X, y in zip(clfs, Xs, ys):
        candidates &= (y if use_labels else jnp.argmax(clf.raw_logits(X), -1)) != target
    count = jnp.sum(candidates)
    n = jnp.round(mu * count)
    n = jnp.where(count > 0, jnp.maximum(1, n) if at_least_one else n, 0).astype(jnp.int32)
    u = jnp.where(candidates, jax.random.uniform(key, candidates.shape), 2.0)
    idx = jnp.argsort(u)[:size]
    return idx, jnp.arange(size) < jnp.minimum(n, size), count, tuple(X[idx] for X in Xs)


@jax.jit
def _system_keys(key, g):
    """(search, pick, refit, evaluation) keys and a training seed of system g in this round."""
    keys = jax.random.split(jax.random.fold_in(key, 1 + g), 5)
    return keys[0], keys[1], keys[2], keys[3], jax.random.randint(keys[4], (), 0, 2**31 - 1)


@jax.jit
def _move(clf, X, y, idx, valid, counterfactuals, outcome, key, target):
    """Pick one of K per individual, move the valid ones there, relabel by the model."""
    M, K, _ = counterfactuals.shape
    pick = jax.random.randint(key, (M,), 0, K)
    x_new = counterfactuals[jnp.arange(M), pick]
    y_new = jnp.argmax(clf.raw_logits(x_new), -1).astype(y.dtype)
    x_old = X[idx]
    X = X.at[idx].set(jnp.where(valid[:, None], x_new, x_old))
    y = y.at[idx].set(jnp.where(valid, y_new, y[idx]))
    n = jnp.maximum(jnp.sum(valid), 1)
    w = valid.astype(jnp.float32)
    stats = {
        "validity": jnp.sum(w * (y_new == target)) / n,
        "converged": jnp.sum(w * (outcome[jnp.arange(M), pick] == CONVERGED)) / n,
        "cost_l1": jnp.sum(w * jnp.sum(jnp.abs(x_new - x_old), -1)) / n,
        "cost_l2": jnp.sum(w * jnp.linalg.norm(x_new - x_old, axis=-1)) / n,
        # CE.jl redundancy (SPEC §4): the share of features left unchanged, |x'_j − x_j| < 1e-5
        "redundancy": jnp.sum(w * jnp.mean(jnp.abs(x_new - x_old) < 1e-5, -1)) / n,
    }
    return X, y, stats


# ------------------------------------------------------------------------------ the loop
def _trainers(model, fit_options, initial_epochs, retrain_epochs) -> dict:
    """label -> trainer: one model (``model`` a cfx model name / module, or a trainer with
    ``initial`` and ``retrain``) under the label "" or a mapping label -> either."""

    def one(m):
        if hasattr(m, "initial") and hasattr(m, "retrain"):
            return m
        return CfxTrainer(m, dict(fit_options or {}), initial_epochs, retrain_epochs)

    if not isinstance(model, Mapping):
        return {"": one(model)}
    if not model:
        raise ValueError("model: an empty mapping; give one model or label -> model")
    out = {}
    for label, m in model.items():
        if not isinstance(label, str) or not _LABEL_RE.match(label):
            raise ValueError(f"model: label {label!r} must be letters, digits and _ . + - (it names records)")
        out[label] = one(m)
    families = {label: getattr(t, "family", type(t).__name__) for label, t in out.items()}
    if len(set(families.values())) > 1:
        raise ValueError(
            "model: mixed model kinds in one cross-model pool ("
            + ", ".join(f"{k}: {v}" for k, v in families.items())
            + "); the pool and the labels "
            "would follow two semantics at once: give models of one kind"
        )
    return out


def _retrain(jobs: list) -> list:
    """``[(trainer, clf, data, seed)] -> [clf]``. Trainers of one type with a ``retrain_many``
    (:func:`cfx.dynamics.reference.retrain_many`) retrain every system in one call: one
    compiled program for all of them instead of one run per system."""
    kinds = {type(t) for t, *_ in jobs}
    if len(jobs) > 1 and len(kinds) == 1 and hasattr(jobs[0][0], "retrain_many"):
        return jobs[0][0].retrain_many([(t, c, d) for t, c, d, _ in jobs])
    return [t.retrain(c, d, seed=seed) for t, c, d, seed in jobs]


def simulate(
    train,
    test,
    generators: Mapping[str, Generator],
    *,
    model: Any = "linear",
    fit_options: Mapping | None = None,
    initial_epochs: int = 100,
    retrain_epochs: int = 10,
    rounds: int = 50,
    mu: float = 0.05,
    eval_every: int = 10,
    target: int = 1,
    num_counterfactuals: int = 5,
    max_steps: int = 100,
    repetitions: int = 1,
    seed: int = 0,
    n_permutations: int = 1000,
    length_scale: float = 0.5,
    max_samples: int | None = 1000,
    grid_samples: int = 1000,
    generative_epochs: int | None = None,
    pool: str = "predicted",
    draw: str = "at_least_one",
    metrics: MetricOptions | None = None,
    checkpoint: Any = None,
    prefix: tuple = (),
    on_round: Callable[[int, int, list], None] | None = None,
    constraints_scope: str = "schema",
) -> SimulationResult:
    """Simulate endogenous recourse dynamics (see the module docstring for one round).

    Args:
      train, test: :class:`cfx.data.Dataset` s; ``test`` is never changed (performance metrics).
      generators: label -> generator (fitted here to M₀ and the training data); all share one pool.
      model, fit_options: the classifier, as ``cfx.models.fit(train, model, **fit_options)``;
        trained ``initial_epochs`` (seed ``seed``) once, then ``retrain_epochs`` per round. Or a
        trainer (``initial(train, seed=)`` / ``retrain(clf, data, seed=)``, e.g.
        :class:`cfx.dynamics.reference.ReferenceTrainer`), or a mapping label -> either: then
        every model × generator pair is a system and all share the pool (models of one kind).
      rounds, mu, eval_every: T rounds; share μ ∈ (0, 1] of the pool per round; metrics every
        ``eval_every`` rounds (and at 0 and T).
      target: the favourable class y⁺. num_counterfactuals, max_steps: K and the search's steps;
        the search respects ``train.schema.constraints()`` (mutability, bounds, one-hot groups);
        ``constraints_scope="categorical"``: its one-hot groups only (CE.jl's ``CounterfactualData``
        with ``features_categorical`` and nothing else, as the paper's real-data runs).
      repetitions: independent repetitions from the same M₀ (own keys for draws, searches, training).
      n_permutations, length_scale, max_samples, grid_samples: MMD settings (:mod:`cfx.dynamics.metrics`).
      generative_epochs: epochs of a generator's VAE refit per round (default: its ``vae_epochs``).
      pool: ``"predicted"`` (SPEC) or ``"label"``: who counts as non-target.
      draw: ``"at_least_one"`` (n = max(1, round(μ·|pool|)); an empty pool ends the repetition)
        or ``"round"`` (n = round(μ·|pool|); n = 0 skips the round: nothing moves, nothing is
        retrained, the row says ``skipped``, the metrics are still evaluated).
      metrics: :class:`cfx.dynamics.MetricOptions` (default: cfx's variants).
      checkpoint, prefix: where each round is saved / resumed from (see the module docstring).
      on_round: called as ``on_round(repetition, round, rows)`` after each saved round.

    Raises ValueError naming the argument for bad input (μ outside (0, 1], zero rounds, mixed
    model kinds, ...), before anything is trained.

    Example::

        res = cfx.dynamics.simulate(train, test, {"generic": cfx.generators.Generic()}, rounds=10)
    """
    from cfx.search import generate

    _check(train, test, generators, mu, rounds, eval_every, num_counterfactuals, pool, target)
    _check_run(
        model,
        max_steps=max_steps,
        repetitions=repetitions,
        seed=seed,
        initial_epochs=initial_epochs,
        retrain_epochs=retrain_epochs,
        n_permutations=n_permutations,
        length_scale=length_scale,
        max_samples=max_samples,
        fit_options=fit_options,
    )
    if draw not in DRAWS:
        raise ValueError(f"draw must be one of {DRAWS}; got {draw!r}")
    if constraints_scope not in ("schema", "categorical"):
        raise ValueError(f"constraints_scope must be 'schema' or 'categorical'; got {constraints_scope!r}")
    fit_options = dict(fit_options or {})
    fit_options.setdefault("n_classes", max(int(np.max(train.y)) + 1, 2))
    trainers = _trainers(model, fit_options, initial_epochs, retrain_epochs)
    X0, y0 = jnp.asarray(train.X, jnp.float32), jnp.asarray(train.y, jnp.int32)
    X_test, y_test = jnp.asarray(test.X, jnp.float32), jnp.asarray(test.y, jnp.int32)
    grid = jnp.asarray(feature_grid(train.X, grid_samples, seed=seed))
    # one M₀ per model; the first keeps the run's seed (a one-model run is as before)
    clf0 = {
        label: t.initial(train, seed=seed if i == 0 else (seed + 7919 * i) % 2**31)
        for i, (label, t) in enumerate(trainers.items())
    }
    size = max(1, math.ceil(mu * len(train.y)))
    # the data's mutability, bounds and one-hot groups hold for every counterfactual (real data)
    constraints = train.schema.constraints() if hasattr(train, "schema") else None
    if constraints is not None and constraints_scope == "categorical":
        constraints = dataclasses.replace(constraints, mutability=None, lower=None, upper=None, integer_features=None)
    root = jax.random.key(seed)
    metric_options = dict(
        target=target,
        n_permutations=n_permutations,
        length_scale=length_scale,
        max_samples=max_samples,
        options=metrics,
    )

    def refit(gen, clf, data, key):
        orig = getattr(gen, "vae_epochs", None)
        if generative_epochs is None or orig is None:
            return gen.fit(clf, data, key=key)
        # vae_epochs is static: restore it after the refit so the search signature is unchanged
        return gen.replace(vae_epochs=generative_epochs).fit(clf, data, key=key).replace(vae_epochs=orig)

    initial = []
    for m, (model_label, trainer) in enumerate(trainers.items()):
        for g, (label, gen) in enumerate(generators.items()):
            # one key per generator (as a one-model run): every model's copy of it is fitted alike
            fitted = gen.fit(clf0[model_label], train, key=jax.random.fold_in(jax.random.fold_in(root, 0x5EED), g))
            initial.append(
                {
                    "label": label,
                    "model": model_label,
                    "trainer": trainer,
                    "X": X0,
                    "y": y0,
                    "clf": clf0[model_label],
                    "gen": fitted,
                }
            )

    history, stopped, final = [], [], {}
    for rep in range(int(repetitions)):
        key_rep = jax.random.fold_in(root, rep)
        systems, start, done_rows, halted = _resume(checkpoint, prefix, rep, rounds, initial)
        history += done_rows
        for t in range(start, rounds + 1):
            if halted:
                break
            key_t = jax.random.fold_in(key_rep, t)
            rows = []
            skipped = False
            if t == 0:
                pool_size, chosen = None, None
                recourse = [{} for _ in systems]
                prev = [s["clf"].params for s in systems]
                eval_keys = [_system_keys(key_t, jnp.int32(g))[3] for g in range(len(systems))]
            else:
                idx, valid, count, factuals = _draw(
                    tuple(s["clf"] for s in systems),
                    tuple(s["X"] for s in systems),
                    tuple(s["y"] for s in systems),
                    jax.random.fold_in(key_t, 0),
                    jnp.float32(mu),
                    jnp.int32(target),
                    size=size,
                    use_labels=(pool == "label"),
                    at_least_one=(draw == "at_least_one"),
                )
                pool_size, chosen = int(count), int(jnp.sum(valid))
                if chosen == 0 and draw == "at_least_one":
                    halted = {
                        "repetition": rep,
                        "round": t,
                        "reason": "pool empty: no training point is non-target for every model",
                    }
                    if checkpoint is not None:
                        checkpoint.save(
                            _round_path(prefix, rep, t),
                            {"round": t, "rows": [], "stopped": halted},
                            arrays=_state_arrays(systems),
                        )
                    break
                skipped = chosen == 0
                prev, recourse, new_systems, eval_keys = [], [], [], []
                for g, s in enumerate(systems):
                    k_gen, k_pick, k_fit, k_eval, train_seed = _system_keys(key_t, jnp.int32(g))
                    prev.append(s["clf"].params)
                    eval_keys.append(k_eval)
                    if skipped:  # n = 0: the reference leaves data, model and generator as they are
                        recourse.append({})
                        new_systems.append(s)
                        continue
                    res = generate(
                        s["gen"].replace(num_counterfactuals=num_counterfactuals),
                        s["clf"],
                        factuals[g],
                        target,
                        key=k_gen,
                        max_steps=max_steps,
                        constraints=constraints,
                    )
                    # through the host: generate's outputs are committed to a device, and committed
                    # inputs would give the state another signature than the initial one (a recompile)
                    X, y, stats = _move(
                        s["clf"],
                        s["X"],
                        s["y"],
                        idx,
                        valid,
                        np.asarray(res.counterfactuals),
                        np.asarray(res.outcome),
                        k_pick,
                        jnp.int32(target),
                    )
                    data = dataclasses.replace(train, X=np.asarray(X), y=np.asarray(y))
                    recourse.append({k: float(v) for k, v in jax.device_get(stats).items()})
                    new_systems.append((s, X, y, data, k_fit, int(train_seed)))
                if not skipped:  # every system's retraining, then the generators' refits on the new models
                    clfs = _retrain([(s["trainer"], s["clf"], data, seed) for s, _, _, data, _, seed in new_systems])
                    new_systems = [
                        {**s, "X": X, "y": y, "clf": clf, "gen": refit(s["gen"], clf, data, k_fit)}
                        for (s, X, y, data, k_fit, _), clf in zip(new_systems, clfs)
                    ]
                systems = new_systems
            evaluate = t == 0 or t % eval_every == 0 or t == rounds
            for g, s in enumerate(systems):
                row = {
                    "repetition": rep,
                    "round": t,
                    "generator": s["label"],
                    "pool": pool_size,
                    "chosen": chosen,
                    **recourse[g],
                }
                if s["model"]:
                    row["model"] = s["model"]
                if t > 0 and draw == "round":
                    row["skipped"] = bool(skipped)
                if evaluate:
                    row.update(
                        evaluate_state(
                            clf0[s["model"]],
                            s["clf"],
                            prev[g],
                            X0,
                            y0,
                            s["X"],
                            s["y"],
                            grid,
                            X_test,
                            y_test,
                            key=eval_keys[g],
                            **metric_options,
                        )
                    )
                rows.append(row)
            history += rows
            if checkpoint is not None:
                checkpoint.save(_round_path(prefix, rep, t), {"round": t, "rows": rows}, arrays=_state_arrays(systems))
            if on_round is not None:
                on_round(rep, t, rows)
        if halted:
            stopped.append(halted)
        final[rep] = {
            (f"{s['model']}/{s['label']}" if s["model"] else s["label"]): {
                "data": dataclasses.replace(train, X=np.asarray(s["X"]), y=np.asarray(s["y"])),
                "classifier": s["clf"],
                "generator": s["gen"],
            }
            for s in systems
        }
    return SimulationResult(history=history, stopped=stopped, final=final)
