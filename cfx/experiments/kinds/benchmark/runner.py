"""The benchmark's run: seeds, data, factuals, models (trained or restored), generators,
``check``, ``run`` and ``expected``. The rules for factuals and seeds are in the package
docstring (:mod:`cfx.experiments.kinds.benchmark`).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Mapping

import numpy as np

from cfx.experiments import runs
from cfx.experiments.config import ConfigError
from cfx.experiments.kinds.benchmark.schema import BenchmarkConfig, DataConfig, GeneratorConfig, ModelConfig
from cfx.experiments.progress import Progress
from cfx.experiments.runs import derive_seed
from cfx.experiments.store import Store, run_name

__all__ = ["check", "run", "expected", "select_factuals", "derive_seed", "GRID_RESOLUTION", "MAX_PLOT_POINTS"]

GRID_RESOLUTION = 100  # 2-D figure: p(target | x) on a 100 x 100 grid
MAX_PLOT_POINTS = 1000


# --------------------------------------------------------------------------------------
# Pieces of the run
# --------------------------------------------------------------------------------------


def _load_split(dc: DataConfig, cfg: BenchmarkConfig, run: int):
    return runs.load_split(dc, derive_seed(cfg.seed, run, "data", dc.key))


def select_factuals(classifier, test, n: int, seed: int, train=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factuals and targets (see the package docstring for the rule).

    Returns ``(x (m, d), target (m,), index (m,))`` with m <= n; ``index`` counts rows of
    ``test`` first, then rows of ``train`` (offset by ``len(test)``).
    """
    rng = np.random.default_rng(seed)
    pools = [test] + ([train] if train is not None else [])
    X = np.concatenate([p.X for p in pools])
    candidates, targets = runs.factual_targets(np.asarray(classifier.predict(X)), int(classifier.n_classes), rng)
    in_test = candidates[candidates < len(test)]
    in_train = candidates[candidates >= len(test)]
    chosen = rng.permutation(in_test)[:n]
    if len(chosen) < n and len(in_train):
        chosen = np.concatenate([chosen, rng.permutation(in_train)[: n - len(chosen)]])
        warnings.warn(
            f"{test.name}: only {len(in_test)} test points qualify as factuals; "
            f"{len(chosen) - len(in_test)} training points fill up to {len(chosen)}",
            stacklevel=2,
        )
    if len(chosen) < n:
        warnings.warn(f"{test.name}: only {len(chosen)} points qualify as factuals (asked for {n})", stacklevel=2)
    if len(chosen) == 0:
        raise ValueError(f"{test.name}: the model predicts no point as a non-target class, so there are no factuals")
    return X[chosen].astype(np.float32), targets[chosen], chosen.astype(np.int64)


def _make_generator(gc: GeneratorConfig, classifier, train, key, path: str, cfg: BenchmarkConfig):
    """``make(name, **hyperparams).fit(classifier, train, key=key)``; bad input -> ConfigError."""
    import cfx.generators

    try:
        return cfx.generators.make(gc.name, **dict(gc.hyperparams)).fit(classifier, train, key=key)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot build generator {gc.name!r}: {e}", file=cfg.source, path=path) from None


def needs_calibration(gc: GeneratorConfig) -> bool:
    """Whether a generator needs a calibrated classifier (it says so: ``"calibration"`` in its
    :meth:`~cfx.generators.Generator.needs`, e.g. ECCCo's set-size term needs q̂)."""
    import cfx.generators

    try:
        gen = cfx.generators.make(gc.name, **dict(gc.hyperparams))
    except (TypeError, ValueError):
        return False  # reported by _make_generator
    return "calibration" in gen.needs()


#: Placeholders for what only the trained model provides (need -> the generator field it fills
#: and a stand-in of shape (classes, features)), so ``prepare`` checks every other hyperparameter
#: before training.
_STAND_INS = {
    "calibration": ("q_hat", lambda n_classes, n_features: np.float32(0.5)),
    "conditional_samples": ("samples", lambda n_classes, n_features: np.zeros((n_classes, 1, n_features), np.float32)),
}


def _stand_ins(gen, train):
    """``gen`` with a stand-in for each of its :meth:`~cfx.generators.Generator.needs`."""
    fill = {
        field: make(max(train.n_classes, 2), train.n_features)
        for need, (field, make) in _STAND_INS.items()
        if need in gen.needs()
    }
    return gen.replace(**fill) if fill else gen


def _calibration_split(train, cfg: BenchmarkConfig, dc: DataConfig, run: int):
    """(fit part, calibration part) of the training split (seeded per data set and run)."""
    return train.split(test_size=cfg.calibration.share, seed=derive_seed(cfg.seed, run, "calibration", dc.key))


def _generator_key(cfg: BenchmarkConfig, run: int, *labels: str):
    # Generators are fitted with the fixed key the old ``from_data(train)`` used, so Gravitational's
    # sample bank -- and the benchmark table -- stay as before; per-run keys
    # (``runs.key(cfg.seed, run, "generator", *labels)``) would change them. This is the one place to change.
    import jax

    return jax.random.key(0)


