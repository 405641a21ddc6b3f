"""Counterfactual training vs conventional training (``kind: ct``, SPEC §5).

For every data set, run r, training variant (``baseline`` = plain cross-entropy, ``ct``, and
optionally the ablations ``contrastive`` / ``adversarial``) and mutability mode (``all``:
every feature mutable; ``protected``: the data set's protected feature immutable, in the CT
search, the CT loss and the evaluation search) one record: the model is trained (seeded)
with :func:`cfx.training.fit_ct` and scored with :func:`cfx.training.evaluation.evaluate_model`
(IP, IP*, cost, validity, IG sensitivity, accuracy, FGSM/PGD robust accuracy). The baseline
does not depend on the mode: it is trained once per (data set, run) and scored under each.

Config (``configs/ct.yaml``)::

    kind: ct
    data:
      - {name: moons, n: 1000, threshold: 0.9}          # τ of the CT search
      - {name: gmsc, n: 5000, balance: true, protected: age}
    model: {widths: [32, 32], epochs: 100, batch_size: 64, learning_rate: 0.001}
    ct: {n_ce: 1000, max_steps: 30, generator: {name: ecco, cost: 0.001}}   # CTConfig's fields; its search
    variants: [baseline, ct]
    modes: [all, protected]
    evaluation: {n_factuals: 500, max_steps: 50, eps: [0, 0.025, 0.05, 0.075, 0.1]}

``protected`` is a feature name or index (default: ``age`` when the data has it, else
feature 0). Records: ``cells/<data>/<variant>/<mode>/run<r>`` with the flax parameters as
the blob. Report: ``results.csv`` (long), ``reduction.md`` / ``reduction.csv`` (% reduction
of IP and IP* vs the baseline with bootstrap 95% intervals, accuracies), ``summary.md``,
``figures/<data>_robust.png`` and ``figures/<data>_2d.png`` (2-D sets: baseline vs CT x all
mutable vs protected).
"""

from __future__ import annotations

import math
import time
from typing import Mapping

import numpy as np
import pandas as pd

from cfx.evaluation.registry import headline_metrics
from cfx.experiments import runs, tables
from cfx.experiments.kinds import Kind, Report
from cfx.experiments.kinds.ct import reference as ct_reference
from cfx.experiments.kinds.ct import settings as ct_settings
from cfx.experiments.kinds.ct._schema import (  # noqa: F401  (re-exported: the kind's config types)
    MODES,
    SINGLE_KEYS,
    VARIANTS,
    CTDataConfig,
    CTExperiment,
    CTModelConfig,
    EvalConfig,
)
from cfx.experiments.kinds.ct.settings import CTGeneratorSpec, CTSettings  # noqa: F401  (the ct section's types)
from cfx.experiments.progress import Progress
from cfx.experiments.store import Store

HEADLINE = headline_metrics("ct")  # summary.md's columns: the metric registry's "ct" headline table


def _seed(cfg, run: int, *labels) -> int:
    """A seed of its own per (config seed, run, labels)."""
    return runs.derive_seed(cfg.seed, run, *labels)


def _cell(data: str, variant: str, mode: str, run: int) -> tuple[str, ...]:
    return runs.cell_path(data, variant, mode, run=run)


def expected(cfg: CTExperiment) -> list[tuple[str, ...]]:
    """The record paths of a complete run: one per (data set, run, variant, mode)."""
    return [_cell(dc.key, v, m, r) for dc in cfg.data for r in range(cfg.runs) for v in cfg.variants for m in cfg.modes]


def _feats(protected) -> tuple[int, ...]:
    """A mode's protected feature(s) as a tuple of indices."""
    return tuple(protected) if isinstance(protected, tuple) else (protected,)


def _protected_index(dc: CTDataConfig, train) -> int | tuple[int, ...]:
    """The index of ``dc.protected`` (a name or an index; a list gives a tuple of indices, e.g. the
    reference's MNIST pixel rows)."""
    names = [n.lower() for n in train.schema.names]
    p = dc.protected
    if isinstance(p, (list, tuple)):
        return tuple(_protected_index(dc.replace(protected=q), train) for q in p)
    if p is None:
        return names.index("age") if "age" in names else 0
    if isinstance(p, int):
        if not 0 <= p < len(names):
            raise ValueError(f"data {dc.key}: protected index {p} out of range [0, {len(names)})")
        return p
    if p.lower() not in names:
        raise ValueError(f"data {dc.key}: protected feature {p!r} not found; features: {', '.join(train.schema.names)}")
    return names.index(p.lower())


