"""The eccco run: per (data set, run) load and split; per model train (or restore), calibrate,
draw the conditional samples once; per generator fit, one batched search, evaluate; save.

Splits: data -> train / test (``test_size``, stratified; real tabular sets standardised on
train); train -> fit / calibration (``calibration.share`` for calibration, the reference's
50% / 50%). The model is trained on the fit part and calibrated on the calibration part
(:func:`cfx.models.calibrate`); generators are fitted on the fit part; implausibility is
measured against the whole training split.

Factuals: ``n_factuals`` test points (training points fill up when too few qualify); binary
data: points predicted 0, target 1; multiclass: target t = (ŷ + 1 + u) mod C, u ~ U{0..C−2}.
On 10-class image data the first factual is the first test 9 (the same image for every model),
with target 7 (the paper's "turn a 9 into a 7" figure).

Seeds derive from ``(config.seed, run, labels)`` (``numpy.random.SeedSequence``), so a cell's
numbers depend only on its own identity.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time

import numpy as np

from cfx.experiments import runs
from cfx.experiments.config import ConfigError
from cfx.experiments.kinds.eccco._factuals import FIGURE_DIGITS, select_factuals
from cfx.experiments.kinds.eccco.schema import DataSpec, EcccoConfig, GeneratorSpec, ModelSpec
from cfx.experiments.progress import Progress
from cfx.experiments.runs import derive_seed, key as _key, model_path
from cfx.experiments.store import Store, run_name

__all__ = [
    "check",
    "run",
    "expected",
    "available",
    "derive_seed",
    "select_factuals",
    "cell_path",
    "model_path",
    "model_run",
    "FIGURE_DIGITS",
]


def cell_path(d: str, m: str, g: str, run: int) -> tuple[str, ...]:
    """The record of one cell: ``cells/<data>/<model>/<generator>/run<r>``."""
    return runs.cell_path(d, m, g, run=run)


@functools.lru_cache(maxsize=None)
def _has_files(name: str, data_dir: str | None) -> bool:
    import cfx.data

    try:
        cfx.data.load(name, data_dir=data_dir)
    except FileNotFoundError:
        return False
    return True


def available(dc: DataSpec) -> bool:
    """Whether a data set runs: always, unless it is ``optional`` and its files are missing."""
    return not dc.optional or _has_files(dc.name, dc.data_dir)


def expected(cfg: EcccoConfig) -> list[tuple[str, ...]]:
    """The cell records of a complete run (data sets that run), in run order."""
    return [
        cell_path(d.key, m.key, g.key, r)
        for d in cfg.data
        if available(d)
        for r in range(cfg.runs)
        for m in cfg.models
        for g in cfg.generators
    ]


def _split(dc: DataSpec, cfg: EcccoConfig, r: int):
    """(fit, calibration, train, test) of data set ``dc`` in run ``r``."""
    seed = derive_seed(cfg.seed, r, "data", dc.key) if dc.seed is None else derive_seed(dc.seed, 0, "data", dc.name)
    if dc.realisation == "eccco-2024":  # the reference's rows; its models fit on the first half, unshuffled
        from cfx.data.julia_eccco2024 import eccco2024_split

        train, test = eccco2024_split(dc.name)
        n_fit = round((1.0 - cfg.calibration.share) * len(train))  # MLJBase partition: round, ties to even
        return train.subset(np.arange(n_fit)), train.subset(np.arange(n_fit, len(train))), train, test
    train, test = runs.load_split(dc, seed)
    fit, cal = train.split(test_size=cfg.calibration.share, seed=seed)
    return fit, cal, train, test


def model_run(cfg: EcccoConfig, r: int) -> int:
    """The run whose data, split and models run ``r`` uses: itself, or 0 with ``runs_vary: factuals``."""
    return 0 if cfg.runs_vary == "factuals" else r


def check(cfg: EcccoConfig) -> dict:
    """Every split of every data set that runs (missing files of required sets fail here,
    before anything is trained or written)."""
    splits = {
        (dc.key, r): _split(dc, cfg, r)
        for dc in cfg.data
        if available(dc)
        for r in range(cfg.runs)
        if model_run(cfg, r) == r
    }
    return {
        (dc.key, r): splits[(dc.key, model_run(cfg, r))] for dc in cfg.data if available(dc) for r in range(cfg.runs)
    }


def model_spec(dc: DataSpec, mc: ModelSpec) -> ModelSpec:
    """The model's settings on this data set (its per-data-set changes applied)."""
    return ModelSpec.model_validate({**mc.model_dump(), **dc.models.get(mc.key, {})})


def generator_hyperparams(dc: DataSpec, gc: GeneratorSpec) -> dict:
    return {**gc.hyperparams, **dc.generators.get(gc.key, {})}


