"""The one batched search driver: ``generate(generator, classifier, x, target, ...)``.

For n factuals and K counterfactuals each, the whole search is one compiled computation:

    z_0 = x (+ noise)                                         (n, K, d)
    repeat until every counterfactual is done or t = max_steps:
        loss, logits, ∇ = value_and_grad(Σ_rows [yloss + Σ_i λ_i · penalty_i])(z_t)
        done |= converged(logits, ∇)        # reuses the logits of the gradient's forward pass
        z_{t+1} = project(update(∇))        # optax (or the generator's own rule), then constraints
        frozen rows keep z_t

as a ``lax.while_loop`` (or a ``lax.scan`` when the path is requested). Inputs are checked
on the host before anything is traced; compiled programs are cached on the abstract
signature, so new parameters, targets, λ values or thresholds reuse the same executable.
"""

from __future__ import annotations

import collections
import functools
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from cfx import losses
from cfx.classifier import Classifier
from cfx.constraints import Constraints, ResolvedConstraints
from cfx.generators.base import CONVERGENCE, Generator
from cfx.result import CounterfactualResult

GRADIENT_TOLERANCE = 0.01  # "generator conditions": every |∂loss/∂x'_j| below this
NOISE_SCALE = 0.1  # init="noise": x + 0.1·N(0, I) on mutable features (CE.jl default)
INITS = ("identity", "noise")


# =============================================================================== compiled core
def _target_probs(logits: jax.Array, target: jax.Array) -> jax.Array:
    """p(y+|x') for logits (n, K, C) and target (n,) -> (n, K)."""
    probs = jax.nn.softmax(logits, axis=-1)
    return jnp.take_along_axis(probs, target[:, None, None], axis=-1)[..., 0]


def _converged(logits, grad, target, threshold, convergence: str) -> jax.Array:
    """Per-counterfactual convergence (n, K) as array predicates."""
    reached = _target_probs(logits, target) >= threshold
    if convergence == "max_steps":
        return jnp.zeros_like(reached)
    if convergence == "generator_conditions":
        reached &= jnp.max(jnp.abs(grad), axis=-1) < GRADIENT_TOLERANCE
    return reached


def _objective(z, step, *, generator, classifier, x, target, context):
    """Σ over all counterfactuals of yloss + Σ_i λ_i · penalty_i, with per-row terms as aux.

    Rows are independent, so the gradient of the sum is every row's own gradient; the model
    runs once on the flattened (n·K, d) batch. Set terms (per factual) enter the sum once per
    factual; their per-row report is the factual's value.
    """
    n, K, d = z.shape
    logits = classifier.raw_logits(z.reshape(n * K, d)).reshape(n, K, -1)
    yloss = losses.YLOSSES[generator.yloss]
    rows = {"yloss": jax.vmap(jax.vmap(yloss, (0, None)))(logits, target)}
    total = rows["yloss"]
    for penalty in generator.terms():

        def term(x_cf, x_f, t, lg, data, fn=penalty.fn):
            return fn(x_cf, x_f, losses.TermContext(t, lg, step, data, classifier))

        if penalty.per == "set":
            values = jax.vmap(term)(z, x, target, logits, context)  # (n,)
            rows[penalty.name] = jnp.broadcast_to(values[:, None], (n, K))
            total = total + penalty.weight * rows[penalty.name] / K
        else:
            per_factual = jax.vmap(term, (0, None, None, 0, None))
            rows[penalty.name] = jax.vmap(per_factual)(z, x, target, logits, context)
            total = total + penalty.weight * rows[penalty.name]
    rows["total"] = total
    return jnp.sum(total), (logits, rows)