def _restore(train, mc: ModelConfig, blob: bytes, info: Mapping):
    """The saved model as a Classifier: the untrained model of the same config
    (``cfx.models.init``: the architecture, no training) with the saved parameters; None
    when they do not fit (another architecture was saved), so the caller retrains."""
    import flax.serialization
    import jax
    import jax.numpy as jnp

    import cfx.models

    try:
        clf = cfx.models.init(train, mc.name, **mc.fit_kwargs())
        if info.get("apply") != repr(clf.apply_fn):
            return None
        params = flax.serialization.from_bytes(clf.params, blob)
        return clf.replace(jax.tree_util.tree_map(jnp.asarray, params))
    except (ValueError, KeyError, TypeError):
        return None


def _evaluate_cell(res, clf, context, metrics) -> tuple[dict, dict]:
    """``({metric: {mean, sd, n}}, {"metric_<name>": per-counterfactual values})`` of one cell."""
    import cfx.evaluation

    kw = {} if metrics is None else {"metrics": list(metrics)}
    ev = cfx.evaluation.evaluate(res, clf, context=context, **kw)
    names = list(metrics) if metrics is not None else list(ev["mean"])
    record, per = {}, {}
    for name in names:
        values = ev["per_counterfactual"].get(name)
        n = int(np.isfinite(values).sum()) if values is not None else 1
        sd = ev["sd"].get(name, math.nan)
        record[name] = {"mean": float(ev["mean"][name]), "sd": float(sd), "n": n}
        if values is not None:
            per[f"metric_{name}"] = values
    return record, per


def _cell(dc: str, mc: str, gc: str, run: int) -> tuple[str, ...]:
    return runs.cell_path(dc, mc, gc, run=run)


_model_path = runs.model_path


def expected(cfg: BenchmarkConfig) -> list[tuple[str, ...]]:
    """The cell records of a complete run, in run order."""
    return [
        _cell(d.key, m.key, g.key, r)
        for d in cfg.data
        for r in range(cfg.runs)
        for m in cfg.models
        for g in cfg.generators
    ]


# --------------------------------------------------------------------------------------
# check / run
# --------------------------------------------------------------------------------------


def check(cfg: BenchmarkConfig) -> dict:
    """Load every split and build every generator on run 0's data: bad data files and bad
    hyperparameters fail here, before any training or writing. Returns the splits."""
    splits = {(dc.key, r): _load_split(dc, cfg, r) for dc in cfg.data for r in range(cfg.runs)}
    if any(needs_calibration(gc) for gc in cfg.generators):
        from cfx.models.conformal import min_calibration_size

        for (key, r), (train, _) in splits.items():
            dc = next(d for d in cfg.data if d.key == key)
            n_cal = len(_calibration_split(train, cfg, dc, r)[1])
            if n_cal < min_calibration_size(cfg.calibration.alpha):
                need = min_calibration_size(cfg.calibration.alpha)
                raise ConfigError(
                    f"{key}: the calibration part holds {n_cal} rows; calibration.alpha="
                    f"{cfg.calibration.alpha} needs at least {need} (raise calibration.share or the "
                    "data set's n)",
                    file=cfg.source,
                    path="calibration",
                )
    for dc in cfg.data:
        train0 = splits[(dc.key, 0)][0]
        for i, gc in enumerate(cfg.generators):
            path = f"generators[{i}]"
            gen = _make_generator(gc, None, train0, _generator_key(cfg, 0, dc.key, "-", gc.key), path, cfg)
            gen = _stand_ins(gen, train0)
            try:
                gen.validate(int(gen.num_counterfactuals), train0.n_features, max(train0.n_classes, 2))
            except ValueError as e:
                hint = f" (set {path}.num_counterfactuals)" if "num_counterfactuals" in str(e) else ""
                raise ConfigError(f"{e}{hint}", file=cfg.source, path=path) from None
    return splits


def _model(cfg, store: Store, dc: DataConfig, mc: ModelConfig, r: int, train, test, progress: Progress):
    """``(classifier, info)`` of (data, model, run): restored from the store when saved (no
    training), else trained and saved with its accuracy and the 2-D probability grid."""

    def fit():
        import cfx.models
        from cfx.evaluation.population import accuracy

        start, seed = time.perf_counter(), derive_seed(cfg.seed, r, "model", dc.key, mc.key)
        clf = cfx.models.fit(train, mc.name, seed=seed, progress=progress.tty, **mc.fit_kwargs())
        info = {
            "train_s": time.perf_counter() - start,
            "test_accuracy": accuracy(clf, test.X, test.y),
            "n_train": len(train),
            "n_test": len(test),
            "n_classes": int(clf.n_classes),
            "apply": repr(clf.apply_fn),
        }
        return clf, info, _probability_grid(clf, train) if train.n_features == 2 else None

    clf, info, _ = runs.train_or_restore(
        store,
        _model_path(dc.key, mc.key, r),
        progress=progress,
        label=f"{dc.key}/{mc.key}/{run_name(r)}",
        train=fit,
        restore=lambda blob, info: _restore(train, mc, blob, info),
    )
    return clf, info