def _fit_kwargs(mc: ModelSpec) -> dict:
    kw = dict(
        epochs=mc.epochs,
        batch_size=mc.batch_size,
        learning_rate=mc.learning_rate,
        widths=tuple(mc.widths),
        activation=mc.activation,
    )
    from cfx.models import MODELS

    if MODELS.get(mc.name).ensemble:
        kw["n_members"] = mc.n_members
    if mc.is_jem:
        from cfx.models import JEMLoss, ReferenceJEMLoss

        if mc.jem_loss == "reference":
            kw["loss"] = ReferenceJEMLoss(
                alpha=tuple(mc.alpha),
                sgld_steps=mc.sgld_steps,
                sampler_batch=mc.sampler_batch,
                sampler_calls=mc.sampler_calls,
            )
        else:
            kw["loss"] = JEMLoss(alpha=tuple(mc.alpha), sgld_steps=mc.sgld_steps)
    return kw


def _combined(clf, mc: ModelSpec):
    """The ensemble with its members combined as ``mc.combine`` says (other models as they are)."""
    from cfx.classifier import Classifier
    from cfx.models.ensemble import Ensemble

    if not isinstance(clf.apply_fn, Ensemble) or clf.apply_fn.combine == mc.combine:
        return clf
    return Classifier(dataclasses.replace(clf.apply_fn, combine=mc.combine), clf.params, clf.n_features, clf.n_classes)


def _restore(fit, mc: ModelSpec, blob: bytes):
    import flax.serialization
    import jax
    import jax.numpy as jnp

    import cfx.models

    kw = {k: v for k, v in _fit_kwargs(mc).items() if k != "loss"}
    clf = cfx.models.init(fit, mc.name, **kw)
    params = flax.serialization.from_bytes(clf.params, blob)
    return _combined(clf.replace(jax.tree_util.tree_map(jnp.asarray, params)), mc)


def _draw_samples(cfg: EcccoConfig, r: int, dc: DataSpec, mc: ModelSpec, conf, fit, target=None) -> np.ndarray:
    """The model's conditional samples under ``cfg.sampling``: per class (``target`` None,
    :func:`cfx.sampling.conditional_samples`) or per counterfactual target (``per_target_samples``)."""
    import cfx.sampling

    s = cfg.sampling
    kw = dict(key=_key(cfg.seed, r, "samples", dc.key, mc.key), n_chains=s.n_chains, steps=s.steps, keep=s.keep)
    if target is None:
        return np.asarray(cfx.sampling.conditional_samples(conf, fit, **kw))
    return np.asarray(cfx.sampling.per_target_samples(conf, fit, target, fresh_prob=s.fresh_prob, **kw))


def _model(cfg, store: Store, dc: DataSpec, mc: ModelSpec, r: int, split, progress: Progress):
    """(calibrated classifier, conditional samples (C, keep, d), info): trained, calibrated and
    sampled once, or restored from the store (the samples are saved with the parameters)."""
    import cfx.models
    from cfx.evaluation.population import accuracy

    fit, cal, train, test = split
    spec = model_spec(dc, mc)

    def train_model():
        t0 = time.perf_counter()
        seed = derive_seed(cfg.seed, r, "model", dc.key, mc.key)
        buffer = {}
        if spec.scheduled or spec.buffer_from:  # the reference's training schedule (cfx.models.fit_scheduled)
            extra = (
                None if spec.buffer_from is None else _buffer_of(cfg, store, dc, spec.buffer_from, r, split, progress)
            )
            t0 = time.perf_counter()  # the source model's training is its own record's time
            clf, state = cfx.models.fit_scheduled(
                fit,
                spec.name,
                seed=seed,
                batch_order=spec.batch_order,
                bagging=spec.bagging,
                members=spec.members,
                epoch_pass=spec.epoch_pass,
                extra=extra,
                return_state=True,
                **_fit_kwargs(spec),
            )
            if isinstance(state.extra, cfx.models.jem_reference.ReferenceBuffer) and state.extra.x.ndim == 2:
                buffer = {f"buffer_{k}": np.asarray(getattr(state.extra, k)) for k in _BUFFER_FIELDS}
        else:
            clf = cfx.models.fit(fit, spec.name, seed=seed, **_fit_kwargs(spec))
        clf = _combined(clf, spec)
        train_s = time.perf_counter() - t0
        conf = cfx.models.calibrate(clf, cal, alpha=cfg.calibration.alpha)
        t0 = time.perf_counter()
        if cfg.sampling.mode == "per_class":
            samples = _draw_samples(cfg, r, dc, mc, conf, fit)
        else:  # drawn per counterfactual target in run()
            samples = np.zeros((conf.n_classes, 1, conf.n_features), np.float32)
        info = {
            "train_s": train_s,
            "sampling_s": time.perf_counter() - t0,
            "q_hat": float(conf.q_hat),
            "test_accuracy": accuracy(clf, test.X, test.y),
            "coverage": float(conf.coverage(test.X, test.y)),
            "n_fit": len(fit),
            "n_calibration": len(cal),
            "n_test": len(test),
            "samples_finite": bool(np.all(np.isfinite(samples))),
        }
        return clf, info, {"samples": samples, **buffer}

    clf, info, arrays = runs.train_or_restore(
        store,
        model_path(dc.key, mc.key, r),
        train=train_model,
        restore=lambda blob, info: _restore(fit, spec, blob),
        progress=progress,
        label=f"{dc.key}/{mc.key}/{run_name(r)}",
    )
    return cfx.models.calibrate(clf, cal, alpha=cfg.calibration.alpha), arrays["samples"], info