def _load_split(dc: CTDataConfig, seed: int):
    """(train, test): the reference's replayed points with ``realisation: ct-2026``, else cfx's loader."""
    if dc.realisation == "ct-2026":
        from cfx.data.julia_ct2026 import ct2026_split

        return ct2026_split(dc.name.lower(), seed)
    return runs.load_split(dc, seed)


def check(cfg: CTExperiment) -> dict:
    """Load every split and resolve the protected features (bad input fails here)."""
    from cfx.experiments.config import ConfigError

    splits = {}
    for i, dc in enumerate(cfg.data):
        for r in range(cfg.runs):
            try:
                train, test = _load_split(dc, _seed(cfg, r, "data", dc.key))
            except ValueError as e:
                if dc.realisation is None:
                    raise
                raise ConfigError(str(e), file=cfg.source, path=f"data[{i}].realisation") from None
            try:
                splits[(dc.key, r)] = (train, test, _protected_index(dc, train))
                for j, m in enumerate(cfg.modes):  # protected-<feature>: that feature immutable
                    if m.startswith("protected-"):
                        f = m[len("protected-") :]
                        splits[(dc.key, r, m)] = _protected_index(
                            dc.replace(protected=int(f) if f.isdigit() else f), train
                        )
            except ValueError as e:
                raise ConfigError(str(e), file=cfg.source, path=f"data[{i}].protected") from None
    return splits


def _ct_config(cfg: CTExperiment, dc: CTDataConfig, variant: str, mode: str, protected):
    from cfx.training import CTConfig

    s = cfg.ct.ct_fields()
    gen = s.pop("generator")  # τ is the search generator's
    for k in ("threshold", "domain_sd", "domain", "n_ce", "lambda_reg", "lambda_adv"):
        if getattr(dc, k) is not None:
            (gen if k == "threshold" else s)[k] = getattr(dc, k)
    if mode == "single":  # all mutable, with the data set's own settings for this mode
        for k in ("threshold", "lambda_reg", "lambda_adv"):
            if k in dc.single:
                (gen if k == "threshold" else s)[k] = dc.single[k]
    free = mode in ("all", "single")  # without schema constraints only the protected feature is immutable
    return CTConfig(
        variant=variant,
        protected=() if free else _feats(protected),
        schema_mutability=not free and s["schema_constraints"],
        generator=ct_settings.search_generator(gen, s["max_steps"]),
        **s,
    )


def fit_cell(cfg: CTExperiment, dc: CTDataConfig, train, ct, run: int, progress: bool = False):
    """Run ``run``'s model of data set ``dc`` trained on ``train`` under the CT settings ``ct`` (the
    baseline, CT or an ablation) with the config's model settings: the model ``cfx run`` trains."""
    from cfx.training import fit_ct

    return fit_ct(
        train,
        "mlp",
        ct=ct,
        seed=_seed(cfg, run, "model", dc.key),
        widths=cfg.model.widths,
        activation=cfg.model.activation,
        epochs=cfg.model.epochs,
        batch_size=dc.batch_size or cfg.model.batch_size,
        learning_rate=cfg.model.learning_rate,
        progress=progress,
    )


def _grid(clf, train) -> dict:
    from cfx import plotting

    mesh = plotting.mesh_2d(train.X, 60)
    probs = np.asarray(clf.probs(mesh["points"])).reshape(60, 60, -1)
    idx = np.random.default_rng(0).permutation(len(train))[:500]
    return {"grid_xx": mesh["xx"], "grid_yy": mesh["yy"], "grid_probs": probs, "X": train.X[idx], "y": train.y[idx]}


def _eval_generator(ev: EvalConfig, ct):
    """The evaluation search: CT's ECCo with the evaluation step size, or Generic; τ of the CT search."""
    import cfx.generators

    if ev.generator == "generic":
        return cfx.generators.Generic(threshold=ct.generator.threshold, learning_rate=ev.learning_rate)
    return ct.generator.replace(learning_rate=ev.learning_rate)


