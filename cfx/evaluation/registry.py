"""The metric registry: every metric is one :class:`Metric` object, registered once.

A metric is a name, a pure function, the level it is computed at, the context slots it
needs and a one-line description. Adding one is a single call in a single file::

    from cfx.evaluation import Metric, register

    register(Metric("l1_sq", lambda cf, x, target, ctx: jnp.sum(jnp.abs(cf - x)) ** 2,
                    description="squared L1 distance ||x' - x||_1^2"))

Levels and the signature of ``fn``:

- ``"counterfactual"``: ``fn(cf, x, target, ctx) -> scalar`` for one counterfactual cf (d,),
  its factual x (d,), its target (int scalar; -1 = untargeted) and the
  :class:`~cfx.evaluation.context.EvaluationContext` ``ctx``. Pure and traceable: it is
  vmapped, chunked with ``lax.map`` and jitted by :func:`cfx.evaluate`. Reported (n, K).
- ``"set"``: ``fn(cfs, x, target, ctx) -> scalar`` for the K counterfactuals (K, d) of one
  factual; traced like the above. Reported (n, K) (the set's value repeated); mean and sd are
  over the n sets.
- ``"result"``: ``fn(result, ctx)`` on the host, for what the search itself reports
  (convergence, steps, runtime). Returns an (n, K) array (reported per counterfactual), a
  scalar (reported in ``"mean"`` only) or None (not available: skipped).
- ``"population"``: a quantity of a whole population (a model on labelled data, a set of
  counterfactuals against data samples, a model's change in a recourse simulation); ``fn``
  computes it with the signature in its docstring. Not computed by :func:`cfx.evaluate`:
  counterfactual training (:mod:`cfx.evaluation.population`) and the recourse dynamics
  (:mod:`cfx.evaluation.shift`) report them under these names.

Families: metrics computed together (one model pass for validity and CARLA redundancy,
one kNN pass for implausibility and yNN) share a ``group``. All metrics of a group have the
same ``fn``, which returns a dict ``{name: scalar}``; :func:`cfx.evaluate` calls it once per
unit and keeps the requested names. :func:`register_family` registers such a group.

A metric whose ``needs`` are not met by the context (e.g. ``"data"`` without data, or
``"q_hat"`` while the context's q̂ slot is None) is skipped.

Headlines: the columns a summary table shows by default. One notion, answered here by
:func:`headline_metrics`: a metric heads the tables its ``headline`` names (``True`` is
``("evaluate",)``, :func:`~cfx.evaluation.summary_table`'s default); the experiment kinds' tables
(:data:`HEADLINE_TABLES`) list their built-in columns in the order they show them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping

from cfx.registry import Registry

LEVELS = ("counterfactual", "set", "result", "population")

#: The levels :func:`cfx.evaluate` computes (a ``"population"`` metric is computed by the code
#: that holds its population: CT's evaluation, the recourse simulation).
EVALUATED = ("counterfactual", "set", "result")

#: Context slots a metric may need (see ``EvaluationContext``); "data" means X, y, the
#: model's predictions on X and the MAD.
NEEDS = ("classifier", "data", "constraints", "conditional_samples", "q_hat")

#: Per-unit chunk cost: ``cost(ctx, unit_shape) -> (elements, model_rows)``, the largest
#: intermediate array one unit (a counterfactual (d,) or a set (K, d)) builds and how many
#: inputs it sends through the classifier. Used to size ``lax.map`` chunks.
Cost = Callable[[object, tuple], tuple[int, int]]


def default_cost(ctx, shape: tuple) -> tuple[int, int]:
    """A unit builds arrays the size of its input and runs the model once per counterfactual."""
    size = 1
    for s in shape:
        size *= int(s)
    return size, size // int(shape[-1])


@dataclasses.dataclass(frozen=True)
class Metric:
    """One evaluation metric.

    Attributes:
      name: the key it is reported under.
      fn: the pure function (signature by ``level``, see the module docstring); for a
        ``group`` member, the family function returning ``{name: value}`` for every member.
      level: ``"counterfactual"`` | ``"set"`` | ``"result"`` | ``"population"``.
      needs: context slots required (subset of :data:`NEEDS`); unmet -> skipped. A traced
        ``fn`` sees only the slots it needs (the others are None), so a model change does not
        recompile metrics that never call the model.
      description: one line, shown by :func:`list_metrics` and ``cfx list metrics``.
      group: family name shared by metrics computed in one call of ``fn``; None: alone.
      cost: chunk cost of one unit (see :data:`Cost`); None: :func:`default_cost`.
      headline: the tables it heads (see :func:`headline_metrics`): True is ``("evaluate",)``,
        shown by :func:`~cfx.evaluation.summary_table` by default; a tuple of table names
        (``"benchmark"``, ...) adds it to those kinds' summary tables; False: none.
    """

    name: str
    fn: Callable
    level: str = "counterfactual"
    needs: tuple[str, ...] = ()
    description: str = ""
    group: str | None = None
    cost: Cost | None = None
    headline: bool | tuple[str, ...] = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Metric name must be an identifier string, got {self.name!r}")
        if not callable(self.fn):
            raise TypeError(f"Metric {self.name!r}: fn must be callable, got {type(self.fn).__name__}")
        if self.level not in LEVELS:
            raise ValueError(f"Metric {self.name!r}: level must be one of {LEVELS}, got {self.level!r}")
        needs = (self.needs,) if isinstance(self.needs, str) else tuple(self.needs)
        unknown = [n for n in needs if n not in NEEDS]
        if unknown:
            raise ValueError(f"Metric {self.name!r}: unknown need {unknown[0]!r}; expected some of {NEEDS}")
        object.__setattr__(self, "needs", needs)
        object.__setattr__(self, "headline", _tables(self.name, self.headline))
        if not isinstance(self.description, str) or not self.description.strip() or "\n" in self.description:
            raise ValueError(f"Metric {self.name!r}: description must be one non-empty line")

    @property
    def key(self) -> str:
        """What identifies the computation: the group, else the metric's own name."""
        return self.group if self.group is not None else self.name


