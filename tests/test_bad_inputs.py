"""The bad-input catalogue: every public entry point, fed what a user gets wrong.

Each case must raise its documented exception type, with a message that names the argument,
from cfx's own code (the raising frame is in ``cfx/``, never deep inside JAX, numpy, flax or
pandas), and before XLA compiles anything. Config cases go through the CLI (exit code 2 and
the message on stderr, nothing written). ``len(CASES) + len(CONFIG_CASES)`` is the count
README's reliability paragraph gives.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

import cfx
import cfx.dynamics as dyn
from cfx import models, sampling, training
from cfx.cli import main
from cfx.data import Dataset, FeatureSchema
from cfx.generators import DiCE, ECCCo, ECCCoL1, ECCo, Generic, REVISE

ROOT = Path(__file__).resolve().parents[1]
CFX_DIR = str(ROOT / "cfx")


@pytest.fixture(scope="module")
def toy():
    """A 2-feature problem, a small trained MLP, one search result (built before any case runs)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X.sum(1) > 0).astype(np.int32)
    data = Dataset(X, y, FeatureSchema.default(2), name="toy")
    clf = models.fit(data, epochs=2, widths=(8,))
    key = jax.random.key(0)
    result = cfx.generate(Generic(), clf, X[:4], 1, key=key, max_steps=5)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["u", "v", "u", "v"], "y": [0, 1, 0, 1]})
    table = cfx.data.from_frame(frame, "y")  # a: continuous, b: binary
    linear = cfx.Classifier(lambda p, x: x @ p, np.array([[0.0, 1.0], [0.0, 0.0]], np.float32), n_features=2)
    return {
        "X": X,
        "y": y,
        "data": data,
        "clf": clf,
        "key": key,
        "result": result,
        "frame": frame,
        "calibrated": models.calibrate(clf, data),
        "table": table,
        "linear": linear,
    }


def _generate(t, generator=None, x=None, target=1, **options):
    return cfx.generate(
        generator or Generic(), t["clf"], t["X"][:4] if x is None else x, target, key=t["key"], max_steps=5, **options
    )


def _rows(t):  # the toy frame's features, rows named r0..r3 (errors must name them)
    return t["frame"].drop(columns="y").set_index(pd.Index(["r0", "r1", "r2", "r3"]))


def _explain(t, rows=None, **options):
    return cfx.explain(t["linear"], _rows(t) if rows is None else rows, data=t["table"], target=1, **options)


def _data(X, y=None, d=None):
    return Dataset(X, np.zeros(len(X), np.int32) if y is None else y, FeatureSchema.default(d or X.shape[1]))