def _search(generator, classifier, x, target, rows, key, constraints, threshold, *,
            max_steps: int, num_counterfactuals: int, init: str, return_path: bool, convergence: str):
    n, d = x.shape
    x_rep = jnp.broadcast_to(x[:, None, :], (n, num_counterfactuals, d))
    latent = generator.latent

    def to_input(z, one_hot=False):
        """Search variable -> counterfactual. In a latent space mutability cannot act on z, so
        the decoded point is projected (immutable features restored from the factual)."""
        if latent:
            return constraints.project(generator.decode(z), x_rep, one_hot=one_hot)
        return constraints.project(z, x_rep, one_hot=True) if one_hot else z

    z0 = generator.encode(x_rep) if latent else x_rep
    if init == "noise":  # a key per row index: a row's noise does not depend on chunking or sharding
        shape = z0.shape[1:]
        noise = jax.vmap(lambda r: jax.random.normal(jax.random.fold_in(key, r), shape))(rows)
        z0 = z0 + NOISE_SCALE * noise if latent else constraints.project(x_rep + NOISE_SCALE * noise, x_rep)

    context = generator.prepare(classifier, x, target)
    objective = functools.partial(
        _objective, generator=generator, classifier=classifier, x=x, target=target, context=context
    )
    grad_in_input_space = jax.value_and_grad(objective, has_aux=True)
    grad_in_search_space = jax.value_and_grad(lambda z, t: objective(to_input(z), t), has_aux=True)

    def step(carry):
        t, z, update_state, done, steps = carry
        (_, (logits, _)), grad = grad_in_search_space(z, t)
        if not latent:
            grad = constraints.mask_gradient(grad)
        if constraints.categorical_groups:
            # One-hot groups are relaxed during the search: a row is done only when the point it
            # will be returned as (groups snapped) is valid, which costs one more forward pass.
            snapped = to_input(z, one_hot=True)
            logits = classifier.raw_logits(snapped.reshape(n * num_counterfactuals, d)).reshape(logits.shape)
        done = done | _converged(logits, grad, target, threshold, convergence)
        z_next, update_state = generator.update(grad, update_state, z, constraints)
        if not latent:
            z_next = constraints.project(z_next, x_rep, one_hot=constraints.snap_each_step)
        # Frozen rows keep their point; a non-finite step (e.g. an overflowing model) is refused.
        keep = done[..., None] | ~jnp.isfinite(z_next)
        z = jnp.where(keep, z, z_next)
        return t + 1, z, update_state, done, steps + (~done).astype(jnp.int32)

    done0 = jnp.zeros((n, num_counterfactuals), bool)
    carry = (jnp.int32(0), z0, generator.init_update(z0), done0, jnp.zeros_like(done0, jnp.int32))
    if return_path:
        def scan_step(carry, _):
            carry = step(carry)
            return carry, to_input(carry[1])

        carry, xs = jax.lax.scan(scan_step, carry, None, length=max_steps)
        path = jnp.moveaxis(jnp.concatenate([to_input(z0)[None], xs]), 0, 2)  # (n, K, T+1, d)
    else:
        carry = jax.lax.while_loop(lambda c: (c[0] < max_steps) & ~jnp.all(c[3]), step, carry)
        path = None
    t, z, _, _, steps = carry

    x_cf = to_input(z, one_hot=True)
    (_, (logits, terms)), grad = grad_in_input_space(x_cf, t)
    grad = constraints.mask_gradient(grad)
    rule = "threshold" if convergence == "max_steps" else convergence
    return CounterfactualResult(
        factuals=x,
        target=target,
        counterfactuals=x_cf,
        converged=_converged(logits, grad, target, threshold, rule),
        steps=steps,
        target_probs=_target_probs(logits, target),
        losses=terms,
        path=path,
    )


_STATIC = ("max_steps", "num_counterfactuals", "init", "return_path", "convergence")
_search_jit = jax.jit(_search, static_argnames=_STATIC)

# Compiled executables keyed on the abstract signature of the arguments (tree structure incl.
# static generator fields and apply_fn, shapes, dtypes) and the static options. Keeping the
# AOT executables ourselves lets every call report compile time separately from run time.
_COMPILED: "collections.OrderedDict[Any, Any]" = collections.OrderedDict()
_CACHE_SIZE = 64
_stats = {"compilations": 0}


def compilation_count() -> int:
    """How many search programs have been compiled in this process (for tests and benchmarks)."""
    return _stats["compilations"]


