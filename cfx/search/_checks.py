"""Host-side checks of :func:`cfx.generate`'s inputs: each raises a message that names the
argument and what was expected, before anything is traced or compiled."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cfx import _deprecated
from cfx._validate import float_dtype, prng_key
from cfx.classifier import Classifier, check_traceable
from cfx.constraints import Constraints, ResolvedConstraints
from cfx.generators.base import Generator

LOOPS = ("while", "scan")


def check_factuals(x, classifier: Classifier) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float_dtype())
    except (TypeError, ValueError) as err:
        raise TypeError(f"x must be an array of floats of shape (d,) or (n, d); got {type(x).__name__}") from err
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"x must have shape (d,) or (n, d) with n >= 1; got {np.shape(x)}")
    if arr.shape[1] != classifier.n_features:
        raise ValueError(f"x has {arr.shape[1]} features; the classifier expects n_features={classifier.n_features}")
    check_finite("x", arr, "factual")
    return arr


def check_finite(name: str, arr: np.ndarray, row: str) -> None:
    if not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        i, j = int(np.argwhere(bad)[0][0]), int(np.argwhere(bad)[0][-1])
        raise ValueError(f"{name} contains NaN or inf ({int(bad.sum())} values; first at {row} {i}, feature {j})")


def check_target(target, n: int, n_classes: int) -> np.ndarray:
    """Class indices (n,); ``None`` means untargeted (-1: any class but the factual's)."""
    if target is None:
        return np.full(n, -1, np.int32)
    arr = np.asarray(target)
    if arr.dtype.kind not in "iu":  # signed or unsigned ints (not bool)
        raise TypeError(
            f"target must be an int class index, an int array of length n={n}, or None "
            f"(untargeted); got dtype {arr.dtype}"
        )
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,):
        raise ValueError(f"target must be a scalar or have length n={n} (one per factual); got shape {arr.shape}")
    if arr.min() < -1 or arr.max() >= n_classes:
        bad = int(arr[(arr < -1) | (arr >= n_classes)][0])
        raise ValueError(
            f"target {bad} is not a class of this classifier: expected an int in [0, {n_classes}) "
            "(or -1 for an untargeted row)"
        )
    return arr.astype(np.int32, copy=False)


def check_start(start, n: int, K: int, d: int) -> np.ndarray:
    """A start of the user's own: (n, d) (every K starts there) or (n, K, d)."""
    try:
        arr = np.asarray(start, float_dtype())
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"start must be an array of shape ({n}, {d}) or ({n}, {K}, {d}) (a start rule by name is the "
            "generator's field: generator.replace(start='noise'))"
        ) from err
    if arr.shape == (n, d):
        arr = np.broadcast_to(arr[:, None, :], (n, K, d))
    if arr.shape != (n, K, d):
        raise ValueError(f"start must have shape ({n}, {d}) or ({n}, {K}, {d}) (n, K, d); got {arr.shape}")
    check_finite("start", arr.reshape(n, K * d), "factual")
    return np.ascontiguousarray(arr)