# (id, call(t), exception type, a regex the message must match: the argument's name)
CASES = [
    # --- generate: factuals, targets, options
    ("generate/x wrong width", lambda t: _generate(t, x=t["X"][:4, :1]), ValueError, r"x has 1 features"),
    ("generate/x NaN", lambda t: _generate(t, x=np.array([[np.nan, 0.0]])), ValueError, r"x contains NaN"),
    ("generate/x inf", lambda t: _generate(t, x=np.array([[np.inf, 0.0]])), ValueError, r"x contains NaN or inf"),
    ("generate/x empty", lambda t: _generate(t, x=np.zeros((0, 2))), ValueError, r"x must have shape"),
    ("generate/x 3-D", lambda t: _generate(t, x=np.zeros((2, 2, 2))), ValueError, r"x must have shape"),
    ("generate/x strings", lambda t: _generate(t, x=np.array([["a", "b"]])), TypeError, r"x must be an array"),
    ("generate/target unknown class", lambda t: _generate(t, target=5), ValueError, r"target 5 is not a class"),
    ("generate/target float", lambda t: _generate(t, target=1.5), TypeError, r"target must be an int"),
    ("generate/target string", lambda t: _generate(t, target="1"), TypeError, r"target must be an int"),
    (
        "generate/target wrong length",
        lambda t: _generate(t, target=np.array([1, 0])),
        ValueError,
        r"target must be a scalar or have length n=4",
    ),
    (
        "generate/max_steps 0",
        lambda t: cfx.generate(Generic(), t["clf"], t["X"][:4], 1, key=t["key"], max_steps=0),
        ValueError,
        r"max_steps must be a positive int",
    ),
    (
        "generate/max_steps string",
        lambda t: cfx.generate(Generic(), t["clf"], t["X"][:4], 1, key=t["key"], max_steps="5"),
        ValueError,
        r"max_steps",
    ),
    (
        "generate/threshold 2",
        lambda t: _generate(t, Generic(threshold=2.0)),
        ValueError,
        r"threshold must be a probability",
    ),
    ("generate/K 0", lambda t: _generate(t, Generic(num_counterfactuals=0)), ValueError, r"num_counterfactuals"),
    (
        "generate/key an int",
        lambda t: cfx.generate(Generic(), t["clf"], t["X"][:4], 1, key=0),
        TypeError,
        r"key must be a single PRNG key",
    ),
    # --- constraints
    (
        "Constraints/mutability wrong length",
        lambda t: _generate(t, constraints=cfx.Constraints(mutability=["none"])),
        ValueError,
        r"constraints.mutability has 1 entries",
    ),
    (
        "Constraints/mutability a dict",
        lambda t: cfx.Constraints(mutability={"x0": "none"}),
        TypeError,
        r"mutability must be a sequence .* got a mapping",
    ),
    (
        "Constraints/mutability unknown code",
        lambda t: cfx.Constraints(mutability=["none", "up"]),
        ValueError,
        r"mutability entries must be one of",
    ),
    (
        "Constraints/lower > upper",
        lambda t: _generate(t, constraints=cfx.Constraints(lower=1.0, upper=0.0)),
        ValueError,
        r"lower > upper for feature 0",
    ),
    (
        "Constraints/bounds wrong length",
        lambda t: _generate(t, constraints=cfx.Constraints(lower=[0, 0, 0])),
        ValueError,
        r"constraints.lower has shape",
    ),
    (
        "Constraints/group out of range",
        lambda t: _generate(t, constraints=cfx.Constraints(categorical_groups=[[0, 5]])),
        ValueError,
        r"categorical_groups",
    ),
    # --- generators
    (
        "Generic/cost a string",
        lambda t: _generate(t, Generic(cost="0.1")),
        TypeError,
        r"weight of 'distance' must be a number",
    ),
    ("Generic/cost negative", lambda t: _generate(t, Generic(cost=-1.0)), ValueError, r"weight of 'distance'"),
    (
        "Generic/learning_rate NaN",
        lambda t: _generate(t, Generic(learning_rate=float("nan"))),
        ValueError,
        r"Generic.learning_rate must be finite",
    ),
    (
        "Generic/learning_rate a string",
        lambda t: _generate(t, Generic(learning_rate="0.1")),
        TypeError,
        r"Generic.learning_rate must be a number",
    ),
    (
        "Generic/threshold a string",
        lambda t: _generate(t, Generic(threshold="0.5")),
        TypeError,
        r"Generic.threshold must be a number",
    ),
    ("Generic/unknown optimizer", lambda t: _generate(t, Generic(optimizer="sgdd")), ValueError, r"Generic.optimizer"),
    ("Generic/unknown distance", lambda t: _generate(t, Generic(distance="l7")), ValueError, r"Generic.distance"),
    ("Generic/unknown yloss", lambda t: _generate(t, Generic(yloss="hinge2")), ValueError, r"Generic.yloss"),
    (
        "DiCE/one counterfactual",
        lambda t: _generate(t, DiCE(num_counterfactuals=1)),
        ValueError,
        r"DiCE needs num_counterfactuals > 1",
    ),
    ("ECCCo/not fitted", lambda t: _generate(t, ECCCo()), ValueError, r"ECCCo.q_hat is unset"),
    (
        "ECCCo-L1/not fitted, calibrated classifier",
        lambda t: cfx.generate(ECCCoL1(), t["calibrated"], t["X"][:4], 1, key=t["key"]),
        ValueError,
        r"ECCCoL1 is not fitted: its fit needs the training data",
    ),
    ("REVISE/no VAE", lambda t: _generate(t, REVISE()), ValueError, r"REVISE.vae is missing"),
    # --- evaluate, Classifier, Dataset
    (
        "evaluate/data wrong width",
        lambda t: cfx.evaluate(t["result"], t["clf"], data=_data(t["X"][:, :1])),
        ValueError,
        r"data has 1 features",
    ),
    (
        "evaluate/unknown metric",
        lambda t: cfx.evaluate(t["result"], t["clf"], data=t["data"], metrics=["validty"]),
        ValueError,
        r"unknown metric 'validty'",
    ),
    (
        "evaluate/n_neighbors 0",
        lambda t: cfx.evaluate(t["result"], t["clf"], data=t["data"], n_neighbors=0),
        ValueError,
        r"n_neighbors must be a positive int",
    ),
    (
        "Classifier/n_features 0",
        lambda t: cfx.Classifier(lambda p, x: x, None, n_features=0, n_classes=2),
        ValueError,
        r"n_features must be a positive int",
    ),
    (
        "Classifier/predict wrong width",
        lambda t: t["clf"].predict(np.zeros((3, 5), np.float32)),
        ValueError,
        r"x must have shape \(2,\) or \(n, 2\)",
    ),
    ("Dataset/X and y lengths differ", lambda t: _data(t["X"], t["y"][:10]), ValueError, r"Dataset.y must have shape"),
    (
        "Dataset/non-integer labels",
        lambda t: _data(t["X"], t["y"] + 0.5),
        ValueError,
        r"Dataset.y must hold integer class labels",
    ),
    ("Dataset/NaN features", lambda t: _data(np.full((3, 2), np.nan)), ValueError, r"Dataset.X contains NaN"),
    # --- fit, calibrate, samples, VAE, CT
    ("fit/unknown model", lambda t: models.fit(t["data"], model="mpl"), ValueError, r"unknown model 'mpl'"),
    ("fit/epochs 0", lambda t: models.fit(t["data"], epochs=0), ValueError, r"epochs must be an int >= 1"),
    ("fit/epochs a string", lambda t: models.fit(t["data"], epochs="3"), ValueError, r"epochs must be an int"),
    ("fit/batch_size negative", lambda t: models.fit(t["data"], batch_size=-1), ValueError, r"batch_size"),
    (
        "fit/learning_rate a string",
        lambda t: models.fit(t["data"], learning_rate="1e-3"),
        TypeError,
        r"learning_rate must be a number",
    ),
    ("fit/unknown activation", lambda t: models.fit(t["data"], activation="relux"), ValueError, r"activation"),
    ("fit/unknown objective", lambda t: models.fit(t["data"], objective="cct"), ValueError, r"objective"),
    (
        "fit/arrays instead of a Dataset",
        lambda t: models.fit((t["X"], t["y"])),
        TypeError,
        r"dataset must be a cfx.data.Dataset",
    ),
    ("fit/labels beyond n_classes", lambda t: models.fit(t["data"], n_classes=1), ValueError, r"n_classes=1"),
    (
        "fit jem/sgld steps 0",
        lambda t: models.fit(t["data"], model="jem", extra=None, loss=models.JEMLoss(sgld_steps=0)),
        ValueError,
        r"sgld_steps",
    ),
    ("calibrate/alpha 0", lambda t: models.calibrate(t["clf"], t["data"], alpha=0.0), ValueError, r"alpha"),
    (
        "calibrate/alpha a string",
        lambda t: models.calibrate(t["clf"], t["data"], alpha="0.05"),
        TypeError,
        r"alpha must be a number",
    ),
    (
        "calibrate/wrong width",
        lambda t: models.calibrate(t["clf"], _data(t["X"][:, :1])),
        ValueError,
        r"calibration_data.X must have shape",
    ),
    (
        "conditional_samples/n_chains 0",
        lambda t: sampling.conditional_samples(t["clf"], t["data"], key=t["key"], n_chains=0),
        ValueError,
        r"n_chains",
    ),
    (
        "conditional_samples/keep > n_chains",
        lambda t: sampling.conditional_samples(t["clf"], t["data"], key=t["key"], n_chains=5, keep=10),
        ValueError,
        r"keep \(10\) must be <= n_chains",
    ),
    (
        "conditional_samples/steps a string",
        lambda t: sampling.conditional_samples(t["clf"], t["data"], key=t["key"], steps="5"),
        ValueError,
        r"steps must be an int",
    ),
    ("fit_vae/latent_dim 0", lambda t: models.fit_vae(t["data"], latent_dim=0), ValueError, r"latent_dim"),
    ("fit_vae/epochs a string", lambda t: models.fit_vae(t["data"], epochs="1"), ValueError, r"epochs"),
    ("CTConfig/unknown variant", lambda t: training.CTConfig(variant="cct"), ValueError, r"CTConfig.variant"),
    ("CTConfig/n_ce 0", lambda t: training.CTConfig(n_ce=0), ValueError, r"CTConfig.n_ce"),
    (
        "CTConfig/weight a string",
        lambda t: training.CTConfig(lambda_ce="1"),
        TypeError,
        r"CTConfig.lambda_ce must be a number",
    ),
    (
        "fit_ct/protected out of range",
        lambda t: training.fit_ct(t["data"], ct=training.CTConfig(protected=(7,)), epochs=1),
        ValueError,
        r"CTConfig.protected",
    ),
    # --- dynamics
    ("simulate/no generators", lambda t: dyn.simulate(t["data"], t["data"], {}, rounds=1), ValueError, r"generators"),
    (
        "simulate/mu 2",
        lambda t: dyn.simulate(t["data"], t["data"], {"g": Generic()}, rounds=1, mu=2.0),
        ValueError,
        r"mu must be a share",
    ),
    (
        "simulate/rounds 0",
        lambda t: dyn.simulate(t["data"], t["data"], {"g": Generic()}, rounds=0),
        ValueError,
        r"rounds must be an int",
    ),
    ("mmd/widths differ", lambda t: dyn.mmd(t["X"], t["X"][:, :1]), ValueError, r"same dimensionality"),
    ("mmd/empty", lambda t: dyn.mmd(t["X"][:0], t["X"]), ValueError, r"at least 2 samples"),
    ("mmd/NaN", lambda t: dyn.mmd(np.full((3, 2), np.nan), t["X"]), ValueError, r"NaN or inf"),
    ("mmd/length_scale 0", lambda t: dyn.mmd(t["X"], t["X"], length_scale=0.0), ValueError, r"length_scale"),
    # --- data
    ("load/unknown name", lambda t: cfx.data.load("moonz"), ValueError, r"unknown data set 'moonz'"),
    ("load/n 0", lambda t: cfx.data.load("moons", n=0), ValueError, r"n must be positive"),
    ("load/n a string", lambda t: cfx.data.load("moons", n="10"), TypeError, r"n must be an int"),
    ("load/unknown option", lambda t: cfx.data.load("moons", nosie=0.1), TypeError, r"nosie"),
    (
        "load/files missing",
        lambda t: cfx.data.load("adult", data_dir="/nonexistent"),
        FileNotFoundError,
        r"adult.csv' not found",
    ),
    ("train_test/test_size 1.5", lambda t: cfx.data.train_test(t["data"], test_size=1.5), ValueError, r"test_size"),
    (
        "from_frame/label not a column",
        lambda t: cfx.data.from_frame(t["frame"], "z"),
        ValueError,
        r"label: column 'z' is not in the frame",
    ),
    (
        "from_frame/categorical not a column",
        lambda t: cfx.data.from_frame(t["frame"], "y", categorical=["c"]),
        ValueError,
        r"\['c'\]",
    ),
    (
        "from_frame/unknown mutability code",
        lambda t: cfx.data.from_frame(t["frame"], "y", categorical=["b"], mutability={"a": "up"}),
        ValueError,
        r"mutability",
    ),
    (
        "from_frame/mutability of no column",
        lambda t: cfx.data.from_frame(t["frame"], "y", categorical=["b"], mutability={"q": "none"}),
        ValueError,
        r"\['q'\]",
    ),
    (
        "explain/unseen category",
        lambda t: _explain(t, _rows(t).assign(b=["u", "v", "w", "v"])),
        ValueError,
        r"column 'b': unseen level 'w' at row 'r2'",
    ),
    (
        "explain/missing column",
        lambda t: _explain(t, _rows(t).drop(columns="a")),
        ValueError,
        r"missing column\(s\) \['a'\]",
    ),
    ("explain/extra column", lambda t: _explain(t, _rows(t).assign(c=1)), ValueError, r"unknown column\(s\) \['c'\]"),
    (
        "explain/string in a numeric column",
        lambda t: _explain(t, _rows(t).assign(a=[1.0, 2.0, "3x", 4.0])),
        ValueError,
        r"column 'a' is continuous .* \(row 'r2': '3x'\)",
    ),
    (
        "explain/NaN",
        lambda t: _explain(t, _rows(t).assign(a=[1.0, np.nan, 3.0, 4.0])),
        ValueError,
        r"column 'a' has 1 missing values \(NaN; first at row 'r1'\)",
    ),
    ("explain/rows an array", lambda t: _explain(t, np.zeros((2, 2))), TypeError, r"rows must be a pandas DataFrame"),
    (
        "explain/features_to_vary unknown",
        lambda t: _explain(t, features_to_vary=["z"]),
        ValueError,
        r"features_to_vary: unknown column\(s\) \['z'\]",
    ),
    (
        "explain/permitted_range outside the data",
        lambda t: _explain(t, permitted_range={"a": (0.0, 4.0)}),
        ValueError,
        r"permitted_range\['a'\] .* outside the data's bounds",
    ),
    (
        "explain/permitted_range excludes a row",
        lambda t: _explain(t, permitted_range={"a": (2.0, 4.0)}),
        ValueError,
        r"permitted_range\['a'\] .* excludes the value 1.0 of row 'r0'",
    ),
    (
        "from_frame/missing values",
        lambda t: cfx.data.from_frame(t["frame"].assign(a=[1.0, np.nan, 3.0, 4.0]), "y", categorical=["b"]),
        ValueError,
        r"column 'a' has 1 missing",
    ),
]