def run(cfg: CTExperiment, store: Store, splits: dict, progress: Progress) -> None:
    """Train and score every (data set, run, variant, mode) not yet saved (see the module docstring)."""
    import flax.serialization
    import jax

    from cfx.training import search_constraints
    from cfx.training.evaluation import evaluate_model

    ev = cfg.evaluation
    for dc in cfg.data:
        for r in range(cfg.runs):
            train, test, protected = splits[(dc.key, r)]
            fitted: dict = {}
            for variant in cfg.variants:
                for mode in cfg.modes:
                    path = _cell(dc.key, variant, mode, r)
                    if store.done(path):
                        continue
                    label = "/".join(path[1:])
                    progress.status(f"{label}: training")
                    protected = splits.get((dc.key, r, mode), splits[(dc.key, r)][2])  # this mode's feature
                    ct = _ct_config(cfg, dc, variant, mode, protected)
                    fit_key = (variant, mode if variant != "baseline" else "-")
                    start = time.perf_counter()
                    if fit_key not in fitted:
                        fitted[fit_key] = fit_cell(cfg, dc, train, ct, r, progress=progress.tty)
                    out = fitted[fit_key]
                    train_s = time.perf_counter() - start
                    # the evaluation search: the CT generator under this mode's constraints
                    eval_ct = _ct_config(cfg, dc, "ct", mode, protected)
                    start = time.perf_counter()
                    if ev.protocol == "pool":
                        scalars, arrays = ct_reference.evaluate_cell(
                            cfg, dc, mode, variant, r, out.classifier, train, test, search_constraints(train, eval_ct)
                        )
                    else:
                        scalars, arrays = evaluate_model(
                            out.classifier,
                            train,
                            test,
                            generator=_eval_generator(ev, eval_ct),
                            constraints=search_constraints(train, eval_ct),
                            protected=_feats(protected),
                            key=jax.random.key(_seed(cfg, r, "evaluate", dc.key, mode)),
                            n_factuals=ev.n_factuals,
                            max_steps=ev.max_steps,
                            ip_samples=ev.ip_samples,
                            ip_star_size=ev.ip_star_size,
                            length_scale=ev.length_scale,
                            eps=ev.eps,
                            pgd_steps=ev.pgd_steps,
                            n_boot=ev.n_boot,
                            seed=_seed(cfg, r, "factuals", dc.key),
                        )
                    eval_s = time.perf_counter() - start
                    if train.n_features == 2:
                        arrays.update(_grid(out.classifier, train))
                    arrays.update({f"history_{k}": v for k, v in out.history.items()})
                    ip = arrays.get("ip", arrays.get("round_ip"))
                    metrics = {k: {"mean": v, "sd": math.nan, "n": 1} for k, v in scalars.items()}
                    metrics["ip"] = {
                        "mean": scalars["ip"],
                        "sd": float(np.nanstd(ip, ddof=1)) if np.isfinite(ip).sum() > 1 else math.nan,
                        "n": int(np.isfinite(ip).sum()),
                    }
                    record = {
                        "dataset": dc.key,
                        "variant": variant,
                        "mode": mode,
                        "run": r,
                        "protected": "+".join(train.schema.names[i] for i in _feats(protected)),
                        "protected_index": protected if isinstance(protected, int) else list(protected),
                        "metrics": metrics,
                        "ct": {
                            **ct.__dict__,
                            "protected": list(ct.protected),
                            "generator": ct_settings.record(ct.generator),
                        },
                        "info": out.info,
                        "timings": {"train_s": train_s, "eval_s": eval_s, "epochs": cfg.model.epochs},
                    }
                    store.save(path, record, arrays, blob=flax.serialization.to_bytes(out.classifier.params))
                    progress.step(label, train_s + eval_s)


KEYS = ("dataset", "variant", "mode")


def reductions(cfg: CTExperiment, store: Store) -> pd.DataFrame:
    """% reduction of IP and IP* of every variant vs the baseline (same data set, mode),
    pooled over runs, with bootstrap 95% intervals; accuracies of both."""
    from cfx.training.evaluation import reduction_ci, reduction_from_replicates

    rows = []
    for dc in cfg.data:
        for mode in cfg.modes:

            def load(v):
                return [
                    (store.load(_cell(dc.key, v, mode, r)), store.load_arrays(_cell(dc.key, v, mode, r)))
                    for r in range(cfg.runs)
                ]

            base = load("baseline")
            for variant, treated in [(v, load(v)) for v in cfg.variants if v != "baseline"]:
                ip = reduction_ci(
                    np.concatenate([a["ip"] for _, a in base]),
                    np.concatenate([a["ip"] for _, a in treated]),
                    seed=cfg.seed,
                )
                mean = lambda recs, m: float(np.mean([rec["metrics"][m]["mean"] for rec, _ in recs]))
                boot = lambda recs: np.mean([a["ip_star_boot"] for _, a in recs], axis=0)
                if cfg.evaluation.n_boot > 0:
                    star = reduction_from_replicates(
                        mean(base, "ip_star"), boot(base), mean(treated, "ip_star"), boot(treated)
                    )
                else:
                    star = (100 * (1 - mean(treated, "ip_star") / mean(base, "ip_star")), math.nan, math.nan)
                rows.append(
                    {
                        "dataset": dc.key,
                        "mode": mode,
                        "variant": variant,
                        "ip_reduction": ip[0],
                        "ip_low": ip[1],
                        "ip_high": ip[2],
                        "ip_star_reduction": star[0],
                        "ip_star_low": star[1],
                        "ip_star_high": star[2],
                        "accuracy_baseline": mean(base, "accuracy"),
                        "accuracy": mean(treated, "accuracy"),
                        "validity_baseline": mean(base, "validity"),
                        "validity": mean(treated, "validity"),
                        "sensitivity_baseline": mean(base, "sensitivity"),
                        "sensitivity": mean(treated, "sensitivity"),
                    }
                )
    return pd.DataFrame(rows)