_BUFFER_FIELDS = ("x", "head", "filled", "lower", "upper")


def _buffer_of(cfg, store: Store, dc: DataSpec, label: str, r: int, split, progress: Progress):
    """The final JEM sampler buffer of model ``label`` (trained first if it is not yet in the store):
    ``buffer_from``, the reference's one ``JointEnergyClassifier`` sampler that the JEM ensemble's
    members and then the JEM train with in turn."""
    import jax.numpy as jnp

    from cfx.models.jem_reference import ReferenceBuffer

    arrays = store.load_arrays(model_path(dc.key, label, r)) if store.done(model_path(dc.key, label, r)) else None
    if not arrays or "buffer_x" not in arrays:
        source = next(m for m in cfg.models if m.key == label)
        _model(cfg, store, dc, source, r, split, progress)
        arrays = store.load_arrays(model_path(dc.key, label, r)) or {}
    if "buffer_x" not in arrays:
        raise ValueError(
            f"{dc.key}: model {label!r} keeps no single reference JEM buffer for buffer_from "
            "(it must be a jem (or a jem_ensemble with members: sequential) with jem_loss: reference)"
        )
    return ReferenceBuffer(**{k: jnp.asarray(arrays[f"buffer_{k}"]) for k in _BUFFER_FIELDS})


def _generator(gc: GeneratorSpec, hp: dict, conf, fit, samples, key, path: str, cfg: EcccoConfig):
    import cfx.generators

    try:
        gen = cfx.generators.make(gc.name, **hp)
        if "conditional_samples" in gen.needs():  # the model's samples, drawn once, not a second sampler run
            return gen.fit(conf, fit, key=key, samples=samples)
        return gen.fit(conf, fit, key=key)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot build generator {gc.name!r}: {e}", file=cfg.source, path=path) from None


def _data_range(constraints, X: np.ndarray):
    """``constraints`` with each feature's bounds narrowed to [min X_j, max X_j]."""
    d = X.shape[1]
    lower = np.broadcast_to(np.asarray(-np.inf if constraints.lower is None else constraints.lower, float), (d,))
    upper = np.broadcast_to(np.asarray(np.inf if constraints.upper is None else constraints.upper, float), (d,))
    return dataclasses.replace(
        constraints,
        lower=tuple(np.maximum(lower, X.min(axis=0)).tolist()),
        upper=tuple(np.minimum(upper, X.max(axis=0)).tolist()),
    )


def _add_unfaithfulness(ev: dict, counterfactuals: np.ndarray, samples: np.ndarray) -> None:
    """``unfaithfulness`` from each counterfactual's own samples: mean_k ‖x'_{i} − S_{i,k}‖₂,
    counterfactuals (m, K, d), samples (m, k, d)."""
    dist = np.linalg.norm(counterfactuals[:, :, None, :] - samples[:, None, :, :], axis=-1).mean(axis=-1)
    ev["per_counterfactual"]["unfaithfulness"] = dist.astype(np.float64)
    ev["mean"]["unfaithfulness"] = float(np.mean(dist))
    ev["sd"]["unfaithfulness"] = float(np.std(dist, ddof=1)) if dist.size > 1 else math.nan


#: Metrics also reported over the valid counterfactuals only (the paper's main tables).
VALID_ONLY = ("unfaithfulness", "implausibility", "l1")


