"""The search: the pure core ``search(...)`` and the compiled programs the host wrapper ``generate(...)`` runs.

For n factuals and K counterfactuals each, the whole search is one computation:

    z_0 = start(x)                                            (n, K, d)
    repeat until every counterfactual is done or t = max_steps:
        loss, logits, ∇ = value_and_grad(Σ_rows Σ_i λ_i · term_i)(z_t)   # yloss is a term (λ = 1)
        done |= t >= min_steps & converged(logits, ∇)       # reuses the gradient's forward pass
        z_{t+1} = project(update(∇, key_t, t, x))           # optax (or the generator's own rule)
        frozen rows keep z_t;  track_state = track.update(track_state, x_{t+1}, t, active)

as one ``lax.while_loop`` (``loop="scan"``: a fixed-length ``lax.scan``, differentiable).
:func:`search` is pure and traceable (use it inside ``jit``/``vmap``, e.g. in a training
step); :func:`generate` (in ``_generate``) checks the inputs on the host before anything is traced, splits large
batches into padded chunks, shards them over devices and caches compiled programs on the
abstract signature, so new parameters, targets, λ values or thresholds reuse the executable.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from cfx import _reductions as reductions, _validate
from cfx.search import _convergence as convergence, _runtime as runtime
from cfx.classifier import Classifier
from cfx.constraints import Constraints, ResolvedConstraints
from cfx.generators.base import Generator, StepContext
from cfx.terms import TermContext
from cfx.search._result import CONVERGED, MAX_STEPS, NONFINITE, NOT_REACHED, UNCHANGED, CounterfactualResult
from cfx.search._tracks import Track, track_path


# =============================================================================== compiled core
def _with_condition(generator, converged, x_cf, logits, target, classifier):
    """The rule's verdict AND the generator's own condition at x' (e.g. Probe's invalidation rate)."""
    extra = generator.condition(x_cf, logits, target, classifier)
    return converged if extra is None else converged & extra


def _objective(z, step, *, terms, classifier, x, target, context):
    """Σ over all counterfactuals of Σ_i λ_i · term_i, with every term per row as aux.

    Rows are independent, so the gradient of the sum is every row's own gradient. It is
    written per factual and vmapped, the model per example too: XLA's CPU code for that form
    ran the search about 1.2x faster than the same maths on the flattened (n·K, d) batch.
    Set terms (per factual) enter the sum once per factual; their per-row report is the
    factual's value.
    """

    def one_factual(z_f, x_f, t, data):  # (K, d): this factual's K counterfactuals
        K = z_f.shape[0]
        logits = jax.vmap(classifier.raw_logits)(z_f)
        rows, total = {}, jnp.zeros((K,), logits.dtype)
        for term in terms:
            ctx = TermContext(t, logits, step, data, classifier)
            if term.per == "set":
                rows[term.name] = jnp.broadcast_to(term.fn(z_f, x_f, ctx), (K,))
                total = total + term.weight * rows[term.name] / K
            else:
                rows[term.name] = jax.vmap(lambda x_cf, lg, fn=term.fn: fn(x_cf, x_f, ctx.replace(logits=lg)))(
                    z_f, logits
                )
                total = total + term.weight * rows[term.name]
        rows["total"] = total
        return total, (logits, rows)

    total, aux = jax.vmap(one_factual)(z, x, target, context)
    return jnp.sum(total), aux


def _noise(generator, shape, rows, key):
    """start_scale·N(0, I) or start_scale·U(−1, 1) of ``shape`` per row, from a key per row index
    (so a row's start does not depend on chunking or sharding)."""
    draw = jax.random.normal if generator.start == "noise" else functools.partial(jax.random.uniform, minval=-1.0)
    z = jax.vmap(lambda r: draw(jax.random.fold_in(key, r), shape[1:], jnp.float32))(rows)  # x64: same draws
    return generator.start_scale * z.astype(_validate.float_dtype())


def _start(generator, x_rep, rows, key, start, constraints):
    """z_0: the factual, a noisy / uniform start on mutable features, or ``start``; a latent
    generator encodes the start and perturbs z."""
    if start is not None:
        x0 = constraints.project(jnp.broadcast_to(start, x_rep.shape).astype(x_rep.dtype), x_rep)
        return generator.encode(x0) if generator.latent else x0
    z0 = generator.encode(x_rep) if generator.latent else x_rep
    if generator.start == "identity":
        return z0
    z0 = z0 + _noise(generator, z0.shape, rows, key).astype(z0.dtype)
    return z0 if generator.latent else constraints.project(z0, x_rep)


class _Program(NamedTuple):
    """One search, as the three pure pieces a driver composes (all traced inside one program or
    across several, as compaction does):

      carry = start(start)                 the (n, K) starts and every counter at step 0
      carry = advance(carry, until, loop, shrink)  steps until t = until or every row is done
      result = finish(carry)               the returned point, its outcome, terms and tracks

    The carry is ``(t, z, update_state, done, steps, nonfinite, track_states)``; every leaf
    except the shared step counter t (and scalar optimiser counters) has the rows as axis 0.
    """

    start: Callable
    advance: Callable
    finish: Callable


MIN_SHRUNK_ROWS = 32  # no bucket below this: fewer rows cost about as much per step on a CPU


def _running(done):
    """(n,) whether any of a factual's K counterfactuals is still running."""
    return reductions.max_last(~done)


def _continue_shrunk(carry, on_rows, bucket, advance):
    """Go on with at most ``bucket`` running rows of ``carry``: gather them (padding rows enter
    done), ``advance(on_rows(index), subset)``, scatter them back. The in-program twin of
    :func:`cfx.search._runtime.compacted`: the same arithmetic per row, so the same result. Leaves
    with the rows as axis 0 are those whose shape follows the row count."""
    done = carry[3]
    n = done.shape[0]
    index = jnp.nonzero(_running(done), size=bucket, fill_value=n)[0]  # n: a padding slot
    real = index < n
    index_in = jnp.minimum(index, n - 1)
    sub = on_rows(index_in)
    per_row = jax.tree_util.tree_map(lambda full, small: full.shape != small.shape, carry, jax.eval_shape(sub.start))
    subset = jax.tree_util.tree_map(lambda a, per: a[index_in] if per else a, carry, per_row)
    subset = subset[:3] + (subset[3] | ~real[:, None],) + subset[4:]
    subset = advance(sub, subset)
    return jax.tree_util.tree_map(
        lambda full, small, per: full.at[index].set(small, mode="drop") if per else small, carry, subset, per_row
    )


def _program(
    generator, classifier, x, target, *, key, constraints, max_steps, rows, track, return_path, checked=True
) -> _Program:
    n, d = x.shape
    K = generator.num_counterfactuals
    if constraints is None:
        constraints = Constraints()
    if isinstance(constraints, Constraints):
        constraints = constraints.resolve(d)
    rows = jnp.arange(n, dtype=jnp.int32) if rows is None else rows
    x_rep = jnp.broadcast_to(x[:, None, :], (n, K, d))
    latent = generator.latent
    key_start, key_steps = key, jax.random.split(key)[1]  # the start keeps the key's own row folds

    def to_input(z, one_hot=False):
        """Search variable -> counterfactual. In a latent space mutability cannot act on z, so
        the decoded point is projected (immutable features restored from the factual)."""
        if latent:
            return constraints.project(generator.decode(z), x_rep, one_hot=one_hot)
        return constraints.project(z, x_rep, one_hot=True) if one_hot else z

    def to_output(z, one_hot=False):
        """The point a step checks and the search returns: the generator's readout of z (projected),
        else the decoded iterate."""
        read = generator.readout(z)
        return to_input(z, one_hot) if read is None else constraints.project(read, x_rep, one_hot=one_hot)

    def step_context(t):
        """The step rule's inputs at step t: (n,) one key per row, independent of chunking."""
        keys = jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(key_steps, t), r))(rows)
        return StepContext(keys, t, x, term_target, classifier, constraints)

    factual_logits = classifier.raw_logits(x)
    factual_class = jnp.argmax(factual_logits, axis=-1)
    # Terms need one class to aim at: an untargeted row aims at the class the model ranks
    # next after the factual's (the other class of a binary model), so every yloss pushes
    # x' away from the factual's class; it still converges on reaching any other class.
    runner_up = jnp.argmax(
        jnp.where(jax.nn.one_hot(factual_class, factual_logits.shape[-1], dtype=bool), -jnp.inf, factual_logits),
        axis=-1,
    )
    term_target = jnp.where(target < 0, runner_up, target)
    row_target, row_factual = target[:, None], factual_class[:, None]  # against the (n, K) counterfactuals
    threshold, min_steps = generator.threshold, generator.min_steps
    context = generator.prepare(classifier, x, term_target)
    objective = functools.partial(
        _objective, terms=generator.terms(), classifier=classifier, x=x, target=term_target, context=context
    )
    grad_in_input_space = jax.value_and_grad(objective, has_aux=True)
    if generator.uses_gradient:
        grad_in_search_space = jax.value_and_grad(lambda z, t: objective(to_input(z), t), has_aux=True)
    else:  # a gradient-free rule: the forward pass only (also the finish's on a black box: no JVP through a callback)

        def grad_in_search_space(z, t):
            return objective(to_input(z), t), jnp.zeros_like(z)

    tracks = tuple(t for t in (track_path(max_steps) if return_path else None, track) if t is not None)

    def step(carry):
        t, z, update_state, done, steps, nonfinite, track_states = carry
        (_, (logits, _)), grad = grad_in_search_space(z, t)
        if generator.readout(z) is not None:  # checked at the point read out, not where the gradient was taken
            logits = classifier.raw_logits(to_output(z).reshape(n * K, d)).reshape(logits.shape)
        logits = classifier.verdict_logits(to_output(z), logits)
        if not latent:
            grad = constraints.mask_gradient(grad)
        if constraints.snaps:
            # One-hot groups and integer grids are relaxed during the search: a row is done only when
            # the point it will be returned as (snapped) is valid, which costs one more forward pass.
            snapped = to_output(z, one_hot=True)
            logits = classifier.raw_logits(snapped.reshape(n * K, d)).reshape(logits.shape)
        converged = convergence.converged(logits, grad, row_target, row_factual, threshold, generator.convergence)
        converged = generator.settle(
            _with_condition(
                generator, converged, snapped if constraints.snaps else to_output(z), logits, term_target, classifier
            ),
            grad,
        )
        done = done | (converged & (t >= min_steps))
        gave_up = generator.gave_up(update_state)
        if gave_up is not None:
            done = done | gave_up
        z_next, update_state = generator.update(grad, update_state, z, step_context(t))
        if not latent:
            z_next = constraints.project(z_next, x_rep, one_hot=constraints.snap_each_step)
        if checked:  # frozen rows keep their point; a non-finite step (an overflowing model) is refused whole
            finite = jnp.all(jnp.isfinite(z_next), axis=-1)
            nonfinite = nonfinite | (~done & ~finite)
            z = jnp.where((done | ~finite)[..., None], z, z_next)
        else:  # a non-finite entry is kept, so the final point shows any non-finite step (see generate)
            z = jnp.where(done[..., None] | ~jnp.isfinite(z), z, z_next)
        if tracks:
            x_t = to_output(z)
            track_states = tuple(tr.update(s, x_t, t, ~done) for tr, s in zip(tracks, track_states))
        return t + 1, z, update_state, done, steps + (~done).astype(jnp.int32), nonfinite, track_states

    def start(start_points=None):
        z0 = _start(generator, x_rep, rows, key_start, start_points, constraints)
        no = jnp.zeros((n, K), bool)
        return (
            jnp.int32(0),
            z0,
            generator.init_update(z0, step_context(max_steps)),
            no,
            jnp.zeros((n, K), jnp.int32),
            no,
            tuple(tr.init(to_output(z0), x) for tr in tracks),
        )

    def advance(carry, until=max_steps, loop="while", shrink=None):
        if loop == "scan":  # every step (a fixed count): differentiable in reverse mode
            return jax.lax.scan(lambda c, _: (step(c), None), carry, None, length=max_steps)[0]
        bucket = n // shrink if shrink else 0
        if bucket < MIN_SHRUNK_ROWS:
            return jax.lax.while_loop(lambda c: (c[0] < until) & ~jnp.all(c[3]), step, carry)
        carry = jax.lax.while_loop(lambda c: (c[0] < until) & (jnp.sum(_running(c[3])) > bucket), step, carry)
        on_rows = lambda i: _program(
            generator,
            classifier,
            x[i],
            target[i],
            key=key,
            constraints=constraints,
            max_steps=max_steps,
            rows=rows[i],
            track=track,
            return_path=return_path,
        )
        shrunk = functools.partial(
            _continue_shrunk,
            on_rows=on_rows,
            bucket=bucket,  # out of steps: no gathers
            advance=lambda sub, c: sub.advance(c, until, loop, shrink),
        )
        return jax.lax.cond(carry[0] < until, shrunk, lambda c: c, carry)

    def finish(carry):
        t, z, _, done, steps, nonfinite, track_states = carry
        if not checked:
            nonfinite = ~jnp.all(jnp.isfinite(z), axis=-1)
        x_cf = to_output(z, one_hot=True)
        (_, (logits, terms)), grad = (grad_in_input_space if classifier.differentiable else grad_in_search_space)(
            x_cf, t
        )
        grad, logits = constraints.mask_gradient(grad), classifier.verdict_logits(x_cf, logits)
        rule = "threshold" if generator.convergence == "max_steps" else generator.convergence
        ok = _with_condition(
            generator,
            convergence.converged(logits, grad, row_target, row_factual, threshold, rule),
            x_cf,
            logits,
            term_target,
            classifier,
        )
        ok = ok if checked else ok & ~nonfinite  # a non-finite point is never returned as converged
        out_of_steps = jnp.where(jnp.all(x_cf == x_rep, axis=-1), UNCHANGED, MAX_STEPS)  # never a silent copy
        failed = jnp.where(nonfinite, NONFINITE, jnp.where(steps >= max_steps, out_of_steps, NOT_REACHED))
        path = None
        if return_path:  # after a row froze, its remaining entries repeat its last point
            path, track_states = track_states[0], track_states[1:]
            last = jnp.take_along_axis(path, steps[..., None, None], axis=2)
            path = jnp.where((jnp.arange(max_steps + 1)[:, None] > steps[..., None, None]), last, path)
        return CounterfactualResult(
            factuals=x,
            target=target,
            counterfactuals=x_cf,
            steps=steps,
            terms=terms,
            path=path,
            outcome=jnp.where(ok, CONVERGED, failed).astype(jnp.int32),
            target_probs=convergence.class_probs(logits, row_target, row_factual),
            track=track_states[0] if track_states else None,
            threshold=jnp.asarray(threshold, _validate.float_dtype()),
        )

    return _Program(start, advance, finish)