def _tables(name: str, headline) -> tuple[str, ...]:
    """``Metric.headline`` as a tuple of table names (True: the evaluate table; False: none)."""
    if isinstance(headline, bool):
        return ("evaluate",) if headline else ()
    tables = (headline,) if isinstance(headline, str) else tuple(headline)
    if not all(isinstance(t, str) and t for t in tables):
        raise TypeError(f"Metric {name!r}: headline must be a bool or table names (strings), got {headline!r}")
    return tables


#: name -> :class:`Metric` (a :class:`cfx.registry.Registry`, as for generators, models, data sets, kinds).
_REGISTRY: Registry[Metric] = Registry("metric", fold_case=False)

#: The experiment kinds' summary tables: their built-in headline columns, in the order shown
#: (a column absent from a run's results is dropped). Each is a registered metric or a
#: :data:`DERIVED` column. A metric whose ``headline`` names a table is appended to it.
HEADLINE_TABLES: dict[str, tuple[str, ...]] = {
    "benchmark": (
        "validity",
        "l1",
        "l2",
        "mad_l1",
        "redundancy",
        "implausibility",
        "ynn",
        "violations",
        "converged",
        "steps",
        "runtime_s",
    ),
    # the ECCCo paper's columns: unfaithfulness (plain mean and the reference's normalisation),
    # implausibility (L2; images also (1 − SSIM)/2), validity, cost (L1), set size; the last two
    # over the valid counterfactuals only (its main tables)
    "eccco": (
        "unfaithfulness",
        "unfaithfulness_ref",
        "implausibility",
        "implausibility_ssim",
        "validity",
        "l1",
        "set_size",
        "unfaithfulness_ref_valid",
        "implausibility_valid",
    ),
    "ct": ("accuracy", "validity", "ip", "ip_star", "cost", "sensitivity"),
    "dynamics": (
        "mmd_domain",
        "mmd_model",
        "mmd_model_grid",
        "disagreement",
        "decisiveness",
        "decisiveness_code",
        "f1_change",
        "accuracy_change",
        "param_change",
        "param_change_paper",
        "validity",
        "cost_l1",
        "redundancy",
    ),
}

#: Columns a kind computes from a registered metric (not registered themselves): name -> the metric.
DERIVED: dict[str, str] = {
    "unfaithfulness_ref": "unfaithfulness",  # the ECCCo reference's normalisation (sum over kept samples / chains)
    "unfaithfulness_ref_valid": "unfaithfulness",  # the same over the valid counterfactuals
    "implausibility_valid": "implausibility",  # over the valid counterfactuals
    "cost_l1": "l1",  # the recourse simulation's mean L1 move of a round
}


def headline_metrics(table: str = "evaluate") -> tuple[str, ...]:
    """The headline columns of ``table``, in order: its :data:`HEADLINE_TABLES` entry (none for
    ``"evaluate"``), then every registered metric whose ``headline`` names ``table`` (registry order).

    Example::

        >>> headline_metrics("ct")
        ('accuracy', 'validity', 'ip', 'ip_star', 'cost', 'sensitivity')
    """
    if not isinstance(table, str):
        raise TypeError(f"table must be a table name (str), got {type(table).__name__}")
    known = {"evaluate", *HEADLINE_TABLES, *(t for m in _REGISTRY.values() for t in m.headline)}
    if table not in known:
        raise ValueError(f"unknown headline table {table!r}; known: {', '.join(sorted(known))}")
    declared = HEADLINE_TABLES.get(table, ())
    return (*declared, *(m.name for m in _REGISTRY.values() if table in m.headline and m.name not in declared))