def _nan(t):  # the toy features with one NaN (row 3)
    X = t["X"].copy()
    X[3, 1] = np.nan
    return X


def _sim(t, **options):
    return dyn.simulate(t["data"], t["data"], {"g": Generic()}, rounds=1, **options)


def _fit(model, **options):
    return lambda t: models.fit(t["data"], model=model, **options)


def _masked(t, x=None, x_mask=None, y=None):
    x, y = t["X"] if x is None else x, t["X"] if y is None else y
    return dyn.masked_mmd_test(
        x,
        np.ones(len(x), bool) if x_mask is None else x_mask,
        y,
        np.ones(len(y), bool),
        key=t["key"],
        n_permutations=10,
    )


# The research half (issue 25): every model kind, calibration, the samplers, the VAE, CT, the
# dynamics and the MMD functions, fed strings for numbers, NaN/inf, empty or mis-shaped arrays,
# out-of-range classes, mismatched masks and unknown names.
MODEL_KINDS = ("mlp", "ensemble", "linear", "jem", "jem_ensemble")
CASES += [
    *[
        case
        for m in MODEL_KINDS
        for case in (
            (f"fit {m}/epochs a string", _fit(m, epochs="2"), ValueError, r"epochs must be an int"),
            (f"fit {m}/learning_rate NaN", _fit(m, learning_rate=float("nan")), ValueError, r"learning_rate"),
            (f"fit {m}/widths strings", _fit(m, widths=("8",)), TypeError, r"widths\[\] must be an int"),
            (f"fit {m}/seed a string", _fit(m, seed="0"), TypeError, r"seed must be an int"),
            (f"fit {m}/weight_decay negative", _fit(m, weight_decay=-1.0), ValueError, r"weight_decay"),
            (f"fit {m}/n_classes a string", _fit(m, n_classes="2"), ValueError, r"n_classes"),
        )
    ],
    ("fit ensemble/n_members 0", _fit("ensemble", n_members=0), ValueError, r"n_members"),
    ("fit mlp/dropout 1.5", _fit("mlp", dropout=1.5), ValueError, r"dropout"),
    ("fit/unknown model kind", _fit("jem_ensembel"), ValueError, r"unknown model 'jem_ensembel'"),
    ("fit/empty dataset", lambda t: models.fit(_data(t["X"][:0], t["y"][:0])), ValueError, r"dataset|Dataset"),
    (
        "fit/negative label",
        lambda t: models.fit(_data(t["X"], np.where(t["y"] == 0, -1, 1).astype(np.int32))),
        ValueError,
        r"Dataset.y|label",
    ),
    (
        "fit/objective ct (moved up a layer)",
        lambda t: models.fit(t["data"], objective="ct", ct={"n_ce": 3}),
        ValueError,
        r"cfx\.training\.fit\(dataset, model, ct=",
    ),
    ("calibrate/not a Classifier", lambda t: models.calibrate("clf", t["data"]), TypeError, r"classifier"),
    (
        "calibrate/NaN features",
        lambda t: models.calibrate(t["clf"], (_nan(t), t["y"])),
        ValueError,
        r"calibration_data.X contains NaN",
    ),
    (
        "calibrate/label out of range",
        lambda t: models.calibrate(t["clf"], (t["X"], t["y"] + 3)),
        ValueError,
        r"calibration_data.y has labels",
    ),
    (
        "calibrate/X and y lengths differ",
        lambda t: models.calibrate(t["clf"], (t["X"], t["y"][:5])),
        ValueError,
        r"calibration_data.y must have shape",
    ),
    (
        "calibrate/empty",
        lambda t: models.calibrate(t["clf"], (t["X"][:0], t["y"][:0])),
        ValueError,
        r"calibration_data has 0 rows",
    ),
    (
        "calibrate/temperature a string",
        lambda t: models.calibrate(t["clf"], t["data"], temperature="0.1"),
        TypeError,
        r"temperature",
    ),
    (
        "calibrate/float labels",
        lambda t: models.calibrate(t["clf"], (t["X"], t["y"] + 0.5)),
        ValueError,
        r"calibration_data.y must hold integer",
    ),
    (
        "conditional_samples/data wrong width",
        lambda t: sampling.conditional_samples(t["clf"], t["X"][:, :1], key=t["key"]),
        ValueError,
        r"data has 1 features",
    ),
    (
        "conditional_samples/data NaN",
        lambda t: sampling.conditional_samples(t["clf"], _nan(t), key=t["key"]),
        ValueError,
        r"data contains NaN",
    ),
    (
        "conditional_samples/data empty",
        lambda t: sampling.conditional_samples(t["clf"], t["X"][:0], key=t["key"]),
        ValueError,
        r"data must have shape \(n, d\) with n >= 1",
    ),
    (
        "conditional_samples/grad_clip a string",
        lambda t: sampling.conditional_samples(t["clf"], t["data"], key=t["key"], grad_clip="0.01"),
        TypeError,
        r"grad_clip must be a number",
    ),
    (
        "conditional_samples/noise_scale NaN",
        lambda t: sampling.conditional_samples(t["clf"], t["data"], key=t["key"], noise_scale=float("nan")),
        ValueError,
        r"noise_scale must be finite",
    ),
    (
        "conditional_samples/n_std negative",
        lambda t: sampling.conditional_samples(t["clf"], t["data"], key=t["key"], n_std=-1.0),
        ValueError,
        r"n_std",
    ),
    (
        "conditional_samples/key an int",
        lambda t: sampling.conditional_samples(t["clf"], t["data"], key=0),
        TypeError,
        r"key must be a single PRNG key",
    ),
    (
        "per_target_samples/target out of range",
        lambda t: sampling.per_target_samples(t["clf"], t["data"], [0, 5], key=t["key"]),
        ValueError,
        r"targets must be .* class labels in \[0, 2\)",
    ),
    (
        "per_target_samples/fresh_prob a string",
        lambda t: sampling.per_target_samples(t["clf"], t["data"], [0, 1], key=t["key"], fresh_prob="0.05"),
        TypeError,
        r"fresh_prob",
    ),
    (
        "fit_vae/learning_rate a string",
        lambda t: models.fit_vae(t["data"], learning_rate="1e-3"),
        TypeError,
        r"learning_rate must be a number",
    ),
    ("fit_vae/beta negative", lambda t: models.fit_vae(t["data"], beta=-1.0), ValueError, r"beta must be >= 0"),
    ("fit_vae/beta a string", lambda t: models.fit_vae(t["data"], beta="1"), TypeError, r"beta must be a number"),
    ("fit_vae/hidden strings", lambda t: models.fit_vae(t["data"], hidden=("32",)), TypeError, r"hidden\[\]"),
    ("fit_vae/NaN", lambda t: models.fit_vae(_nan(t)), ValueError, r"fit_vae needs finite data"),
    ("fit_vae/empty", lambda t: models.fit_vae(t["X"][:0]), ValueError, r"fit_vae needs finite data"),
    ("fit_vae/seed a string", lambda t: models.fit_vae(t["data"], seed="0"), TypeError, r"seed must be an int"),
    (
        "fit_ct/generator learning_rate a string",
        lambda t: training.fit_ct(t["data"], ct=training.CTConfig(n_ce=8, generator=ECCo(learning_rate="fast"))),
        TypeError,
        r"ECCo.learning_rate must be a number",
    ),
    (
        "fit_ct/generator threshold a string",
        lambda t: training.fit_ct(t["data"], ct=training.CTConfig(n_ce=8, generator=ECCo(threshold="high"))),
        TypeError,
        r"ECCo.threshold must be a number",
    ),
    (
        "fit_ct/generator threshold 0",
        lambda t: training.fit_ct(t["data"], ct=training.CTConfig(n_ce=8, generator=ECCo(threshold=0.0))),
        ValueError,
        r"threshold must be a probability",
    ),
    ("CTConfig/lambda NaN", lambda t: training.CTConfig(lambda_div=float("nan")), ValueError, r"CTConfig.lambda_div"),
    ("CTConfig/generator a name", lambda t: training.CTConfig(generator="ecco"), TypeError, r"CTConfig.generator"),
    ("CTConfig/protected a string", lambda t: training.CTConfig(protected="0"), TypeError, r"CTConfig.protected"),
    (
        "CTConfig/domain_sd a string",
        lambda t: training.CTConfig(domain_sd="2"),
        TypeError,
        r"CTConfig.domain_sd must be a number",
    ),
    ("CTConfig/max_steps a float", lambda t: training.CTConfig(max_steps=2.5), ValueError, r"CTConfig.max_steps"),
    ("fit_ct/ct a dict", lambda t: training.fit_ct(t["data"], ct={"n_ce": 3}, epochs=1), TypeError, r"ct must be"),
    (
        "fit_ct/epochs 0",
        lambda t: training.fit_ct(t["data"], ct=training.CTConfig(n_ce=8), epochs=0),
        ValueError,
        r"epochs",
    ),
    (
        "fit_ct/unknown model",
        lambda t: training.fit_ct(t["data"], model="mpl", ct=training.CTConfig(n_ce=8), epochs=1),
        ValueError,
        r"unknown model 'mpl'",
    ),
    ("fit_ct/NaN features", lambda t: training.fit_ct(_data(_nan(t), t["y"]), epochs=1), ValueError, r"NaN"),
    (
        "fit_ct/learning_rate a string",
        lambda t: training.fit_ct(t["data"], ct=training.CTConfig(n_ce=8), learning_rate="1e-3", epochs=1),
        TypeError,
        r"learning_rate must be a number",
    ),
    ("simulate/mu a string", lambda t: _sim(t, mu="0.1"), ValueError, r"mu must be a share"),
    (
        "simulate/train not a Dataset",
        lambda t: dyn.simulate(t["X"], t["data"], {"g": Generic()}, rounds=1),
        TypeError,
        r"train must be a cfx.data.Dataset",
    ),
    (
        "simulate/test width differs",
        lambda t: dyn.simulate(t["data"], _data(t["X"][:, :1]), {"g": Generic()}, rounds=1),
        ValueError,
        r"test has 1 features",
    ),
    (
        "simulate/generator not a Generator",
        lambda t: dyn.simulate(t["data"], t["data"], {"g": "generic"}, rounds=1),
        TypeError,
        r"generators\['g'\]",
    ),
    ("simulate/target out of range", lambda t: _sim(t, target=4), ValueError, r"target must be a class index"),
    ("simulate/unknown pool", lambda t: _sim(t, pool="all"), ValueError, r"pool must be one of"),
    ("simulate/unknown draw", lambda t: _sim(t, draw="some"), ValueError, r"draw must be one of"),
    ("simulate/unknown model", lambda t: _sim(t, model="mpl"), ValueError, r"model: unknown model 'mpl'"),
    ("simulate/max_steps 0", lambda t: _sim(t, max_steps=0), ValueError, r"max_steps must be an int >= 1"),
    ("simulate/repetitions 0", lambda t: _sim(t, repetitions=0), ValueError, r"repetitions must be an int >= 1"),
    ("simulate/length_scale a string", lambda t: _sim(t, length_scale="0.5"), TypeError, r"length_scale"),
    ("simulate/n_permutations negative", lambda t: _sim(t, n_permutations=-1), ValueError, r"n_permutations"),
    (
        "simulate/fit_options unknown key",
        lambda t: _sim(t, fit_options={"epoch": 3}),
        ValueError,
        r"fit_options: unknown option\(s\) \['epoch'\]",
    ),
    (
        "mmd/length_scale a string",
        lambda t: dyn.mmd(t["X"], t["X"], length_scale="0.5"),
        TypeError,
        r"length_scale must be a number",
    ),
    ("mmd/1-D", lambda t: dyn.mmd(t["X"][:, 0], t["X"]), ValueError, r"x must be a 2-D array"),
    ("mmd/strings", lambda t: dyn.mmd(np.array([["a", "b"]] * 3), t["X"]), TypeError, r"x must be an array"),
    (
        "mmd_test/n_permutations a string",
        lambda t: dyn.mmd_test(t["X"], t["X"], key=t["key"], n_permutations="10"),
        ValueError,
        r"n_permutations must be an int",
    ),
    (
        "mmd_test/key an int",
        lambda t: dyn.mmd_test(t["X"], t["X"], key=0, n_permutations=10),
        TypeError,
        r"key must be a single PRNG key",
    ),
    (
        "mmd_test/max_samples 1",
        lambda t: dyn.mmd_test(t["X"], t["X"], key=t["key"], max_samples=1),
        ValueError,
        r"max_samples",
    ),
    (
        "masked_mmd_test/mask wrong length",
        lambda t: _masked(t, x_mask=np.ones(5, bool)),
        ValueError,
        r"x_mask must have shape \(200,\)",
    ),
    ("masked_mmd_test/widths differ", lambda t: _masked(t, y=t["X"][:, :1]), ValueError, r"same dimensionality"),
    ("masked_mmd_test/NaN", lambda t: _masked(t, x=_nan(t)), ValueError, r"x contains NaN"),
    ("ECCCo/q_hat a string", lambda t: _generate(t, ECCCo(q_hat="0.5")), TypeError, r"ECCCo.q_hat must be a number"),
    (
        "ECCCo/energy a string",
        lambda t: cfx.generate(
            ECCCo(energy="0.5").fit(t["calibrated"], None, key=None),
            t["calibrated"],
            t["X"][:4],
            1,
            key=t["key"],
            max_steps=5,
        ),
        TypeError,
        r"weight of 'energy' must be a number",
    ),
    ("ECCCo-L1/no samples", lambda t: _generate(t, ECCCoL1(q_hat=0.5)), ValueError, r"samples"),
    ("evaluate/result not a result", lambda t: cfx.evaluate("r", t["clf"], data=t["data"]), TypeError, r"result"),
    ("explain/unknown generator", lambda t: _explain(t, generator="dicee"), ValueError, r"dicee"),
    (
        "explain/target out of range",
        lambda t: cfx.explain(t["linear"], _rows(t), data=t["table"], target=7),
        ValueError,
        r"target 7 is not a class",
    ),
    ("load/n NaN", lambda t: cfx.data.load("moons", n=float("nan")), TypeError, r"n must be an int"),
]