def check_within_bounds(x: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Raise if a factual already lies outside its own bounds (lower, upper), naming the row and
    feature; None: no finite bound."""
    if bounds is None:
        return
    lower, upper = bounds
    bad = (x < lower) | (x > upper)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise ValueError(
            f"x: factual {i} violates its own bounds at feature {j} "
            f"(value {x[i, j]:.4g} not in [{lower[j]:.4g}, {upper[j]:.4g}])"
        )


def check_key(key) -> jax.Array:
    """A single typed PRNG key; a raw uint32 (2,) key is wrapped, so both share one program."""
    if isinstance(key, jax.Array) and key.shape == () and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key  # the common case, without the host round trip
    return prng_key(key, "key")


def canonical_leaves(generator: Generator) -> Generator:
    """Float leaves as strong float32 arrays, so ``cost=1``, ``cost=0.1`` and
    ``cost=jnp.float32(0.3)`` share one compiled program; a Python number in a field declared
    ``float`` counts as a float. Int leaves (``min_steps``), bools and PRNG keys keep their
    types (Python ints become int32)."""

    def canonical(leaf, declared_float=False):
        if isinstance(leaf, jax.Array):  # already on a device: convert only when needed
            floating = jnp.issubdtype(leaf.dtype, jnp.floating)
            dtype = float_dtype()
            return jnp.asarray(leaf, dtype) if floating and (leaf.dtype != dtype or leaf.weak_type) else leaf
        arr = np.asarray(leaf)  # host values stay on the host until the one device_put
        if arr.dtype.kind == "f" or (declared_float and arr.dtype.kind in "iu"):
            return arr.astype(float_dtype())
        return arr.astype(np.int32) if isinstance(leaf, (int, np.integer)) and not isinstance(leaf, bool) else arr

    changes = {}
    for field in dataclasses.fields(generator):
        if field.metadata.get("pytree_node", True):
            declared_float = "float" in str(field.type)
            changes[field.name] = jax.tree_util.tree_map(
                lambda leaf: canonical(leaf, declared_float), getattr(generator, field.name)
            )
    return generator.replace(**changes)


def check_types(**values) -> None:
    """``generator``, ``classifier`` and ``constraints`` (None allowed) are of their cfx types, and a generator
    that follows the gradient gets a model that has one (:func:`check_gradient`)."""
    expected = {
        "generator": (Generator, "cfx.generators.Generator"),
        "classifier": (Classifier, "cfx.Classifier"),
        "constraints": ((Constraints, ResolvedConstraints, type(None)), "cfx.Constraints"),
    }
    for name, value in values.items():
        types, label = expected[name]
        if not isinstance(value, types):
            hint = model_hint(value) if name == "classifier" else ""
            raise TypeError(f"{name} must be a {label}; got {type(value).__name__}{hint}")
    if "classifier" in values:
        check_traceable(values["classifier"])
    if "generator" in values and "classifier" in values:
        check_gradient(values["generator"], values["classifier"])
        check_regression(values["generator"], values["classifier"])


def check_regression(generator: Generator, classifier: Classifier) -> None:
    """A regression target (``Regressor.within``) is one logit g = distance into the interval,
    not class probabilities: a generator whose terms need those is refused with its reason."""
    reason = getattr(type(generator), "regression_refusal", None)
    if reason and getattr(classifier.apply_fn, "regression", False):
        raise ValueError(
            f"generator {type(generator).__name__} cannot search for a regression target: {reason}. "
            "Use a generator without class-probability terms (generic, wachter, greedy, dice, "
            "claproar, gravitational, revise, growing_spheres)"
        )


def check_regression_target(classifier: Classifier, target: np.ndarray) -> None:
    """On a regression target the only target is class 1, "inside the interval"."""
    if getattr(classifier.apply_fn, "regression", False) and np.any(target != 1):
        bad = int(target[target != 1][0])
        raise ValueError(
            f"target must be 1 (inside the interval) for a regression target (cfx.models.Regressor.within); got {bad}"
        )


def model_hint(model) -> str:
    """For a model from another library passed where a Classifier belongs: how to wrap it."""
    if type(model).__name__ == "Regressor" and hasattr(model, "within"):
        return " (a regression model: search for a target interval with regressor.within(lo, hi), a Classifier)"
    if hasattr(model, "predict_proba") or hasattr(model, "decision_function"):
        return (
            " (wrap it: cfx.models.from_sklearn(estimator) translates scikit-learn models exactly, "
            "cfx.models.from_predict_proba(model.predict_proba, n_features, n_classes) takes any as a black box)"
        )
    return ""


def check_gradient(generator: Generator, classifier: Classifier) -> None:
    """A generator that follows the model's gradient needs a model that has one: a black box
    (``from_predict_proba``) or a tree ensemble is refused here, naming the gradient-free generators."""
    if generator.uses_gradient and not classifier.differentiable:
        from cfx.generators import REGISTRY  # lazy: the registry imports every generator

        free = sorted(name for name, entry in REGISTRY.items() if not entry.cls.uses_gradient)
        if classifier.black_box:
            what = "a black box (no gradient)"
        else:
            what, free = "not differentiable (piecewise constant)", free + ["cfx.generators.FeatureTweak() (trees)"]
        raise ValueError(
            f"generator {type(generator).__name__} follows the model's gradient, but the classifier is "
            f"{what}; use a gradient-free generator: {free}"
        )


def check_options(max_steps, batch_size, loop) -> None:
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int; got {max_steps!r}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}")
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}; got {loop!r}")


AUTO_COMPACT_STEPS, AUTO_COMPACT_ROUND = 500, 50  # compaction="auto": on from this max_steps, this round length


def check_compact(compact, loop, multiprocess, max_steps) -> int | None:
    """The compaction round length to use: ``compact`` checked (None: off; an int >= 1), or
    for ``"auto"`` the measured rule (on for long searches with the while loop in one process)."""
    if isinstance(compact, str) and compact == "auto":
        on = max_steps >= AUTO_COMPACT_STEPS and loop == "while" and not multiprocess
        return AUTO_COMPACT_ROUND if on else None
    if compact is None:
        return None
    if isinstance(compact, bool) or not isinstance(compact, (int, np.integer)) or compact < 1:
        raise ValueError(f"compact must be 'auto', None (off) or a round length in steps, an int >= 1; got {compact!r}")
    if loop != "while":
        raise ValueError(f"compact needs loop='while' (loop={loop!r} runs every step of every row)")
    if multiprocess:
        raise ValueError("compact is not available in multi-process mode (multiprocess=True); pass compact=None")
    return int(compact)


def fitted_for(generator: Generator, classifier: Classifier) -> Generator:
    """The generator completed from the classifier where that is all its fit needs (ECCCo's
    q̂ from a calibrated classifier); otherwise unchanged."""
    complete = getattr(generator, "fitted_for", None)
    return generator if complete is None else complete(classifier)


#: generate's keywords that duplicated generator fields (cfx < 0.2) -> the field they set.
MOVED_OPTIONS = {
    "threshold": "threshold",
    "num_counterfactuals": "num_counterfactuals",
    "init": "start",
    "convergence": "convergence",
    "min_steps": "min_steps",
}


def moved_options(start, moved: dict) -> tuple:
    """(start, overrides) from ``generate``'s deprecated keywords: a generator field each (warned,
    with what to write instead); an ``init=`` array is the call's ``start``. Unknown keywords: TypeError."""
    unknown = sorted(set(moved) - set(MOVED_OPTIONS))
    if unknown:
        raise TypeError(f"generate() got an unexpected keyword argument {unknown[0]!r}")
    overrides = {}
    for old, value in moved.items():
        if old == "init" and value is not None and not isinstance(value, str):
            _deprecated.warn("generate(..., init=<array>)", "write generate(..., start=<array>)", stacklevel=5)
            start = value
            continue
        field = MOVED_OPTIONS[old]
        _deprecated.warn(
            f"generate(..., {old}=...)",
            f"write generate(generator.replace({field}=...), ...) (the search options are the generator's fields)",
            stacklevel=5,
        )
        overrides[field] = value
    return start, overrides


def with_overrides(generator: Generator, **overrides) -> Generator:
    """The generator with the search options a caller set (None: keep the generator's)."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    k = changes.get("num_counterfactuals")
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ValueError(f"num_counterfactuals must be an int >= 1; got {k!r}")
    tau = changes.get("threshold")
    if tau is not None and not (isinstance(tau, (int, float, np.floating)) and 0.0 < float(tau) <= 1.0):
        raise ValueError(f"threshold must be a probability in (0, 1]; got {tau!r}")
    try:
        return generator.replace(**changes) if changes else generator
    except ValueError as err:  # the generator's own check names the field: say it came from a keyword
        raise ValueError(str(err).replace(f"{type(generator).__name__}.", "")) from None