def _executable(args: tuple, static: dict) -> tuple[Any, float]:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    signature = (
        treedef,
        tuple((leaf.shape, leaf.dtype, getattr(leaf, "weak_type", False), leaf.sharding) for leaf in leaves),
        tuple(sorted(static.items())),
    )
    if signature in _COMPILED:
        _COMPILED.move_to_end(signature)
        return _COMPILED[signature], 0.0
    start = time.perf_counter()
    executable = _search_jit.lower(*args, **static).compile()
    _stats["compilations"] += 1
    _COMPILED[signature] = executable
    if len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return executable, time.perf_counter() - start


# =============================================================================== input checks
def _check_factuals(x, classifier: Classifier) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise TypeError(f"x must be an array of floats of shape (d,) or (n, d); got {type(x).__name__}") from err
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"x must have shape (d,) or (n, d) with n >= 1; got {np.shape(x)}")
    if arr.shape[1] != classifier.n_features:
        raise ValueError(f"x has {arr.shape[1]} features; the classifier expects n_features={classifier.n_features}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise ValueError(f"x contains NaN or inf ({int(bad.sum())} values; first at factual {i}, feature {j})")
    return arr


def _check_target(target, n: int, n_classes: int) -> np.ndarray:
    arr = np.asarray(target)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"target must be an int class index or an int array of length n={n}; got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,):
        raise ValueError(f"target must be a scalar or have length n={n} (one per factual); got shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= n_classes:
        bad = int(arr[(arr < 0) | (arr >= n_classes)][0])
        raise ValueError(f"target {bad} is not a class of this classifier: expected an int in [0, {n_classes})")
    return arr.astype(np.int32)


def _check_key(key) -> jax.Array:
    """A single typed PRNG key; a raw uint32 (2,) key is wrapped, so both share one program."""
    key = jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
        return key
    if key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key)
    raise TypeError(f"key must be a single PRNG key (jax.random.key(seed)); got dtype {key.dtype}, shape {key.shape}")


def _as_float32_leaves(generator: Generator) -> Generator:
    """Hyperparameter leaves as strong float32 arrays: ``cost=1``, ``cost=0.1`` and
    ``cost=jnp.float32(0.3)`` then share one compiled program."""
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, jnp.float32), generator)


def _check_options(max_steps, threshold, num_counterfactuals, init, convergence) -> None:
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int; got {max_steps!r}")
    if not isinstance(num_counterfactuals, (int, np.integer)) or isinstance(num_counterfactuals, bool) \
            or num_counterfactuals < 1:
        raise ValueError(f"num_counterfactuals must be an int >= 1; got {num_counterfactuals!r}")
    if not (isinstance(threshold, (int, float, np.floating)) and 0.0 < float(threshold) <= 1.0):
        raise ValueError(f"threshold must be a probability in (0, 1]; got {threshold!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}; got {init!r}")
    if convergence not in CONVERGENCE:
        raise ValueError(f"convergence must be one of {CONVERGENCE}; got {convergence!r}")


