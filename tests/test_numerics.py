"""Numerical robustness: a diverging training stops naming the epoch (every model kind), a
model without a gradient leaves its counterfactuals unconverged with a reason, and under
``jax_enable_x64`` cfx computes in float64 end to end and agrees with float32 mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cfx
from cfx import generators as G
from cfx.data import Dataset, FeatureSchema


@pytest.mark.parametrize("model", ["mlp", "linear", "ensemble", "jem", "jem_ensemble"])
def test_a_diverging_training_stops_with_the_epoch(model):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(64, 2)) * 1e3).astype(np.float32)
    data = Dataset(X, (X[:, 0] > 0).astype(np.int32), FeatureSchema.default(2))
    with pytest.raises(FloatingPointError, match=rf"fit {model}: the training .*non-finite at epoch \d+"):
        cfx.models.fit(data, model=model, epochs=4, learning_rate=1e36, widths=(8,), n_members=2, batch_size=32)


def test_a_diverging_vae_stops_with_the_epoch():
    X = (np.random.default_rng(0).normal(size=(64, 2)) * 1e3).astype(np.float32)
    with pytest.raises(FloatingPointError, match=r"fit_vae: the training loss became non-finite at epoch \d+"):
        cfx.models.fit_vae(X, epochs=3, learning_rate=1e36, hidden=(4,), batch_size=32)


def test_overflowing_logits_are_refused_or_reported_never_nan():
    """exp(60·x0²) logits: calibrate refuses (no NaN q̂), SGLD samples stay finite, and the
    search returns finite counterfactuals with the overflowing rows marked ``nonfinite``."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2)).astype(np.float32)
    data = Dataset(X, (X.sum(1) > 0).astype(np.int32), FeatureSchema.default(2))
    boom = cfx.Classifier(
        lambda p, x: jnp.stack([-jnp.exp(p * x[:, 0] ** 2), jnp.exp(p * x[:, 0] ** 2)], -1),
        jnp.float32(60.0),
        n_features=2,
    )
    with pytest.raises(FloatingPointError, match=r"calibrate: the classifier's probabilities are NaN or inf"):
        cfx.models.calibrate(boom, data)
    samples = cfx.sampling.conditional_samples(boom, data, key=jax.random.key(0), n_chains=8, steps=20, keep=4)
    assert np.isfinite(np.asarray(samples)).all()
    res = cfx.generate(G.Generic(), boom, X[:6], 1, key=jax.random.key(0), max_steps=10)
    assert np.isfinite(np.asarray(res.counterfactuals)).all()
    outcome = np.asarray(res.outcome)
    assert (outcome == cfx.OUTCOMES.index("nonfinite")).any() and not np.isnan(np.asarray(res.target_probs)).any()


def test_a_model_without_gradient_gives_unconverged_rows_not_a_silent_copy():
    """A flat model (zero gradient everywhere): no row converges, and a row returned as the
    factual itself says why (``unchanged``, or ``not_reached`` when the generator gave up)."""
    x = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    flat = cfx.Classifier(lambda p, x: jnp.zeros(x.shape[:-1] + (2,)) + p, jnp.array([1.0, 0.0]), n_features=2)
    unchanged = cfx.OUTCOMES.index("unchanged")
    for gen, k in [(G.Generic(), 1), (G.Greedy(), 1), (G.DiCE(), 2)]:
        res = cfx.generate(gen.replace(num_counterfactuals=k), flat, x, 1, key=jax.random.key(0), max_steps=20)
        outcome, cf = np.asarray(res.outcome), np.asarray(res.counterfactuals)
        assert not bool(np.asarray(res.converged).any()), type(gen).__name__
        copies = np.all(cf == x[:, None, :], axis=-1)  # a copy says why: unchanged, or the generator gave up
        gave_up = outcome == cfx.OUTCOMES.index("not_reached")
        assert np.array_equal(outcome == unchanged, copies & ~gave_up), (type(gen).__name__, outcome, copies)
    assert outcome.size  # at least one generator ran


# Run here (float32) and in a fresh process with JAX_ENABLE_X64=1: a fit, calibration, SGLD
# samples, searches with several generators and their evaluation. Under x64 every float comes
# out float64; the two modes agree to float32 precision (same outcomes, close counterfactuals).
X64_SCRIPT = """
import sys, numpy as np, jax, cfx
from cfx import models, generators as G
from cfx.data import Dataset, FeatureSchema
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 2)); y = (X.sum(1) > 0).astype(np.int64)  # float64 / int64 inputs on purpose
data = Dataset(X, y, FeatureSchema.default(2))
out = {"X": data.X}
mlp = models.fit(data, epochs=2, widths=(8,), batch_size=32)
out["params"] = np.concatenate([np.ravel(p) for p in jax.tree_util.tree_leaves(mlp.params)])
conf = models.calibrate(mlp, data)
out["q_hat"] = np.asarray(conf.q_hat)
out["probs"] = np.asarray(conf.probs(X[:8]))
out["samples"] = np.asarray(cfx.sampling.conditional_samples(mlp, data, key=jax.random.key(1), n_chains=4, steps=3,
                                                             keep=2))
for name, k in (("generic", 1), ("dice", 2), ("eccco", 1), ("growing_spheres", 1)):
    gen = G.make(name, data=data, classifier=conf)
    res = cfx.generate(gen.replace(num_counterfactuals=k), conf, X[:4], 1, key=jax.random.key(0), max_steps=6)
    out[name] = np.asarray(res.counterfactuals)
    out[name + "_target_probs"] = np.asarray(res.target_probs)
    out[name + "_outcome"] = np.asarray(res.outcome)
    metrics = cfx.evaluate(res, data=data, classifier=conf)["per_counterfactual"]
    for m in ("validity", "target_prob", "l1", "implausibility"):  # METRICS
        out[f"{name}_{m}"] = np.asarray(metrics[m])
np.savez(sys.argv[1], **out)
"""


METRICS = ("validity", "target_prob", "l1", "implausibility")


def test_x64_mode_computes_in_float64_and_agrees_with_float32(tmp_path):
    env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", X64_SCRIPT, str(tmp_path / "x64.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sys_argv = sys.argv
    try:
        sys.argv = ["x32", str(tmp_path / "x32.npz")]
        exec(X64_SCRIPT, {"__name__": "x32"})
    finally:
        sys.argv = sys_argv
    with np.load(tmp_path / "x64.npz") as a, np.load(tmp_path / "x32.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            if name.endswith("_outcome"):
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)
                continue
            assert a[name].dtype == np.float64, (name, a[name].dtype)
            if not name.endswith(METRICS):  # evaluate's tables are float64 on the host in both modes
                assert b[name].dtype == np.float32, (name, b[name].dtype)
            assert np.isfinite(a[name]).all(), name
            np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-4, err_msg=name)
        # float64 for real, not float32 values widened: the trained weights and a search leave the float32 grid
        for name in ("params", "generic", "eccco"):
            assert np.any(a[name] != a[name].astype(np.float32)), name