LIBRARIES = ("/jax/", "/jaxlib/", "/numpy/", "/flax/", "/optax/", "/pandas/")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly_before_compiling(case, toy):
    _, call, error, message = case
    traced = []

    def on_trace(event, seconds, **kwargs):  # a jitted function of cfx's traced (not a lone jnp op)
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traced.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(on_trace)
    try:
        with pytest.raises(error, match=message) as info:
            call(toy)
    finally:
        jax.monitoring.unregister_event_duration_listener(on_trace)
    raised_in = traceback.extract_tb(info.value.__traceback__)[-1].filename
    assert raised_in.startswith(CFX_DIR) and not any(lib in raised_in for lib in LIBRARIES), raised_in
    assert not traced, f"traced before the error: {traced}"


SMOKE = {kind: ROOT / "configs" / f"{kind}_smoke.yaml" for kind in ("benchmark", "eccco", "ct", "dynamics")}

# (id, the config's text from the kind's smoke config, extra argv, a regex for stderr)
CONFIG_CASES = [
    *[(f"{kind}/unknown key", lambda text: text + "\nsedd: 3\n", [], r"sedd") for kind in SMOKE],
    *[
        (f"{kind}/a string for the seed", lambda text: text + "\nseed: three\n", [], r"seed: expected an integer")
        for kind in SMOKE
    ],
    *[(f"{kind}/malformed YAML", lambda text: text + "\n  data: [unclosed\n", [], r"YAML|yaml") for kind in SMOKE],
    *[
        (
            f"{kind}/truncated file",
            lambda text: text[: len(text) // 3].rsplit("\n", 1)[0] + "\n  - {name: \n",
            [],
            r"YAML|yaml|required",
        )
        for kind in SMOKE
    ],
    *[
        (f"{kind}/unknown preset", lambda text: text + "\npreset: no-such-preset\n", [], r"unknown preset")
        for kind in SMOKE
    ],
    *[
        (
            f"{kind}/empty --set value",
            lambda text: text,
            ["--set", "seed="],
            r"seed: expected an integer.*the value after '=' is empty",
        )
        for kind in SMOKE
    ],
    *[
        (
            f"{kind}/a ${{...}} placeholder",
            lambda text: text + '\nseed: "${oops}"\n',
            [],
            r"seed: expected an integer, got '\$\{oops\}' \(str; cfx does not expand",
        )
        for kind in SMOKE
    ],
    *[
        (f"{kind}/{what}", lambda text: text, ["--set", value], message)
        for kind, what, value, message in (
            ("benchmark", "unknown data set", "data=[{name: moonz}]", r"data\[0\].name: unknown data set 'moonz'"),
            ("benchmark", "unknown model", "models=[{name: mpl}]", r"models\[0\].name: unknown model 'mpl'"),
            ("benchmark", "unknown generator", "generators=[wachterr]", r"unknown generator 'wachterr'|'wachterr'"),
            ("benchmark", "NaN for an int", "search.max_steps=.nan", r"search.max_steps: expected an integer, got nan"),
            ("benchmark", "zero runs", "runs=0", r"runs: must be > 0"),
            ("eccco", "unknown model", "models=[{name: jemm}]", r"models\[0\].name: unknown model 'jemm'"),
            ("eccco", "zero chains", "sampling.n_chains=0", r"sampling.n_chains: must be > 0"),
            ("eccco", "a string for steps", "sampling.steps=ten", r"sampling.steps: expected an integer, got 'ten'"),
            ("eccco", "inf for an int", "n_factuals=.inf", r"n_factuals: expected an integer, got inf"),
            ("eccco", "unknown generator", "generators=[eccoo]", r"'eccoo'"),
            (
                "ct",
                "NaN learning rate",
                "ct.generator.learning_rate=.nan",
                r"ct.generator.learning_rate: must be > 0, got nan",
            ),
            ("ct", "strings for widths", "model.widths=[a]", r"model.widths\[0\]: expected an integer"),
            ("ct", "a string in eps", "evaluation.eps=[x]", r"evaluation.eps\[0\]: expected a number"),
            ("ct", "unknown data set", "data=[{name: moonz}]", r"data\[0\].name: .*unknown data set 'moonz'"),
            ("ct", "threshold 2", "ct.generator.threshold=2", r"ct.generator.threshold: must be in \(0, 1\]"),
            ("dynamics", "NaN share", "simulation.mu=.nan", r"simulation.mu: must be in \(0, 1\], got nan"),
            ("dynamics", "zero rounds", "simulation.rounds=0", r"simulation.rounds: must be > 0"),
            ("dynamics", "unknown model", "models=[{name: mpl}]", r"models\[0\].name: unknown model 'mpl'"),
            ("dynamics", "unknown generator", "generators=[{name: gravitatonal}]", r"'gravitatonal'"),
            ("dynamics", "negative repetitions", "repetitions=-1", r"repetitions: must be > 0"),
        )
    ],
]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_exits_2_naming_the_key_and_writes_nothing(case, tmp_path, capsys):
    name, edit, argv, message = case
    kind = name.split("/")[0]
    path = tmp_path / "bad.yaml"
    text = SMOKE[kind].read_text().replace("extends: ", f"extends: {ROOT / 'configs'}/")
    path.write_text(edit(text))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress", *argv]) == 2
    import re

    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert not out.exists()


# (id, argv after the smoke config's path is put for CONFIG, a regex for stderr): the CLI's own arguments
CLI_CASES = [
    ("unknown command", ["runn", "CONFIG"], r"invalid choice: 'runn'"),
    ("run without a config", ["run"], r"required: CONFIG"),
    ("--out is a file", ["run", "CONFIG", "--out", "FILE"], r"output path .* exists and is not a folder"),
    ("unknown list", ["list", "foo"], r"invalid choice: 'foo'"),
    ("--set without a value", ["run", "CONFIG", "--out", "OUT", "--set"], r"--set: expected one argument"),
    ("--set without '='", ["run", "CONFIG", "--out", "OUT", "--set", "seed"], r"--set expects key=value, got 'seed'"),
    ("--set of an unknown key", ["run", "CONFIG", "--out", "OUT", "--set", "nokey.x=1"], r"nokey: unknown key"),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_command_line_exits_2_and_writes_nothing(case, tmp_path, capsys):
    _, argv, message = case
    (tmp_path / "afile").write_text("x")
    places = {"CONFIG": str(SMOKE["ct"]), "FILE": str(tmp_path / "afile"), "OUT": str(tmp_path / "out")}
    try:
        code = main([places.get(a, a) for a in argv])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2
    import re

    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_eccco_with_a_calibrated_classifier_is_fitted_from_it(toy):
    """Issue 25: ``generate(ECCCo(), conf, ...)`` said "not calibrated"; plain ECCCo's fit needs
    only q̂, so the search takes it from the calibrated classifier (as ``ECCCo().fit(conf)``)."""
    t = toy
    auto = cfx.generate(ECCCo(), t["calibrated"], t["X"][:4], 1, key=t["key"], max_steps=5)
    fitted = cfx.generate(
        ECCCo().fit(t["calibrated"], None, key=None), t["calibrated"], t["X"][:4], 1, key=t["key"], max_steps=5
    )
    np.testing.assert_array_equal(np.asarray(auto.counterfactuals), np.asarray(fitted.counterfactuals))
    assert "set_size" in auto.terms


def test_a_binary_file_as_config(tmp_path, capsys):
    path = tmp_path / "model.npz"
    path.write_bytes(b"PK\x03\x04\x00\xff\xfe")
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a UTF-8 text file" in err and "Traceback" not in err


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
