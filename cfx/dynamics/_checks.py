"""Input checks of :func:`cfx.dynamics.simulate`, run before anything is traced."""

from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from cfx.generators.base import Generator

POOLS = ("predicted", "label")
DRAWS = ("at_least_one", "round")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


def _check(train, test, generators, mu, rounds, eval_every, num_counterfactuals, pool, target):
    for name, d in (("train", train), ("test", test)):
        if not (hasattr(d, "X") and hasattr(d, "y")):
            raise TypeError(f"{name} must be a cfx.data.Dataset; got {type(d).__name__}")
        if len(d.y) < 2:
            raise ValueError(f"{name} needs at least 2 rows; got {len(d.y)}")
    if np.shape(train.X)[1] != np.shape(test.X)[1]:
        raise ValueError(f"test has {np.shape(test.X)[1]} features; train has {np.shape(train.X)[1]}")
    if isinstance(mu, bool) or not isinstance(mu, (int, float, np.floating)) or not (0.0 < float(mu) <= 1.0):
        raise ValueError(
            f"mu must be a share in (0, 1] (the fraction of the pool given recourse per round); got {mu!r}"
        )
    for name, v, low in (
        ("rounds", rounds, 1),
        ("eval_every", eval_every, 1),
        ("num_counterfactuals", num_counterfactuals, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an int >= {low}; got {v!r}")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}; got {pool!r}")
    if not isinstance(generators, Mapping) or not generators:
        raise ValueError("generators must be a non-empty mapping label -> cfx.generators.Generator")
    for label, gen in generators.items():
        if not isinstance(label, str) or not _LABEL_RE.match(label):
            raise ValueError(f"generators: label {label!r} must be letters, digits and _ . + - (it names records)")
        if not isinstance(gen, Generator):
            raise TypeError(f"generators[{label!r}] must be a cfx.generators.Generator; got {type(gen).__name__}")
    classes = int(max(np.max(train.y), np.max(test.y))) + 1
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < max(classes, 2):
        raise ValueError(f"target must be a class index in [0, {max(classes, 2)}); got {target!r}")


def _check_run(
    model,
    *,
    max_steps,
    repetitions,
    seed,
    initial_epochs,
    retrain_epochs,
    n_permutations,
    length_scale,
    max_samples,
    fit_options,
):
    """The run's remaining numbers, model names and fit options, checked before anything is traced."""
    import inspect

    from cfx.dynamics.mmd import _check_options
    from cfx.models import fit, list_models

    if fit_options is not None and not isinstance(fit_options, Mapping):
        raise TypeError(f"fit_options must be a mapping of cfx.models.fit options; got {type(fit_options).__name__}")
    allowed = set(inspect.signature(fit).parameters) - {"dataset", "model", "epochs", "seed", "init_params"}
    unknown = sorted(set(fit_options or {}) - allowed)
    if unknown:
        raise ValueError(f"fit_options: unknown option(s) {unknown} of cfx.models.fit; allowed: {sorted(allowed)}")

    for name, v, low in (
        ("max_steps", max_steps, 1),
        ("repetitions", repetitions, 1),
        ("seed", seed, 0),
        ("initial_epochs", initial_epochs, 1),
        ("retrain_epochs", retrain_epochs, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an int >= {low}; got {v!r}")
    _check_options(length_scale, n_permutations, max_samples, "simulate")
    for label, m in model.items() if isinstance(model, Mapping) else [("", model)]:
        if isinstance(m, str) and m.lower() not in list_models():
            where = f"model[{label!r}]" if label else "model"
            raise ValueError(f"{where}: unknown model {m!r}; known models: {sorted(list_models())}")