def _check(metric: Metric, replace: bool, family: Iterable[str] = ()) -> None:
    if not isinstance(metric, Metric):
        raise TypeError(f"register expects a cfx.evaluation.Metric, got {type(metric).__name__}")
    if metric.name in _REGISTRY and not replace:
        raise ValueError(f"a metric named {metric.name!r} is already registered (pass replace=True)")
    if metric.group is None:
        return
    skip = {metric.name, *family}
    for other in _REGISTRY.values():
        if other.group == metric.group and other.name not in skip:
            if (other.fn, other.level, other.needs, other.cost) != (metric.fn, metric.level, metric.needs, metric.cost):
                raise ValueError(
                    f"metric {metric.name!r} joins group {metric.group!r} but differs from its member "
                    f"{other.name!r} in fn, level, needs or cost"
                )
            return


def register(metric: Metric, *, replace: bool = False) -> Metric:
    """Add ``metric`` to the registry (``replace=True`` to overwrite a name, keeping its place in
    the reporting order); returns it.

    Members of one ``group`` must agree on ``fn``, ``level``, ``needs`` and ``cost``.
    """
    _check(metric, replace)
    _REGISTRY[metric.name] = metric
    return metric


def register_family(
    fn: Callable,
    descriptions: Mapping[str, str],
    *,
    group: str,
    level: str = "counterfactual",
    needs: Iterable[str] = (),
    cost: Cost | None = None,
    headline: Iterable[str] = (),
    replace: bool = False,
) -> tuple[Metric, ...]:
    """Register the metrics ``fn`` computes together: ``fn`` returns ``{name: value}``.

    Args:
      fn: the family function (signature by ``level``).
      descriptions: ``{name: one-line description}``, in reporting order.
      group: the family's name; headline: names shown by default in summary tables.
      level, needs, cost, replace: as in :class:`Metric` / :func:`register`.

    Example::

        def moments(cf, x, target, ctx):
            delta = cf - x
            return {"delta_mean": jnp.mean(delta), "delta_sd": jnp.std(delta)}

        register_family(moments, {"delta_mean": "mean of x' - x", "delta_sd": "sd of x' - x"},
                        group="moments")
    """
    headline, needs = set(headline), tuple(needs)
    metrics = tuple(
        Metric(name, fn, level, needs, desc, group, cost, name in headline) for name, desc in descriptions.items()
    )
    for m in metrics:
        _check(m, replace, family=descriptions)
    for m in metrics:
        _REGISTRY[m.name] = m
    return metrics


def unregister(name: str) -> Metric:
    """Remove a metric by name and return it (KeyError if absent)."""
    if name not in _REGISTRY:
        raise KeyError(f"no metric named {name!r}")
    return _REGISTRY.pop(name)


def get_metric(name: str) -> Metric:
    """The registered :class:`Metric` called ``name``."""
    if name not in _REGISTRY:
        raise KeyError(f"no metric named {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def registered() -> tuple[Metric, ...]:
    """Every registered metric, in registration (= reporting) order."""
    return tuple(_REGISTRY.values())


def list_metrics(levels: Iterable[str] | None = None) -> dict[str, str]:
    """Every registered metric name (or those of ``levels``, e.g. :data:`EVALUATED`: what
    :func:`cfx.evaluate` can report) with its one-line description."""
    return {name: m.description for name, m in _REGISTRY.items() if levels is None or m.level in levels}


def select(names: Iterable[str] | None) -> tuple[Metric, ...]:
    """The metrics :func:`cfx.evaluate` computes, in registry order: all of them, or those named
    (unknown names, and population metrics, raise naming the known ones)."""
    known = [m.name for m in _REGISTRY.values() if m.level in EVALUATED]
    if names is None:
        return tuple(m for m in _REGISTRY.values() if m.level in EVALUATED)
    if isinstance(names, str):
        names = (names,)
    names = list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        if unknown[0] in _REGISTRY:
            raise ValueError(
                f"{unknown[0]!r} is a population metric, reported by the code that holds its population "
                f"(not computed by cfx.evaluate); cfx.evaluate knows: {', '.join(known)}"
            )
        raise ValueError(f"unknown metric {unknown[0]!r}; known: {', '.join(known)}")
    wanted = set(names)
    return tuple(m for m in _REGISTRY.values() if m.name in wanted)