# =============================================================================== public API
def generate(
    generator: Generator,
    classifier: Classifier,
    x,
    target,
    *,
    key: jax.Array,
    constraints: Constraints | None = None,
    max_steps: int = 100,
    threshold: float = 0.5,
    num_counterfactuals: int = 1,
    init: str | None = None,
    return_path: bool = False,
    convergence: str | None = None,
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> CounterfactualResult:
    """Search counterfactuals for a batch of factuals in one compiled computation.

    Minimises ``yloss(f(x'), y+) + Σ_i λ_i · penalty_i(x', x)`` over x' for every factual and
    each of its K counterfactuals, projecting onto ``constraints`` after every step.

    Args:
      generator: a generator from :mod:`cfx.generators` (its leaves may change freely
        between calls without recompiling).
      classifier: a :class:`cfx.Classifier`.
      x: one factual (d,) or a batch (n, d).
      target: the target class, an int or one per factual (n,).
      key: PRNG key (used by ``init="noise"``).
      constraints: :class:`cfx.Constraints` (e.g. ``train.schema.constraints()``); none by default.
      max_steps: the most optimisation steps (always finite).
      threshold: decision threshold τ: a counterfactual converges once p(y+|x') >= τ.
      num_counterfactuals: K per factual (DiCE needs K > 1).
      init: ``"identity"`` (start at x) or ``"noise"`` (x + 0.1·N(0, I) on mutable features);
        default: the generator's.
      return_path: also return every iterate, as (n, K, max_steps + 1, d) (runs a ``lax.scan``).
      convergence: ``"threshold"``, ``"generator_conditions"`` (τ reached and every
        |∂loss/∂x'_j| < 0.01) or ``"max_steps"``; default: the generator's.
      batch_size: search at most this many factuals per compiled call (padded chunks of one
        shape, so one compilation serves all); default: all at once.
      devices: shard each chunk's factuals over these devices (a 1-D mesh); default: all
        local devices. Results do not depend on the chunking or the sharding.

    Returns:
      :class:`cfx.CounterfactualResult` with leading axis n (n = 1 for a single factual).
      A row that cannot reach the target has ``converged=False``; nothing raises.

    Example::

        res = cfx.generate(cfx.generators.Generic(), clf, x, target=1, key=jax.random.key(0))
    """
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a cfx.generators.Generator; got {type(generator).__name__}")
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier must be a cfx.Classifier; got {type(classifier).__name__}")
    init = generator.init if init is None else init
    convergence = generator.convergence if convergence is None else convergence
    _check_options(max_steps, threshold, num_counterfactuals, init, convergence)
    x_np = _check_factuals(x, classifier)
    target_np = _check_target(target, x_np.shape[0], classifier.n_classes)
    key = _check_key(key)
    if constraints is None:
        constraints = Constraints()
    if not isinstance(constraints, (Constraints, ResolvedConstraints)):
        raise TypeError(f"constraints must be a cfx.Constraints; got {type(constraints).__name__}")
    resolved = constraints if isinstance(constraints, ResolvedConstraints) else constraints.resolve(x_np.shape[1])
    if resolved.lower.shape != (x_np.shape[1],):
        raise ValueError(f"constraints are for {resolved.lower.shape[0]} features; x has {x_np.shape[1]}")
    resolved.check_factuals(x_np)
    generator.validate(num_counterfactuals, classifier.n_features, classifier.n_classes)
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}")
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")

    n = x_np.shape[0]
    chunk = _round_up(min(n, batch_size or n), len(devices))  # every device gets the same rows
    n_padded = _round_up(n, chunk)
    rows = np.concatenate([np.arange(n), np.zeros(n_padded - n, int)]).astype(np.int32)  # pad with row 0
    batch, shared = _shardings(devices)
    common = jax.device_put((_as_float32_leaves(generator), jax.tree_util.tree_map(jnp.asarray, classifier)), shared)
    options = jax.device_put((key, resolved, jnp.float32(threshold)), shared)
    static = dict(max_steps=int(max_steps), num_counterfactuals=int(num_counterfactuals), init=init,
                  return_path=bool(return_path), convergence=convergence)

    parts, compile_s, runtime_s = [], 0.0, 0.0
    for start in range(0, n_padded, chunk):
        idx = rows[start:start + chunk]
        per_row = jax.device_put((x_np[idx], target_np[idx], idx), batch)
        args = (*common, *per_row, *options)
        executable, seconds = _executable(args, static)
        compile_s += seconds
        began = time.perf_counter()
        parts.append(jax.block_until_ready(executable(*args)))
        runtime_s += time.perf_counter() - began
    result = parts[0] if len(parts) == 1 else jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
    if n_padded > n:
        result = jax.tree_util.tree_map(lambda a: a[:n], result)
    return result.replace(threshold=float(threshold), runtime_s=runtime_s, compile_s=compile_s,
                          generator=type(generator).name)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _shardings(devices: list) -> tuple[jax.sharding.Sharding, jax.sharding.Sharding]:
    """(rows split over a 1-D device mesh, replicated) shardings; one device: plain placement."""
    if len(devices) == 1:
        single = jax.sharding.SingleDeviceSharding(devices[0])
        return single, single
    mesh = jax.sharding.Mesh(np.asarray(devices), ("batch",))
    P = jax.sharding.PartitionSpec
    return jax.sharding.NamedSharding(mesh, P("batch")), jax.sharding.NamedSharding(mesh, P())