def _scores(ev: dict, names, keep_share: float) -> tuple[dict, dict]:
    record, per = {}, {}
    for name in names:
        values = ev["per_counterfactual"].get(name)
        n = int(np.isfinite(values).sum()) if values is not None else 1
        record[name] = {"mean": float(ev["mean"][name]), "sd": float(ev["sd"].get(name, math.nan)), "n": n}
        if values is not None:
            per[f"metric_{name}"] = values
    valid = ev["per_counterfactual"].get("validity")
    for name in VALID_ONLY:
        values = ev["per_counterfactual"].get(name)
        if valid is None or values is None or name not in record:
            continue
        v = np.asarray(values)[np.asarray(valid) > 0.5]
        v = v[np.isfinite(v)]
        record[f"{name}_valid"] = {
            "mean": float(v.mean()) if v.size else math.nan,
            "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan,
            "n": int(v.size),
        }
    for suffix in ("", "_valid"):  # the reference divides the sum over kept samples by the chain count
        u = record.get(f"unfaithfulness{suffix}")
        if u is not None:
            record[f"unfaithfulness_ref{suffix}"] = {
                "mean": u["mean"] * keep_share,
                "sd": u["sd"] * keep_share,
                "n": u["n"],
            }
    return record, per


def run(cfg: EcccoConfig, store: Store, splits: dict, progress: Progress) -> None:
    """Every cell not yet in ``store``."""
    import cfx.evaluation
    import cfx.search

    keep_share = cfg.sampling.keep / cfg.sampling.n_chains
    for dc in cfg.data:
        if not available(dc):
            progress.status(f"{dc.key}: skipped (optional, its data files are missing)")
            continue
        for r in range(cfg.runs):
            split = splits[(dc.key, r)]
            fit, _, train, test = split
            constraints = train.schema.constraints()
            if cfg.domain == "data_range":  # the reference clamps x' to the training data's per-feature range
                constraints = _data_range(constraints, train.X)
            for mc in cfg.models:
                todo = [
                    (i, g) for i, g in enumerate(cfg.generators) if not store.done(cell_path(dc.key, mc.key, g.key, r))
                ]
                if not todo:
                    continue
                conf, samples, info = _model(cfg, store, dc, mc, model_run(cfg, r), split, progress)
                x, target, figure = select_factuals(
                    conf,
                    test,
                    cfg.n_factuals,
                    derive_seed(cfg.seed, r, "factuals", dc.key, mc.key),
                    train,
                    pool=cfg.factuals.pool,
                    targets=cfg.factuals.targets,
                )
                per_target, sample_s = None, 0.0
                if cfg.sampling.mode == "per_target":
                    t0 = time.perf_counter()
                    per_target = _draw_samples(cfg, r, dc, mc, conf, fit, target)
                    sample_s = time.perf_counter() - t0
                    scoring = cfx.evaluation.context(conf, train, constraints=constraints)
                else:
                    scoring = cfx.evaluation.context(conf, train, constraints=constraints, conditional_samples=samples)
                for i, gc in todo:
                    label = f"{dc.key}/{mc.key}/{gc.key}/{run_name(r)}"
                    progress.status(label, log=False)
                    t0 = time.perf_counter()
                    hp = generator_hyperparams(dc, gc)
                    gen = _generator(
                        gc,
                        hp,
                        conf,
                        fit,
                        samples,
                        _key(cfg.seed, r, "generator", dc.key, mc.key, gc.key),
                        f"generators[{i}]",
                        cfg,
                    )
                    res = cfx.search.generate(
                        gen,
                        conf,
                        x,
                        target,
                        key=_key(cfg.seed, r, "generate", dc.key, mc.key, gc.key),
                        constraints=constraints,
                        **cfg.search.model_dump(),
                    )
                    kw = {} if cfg.metrics is None else {"metrics": list(cfg.metrics)}
                    ev = cfx.evaluation.evaluate(res, conf, context=scoring, **kw)
                    if per_target is not None:
                        _add_unfaithfulness(ev, np.asarray(res.counterfactuals), per_target)
                    names = list(cfg.metrics) if cfg.metrics else list(ev["mean"])
                    if per_target is not None and "unfaithfulness" not in names:
                        names.append("unfaithfulness")
                    metrics, per = _scores(ev, names, keep_share)
                    arrays = runs.cell_arrays(res, **per)
                    record = runs.cell_record(
                        dc,
                        mc,
                        gc,
                        r,
                        hyperparams=hp,
                        n_factuals=int(len(x)),
                        figure_row=figure,
                        metrics=metrics,
                        model_info={k: info[k] for k in ("test_accuracy", "coverage", "q_hat")},
                        timings={
                            "runtime_s": float(res.runtime_s),
                            "compile_s": float(res.compile_s),
                            "train_s": float(info["train_s"]),
                            "sampling_s": float(info["sampling_s"]) + sample_s,
                        },
                    )
                    store.save(cell_path(dc.key, mc.key, gc.key, r), record, arrays)
                    progress.step(label, time.perf_counter() - t0)