def search(
    generator: Generator,
    classifier: Classifier,
    x: jax.Array,
    target: jax.Array,
    *,
    key: jax.Array,
    constraints: ResolvedConstraints | Constraints | None = None,
    max_steps: int = 100,
    rows: jax.Array | None = None,
    start: jax.Array | None = None,
    track: Track | None = None,
    return_path: bool = False,
    loop: str = "while",
    shrink: int | None = None,
) -> CounterfactualResult:
    """The pure search core: no input checks, no host work; traceable under ``jit``/``vmap``.

    Every search option comes from ``generator`` (``threshold``, ``convergence``, ``start``,
    ``start_scale``, ``min_steps``, ``num_counterfactuals``); set them with
    ``generator.replace(...)``. Arguments as in :func:`generate`, plus ``rows`` (n,) the row
    ids that seed per-row randomness (default ``arange(n)``), ``start`` (n, [K,] d) a start
    of your own, ``track`` a :class:`Track` whose final state is returned as ``result.track``,
    and ``loop``: ``"while"`` (stop when all rows are done) or ``"scan"`` (always
    ``max_steps`` steps; differentiable in reverse mode). Target -1 marks an untargeted row.

    ``shrink=F`` (an int >= 2, while loop): once at most n/F factuals are still running, the
    loop goes on with only those, gathered into a bucket of n/F rows (and again at n/F², down
    to :data:`MIN_SHRUNK_ROWS`), so rows that finished early stop costing compute inside one
    program. The same result as without; each level adds a copy of the step to compile.
    """
    if shrink is not None and (not isinstance(shrink, int) or shrink < 2):
        raise ValueError(f"shrink must be an int >= 2 (the factor by which the running rows shrink); got {shrink!r}")
    program = _program(
        generator,
        classifier,
        x,
        target,
        key=key,
        constraints=constraints,
        max_steps=max_steps,
        rows=rows,
        track=track,
        return_path=return_path,
    )
    return program.finish(program.advance(program.start(start), loop=loop, shrink=shrink))