def report(cfg: CTExperiment, store: Store) -> Report:
    """``results.csv``, ``reduction.md`` / ``.csv``, ``summary.md`` and the figures from the saved records."""
    records = [store.load(p) for p in expected(cfg)]
    table = tables.long_table(records, [*KEYS, "run"])
    summary = tables.summarise(table, KEYS)
    if cfg.evaluation.protocol == "pool":  # the paper's table (kinds.ct.reference)
        red = ct_reference.pool_reductions(cfg, store, _cell)
        text = ct_reference.paper_markdown(red, cfg.name)
    else:
        red = reductions(cfg, store)
        text = ct_reference.reduction_markdown(red, cfg.name)
    store.write_table("results.csv", table)
    store.write_table("summary.csv", summary)
    store.write_text("summary.md", tables.markdown(summary, KEYS, headline_metrics("ct"), title=cfg.name))
    store.write_table("reduction.csv", red)
    store.write_text("reduction.md", text)
    pool = cfg.evaluation.protocol == "pool"
    figures = (ct_reference.figures(cfg, store, _cell) if pool else _figures(cfg, store)) if cfg.figures else []
    return Report(
        summary=text,
        out_dir=store.root,
        figures=figures,
        tables={"results": table, "summary": summary, "reduction": red},
    )


def _figures(cfg: CTExperiment, store: Store) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cfx import plotting

    out = []
    for dc in cfg.data:
        fig, axes = plt.subplots(1, len(cfg.modes), figsize=(5 * len(cfg.modes), 3.6), squeeze=False)
        for ax, mode in zip(axes[0], cfg.modes):
            for variant in cfg.variants:
                a = store.load_arrays(_cell(dc.key, variant, mode, 0))
                ax.plot(a["robust_eps"], a["robust_pgd"], marker="o", label=f"{variant} PGD")
                ax.plot(a["robust_eps"], a["robust_fgsm"], ls="--", label=f"{variant} FGSM")
            ax.set(title=f"{dc.key} ({mode})", xlabel="ε (L∞)", ylabel="accuracy")
            ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(store.write_figure(f"{dc.key}_robust", plotting.figure_png(fig)))
        first = store.load_arrays(_cell(dc.key, "baseline", cfg.modes[0], 0))
        if "grid_probs" not in first:
            continue
        shown = [v for v in ("baseline", "ct") if v in cfg.variants]
        fig, axes = plt.subplots(
            len(shown), len(cfg.modes), figsize=(4.6 * len(cfg.modes), 4 * len(shown)), squeeze=False
        )
        for i, variant in enumerate(shown):
            for j, mode in enumerate(cfg.modes):
                a = store.load_arrays(_cell(dc.key, variant, mode, 0))
                grid = {"xx": a["grid_xx"], "yy": a["grid_yy"], "probs": a["grid_probs"]}
                keep = a["target"] == 1
                plotting.draw_2d(
                    axes[i, j],
                    grid,
                    a["X"],
                    a["y"],
                    a["counterfactuals"][keep][:40],
                    factuals=a["factuals"][keep][:40],
                    colorbar=False,
                )
                protected = store.load(_cell(dc.key, variant, mode, 0))["protected"]
                title = "all mutable" if mode in ("all", "single") else f"{protected} immutable"
                axes[i, j].set_title(f"{'conventional' if variant == 'baseline' else 'CT'}, {title}")
        fig.tight_layout()
        out.append(store.write_figure(f"{dc.key}_2d", plotting.figure_png(fig)))
    return out


def show(store: Store, raw: Mapping, metrics=None) -> str:
    """The table of a finished folder (``cfx show``): its ``reduction.md``."""
    path = store.root / "reduction.md"
    if not path.exists():
        raise LookupError(f"unfinished run, {len(store.records(('cells',)))} records done")
    return path.read_text()


PRESETS = ct_reference.PRESETS
KIND = Kind.of(
    __name__,
    CTExperiment,
    unit="model",
    description="counterfactual training vs conventional training: IP, IP*, accuracy, robustness",
)