def _probability_grid(clf, train, resolution: int = GRID_RESOLUTION) -> dict:
    """p(class | x) on a grid spanning the training data, plus a subsample of it, for the 2-D figure."""
    from cfx import plotting

    mesh = plotting.mesh_2d(train.X, resolution)
    probs = np.asarray(clf.probs(mesh["points"])).reshape(resolution, resolution, -1)
    idx = np.random.default_rng(0).permutation(len(train))[:MAX_PLOT_POINTS]
    return {"xx": mesh["xx"], "yy": mesh["yy"], "probs": probs, "X": train.X[idx], "y": train.y[idx]}


def _generator_settings(gen) -> dict:
    """The search defaults a fitted generator carries (for the cell record)."""
    out = {}
    for k in ("threshold", "num_counterfactuals", "convergence", "start", "min_steps"):
        v = getattr(gen, k, None)
        if v is not None:
            out[k] = v if isinstance(v, str) else np.asarray(v).item()
    return out


def _rules(gen, clf, train, x, target, res, constraints) -> list[dict] | None:
    """A rule-based generator's global rules (T-CREx), per target class of the cell, in raw units,
    with how the cell's factuals fared (their counterfactuals from ``res``)."""
    if getattr(gen, "rule_lower", None) is None:
        return None
    from cfx.global_rules import rules_frame

    out = []
    cf = np.asarray(res.counterfactuals[:, 0])
    for t in np.unique(target):
        frame = rules_frame(
            gen,
            train,
            int(t),
            classifier=clf,
            factuals=x[target == t],
            counterfactuals=cf[target == t],
            constraints=constraints,
        )
        keep = [c for c in frame.columns if not c.startswith(("lower:", "upper:"))]
        out += [{"target": int(t), **row} for row in frame[keep].to_dict("records")]
    return out


def run(cfg: BenchmarkConfig, store: Store, splits: dict, progress: Progress) -> None:
    """Every cell not yet in ``store``: train (or restore) each model once, then search and score.

    When a generator needs a calibrated classifier, each model is trained on the fit part of
    the training split and calibrated on the rest (``cfg.calibration``); every generator of
    that (data set, model) then searches and is scored with the calibrated model.
    """
    calibrate = any(needs_calibration(gc) for gc in cfg.generators)
    for dc in cfg.data:
        for r in range(cfg.runs):
            train, test = splits[(dc.key, r)]
            constraints = train.schema.constraints()
            fit_part, cal_part = _calibration_split(train, cfg, dc, r) if calibrate else (train, None)
            for mc in cfg.models:
                todo = [(i, g) for i, g in enumerate(cfg.generators) if not store.done(_cell(dc.key, mc.key, g.key, r))]
                if not todo:
                    continue
                clf, info = _model(cfg, store, dc, mc, r, fit_part, test, progress)
                import cfx.evaluation
                import cfx.models
                import cfx.search

                if calibrate:
                    clf = cfx.models.calibrate(clf, cal_part, alpha=cfg.calibration.alpha)

                scoring = cfx.evaluation.context(clf, train, constraints=constraints)  # once per (model, data)
                x, target, index = select_factuals(
                    clf, test, cfg.n_factuals, derive_seed(cfg.seed, r, "factuals", dc.key, mc.key), train
                )
                for i, gc in todo:
                    label = f"{dc.key}/{mc.key}/{gc.key}/{run_name(r)}"
                    progress.status(label, log=False)
                    start = time.perf_counter()
                    gen = _make_generator(
                        gc, clf, train, _generator_key(cfg, r, dc.key, mc.key, gc.key), f"generators[{i}]", cfg
                    )
                    search = cfg.search.model_dump()
                    res = cfx.search.generate(
                        gen,
                        clf,
                        x,
                        target,
                        key=runs.key(cfg.seed, r, "generate", dc.key, mc.key, gc.key),
                        constraints=constraints,
                        return_path=bool(cfg.figures and x.shape[1] == 2),
                        **search,
                    )
                    metrics, per = _evaluate_cell(res, clf, scoring, cfg.metrics)
                    std = train.standardizer
                    arrays = runs.cell_arrays(
                        res,
                        outcome=res.outcome,
                        path=res.path,
                        factual_index=index,
                        std_mean=None if std is None else std.mean,
                        std_scale=None if std is None else std.scale,
                        **per,
                    )
                    runtime_s = float(res.runtime_s)
                    record = runs.cell_record(
                        dc,
                        mc,
                        gc,
                        r,
                        hyperparams=dict(gc.hyperparams),
                        settings=_generator_settings(gen),
                        search=search,
                        n_factuals=int(len(x)),
                        metrics=metrics,
                        timings={
                            "runtime_s": runtime_s,
                            "compile_s": float(res.compile_s),
                            "train_s": float(info.get("train_s", math.nan)),
                        },
                    )
                    rules = _rules(gen, clf, train, x, target, res, constraints)
                    if rules:
                        record["rules"] = rules
                    store.save(_cell(dc.key, mc.key, gc.key, r), record, arrays)
                    progress.step(label, time.perf_counter() - start)