_STATIC = ("max_steps", "track", "return_path", "loop", "checked")


def _search_entry(generator, classifier, x, target, rows, start, key, constraints, *, loop, **static):
    """:func:`search`; ``checked=False`` keeps non-finite steps, so those rows end NONFINITE for :func:`generate`
    to search again checked (testing every step costs a pass over z per step, ~4% of a small MLP's search)."""
    program = _program(generator, classifier, x, target, key=key, constraints=constraints, rows=rows, **static)
    return program.finish(program.advance(program.start(start), loop=loop))


_search_jit = jax.jit(_search_entry, static_argnames=_STATIC)


# Compaction runs one search as three kinds of program: the start, rounds of at most S steps
# on a bucket of the rows still running, and the finish on every row.
def _start_entry(generator, classifier, x, target, rows, start, key, constraints, **static):
    program = _program(generator, classifier, x, target, key=key, constraints=constraints, rows=rows, **static)
    return program.start(start)


def _round_entry(generator, classifier, x, target, rows, key, constraints, carry, until, **static):
    program = _program(generator, classifier, x, target, key=key, constraints=constraints, rows=rows, **static)
    return program.advance(carry, until)


def _finish_entry(generator, classifier, x, target, rows, key, constraints, carry, **static):
    program = _program(generator, classifier, x, target, key=key, constraints=constraints, rows=rows, **static)
    return program.finish(carry)


_PHASES = runtime.Phases(_start_entry, _round_entry, _finish_entry, ("max_steps", "track", "return_path"))
