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
from cfx.generators import DiCE, ECCCo, Generic, REVISE

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
    return {"X": X, "y": y, "data": data, "clf": clf, "key": key, "result": result, "frame": frame,
            "calibrated": models.calibrate(clf, data), "table": table, "linear": linear}


def _generate(t, generator=None, x=None, target=1, **options):
    return cfx.generate(generator or Generic(), t["clf"], t["X"][:4] if x is None else x, target, key=t["key"],
                        max_steps=5, **options)


def _rows(t):  # the toy frame's features, rows named r0..r3 (errors must name them)
    return t["frame"].drop(columns="y").set_index(pd.Index(["r0", "r1", "r2", "r3"]))


def _explain(t, rows=None, **options):
    return cfx.explain(t["linear"], _rows(t) if rows is None else rows, dataset=t["table"], target=1, **options)


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
    ("generate/target wrong length", lambda t: _generate(t, target=np.array([1, 0])), ValueError,
     r"target must be a scalar or have length n=4"),
    ("generate/max_steps 0", lambda t: cfx.generate(Generic(), t["clf"], t["X"][:4], 1, key=t["key"], max_steps=0),
     ValueError, r"max_steps must be a positive int"),
    ("generate/max_steps string", lambda t: cfx.generate(Generic(), t["clf"], t["X"][:4], 1, key=t["key"],
                                                         max_steps="5"), ValueError, r"max_steps"),
    ("generate/threshold 2", lambda t: _generate(t, threshold=2.0), ValueError, r"threshold must be a probability"),
    ("generate/K 0", lambda t: _generate(t, num_counterfactuals=0), ValueError, r"num_counterfactuals"),
    ("generate/key an int", lambda t: cfx.generate(Generic(), t["clf"], t["X"][:4], 1, key=0), TypeError,
     r"key must be a single PRNG key"),
    # --- constraints
    ("Constraints/mutability wrong length", lambda t: _generate(t, constraints=cfx.Constraints(mutability=["none"])),
     ValueError, r"constraints.mutability has 1 entries"),
    ("Constraints/mutability a dict", lambda t: cfx.Constraints(mutability={"x0": "none"}), TypeError,
     r"mutability must be a sequence .* got a mapping"),
    ("Constraints/mutability unknown code", lambda t: cfx.Constraints(mutability=["none", "up"]), ValueError,
     r"mutability entries must be one of"),
    ("Constraints/lower > upper", lambda t: _generate(t, constraints=cfx.Constraints(lower=1.0, upper=0.0)),
     ValueError, r"lower > upper for feature 0"),
    ("Constraints/bounds wrong length", lambda t: _generate(t, constraints=cfx.Constraints(lower=[0, 0, 0])),
     ValueError, r"constraints.lower has shape"),
    ("Constraints/group out of range", lambda t: _generate(
        t, constraints=cfx.Constraints(categorical_groups=[[0, 5]])), ValueError, r"categorical_groups"),
    # --- generators
    ("Generic/cost a string", lambda t: _generate(t, Generic(cost="0.1")), TypeError, r"weight of 'distance' must be a number"),
    ("Generic/cost negative", lambda t: _generate(t, Generic(cost=-1.0)), ValueError, r"weight of 'distance'"),
    ("Generic/learning_rate NaN", lambda t: _generate(t, Generic(learning_rate=float("nan"))), ValueError,
     r"Generic.learning_rate must be finite"),
    ("Generic/learning_rate a string", lambda t: _generate(t, Generic(learning_rate="0.1")), TypeError,
     r"Generic.learning_rate must be a number"),
    ("Generic/threshold a string", lambda t: _generate(t, Generic(threshold="0.5")), TypeError,
     r"Generic.threshold must be a number"),
    ("Generic/unknown optimizer", lambda t: _generate(t, Generic(optimizer="sgdd")), ValueError, r"Generic.optimizer"),
    ("Generic/unknown distance", lambda t: _generate(t, Generic(distance="l7")), ValueError, r"Generic.distance"),
    ("Generic/unknown yloss", lambda t: _generate(t, Generic(yloss="hinge2")), ValueError, r"Generic.yloss"),
    ("DiCE/one counterfactual", lambda t: _generate(t, DiCE(), num_counterfactuals=1), ValueError,
     r"DiCE needs num_counterfactuals > 1"),
    ("ECCCo/not fitted", lambda t: _generate(t, ECCCo()), ValueError, r"ECCCo.q_hat is unset"),
    ("ECCCo/not fitted, calibrated classifier", lambda t: cfx.generate(
        ECCCo(), t["calibrated"], t["X"][:4], 1, key=t["key"]), ValueError,
     r"calibrating the classifier alone is not enough"),
    ("REVISE/no VAE", lambda t: _generate(t, REVISE()), ValueError, r"REVISE.vae is missing"),
    # --- evaluate, Classifier, Dataset
    ("evaluate/data wrong width", lambda t: cfx.evaluate(t["result"], t["clf"], data=_data(t["X"][:, :1])),
     ValueError, r"data has 1 features"),
    ("evaluate/unknown metric", lambda t: cfx.evaluate(t["result"], t["clf"], data=t["data"], metrics=["validty"]),
     ValueError, r"unknown metric 'validty'"),
    ("evaluate/n_neighbors 0", lambda t: cfx.evaluate(t["result"], t["clf"], data=t["data"], n_neighbors=0),
     ValueError, r"n_neighbors must be a positive int"),
    ("Classifier/n_features 0", lambda t: cfx.Classifier(lambda p, x: x, None, n_features=0, n_classes=2),
     ValueError, r"n_features must be a positive int"),
    ("Classifier/predict wrong width", lambda t: t["clf"].predict(np.zeros((3, 5), np.float32)), ValueError,
     r"x must have shape \(2,\) or \(n, 2\)"),
    ("Dataset/X and y lengths differ", lambda t: _data(t["X"], t["y"][:10]), ValueError, r"Dataset.y must have shape"),
    ("Dataset/non-integer labels", lambda t: _data(t["X"], t["y"] + 0.5), ValueError,
     r"Dataset.y must hold integer class labels"),
    ("Dataset/NaN features", lambda t: _data(np.full((3, 2), np.nan)), ValueError, r"Dataset.X contains NaN"),
    # --- fit, calibrate, samples, VAE, CT
    ("fit/unknown model", lambda t: models.fit(t["data"], model="mpl"), ValueError, r"unknown model 'mpl'"),
    ("fit/epochs 0", lambda t: models.fit(t["data"], epochs=0), ValueError, r"epochs must be an int >= 1"),
    ("fit/epochs a string", lambda t: models.fit(t["data"], epochs="3"), ValueError, r"epochs must be an int"),
    ("fit/batch_size negative", lambda t: models.fit(t["data"], batch_size=-1), ValueError, r"batch_size"),
    ("fit/learning_rate a string", lambda t: models.fit(t["data"], learning_rate="1e-3"), TypeError,
     r"learning_rate must be a number"),
    ("fit/unknown activation", lambda t: models.fit(t["data"], activation="relux"), ValueError, r"activation"),
    ("fit/unknown objective", lambda t: models.fit(t["data"], objective="cct"), ValueError, r"objective"),
    ("fit/arrays instead of a Dataset", lambda t: models.fit((t["X"], t["y"])), TypeError,
     r"dataset must be a cfx.data.Dataset"),
    ("fit/labels beyond n_classes", lambda t: models.fit(t["data"], n_classes=1), ValueError, r"n_classes=1"),
    ("fit jem/sgld steps 0", lambda t: models.fit(t["data"], model="jem", extra=None, loss=models.JEMLoss(sgld_steps=0)),
     ValueError, r"sgld_steps"),
    ("calibrate/alpha 0", lambda t: models.calibrate(t["clf"], t["data"], alpha=0.0), ValueError, r"alpha"),
    ("calibrate/alpha a string", lambda t: models.calibrate(t["clf"], t["data"], alpha="0.05"), TypeError,
     r"alpha must be a number"),
    ("calibrate/wrong width", lambda t: models.calibrate(t["clf"], _data(t["X"][:, :1])), ValueError,
     r"calibration_data.X must have shape"),
    ("conditional_samples/n_chains 0", lambda t: sampling.conditional_samples(t["clf"], t["data"], key=t["key"],
                                                                               n_chains=0), ValueError, r"n_chains"),
    ("conditional_samples/keep > n_chains", lambda t: sampling.conditional_samples(
        t["clf"], t["data"], key=t["key"], n_chains=5, keep=10), ValueError, r"keep \(10\) must be <= n_chains"),
    ("conditional_samples/steps a string", lambda t: sampling.conditional_samples(
        t["clf"], t["data"], key=t["key"], steps="5"), ValueError, r"steps must be an int"),
    ("fit_vae/latent_dim 0", lambda t: models.fit_vae(t["data"], latent_dim=0), ValueError, r"latent_dim"),
    ("fit_vae/epochs a string", lambda t: models.fit_vae(t["data"], epochs="1"), ValueError, r"epochs"),
    ("CTConfig/unknown variant", lambda t: training.CTConfig(variant="cct"), ValueError, r"CTConfig.variant"),
    ("CTConfig/n_ce 0", lambda t: training.CTConfig(n_ce=0), ValueError, r"CTConfig.n_ce"),
    ("CTConfig/weight a string", lambda t: training.CTConfig(lambda_ce="1"), TypeError,
     r"CTConfig.lambda_ce must be a number"),
    ("fit_ct/protected out of range", lambda t: training.fit_ct(t["data"], ct=training.CTConfig(protected=(7,)),
                                                                 epochs=1), ValueError, r"CTConfig.protected"),
    # --- dynamics
    ("simulate/no generators", lambda t: dyn.simulate(t["data"], t["data"], {}, rounds=1), ValueError, r"generators"),
    ("simulate/mu 2", lambda t: dyn.simulate(t["data"], t["data"], {"g": Generic()}, rounds=1, mu=2.0), ValueError,
     r"mu must be a share"),
    ("simulate/rounds 0", lambda t: dyn.simulate(t["data"], t["data"], {"g": Generic()}, rounds=0), ValueError,
     r"rounds must be an int"),
    ("mmd/widths differ", lambda t: dyn.mmd(t["X"], t["X"][:, :1]), ValueError, r"same dimensionality"),
    ("mmd/empty", lambda t: dyn.mmd(t["X"][:0], t["X"]), ValueError, r"at least 2 samples"),
    ("mmd/NaN", lambda t: dyn.mmd(np.full((3, 2), np.nan), t["X"]), ValueError, r"NaN or inf"),
    ("mmd/length_scale 0", lambda t: dyn.mmd(t["X"], t["X"], length_scale=0.0), ValueError, r"length_scale"),
    # --- data
    ("load/unknown name", lambda t: cfx.data.load("moonz"), ValueError, r"unknown data set 'moonz'"),
    ("load/n 0", lambda t: cfx.data.load("moons", n=0), ValueError, r"n must be positive"),
    ("load/n a string", lambda t: cfx.data.load("moons", n="10"), TypeError, r"n must be an int"),
    ("load/unknown option", lambda t: cfx.data.load("moons", nosie=0.1), TypeError, r"nosie"),
    ("load/files missing", lambda t: cfx.data.load("adult", data_dir="/nonexistent"), FileNotFoundError,
     r"adult.csv' not found"),
    ("train_test/test_size 1.5", lambda t: cfx.data.train_test(t["data"], test_size=1.5), ValueError, r"test_size"),
    ("from_frame/label not a column", lambda t: cfx.data.from_frame(t["frame"], "z"), ValueError,
     r"label: column 'z' is not in the frame"),
    ("from_frame/categorical not a column", lambda t: cfx.data.from_frame(t["frame"], "y", categorical=["c"]),
     ValueError, r"\['c'\]"),
    ("from_frame/unknown mutability code", lambda t: cfx.data.from_frame(
        t["frame"], "y", categorical=["b"], mutability={"a": "up"}), ValueError, r"mutability"),
    ("from_frame/mutability of no column", lambda t: cfx.data.from_frame(
        t["frame"], "y", categorical=["b"], mutability={"q": "none"}), ValueError, r"\['q'\]"),
    ("explain/unseen category", lambda t: _explain(t, _rows(t).assign(b=["u", "v", "w", "v"])), ValueError,
     r"column 'b': unseen level 'w' at row 'r2'"),
    ("explain/missing column", lambda t: _explain(t, _rows(t).drop(columns="a")), ValueError,
     r"missing column\(s\) \['a'\]"),
    ("explain/extra column", lambda t: _explain(t, _rows(t).assign(c=1)), ValueError, r"unknown column\(s\) \['c'\]"),
    ("explain/string in a numeric column", lambda t: _explain(t, _rows(t).assign(a=[1.0, 2.0, "3x", 4.0])),
     ValueError, r"column 'a' is continuous .* \(row 'r2': '3x'\)"),
    ("explain/NaN", lambda t: _explain(t, _rows(t).assign(a=[1.0, np.nan, 3.0, 4.0])), ValueError,
     r"column 'a' has 1 missing values \(NaN; first at row 'r1'\)"),
    ("explain/rows an array", lambda t: _explain(t, np.zeros((2, 2))), TypeError, r"rows must be a pandas DataFrame"),
    ("explain/features_to_vary unknown", lambda t: _explain(t, features_to_vary=["z"]), ValueError,
     r"features_to_vary: unknown column\(s\) \['z'\]"),
    ("explain/permitted_range outside the data", lambda t: _explain(t, permitted_range={"a": (0.0, 4.0)}), ValueError,
     r"permitted_range\['a'\] .* outside the data's bounds"),
    ("explain/permitted_range excludes a row", lambda t: _explain(t, permitted_range={"a": (2.0, 4.0)}), ValueError,
     r"permitted_range\['a'\] .* excludes the value 1.0 of row 'r0'"),
    ("from_frame/missing values", lambda t: cfx.data.from_frame(
        t["frame"].assign(a=[1.0, np.nan, 3.0, 4.0]), "y", categorical=["b"]), ValueError, r"column 'a' has 1 missing"),
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
    *[(f"{kind}/a string for the seed", lambda text: text + "\nseed: three\n", [], r"seed: expected an integer")
      for kind in SMOKE],
    *[(f"{kind}/malformed YAML", lambda text: text + "\n  data: [unclosed\n", [], r"YAML|yaml") for kind in SMOKE],
    *[(f"{kind}/truncated file", lambda text: text[: len(text) // 3].rsplit("\n", 1)[0] + "\n  - {name: \n", [],
       r"YAML|yaml|required") for kind in SMOKE],
    *[(f"{kind}/unknown preset", lambda text: text + "\npreset: no-such-preset\n", [], r"unknown preset")
      for kind in SMOKE],
    *[(f"{kind}/empty --set value", lambda text: text, ["--set", "seed="], r"seed: expected an integer.*the value after '=' is empty")
      for kind in SMOKE],
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


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
